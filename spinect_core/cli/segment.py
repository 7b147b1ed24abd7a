"""``spinect segment INPUT -o OUT``: label map on the input grid plus its label-table sidecar."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spinect_core.io.atomic import check_writable, write_text_atomic
from spinect_core.io.labelmap import IMAGE_SUFFIXES, image_stem, save_label_map, sidecar_path, write_image
from spinect_core.progress import TqdmProgress


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
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--blend", choices=("sum", "gaussian"), default="sum",
                   help="sum: the study's summed softmax; gaussian: nnU-Net importance weighting")
    p.add_argument("--stride", type=int, nargs=3, metavar=("Z", "Y", "X"),
                   help="sliding-window step in voxels (default: 5/8 of the patch, 20 40 40)")
    p.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                   default="auto")
    p.add_argument("--save-probabilities", action="store_true",
                   help="also write <name>.prob-<class>.nii.gz (float32, 0-1) per foreground class")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def probability_path(output: Path, class_name: str) -> Path:
    """``seg.nii.gz`` + ``nerve`` -> ``seg.prob-nerve.nii.gz`` (same format as the label map)."""
    suffix = output.name[len(image_stem(output)):]
    return output.with_name(f"{image_stem(output)}.prob-{class_name}{suffix}")


def run(args: argparse.Namespace) -> int:
    from spinect_core.io import load_ct
    from spinect_core.segment import SegmentOptions, Segmenter

    output = Path(args.output)
    if not output.name.lower().endswith(IMAGE_SUFFIXES):
        print(f"spinect: error: output {output.name} must end in .nii.gz, .nii, .nrrd or .mha",
              file=sys.stderr)
        return 2
    # Refuse before hours of work, not after.
    for path in (output, sidecar_path(output), output.with_name(image_stem(output) + ".json")):
        check_writable(path, overwrite=args.force)
    options = SegmentOptions(device=args.device, blend=args.blend,
                             stride_zyx=tuple(args.stride) if args.stride else None,
                             batch_size=args.batch_size, precision=args.precision,
                             keep_probabilities=args.save_probabilities)
    segmenter = Segmenter.from_weights(args.weights, options=options)
    ct = load_ct(args.input)
    for warning in ct.warnings:
        print(f"spinect: warning: {warning}", file=sys.stderr)
    with TqdmProgress("segmenting", disable=args.quiet) as bar:
        result = segmenter.segment(ct, progress=bar)
    for note in result.notes:
        print(f"spinect: note: {note}", file=sys.stderr)
    save_label_map(result.labels, result.table, output, overwrite=args.force)
    written = [str(output), str(sidecar_path(output))]
    if result.probabilities is not None:
        for class_id, name in result.table.foreground().items():
            path = probability_path(output, name)
            write_image(ct.with_array(result.probabilities[class_id].astype("float32")), path,
                        overwrite=args.force)
            written.append(str(path))
    summary = {"input": str(args.input), "outputs": written,
               "weights": {"name": segmenter.card.name, "version": segmenter.card.version},
               **result.summary()}
    summary_path = output.with_name(image_stem(output) + ".json")
    write_text_atomic(summary_path, json.dumps(summary, indent=2) + "\n", overwrite=args.force)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {output} ({result.device_used}, {result.precision_used}, "
              f"{result.timings_s['total']:.1f} s)")
    return 0
