"""``spinect plan INPUT -o OUT_DIR``: the L5/S1 plan of one CT and all its exports.

INPUT is a DICOM folder (or multi-frame file) or an image (NIfTI, NRRD, MHA). Without
``--segmentation`` the CT is segmented with the bundled weights (or ``--weights``), its bone taken
from ``--bone`` (network, CT bone model or fused), and the network's bone is checked against the
CT's own at L4-S1: disagreements are printed at once and lead the plan's warnings (``plan.json``
``segmentation_check``, the report); with ``--segmentation``, that label map (and its
``.labels.json`` sidecar table; the default bone/nerve table otherwise) is used as it is (on
another grid than the CT it is resampled onto the CT's, nearest neighbour, with a note), a 3D
Slicer ``.seg.nrrd`` read by segment name (never by label value), and ``--label-map`` maps a
site's names (a mapping JSON, or a ready one: ``totalsegmentator``, ``monailabel``) onto bone,
nerve, disc and dura; names it does not match are refused with the names found. The nerve
roots come from ``--roots``: ``fused`` (default: the exiting L4 and L5 and the traversing S1
roots traced on the CT, fused with the segmentation's nerve where they agree; a disagreement is
printed and goes into the plan's warnings and the report), ``ct`` (traced on the CT; the
segmentation's nerve class is not used at all) or ``network`` (the segmentation's nerve as it
is); ``plan.json`` records each side's roots (``sides.<side>.roots``, LPS mm). The
output folder receives ``plan.json``, ``report.html``, the needle markups, screenshots, area maps,
oblique planes (NIfTI, PNG, DICOM) and meshes (see
:func:`spinect_core.report.exports.write_plan_outputs`); an existing plan there is never
replaced without ``--force``, and with it is replaced whole (no file of the earlier plan stays).
The folder is checked (writable, free space) before any work, and the outputs appear together at
the end, so Ctrl-C leaves nothing half-written. No input path or file name is written into the
plan (a label map is described by its format). ``--json`` prints the ``plan.json`` document as
one line on stdout. Argument errors are one line ``spinect: error: ...`` with exit code 2. When
the anatomy refuses a CT this run segmented, the folder receives ``refusal.json`` and
``refused_segmentation.nii.gz`` instead (see :func:`_refused_with_outputs`), and the error names
them.

``--send AET@HOST:PORT`` (or a DICOMweb URL) stores every DICOM object the plan wrote (``*.dcm``
under OUT_DIR) on that PACS after the plan is written, calling as ``--aet`` (default SPINECT); a
failed send leaves the plan in place and exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spinect_core.cli.segment import add_bone_argument, one_line_errors, print_warnings
from spinect_core.progress import TqdmProgress, sub_progress
from spinect_core.vocabulary import TRAJECTORY_WINDOWS

SIDE_CHOICES = {"left": ("left",), "right": ("right",), "both": ("left", "right")}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plan", help="plan an L5/S1 transforaminal injection (views, needle, exports)",
        description="Find, per side, the C-arm views that show the L5/S1 Kambin and safe "
        "triangles largest, plan a needle through the better one and write plan.json, an HTML "
        "report, Slicer markups, screenshots, area maps, oblique planes and meshes into OUT_DIR. "
        "Coordinates are LPS millimetres. For research and planning support; not a certified "
        "medical device.")
    p.add_argument("input", help="CT: DICOM folder, multi-frame DICOM file, or NIfTI/NRRD/MHA image")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--segmentation", metavar="SEG",
                   help="label map of the CT (default: segment it with the weights)")
    p.add_argument("--label-map", metavar="MAPPING",
                   help="with --segmentation: map the file's segment/label names onto bone, "
                   "nerve, disc and dura with this mapping JSON or ready mapping "
                   "(totalsegmentator, monailabel; see docs/PACS.md)")
    p.add_argument("--weights", metavar="FILE",
                   help="weights .safetensors for segmenting (default: the bundled weights)")
    add_bone_argument(p, resolve_default=False)
    p.add_argument("--side", choices=tuple(SIDE_CHOICES), default="both",
                   help="side(s) to plan (default both)")
    p.add_argument("--variant", choices=("feasible", "bony", "neural"), default="feasible",
                   help="blockers: feasible (everything, ilium included), bony (traversing root "
                   "and dura transparent), neural (S1 superior articular process transparent)")
    p.add_argument("--roots", choices=("fused", "ct", "network"), default="fused",
                   help="nerve roots: fused (traced on the CT and the segmentation's nerve, "
                   "fused; disagreements are warned), ct (traced on the CT only: the "
                   "segmentation's nerve class is not used at all) or network (the "
                   "segmentation's nerve as it is); default fused")
    p.add_argument("--window", choices=TRAJECTORY_WINDOWS, default="auto",
                   help="window the needle goes through (auto: the larger usable area)")
    p.add_argument("--coarse-step", type=float, metavar="DEG",
                   help="view grid spacing of the optimiser, degrees (default 5)")
    p.add_argument("--final-step", type=float, metavar="DEG",
                   help="final step of the optimiser's refinement, degrees (default 0.5)")
    p.add_argument("--no-meshes", action="store_true", help="do not write the STL surfaces")
    p.add_argument("--ras", action="store_true",
                   help="also write the surfaces in RAS (*_ras.stl) for tools that ignore the "
                   "SPACE header")
    p.add_argument("--force", action="store_true", help="replace an earlier plan in OUT_DIR")
    p.add_argument("--json", action="store_true", help="print the plan.json document on stdout")
    p.add_argument("--send", metavar="AET@HOST:PORT",
                   help="after writing the plan, store its DICOM objects (*.dcm under OUT_DIR) "
                   "on this PACS (or DICOMweb URL)")
    p.add_argument("--aet", default=None, metavar="OUR_AET",
                   help="our AE title for --send (default SPINECT)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    one_line_errors(p)


def plan_options(args: argparse.Namespace) -> Any:
    """:class:`PlanOptions` from the command line."""
    from spinect_core.errors import InputError
    from spinect_core.planning.plan import PlanOptions

    extra: dict[str, float] = {}
    for name, value in (("coarse_step_deg", args.coarse_step), ("final_step_deg", args.final_step)):
        if value is not None:
            if not 0.0 < value <= 45.0:
                raise InputError(f"--{name[:-4].replace('_', '-')} must be in (0, 45] degrees, "
                                 f"got {value}")
            extra[name] = float(value)
    return PlanOptions(sides=SIDE_CHOICES[args.side], variant=args.variant,
                       trajectory_window=args.window,
                       roots=getattr(args, "roots", None) or "fused", **extra)


def run(args: argparse.Namespace) -> int:
    from spinect_core.errors import AnatomyError, InputError
    from spinect_core.io import load_ct
    from spinect_core.io.labelmap import load_label_map
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.planning.plan import PlanEngine
    from spinect_core.report.exports import PLAN_JSON, check_output_dir, write_plan_outputs

    options = plan_options(args)
    out = Path(args.output)
    mapping = None
    if args.label_map is not None:
        from spinect_core.io.labelmap import resolve_label_mapping

        if args.segmentation is None:
            raise InputError("--label-map maps the names of a --segmentation file; give one")
        mapping = resolve_label_mapping(args.label_map, default_table=DEFAULT_LABELS)
    sender = None
    if args.send is not None:
        from spinect_core.cli.pacs import client_from_args

        # Parse the node now: a typo fails in a second, not after the plan.
        sender = client_from_args(args, node_text=args.send)
    elif args.aet is not None:
        raise InputError("--aet is our AE title for --send; give --send too")
    if args.segmentation is not None and args.bone is not None:
        raise InputError("--bone chooses the bone of the network's segmentation; it cannot be "
                         "used with --segmentation (that label map is used as it is)")
    # Refuse before minutes of work, not after: an earlier plan (without --force), a folder that
    # cannot be written, too little free space. The outputs are then written into a temporary
    # folder beside OUT_DIR and put in place at the end; --force replaces an earlier plan whole.
    check_output_dir(out, overwrite=args.force)
    segmenter = None
    if args.segmentation is None:
        from spinect_core.segment import DEFAULT_BONE_MODE, SegmentOptions, Segmenter

        # Load the weights first: a missing installation fails in a second, not after loading.
        segmenter = Segmenter.from_weights(
            args.weights, options=SegmentOptions(bone=args.bone or DEFAULT_BONE_MODE))
    ct = load_ct(args.input)
    for warning in ct.warnings:
        print(f"spinect: warning: {warning}", file=sys.stderr)
    printed: set[str] = set()
    with TqdmProgress("planning", disable=args.quiet) as bar:
        bone_source, check = None, None
        if segmenter is None:
            labels, table = load_label_map(args.segmentation, default_table=DEFAULT_LABELS,
                                           mapping=mapping)
            # The format, not the name: files are often named after the patient.
            source = f"label map file ({_image_format(args.segmentation)})"
            start = 0.0
        else:
            from spinect_core.bone.agreement import check_segmentation

            result = segmenter.segment(ct, progress=sub_progress(bar, 0.0, 0.37, "segmenting: "))
            for note in result.notes:
                print(f"spinect: note: {note}", file=sys.stderr)
            # The network's own bone against the CT's at L4-S1, printed now: if the planning
            # then fails on a missed body, the user has already read why.
            check = check_segmentation(result, ct, progress=sub_progress(bar, 0.37, 0.4,
                                                                         "checking: "))
            print_warnings(check.warnings, printed)
            labels, table = result.labels, result.table
            source = f"{segmenter.card.name} {segmenter.card.version}"
            bone_source = result.bone_source
            start = 0.4
        try:
            # A label map on another grid than the CT is put on the CT's by the engine (a note).
            engine = PlanEngine(ct, labels, table, options=options, segmentation_source=source,
                                bone_source=bone_source, segmentation_check=check,
                                progress=sub_progress(bar, start, start + 0.05 * (1 - start)))
            for note in engine.notes:
                print(f"spinect: note: {note}", file=sys.stderr)
            plan = engine.plan(progress=sub_progress(bar, start + 0.05 * (1 - start),
                                                     start + 0.8 * (1 - start), "optimising: "))
        except AnatomyError as exc:
            if segmenter is None:
                raise                    # the user's own label map: nothing new to keep
            raise _refused_with_outputs(exc, out, labels=labels, table=table, source=source,
                                        bone_source=bone_source, check=check,
                                        overwrite=args.force) from exc
        # The exports read the CT, the label map and its table from the engine: with --roots ct
        # or fused its nerve class holds the chosen roots, so the masks and meshes show what the
        # windows were measured against.
        written = write_plan_outputs(plan, engine, out, meshes=not args.no_meshes, ras=args.ras,
                                     overwrite=args.force,
                                     progress=sub_progress(bar, start + 0.8 * (1 - start), 1.0,
                                                           "exporting: "))
    # The document as written (with the CT's UIDs in ``source`` and the DICOM objects' in
    # ``dicom``), so that --json prints exactly what plan.json holds.
    doc = json.loads((out / PLAN_JSON).read_text(encoding="utf-8"))
    if not args.json:
        print_warnings(plan.warnings, printed)
        print(summary_text(doc))
        n = sum(len(v) for v in written.values())
        print(f"wrote {n} files to {out} (report: {out / 'report.html'})")
    if sender is not None:
        send_plan(sender, out, quiet=args.quiet or args.json, to_stderr=args.json)
    if args.json:
        print(json.dumps(doc))
    return 0


def _refused_with_outputs(exc: Exception, out: Path, *, labels: Any, table: Any, source: str,
                          bone_source: str | None, check: Any, overwrite: bool) -> Exception:
    """The anatomy's refusal of a CT this run segmented, its segmentation and what the level
    count found written into ``out`` (``refusal.json``, ``refused_segmentation.nii.gz``): the
    minute of segmentation is not lost, and the user can correct it and plan again with
    ``--segmentation``. Returns the error to raise (the same type and evidence, its message
    saying where the files are)."""
    from spinect_core.errors import AnatomyError, SpinectError
    from spinect_core.report.exports import REFUSAL_JSON, REFUSAL_SEGMENTATION, write_refusal_outputs

    evidence = getattr(exc, "evidence", None)
    try:
        write_refusal_outputs(out, reason=str(exc), labels=labels, table=table,
                              level_evidence=None if evidence is None else evidence.to_dict(),
                              segmentation={"source": source, "bone_source": bone_source},
                              warnings=[] if check is None else list(check.warnings),
                              overwrite=overwrite)
        kept = (f"the segmentation and what was found are in {out}: {REFUSAL_SEGMENTATION}, "
                f"{REFUSAL_JSON}")
    except SpinectError as write_error:
        # The refusal's reason stays the error; the failed write is said after it.
        kept = f"its segmentation could not be kept: {write_error}"
    err = AnatomyError(f"{exc} ({kept})")
    err.evidence = evidence                   # type: ignore[attr-defined]
    return err


def send_plan(client: Any, out: Path, *, quiet: bool = False, to_stderr: bool = False) -> int:
    """Store every ``*.dcm`` under the plan folder ``out`` on the client's node (``quiet``: no
    progress bar; ``to_stderr``: the summary line on stderr, keeping stdout for ``--json``).

    Returns
    -------
    int
        Instances stored.

    Raises
    ------
    PacsError
        With a message saying that the plan itself is written and only the send failed.
    """
    from spinect_core.errors import InputError
    from spinect_core.pacs import PacsError

    files = sorted(out.rglob("*.dcm"))
    if not files:
        raise InputError(f"the plan in {out} holds no DICOM objects to send (*.dcm)")
    try:
        with TqdmProgress("sending", disable=quiet) as bar:
            result = client.store(files, progress=bar)
    except PacsError as exc:
        raise type(exc)(f"{exc} (the plan itself is written in {out}; send it later with "
                        "'spinect pacs send')") from None
    print(f"sent {result.stored} DICOM objects of the plan to {client.node}",
          file=sys.stderr if to_stderr else sys.stdout)
    return result.stored


def _image_format(path: str) -> str:
    from spinect_core.io.labelmap import IMAGE_SUFFIXES

    name = Path(path).name.lower()
    return next((suffix.lstrip(".") for suffix in IMAGE_SUFFIXES if name.endswith(suffix)),
                Path(path).suffix.lstrip(".") or "image")


def summary_text(doc: dict[str, Any]) -> str:
    """How sure the level is (first), then a few lines per side: the plateau views, areas and
    the needle (:func:`~spinect_core.report.level_text.plan_summary_lines`)."""
    from spinect_core.report.level_text import plan_summary_lines

    return "\n".join(plan_summary_lines(doc))
