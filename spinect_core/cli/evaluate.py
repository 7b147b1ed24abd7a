"""``spinect evaluate PRED GT``: per-class metrics of label maps, like the study's Table 2."""

from __future__ import annotations

import argparse
import re

from spinect_core.metrics.evaluate import evaluate_paths


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare predicted label maps with reference label maps",
        description="Dice, IoU, pixel accuracy (TP / true voxels), HD95 (mm) and surface Dice at "
        "1 mm per class. PRED and GT are label-map files with their .labels.json sidecars, or two "
        "folders whose files are paired by name. Classes are matched by name, so different id "
        "numbering is fine. Metrics are computed on the reference grid; a prediction on another "
        "grid is resampled (nearest neighbour) with a note.",
    )
    parser.add_argument("pred", metavar="PRED", help="predicted label map (file or folder)")
    parser.add_argument("gt", metavar="GT", help="reference label map (file or folder)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.add_argument("--classes", metavar="NAMES", default=None,
                        help="comma-separated class names to evaluate (default: all foreground)")
    parser.add_argument("--strict-grid", action="store_true",
                        help="fail when a prediction is not on its reference's grid "
                        "instead of resampling it")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    classes = None
    if args.classes:
        classes = [c for c in re.split(r"[,\s]+", args.classes) if c]
    report = evaluate_paths(args.pred, args.gt, classes=classes,
                            on_grid_mismatch="error" if args.strict_grid else "resample")
    print(report.to_json() if args.json else report.format_table())
    return 0
