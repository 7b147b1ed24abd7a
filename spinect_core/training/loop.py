"""The training loop: options (the study's recipe by default), validation, best model, weights.

:func:`train` runs, in this order:

1. fit the intensity normalisation on the training cases (``CTNormalisation.fit`` on the body,
   HU > -500) and bring every case onto the model grid (:mod:`.dataset`);
2. build the U-Net (He-initialised by the model itself), Adam, the loss with class weights from
   the training cases' class frequencies, and the patch sampler;
3. iterate: set the learning rate of the step (``TrainOptions.learning_rate_at``: constant, or
   nnU-Net's poly decay), sample a batch, forward, loss (label voxels of ``UNLABELLED`` = 255 do
   not count, :mod:`.loss`), backward, step; every ``val_every`` iterations (and at
   the end) segment the validation cases with the sliding-window
   :class:`~spinect_core.inference.Predictor` (the study: patch 32 x 64 x 64, stride 20 x 40 x 40,
   summed probabilities) and keep the model with the best mean foreground Dice; every
   ``checkpoint_every`` iterations write a resumable checkpoint (:mod:`.checkpoint`);
4. write the best model with :func:`~spinect_core.model.save_weights` and a model card (label
   table, patch, spacing, fitted normalisation, data and recipe, validation metrics), and the
   training log (:mod:`.log`).

Validation metrics are computed on the model grid (resampled, cropped), which is what the best-model
selection needs; ``spinect evaluate`` measures on the original grids.

Reproducibility: every random draw comes from ``seed`` (torch for the initial weights, one numpy
generator per rank for patches and augmentation), so a run with the same options, data and thread
count is repeatable, and ``resume=True`` continues from the latest checkpoint with the same
subsequent iterations as an uninterrupted run. On resumption the learning rate comes from the
*new* options (it and ``lr_schedule`` may change; the rate stored with the optimizer's state is
overridden), so a run can be continued with a lower rate.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from spinect_core.errors import Cancelled, SpinectError
from spinect_core.labels import LabelTable
from spinect_core.model import ModelCard, UNet3D, UNetConfig, save_weights
from spinect_core.preprocess import CTNormalisation
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.training.cases import Case, summarise_cases
from spinect_core.training.checkpoint import (
    latest_checkpoint, load_checkpoint, load_tensors, restore_model_and_optimizer,
    save_checkpoint, save_tensors,
)
from spinect_core.training.dataset import PatchSampler, class_voxel_counts, prepare_cases
from spinect_core.training.ddp import (
    SINGLE_PROCESS, DistContext, any_rank, barrier, gather_objects, wrap_model,
)
from spinect_core.training.log import TrainingLog
from spinect_core.training.loss import SegmentationLoss, class_weights
from spinect_core.training.options import RESUMABLE_CHANGES, TrainOptions
from spinect_core.training.validation import validate

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "train", "WEIGHTS_NAME", "CHECKPOINT_DIR"]

WEIGHTS_NAME = "model.safetensors"
CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best_model.safetensors"


@dataclass(kw_only=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    weights_path : Path or None
        ``OUT/model.safetensors`` (its card beside it as ``model.json``); ``None`` on ranks > 0.
    card : ModelCard or None
    iterations : int
        Iterations completed in total (a resumed run counts the earlier ones).
    start_iteration : int
        Where this call started (0, or the checkpoint's iteration when resuming).
    best_iteration : int or None
        Iteration of the kept model (``None`` without validation cases: the last model is kept).
    best_mean_dice : float or None
        Its mean foreground validation Dice.
    metrics : dict
        Validation metrics of the kept model, per class (``dice``, ``iou``, ``pixel_accuracy``).
    losses : list of float
        Training loss of every iteration run in this call (this rank's).
    log_paths : list of Path
    checkpoint_dir : Path
    seconds : float
    """

    weights_path: Path | None
    card: ModelCard | None
    iterations: int
    start_iteration: int
    best_iteration: int | None
    best_mean_dice: float | None
    metrics: dict[str, Any]
    losses: list[float]
    log_paths: list[Path]
    checkpoint_dir: Path
    seconds: float


# --- helpers --------------------------------------------------------------------------------------
def _common_table(cases: Sequence[Case]) -> LabelTable:
    table = cases[0].table
    for c in cases[1:]:
        if c.table != table:
            raise SpinectError(f"case {c.case_id} has another label table than {cases[0].case_id}; "
                               "load all cases with one label mapping")
    return table


def _check_resumable(saved: Mapping[str, Any], options: TrainOptions) -> None:
    now = options.to_dict()
    differ = sorted(k for k in set(saved) | set(now)
                    if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if differ:
        raise SpinectError(f"cannot resume: options {differ} differ from the checkpoint's; use "
                           "the same options (only iterations, device, learning rate and its "
                           "schedule, validation/checkpoint/log intervals and names may change) "
                           "or start a new run")


def _set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _prepare_out_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    from spinect_core.io.atomic import FileExistsRefusedError

    existing = [p for p in (out / WEIGHTS_NAME, out / CHECKPOINT_DIR / "latest.json") if p.exists()]
    if existing and not (resume or overwrite):
        raise FileExistsRefusedError(
            f"{out} already holds a training run ({existing[0].name}); resume it, choose another "
            "output folder, or pass overwrite (--force)")
    out.mkdir(parents=True, exist_ok=True)


def _card(*, options: TrainOptions, config: UNetConfig, table: LabelTable,
          normalisation: CTNormalisation, train_cases: Sequence[Case],
          val_cases: Sequence[Case], split: Mapping[str, Any] | None, iterations: int,
          best: Mapping[str, Any], world_size: int, weights: np.ndarray) -> ModelCard:
    training = {
        "data": {"train": summarise_cases(train_cases),
                 "validation": {"count": len(val_cases),
                                "case_ids": [c.case_id for c in val_cases]}},
        "split": dict(split) if split else None,
        "recipe": {"iterations": iterations, "seed": options.seed,
                   "optimizer": "adam", "learning_rate": options.learning_rate,
                   "lr_schedule": options.lr_schedule,
                   "weight_decay": options.weight_decay, "batch_size": options.batch_size,
                   "processes": world_size, "loss": options.loss,
                   "class_weights": {"scheme": options.class_weights,
                                     "values": [float(w) for w in weights]},
                   "foreground_fraction": options.foreground_fraction,
                   "oversample_classes": list(options.oversample_classes),
                   "augment": dataclasses.asdict(options.augment),
                   "validation": {"every": options.val_every, "stride_zyx": list(options.stride),
                                  "blend": options.val_blend,
                                  "selection": "best mean foreground Dice"},
                   "precision": options.precision},
        "options": options.to_dict(),
    }
    metrics: dict[str, Any] = {}
    if best.get("metrics"):
        metrics = {"validation": best["metrics"]["per_class"],
                   "validation_mean_dice": best["metrics"]["mean_dice"],
                   "best_iteration": best["iteration"],
                   "grid": "model grid (resampled and cropped)"}
    return ModelCard(name=options.name, version=options.version,
                     description=options.description or
                     f"3D U-Net trained on {len(train_cases)} cases for {iterations} iterations",
                     normalisation=normalisation.to_dict(), architecture=config, labels=table,
                     patch_size_zyx=options.patch_size, spacing_mm=options.spacing_mm,
                     training=training, metrics=metrics)


# --- the loop -------------------------------------------------------------------------------------
def train(cases: Sequence[Case], *, options: TrainOptions | None = None,
          out_dir: str | Path, val_cases: Sequence[Case] = (),
          progress: ProgressCallback | None = None, resume: bool = False,
          overwrite: bool = False, split: Mapping[str, Any] | None = None,
          dist: DistContext | None = None) -> TrainResult:
    """Train a U-Net on ``cases`` and write the best model to ``out_dir/model.safetensors``.

    Parameters
    ----------
    cases : sequence of Case
        Training cases (CT in HU + labels on its grid), all with the same label table.
    options : TrainOptions, optional
        Default: the study's recipe.
    out_dir : path-like
        Receives ``model.safetensors`` + ``model.json``, ``checkpoints/``, ``training_log.csv``,
        ``training_log.json`` and ``training_curves.png``.
    val_cases : sequence of Case
        Validation cases (best-model selection); none: the last model is kept.
    progress : callable, optional
        ``progress(fraction, message)``, called once per iteration on rank 0; returning
        ``False`` writes a checkpoint of the iterations done and raises
        :class:`~spinect_core.errors.Cancelled` (resume later with ``resume=True``).
    resume : bool
        Continue from ``out_dir/checkpoints/latest.json`` (start afresh when there is none).
    overwrite : bool
        Start afresh even if ``out_dir`` holds a run (its files are replaced).
    split : mapping, optional
        Recorded in the model card (e.g. ``Split.to_dict()``).
    dist : DistContext, optional
        From :func:`~spinect_core.training.ddp.init_distributed` under ``torchrun``.

    Returns
    -------
    TrainResult

    Raises
    ------
    Cancelled
        The progress callback returned ``False``.
    SpinectError
        Inconsistent label tables, options that do not match the checkpoint being resumed, a
        non-finite loss, or an output folder holding another run.
    """
    from spinect_core.inference.device import autocast, resolve_device

    t_start = time.perf_counter()
    options = options or TrainOptions()
    ctx = dist or SINGLE_PROCESS
    if not cases:
        raise SpinectError("no training cases")
    table = _common_table([*cases, *val_cases])
    config = dataclasses.replace(options.architecture, num_classes=table.num_classes)
    out = Path(out_dir)
    ckpt_dir = out / CHECKPOINT_DIR
    if ctx.is_main:
        _prepare_out_dir(out, resume=resume, overwrite=overwrite)
    barrier(ctx)

    ckpt = None
    if resume:
        path = latest_checkpoint(ckpt_dir)
        if path is None:
            log.warning("no checkpoint in %s: starting a new run", ckpt_dir)
        else:
            ckpt = load_checkpoint(path)
            _check_resumable(ckpt.state["options"], options)
    device = resolve_device(ctx.device if ctx.distributed else options.device)

    # 1. data
    prep_progress = sub_progress(progress if ctx.is_main else None, 0.0, 0.05, "preparing: ")
    if ckpt is not None:
        normalisation = CTNormalisation.from_dict(ckpt.state["normalisation"])
    elif options.normalisation == "zscore":
        normalisation = CTNormalisation(scheme="zscore")
    else:
        # Statistics of the body (HU > -500), not only of the labelled voxels (nnU-Net's
        # choice): nerves are told apart from the fat around them, and a clip range fitted on
        # bone + nerve voxels alone would clip fat up towards nerve intensities.
        normalisation = CTNormalisation.fit((c.ct.array for c in cases), seed=options.seed)
    oversample_ids = [table.id_of(n) for n in options.oversample_classes if table.has(n)]
    common = dict(spacing_mm=options.spacing_mm, normalisation=normalisation,
                  patch_size=options.patch_size, crop=options.crop)
    train_prep = prepare_cases(cases, oversample_ids=oversample_ids, progress=prep_progress,
                               **common)
    val_prep = prepare_cases(val_cases, **common) if ctx.is_main else []
    counts = class_voxel_counts(train_prep, table.num_classes)
    weights = class_weights(counts, scheme=options.class_weights)

    # 2. model, optimiser, loss, sampler
    torch.manual_seed(options.seed)  # identical initial weights on every rank (DDP checks)
    model = UNet3D(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate,
                                 weight_decay=options.weight_decay)
    loss_fn = SegmentationLoss(kind=options.loss, weights=weights).to(device)
    rng = np.random.default_rng(np.random.SeedSequence([options.seed, ctx.rank]))
    sampler = PatchSampler(train_prep, patch_size=options.patch_size,
                           batch_size=options.batch_size, table=table, augment=options.augment,
                           foreground_fraction=options.foreground_fraction,
                           oversample_ids=oversample_ids, rng=rng)
    tlog = TrainingLog()
    best: dict[str, Any] = {"iteration": None, "mean_dice": None, "metrics": None}
    best_state: dict[str, torch.Tensor] | None = None
    window: list[float] = []
    start = 0
    if ckpt is not None:
        restore_model_and_optimizer(ckpt, model, optimizer)
        # The stored param groups carry the old run's rate: the new options decide from here.
        _set_learning_rate(optimizer, options.learning_rate_at(ckpt.iteration))
        states = ckpt.state["sampler_states"]
        if len(states) == ctx.world_size:
            sampler.set_state(states[ctx.rank])
        else:
            log.warning("checkpoint was written by %d processes, now %d: patch sampling is "
                        "reseeded (training continues, but not identically)", len(states),
                        ctx.world_size)
            sampler.rng = np.random.default_rng(
                np.random.SeedSequence([options.seed, ctx.rank, ckpt.iteration]))
        tlog = TrainingLog(ckpt.state["log"])
        best = dict(ckpt.state["best"])
        window = list(ckpt.state.get("loss_window", []))
        start = ckpt.iteration
        if best.get("iteration") is not None and ctx.is_main:
            best_state = load_tensors(ckpt_dir / BEST_NAME)
    del ckpt
    net = wrap_model(model, ctx)

    def state_for_checkpoint(iteration: int) -> dict[str, Any] | None:
        sampler_states = gather_objects(sampler.get_state(), ctx)  # collective: all ranks
        if not ctx.is_main:
            return None
        return {"options": options.to_dict(), "normalisation": normalisation.to_dict(),
                "sampler_states": sampler_states, "log": tlog.to_json(), "best": best,
                "loss_window": window, "label_table": table.to_json(), "iteration": iteration}

    def checkpoint(iteration: int) -> None:
        state = state_for_checkpoint(iteration)
        if ctx.is_main:
            save_checkpoint(ckpt_dir, iteration=iteration, model=model, optimizer=optimizer,
                            state=state or {}, keep=options.keep_checkpoints)

    # 3. iterate
    losses: list[float] = []
    train_progress = sub_progress(progress if ctx.is_main else None, 0.05, 1.0)
    total = options.iterations
    t_iter = time.perf_counter()
    done = start
    model.train()
    for it in range(start, total):
        lr = options.learning_rate_at(it)
        _set_learning_rate(optimizer, lr)
        images, labels = sampler.sample()
        x = torch.from_numpy(images).to(device, non_blocking=True)
        y = torch.from_numpy(labels).to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, options.precision):
            logits = net(x)
        loss = loss_fn(logits, y)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise SpinectError(f"the training loss became {value} at iteration {it + 1}; lower "
                               "the learning rate or check the data")
        loss.backward()
        if options.grad_clip_norm:
            # Rare large gradients (bf16 forward, Dice on near-empty patches) otherwise blow Adam's
            # moments up and the weights go to NaN a few steps later.
            torch.nn.utils.clip_grad_norm_(net.parameters(), options.grad_clip_norm)
        optimizer.step()
        losses.append(value)
        window.append(value)
        done = it + 1
        if done % options.log_every == 0 or done == total:
            tlog.add(iteration=done, kind="train", loss=float(np.mean(window)),
                     **loss_fn.last_terms, lr=lr,
                     seconds=time.perf_counter() - t_iter)
            window = []
        if val_cases and (done % options.val_every == 0 or done == total):
            if ctx.is_main:
                metrics = validate(model, val_prep, table, options=options, device=device)
                model.train()
                tlog.add(iteration=done, kind="val", mean_dice=metrics["mean_dice"],
                         **{f"dice_{n}": m["dice"] for n, m in metrics["per_class"].items()})
                if best["mean_dice"] is None or metrics["mean_dice"] > best["mean_dice"]:
                    best = {"iteration": done, "mean_dice": metrics["mean_dice"],
                            "metrics": metrics}
                    best_state = {k: v.detach().to("cpu").clone()
                                  for k, v in model.state_dict().items()}
                    save_tensors(ckpt_dir / BEST_NAME, best_state,
                                 metadata={"iteration": str(done)})
            barrier(ctx)
        if done % options.checkpoint_interval == 0 or done == total:
            checkpoint(done)
        cancelled = False
        if ctx.is_main and train_progress is not None:
            bm = best["mean_dice"]
            message = (f"iteration {done}/{total} loss {value:.4f}"
                       + ("" if bm is None else f" val Dice {bm:.3f}@{best['iteration']}"))
            try:
                report(train_progress, (done - start) / max(total - start, 1), message)
            except Cancelled:
                cancelled = True
        if any_rank(cancelled, ctx):  # all ranks stop together, with a checkpoint to resume
            if done % options.checkpoint_interval and done != total:
                checkpoint(done)
            raise Cancelled()

    # 4. the final model
    weights_path = None
    card = None
    log_paths: list[Path] = []
    if ctx.is_main:
        final = UNet3D(config)
        final.load_state_dict(best_state if best_state is not None else
                              {k: v.detach().to("cpu") for k, v in model.state_dict().items()})
        card = _card(options=options, config=config, table=table, normalisation=normalisation,
                     train_cases=cases, val_cases=val_cases, split=split, iterations=done,
                     best=best, world_size=ctx.world_size, weights=weights)
        weights_path = save_weights(final, card, out / WEIGHTS_NAME, overwrite=True)
        from spinect_core.model import read_model_card

        card = read_model_card(weights_path)
        log_paths = tlog.write(out)
    barrier(ctx)
    metrics = best["metrics"]["per_class"] if best.get("metrics") else {}
    return TrainResult(weights_path=weights_path, card=card, iterations=done,
                       start_iteration=start, best_iteration=best["iteration"],
                       best_mean_dice=best["mean_dice"], metrics=metrics, losses=losses,
                       log_paths=log_paths, checkpoint_dir=ckpt_dir,
                       seconds=time.perf_counter() - t_start)
