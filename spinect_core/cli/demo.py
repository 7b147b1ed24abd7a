"""``spinect demo``: the whole pipeline on the embedded demo case."""

from __future__ import annotations

import argparse

from spinect_core.planning.carm import carm_text
from spinect_core.progress import TqdmProgress
from spinect_core.vocabulary import WINDOW_KINDS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the pipeline on the embedded demo case",
        description="Generate the demo phantom, write it as DICOM, load it back, segment it and "
        "evaluate the result against its exact labels.")
    p.add_argument("-o", "--output", default="spinect-demo", help="output folder (spinect-demo)")
    p.add_argument("--weights", help="weights .safetensors (default: the bundled weights)")
    p.add_argument("--force", action="store_true", help="replace files of an earlier demo run")
    p.add_argument("--no-plan", action="store_true", help="stop after segmentation and evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from spinect_core.demo import run_demo

    with TqdmProgress("demo", disable=args.quiet) as bar:
        result = run_demo(args.output, weights=args.weights, overwrite=args.force,
                          plan=not args.no_plan, progress=bar)
    print(f"\nDemo case: {result.case_dir} (DICOM series in {result.dicom_dir})")
    print(f"Weights: {result.weights}")
    print(f"Segmentation: {result.segmentation}")
    print(result.evaluation.format_table())
    if result.plan is not None:
        print(f"\nPlan, using {result.plan_labels}: {result.plan_dir / 'report.html'}")
        for side, sp in result.plan.sides.items():
            for kind in WINDOW_KINDS:
                w = sp.window(kind)
                if w.found:
                    v = w.plateau_view
                    print(f"  {side:5s} {kind:6s} {v.area_mm2:6.1f} mm2 at alpha {v.alpha_deg:5.1f}, "
                          f"beta {v.beta_deg:5.1f} deg  ({carm_text(v.carm, degree_sign=False)})")
                else:
                    print(f"  {side:5s} {kind:6s} not found: {w.reason}")
            t = sp.trajectory
            if t is not None:
                print(f"  {side:5s} needle through the {sp.trajectory_window} window: "
                      f"{t.length_mm:.0f} mm, nerve clearance {t.min_nerve_clearance_mm:.1f} mm, "
                      f"{'safe' if t.safe else 'NOT SAFE: ' + t.reason}")
    for note in result.notes:
        print(f"note: {note}")
    seconds = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in result.timings_s.items())
    print(f"Time: {seconds}. Summary: {result.out_dir / 'demo.json'}")
    return 0
