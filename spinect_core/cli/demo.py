"""``spinect demo``: the whole pipeline on the embedded demo case."""

from __future__ import annotations

import argparse

from spinect_core.progress import TqdmProgress


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
        from spinect_core.report.level_text import plan_summary_lines

        print(f"\nPlan, using {result.plan_labels}: {result.plan_dir / 'report.html'}")
        for line in plan_summary_lines(result.plan):
            print(f"  {line}")
    for note in result.notes:
        print(f"note: {note}")
    seconds = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in result.timings_s.items())
    print(f"Time: {seconds}. Summary: {result.out_dir / 'demo.json'}")
    return 0
