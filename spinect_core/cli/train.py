"""``spinect train DATA_DIR -o OUT_DIR``: train a U-Net on a folder of labelled CTs.

Single process: ``spinect train data/ -o runs/fold0 --folds 5 --fold 0``.
Several GPUs / machines: start the same command under ``torchrun``; when ``WORLD_SIZE`` > 1 it
joins the process group (DistributedDataParallel; only rank 0 validates and writes)::

    torchrun --standalone --nproc_per_node=4 -m spinect_core.cli.train data/ -o runs/fold0

Writes ``OUT_DIR/model.safetensors`` + ``model.json`` (model card), ``split.json``,
``training_log.csv``/``.json``, ``training_curves.png`` and ``checkpoints/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["register", "add_arguments", "run", "main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``train`` arguments (shared by ``spinect train`` and ``python -m spinect_core.cli.train``)."""
    p.add_argument("data_dir", help="folder of cases: <case>/ct.nii.gz + labels.nii.gz (or a "
                   "Slicer .seg.nrrd), imagesTr/labelsTr, or <id>_ct.* + <id>_labels.*")
    p.add_argument("-o", "--output", required=True, help="output folder of the run")
    p.add_argument("--label-map", metavar="MAPPING.json",
                   help="JSON mapping the site's segment names to the model's classes")
    p.add_argument("--config", choices=("study", "fast"), default="study",
                   help="study: the AJNR 2019 recipe and network; fast: half-width network with "
                   "foreground oversampling, Dice+CE and stronger augmentation")
    p.add_argument("--iterations", type=int, help="training iterations (default 20000)")
    p.add_argument("--val-every", type=int, help="validate every N iterations (default 100)")
    p.add_argument("--batch-size", type=int, help="patches per iteration and process (default 4)")
    p.add_argument("--patch", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="patch size in voxels (default 32 64 64)")
    p.add_argument("--options", metavar="OPTIONS.json",
                   help="JSON object of TrainOptions fields applied on top of --config (e.g. "
                   '{"architecture": {"base_channels": 8, "depth": 4}, "learning_rate": 1e-4}); '
                   "the flags above override it")
    p.add_argument("--folds", type=int, default=1,
                   help="K-fold split; 1 (default): no test set, 20%% of the cases validate")
    p.add_argument("--fold", type=int, default=0, help="which fold is the test set (0-based)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--force", action="store_true", help="replace a previous run in OUT_DIR")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, weights and sampling")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a segmentation network on labelled CTs",
        description="Train the SPINECT 3D U-Net on a folder of CTs with label maps or 3D Slicer "
        "segmentations. Under torchrun with several processes it trains with DDP.")
    add_arguments(p)
    p.set_defaults(handler=run)


def _options(args: argparse.Namespace):  # -> TrainOptions
    from spinect_core.errors import InputError
    from spinect_core.training import TrainOptions

    preset = TrainOptions.fast() if args.config == "fast" else TrainOptions.study()
    data = preset.to_dict()
    if args.options:
        try:
            extra = json.loads(Path(args.options).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read options {args.options}: {exc}") from None
        if not isinstance(extra, dict):
            raise InputError(f"options {args.options} must hold a JSON object")
        unknown = sorted(set(extra) - set(data))
        if unknown:
            raise InputError(f"options {args.options} has unknown fields {unknown}")
        for key, value in extra.items():
            if key in ("architecture", "augment") and isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
    data.update(seed=args.seed, device=args.device)
    flags = {"iterations": args.iterations, "val_every": args.val_every,
             "batch_size": args.batch_size, "patch_size": args.patch}
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return TrainOptions.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid training options: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from spinect_core.io.atomic import write_text_atomic
    from spinect_core.progress import TqdmProgress
    from spinect_core.training import (
        LabelMapping, discover_cases, load_cases, split_for_fold, train,
    )
    from spinect_core.training.ddp import (
        SINGLE_PROCESS, cleanup, init_distributed, is_distributed_env,
    )

    ctx = init_distributed(device=args.device) if is_distributed_env() else SINGLE_PROCESS
    try:
        options = _options(args)
        out = Path(args.output)
        mapping = LabelMapping.from_file(args.label_map) if args.label_map else None
        files = discover_cases(args.data_dir)
        cases = load_cases(files, mapping=mapping)
        split = split_for_fold([c.case_id for c in cases], folds=args.folds, fold=args.fold,
                               seed=args.seed)
        by_id = {c.case_id: c for c in cases}
        if ctx.is_main:
            print(f"{len(cases)} cases, split {split.counts} (train:val:test), fold "
                  f"{split.fold + 1}/{split.folds}"
                  + (f", {ctx.world_size} processes ({ctx.backend})" if ctx.distributed else ""),
                  file=sys.stderr)
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out / "split.json", json.dumps(split.to_dict(), indent=2) + "\n",
                              overwrite=True)
        with TqdmProgress("training", disable=args.quiet or not ctx.is_main) as bar:
            result = train([by_id[i] for i in split.train],
                           val_cases=[by_id[i] for i in split.val], options=options,
                           out_dir=out, progress=bar, resume=args.resume,
                           overwrite=args.force, split=split.to_dict(), dist=ctx)
        if ctx.is_main:
            best = ("" if result.best_mean_dice is None else
                    f", best validation Dice {result.best_mean_dice:.3f} at iteration "
                    f"{result.best_iteration}")
            print(f"wrote {result.weights_path} ({result.iterations} iterations{best})")
    finally:
        cleanup(ctx)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spinect_core.cli.train ...`` (the entry point ``torchrun -m`` needs)."""
    import logging

    from spinect_core.errors import Cancelled, SpinectError

    parser = argparse.ArgumentParser(prog="spinect train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except Cancelled:
        print("spinect: cancelled", file=sys.stderr)
        return 130
    except SpinectError as exc:
        print(f"spinect: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # guard: torchrun / spawn re-import this module
    sys.exit(main())
