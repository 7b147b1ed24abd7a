"""``spinect validate COHORT -o OUT_DIR``: automatic against manual labels, as the study did.

COHORT holds one folder per case with the CT (``ct.nii.gz``, another image, or a ``dicom/``
series) and the manual labels (``labels.nii.gz`` with its ``.labels.json`` table, or a 3D Slicer
``.seg.nrrd``), as ``spinect phantom COHORT/caseNN`` writes (see
:mod:`spinect_core.validation.cohort`). Each case is segmented (the bundled weights unless
``--weights``), compared per class with its manual labels, and planned on both label maps; the
window areas are measured on both at the same views. OUT_DIR receives the study's Table 2 and
Table 4 (CSV), the best-view agreement, Bland-Altman plots, ``validation.json`` and
``report.html`` (:mod:`spinect_core.validation.report`).

Resumable: each finished case is cached in ``OUT_DIR/cases/<case>.json`` at once, and a rerun
into the same folder skips the cases done with the same settings (a case that failed is tried
again); ``--force`` recomputes all. The tables, plots and page are rebuilt from the cache at the
end of every run. Case names are the folder names as given: they appear in the outputs, so name
the folders with codes, not patient names.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from spinect_core.cli.segment import add_bone_argument, one_line_errors


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "validate", help="validate segmentation and windows against manual labels (a cohort)",
        description="For a folder of cases with manual labels (COHORT/<case>/ct.nii.gz or "
        "dicom/, and labels.nii.gz or a Slicer .seg.nrrd, as 'spinect phantom' writes): segment "
        "each CT, compare with the manual labels (Dice, IoU, pixel accuracy), plan on both label "
        "maps, measure the Kambin and safe windows at the same C-arm views and write the study's "
        "Table 2 and Table 4 (Shapiro-Wilk, then paired t-test or Wilcoxon), Bland-Altman plots "
        "and the agreement of the best views as CSV, JSON and report.html into OUT_DIR. Finished "
        "cases are cached in OUT_DIR/cases/: a rerun skips them. Case names are the folder "
        "names, printed in every output: use non-identifying codes.")
    p.add_argument("cohort", metavar="COHORT", help="folder with one sub-folder per case")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--weights", metavar="FILE",
                   help="weights .safetensors for segmenting (default: the bundled weights)")
    add_bone_argument(p)
    p.add_argument("--side", choices=("left", "right", "both"), default="both",
                   help="side(s) to plan (default both)")
    p.add_argument("--variant", choices=("feasible", "bony", "neural"), default="feasible",
                   help="blockers of the windows (as in 'spinect plan')")
    p.add_argument("--coarse-step", type=float, metavar="DEG",
                   help="view grid spacing of the optimiser, degrees (default 5)")
    p.add_argument("--final-step", type=float, metavar="DEG",
                   help="final step of the optimiser's refinement, degrees (default 0.5)")
    p.add_argument("--no-plan", action="store_true",
                   help="segmentation metrics only (Table 2): no planning, no Table 4")
    p.add_argument("--classes", metavar="NAMES",
                   help="comma-separated classes of Table 2 (default: all classes in common)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="level of the Shapiro-Wilk test that chooses the paired t-test (normal) "
                   "or the Wilcoxon test (default 0.05)")
    p.add_argument("--force", action="store_true",
                   help="recompute every case, replacing the cached results in OUT_DIR/cases")
    p.add_argument("--json", action="store_true",
                   help="print the summary (validation.json's) as one JSON line on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    one_line_errors(p)


def run(args: argparse.Namespace) -> int:
    from spinect_core.cli.plan import SIDE_CHOICES
    from spinect_core.errors import InputError
    from spinect_core.io.atomic import check_output_location
    from spinect_core.progress import TqdmProgress, sub_progress
    from spinect_core.validation import (ValidationOptions, discover_cohort,
                                         network_segment_function, run_cohort, summarise_cohort,
                                         write_validation_outputs)

    if not 0.0 < args.alpha < 1.0:
        raise InputError(f"--alpha must lie in (0, 1), got {args.alpha}")
    classes = None
    if args.classes:
        classes = tuple(c for c in re.split(r"[,\s]+", args.classes) if c) or None
    options = ValidationOptions(plan=None if args.no_plan else _plan_options(args),
                                planning=not args.no_plan, classes=classes, alpha=args.alpha)
    out = Path(args.output)
    cases = discover_cohort(args.cohort)
    check_output_location(out, what="the validation outputs")
    segment, fingerprint = network_segment_function(args.weights, bone=args.bone)
    settings = {"segmentation": fingerprint,
                "sides": list(SIDE_CHOICES[args.side]), "variant": args.variant,
                **options.fingerprint()}
    print(f"{len(cases)} cases in the cohort", file=sys.stderr)
    with TqdmProgress("validating", disable=args.quiet) as bar:
        result = run_cohort(cases, out, segment, options=options,
                            segment_fingerprint=fingerprint, force=args.force,
                            progress=sub_progress(bar, 0.0, 0.98))
        summary = summarise_cohort(result.records, alpha=args.alpha)
        written = write_validation_outputs(summary, result.records, out, settings=settings)
        bar(1.0, "written")
    if args.json:
        print(json.dumps(summary))
        return 0
    print(summary_text(summary))
    if result.reused:
        print(f"{len(result.reused)} cases reused from {out / 'cases'}, "
              f"{len(result.computed)} computed now")
    for failed in summary["failed"]:
        print(f"spinect: warning: case {failed['case_id']} failed: {failed['error']}",
              file=sys.stderr)
    print(f"wrote {len(written)} files to {out} (report: {out / 'report.html'})")
    return 0


def _plan_options(args: argparse.Namespace) -> Any:
    """:class:`PlanOptions` of both plans: the library's defaults (the label maps' own nerve
    divides the windows, so Table 4 measures what the segmentation changes) with the sides,
    variant and optimiser steps given."""
    from spinect_core.cli.plan import SIDE_CHOICES
    from spinect_core.errors import InputError
    from spinect_core.planning.plan import PlanOptions

    extra: dict[str, float] = {}
    for flag, name, value in (("--coarse-step", "coarse_step_deg", args.coarse_step),
                              ("--final-step", "final_step_deg", args.final_step)):
        if value is not None:
            if not 0.0 < value <= 45.0:
                raise InputError(f"{flag} must be in (0, 45] degrees, got {value}")
            extra[name] = float(value)
    return PlanOptions(sides=SIDE_CHOICES[args.side], variant=args.variant, **extra)


def summary_text(summary: dict[str, Any]) -> str:
    """Table 2 and Table 4 in a few lines for the terminal."""
    from spinect_core.validation.tables import TABLE2_METRICS, desc_text

    lines = [f"Table 2 ({len(summary['cases'])} cases): mean +- SD (range)"]
    for name, per in summary["table2"].items():
        cells = "; ".join(f"{m} {desc_text(per[m], 3)}" for m in TABLE2_METRICS)
        lines.append(f"  {name:10s} {cells}")
    same = summary["table4"].get("same_view") if summary["table4"] else None
    if same:
        lines.append("Table 4: window areas at the same view, manual vs automatic (mm^2)")
        for side, per_kind in same.items():
            for kind, t in per_kind.items():
                p = "n/a" if t["p"] is None else f"{t['p']:.3g}"
                lines.append(f"  {side:5s} {kind:6s} n={t['n']:2d} manual "
                             f"{desc_text(t['manual'], 1)} | automatic "
                             f"{desc_text(t['automatic'], 1)} | {t['test']} p={p}")
        lines.append("Best views, angle manual vs automatic (deg):")
        for side, per_kind in summary["best_views"].items():
            for kind, d in per_kind.items():
                lines.append(f"  {side:5s} {kind:6s} n={d['n']:2d} {desc_text(d, 1)}")
    return "\n".join(lines)
