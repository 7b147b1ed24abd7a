"""``spinect segment INPUT -o OUT``: label map on the input grid plus its label-table sidecar.

Before any work the outputs are refused when they exist (without ``--force``) and the output
folder is checked for writing and free space; the outputs (label map, sidecar, probability maps,
summary) are written under temporary names and moved into place together at the end, so Ctrl-C or
a full disk leaves none of them. The summary names the input's format only, never its path, and
the outputs by file name.

The summary ``<name>.json`` beside the label map gives the class volumes, the bone source
(``--bone``), the CT bone model's thresholds and the segmentation check: the network's bone
against the CT's own bone at L4, L5 and S1 (:mod:`spinect_core.bone.agreement`), whose
disagreements are also printed as warnings.

Option values are checked by argparse (positive batch size and stride, a device this machine
has); every argparse error is one line ``spinect: error: ...`` with exit code 2, as for the
errors the dispatcher catches.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from spinect_core.io.atomic import check_writable, write_text_atomic
from spinect_core.io.labelmap import IMAGE_SUFFIXES, image_stem, save_label_map, sidecar_path, write_image
from spinect_core.progress import TqdmProgress, sub_progress

#: ``--bone`` help: what each source means (shared with ``spinect plan``).
BONE_HELP = ("where the bone class comes from: network (the network's bone as predicted), ct (the "
             "model-free CT bone model: thresholds from the scan's own histogram, filled cortical "
             "shells; voxels the network called bone that it rejects get the network's next "
             "class), fused (the CT bone model's bone plus the network's bone within 3 mm of it; "
             "network bone far from any CT bone, e.g. in contrast-filled vessels, is dropped); "
             "default: {default}")


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser``'s errors (bad option values, missing arguments) one line on stderr,
    ``spinect: error: <message>``, with exit code 2: the format of every other CLI failure."""
    def error(message: str) -> None:  # argparse's error() must not return
        parser.exit(2, f"spinect: error: {message} (see '{parser.prog} --help')\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


def batch_size(text: str) -> int | str:
    """``auto`` or a positive integer (argparse type)."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def device_name(text: str) -> str:
    """argparse type: ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``, and present here.

    A CUDA or MPS device this machine does not have is refused now, not after the weights and
    the CT are loaded.
    """
    name = text.strip().lower()
    m = re.fullmatch(r"(auto|cpu|mps|cuda)(?::(\d+))?", name)
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use auto, cpu, cuda, cuda:N "
                                         "or mps")
    kind, index = m.group(1), m.group(2)
    if kind == "cuda":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{name}: CUDA is not available on this machine; "
                                             "use --device cpu or auto")
        if index is not None and int(index) >= count:
            have = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
            raise argparse.ArgumentTypeError(f"{name} does not exist: this machine has {count} "
                                             f"CUDA device{'s' if count > 1 else ''} ({have})")
    elif kind == "mps":
        import torch

        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise argparse.ArgumentTypeError("mps: Apple MPS is not available on this machine; "
                                             "use --device cpu or auto")
    return name


def add_bone_argument(parser: argparse.ArgumentParser, *, resolve_default: bool = True) -> None:
    """``--bone network|ct|fused``; its default is :data:`~spinect_core.segment.DEFAULT_BONE_MODE`
    (``resolve_default=False``: ``None``, for a caller that must know whether it was given)."""
    from spinect_core.bone import BONE_MODES
    from spinect_core.segment import DEFAULT_BONE_MODE

    parser.add_argument("--bone", choices=BONE_MODES,
                        default=DEFAULT_BONE_MODE if resolve_default else None,
                        help=BONE_HELP.format(default=DEFAULT_BONE_MODE))


def print_warnings(lines: list[str], printed: set[str] | None = None) -> None:
    """``spinect: warning: ...`` on stderr, each line once (``printed`` remembers them)."""
    for line in lines:
        if printed is not None:
            if line in printed:
                continue
            printed.add(line)
        print(f"spinect: warning: {line}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "segment", help="segment bone and nerves (label map on the input grid)",
        description="Segment a CT (DICOM folder or NIfTI/NRRD/MHA) with a SPINECT network. Writes "
        "a label map on the input grid (format by extension) and <name>.labels.json with the label "
        "table; geometry is LPS.")
    p.add_argument("input", help="DICOM folder, multi-frame DICOM file, or NIfTI/NRRD/MHA image")
    p.add_argument("-o", "--output", required=True,
                   help="label map path ending in .nii.gz, .nii, .nrrd or .mha")
    p.add_argument("--weights", help="weights .safetensors (default: the bundled weights)")
    p.add_argument("--device", default="auto", type=device_name,
                   help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--blend", choices=("sum", "gaussian"), default="sum",
                   help="sum: the study's summed softmax; gaussian: nnU-Net importance weighting")
    p.add_argument("--stride", type=positive_int, nargs=3, metavar=("Z", "Y", "X"),
                   help="sliding-window step in voxels (default: 5/8 of the patch, 20 40 40)")
    p.add_argument("--batch-size", type=batch_size, default="auto",
                   help="windows per forward pass: auto (default: 4 on the CPU, what free memory "
                        "holds on a GPU) or an integer >= 1")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                   default="auto")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <name>.prob-<class>.nii.gz (float32, 0-1) per foreground class")
    add_bone_argument(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    one_line_errors(p)


def probability_path(output: Path, class_name: str) -> Path:
    """``seg.nii.gz`` + ``nerve`` -> ``seg.prob-nerve.nii.gz`` (same format as the label map)."""
    suffix = output.name[len(image_stem(output)):]
    return output.with_name(f"{image_stem(output)}.prob-{class_name}{suffix}")


#: Free space asked for before anything is loaded (label map, sidecar, summary), bytes; the
#: probability maps are added once the CT's size is known.
SEGMENT_OUTPUT_BYTES = 50_000_000


def run(args: argparse.Namespace) -> int:
    from spinect_core.bone.agreement import check_segmentation
    from spinect_core.errors import InputError
    from spinect_core.io import load_ct
    from spinect_core.io.atomic import StagedFiles, check_output_location
    from spinect_core.segment import SegmentOptions, Segmenter

    output = Path(args.output)
    if not output.name.lower().endswith(IMAGE_SUFFIXES):
        raise InputError(f"output {output.name} must end in .nii.gz, .nii, .nrrd or .mha")
    summary_path = output.with_name(image_stem(output) + ".json")
    # Refuse before hours of work, not after: existing outputs, an unwritable folder, no space.
    for path in (output, sidecar_path(output), summary_path):
        check_writable(path, overwrite=args.force)
    check_output_location(output, need_bytes=SEGMENT_OUTPUT_BYTES, what="the segmentation")
    options = SegmentOptions(device=args.device, blend=args.blend,
                             stride_zyx=tuple(args.stride) if args.stride else None,
                             batch_size=args.batch_size, precision=args.precision,
                             keep_probabilities=args.save_probabilities,
                             bone=args.bone)
    segmenter = Segmenter.from_weights(args.weights, options=options)
    ct = load_ct(args.input)
    for warning in ct.warnings:
        print(f"spinect: warning: {warning}", file=sys.stderr)
    if args.save_probabilities:  # float32 per foreground class, before minutes of work
        n_classes = segmenter.card.labels.num_classes
        check_output_location(output, what="the probability maps",
                              need_bytes=SEGMENT_OUTPUT_BYTES + 4 * ct.array.size * n_classes)
    with TqdmProgress("segmenting", disable=args.quiet) as bar:
        result = segmenter.segment(ct, progress=sub_progress(bar, 0.0, 0.9))
        # The network's bone against the CT's own at L4-S1 (reuses the CT bone model's run).
        check = check_segmentation(result, ct, progress=sub_progress(bar, 0.9, 1.0, "checking: "))
    for note in result.notes:
        print(f"spinect: note: {note}", file=sys.stderr)
    print_warnings(check.warnings)
    # Every output is written under a temporary name and all are moved into place at the end:
    # an interrupt or a full disk leaves none of them half-written.
    written = [output, sidecar_path(output)]
    with StagedFiles(overwrite=args.force) as stage:
        tmp = stage.path(output)
        stage.alias(sidecar_path(tmp), sidecar_path(output))
        save_label_map(result.labels, result.table, tmp)
        if result.probabilities is not None:
            for class_id, name in result.table.foreground().items():
                path = probability_path(output, name)
                write_image(ct.with_array(result.probabilities[class_id].astype("float32")),
                            stage.path(path))
                written.append(path)
        # No input path: folders and files are often named after the patient. Output names
        # only, relative to this summary.
        summary = {"input": {"format": ct.metadata.source_format},
                   "outputs": [p.name for p in written],
                   "weights": {"name": segmenter.card.name, "version": segmenter.card.version},
                   **result.summary()}
        write_text_atomic(stage.path(summary_path), json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {output} ({result.device_used}, {result.precision_used}, "
              f"{result.timings_s['total']:.1f} s)")
    return 0
