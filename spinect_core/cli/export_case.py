"""``spinect export-case CT LABELS SITE_DIR``: a reviewed case as a training case.

Writes the CT and its (corrected) labels into ``SITE_DIR/case-<random>/`` as NIfTI, a 3D Slicer
``.seg.nrrd`` with named segments and ``case.json`` (see
:mod:`spinect_core.training.case_export`); ``spinect train SITE_DIR`` trains on the folder. The
case name is random: nothing of the patient, the input paths or the date is in it. Prints the
case folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from spinect_core.cli.segment import one_line_errors


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export-case", help="export a reviewed CT + labels as a training case into a site folder",
        description="Write CT + labels into SITE_DIR/case-<random hex>/ (ct.nii.gz, "
        "labels.nii.gz with its label table, segmentation.seg.nrrd with named segments for 3D "
        "Slicer, case.json), the layout 'spinect train SITE_DIR' reads. The case name is "
        "generated and holds nothing of the patient or the file names; no DICOM header is "
        "copied. Labels on another grid than the CT are resampled onto it (nearest neighbour). "
        "An existing case is never overwritten. Coordinates are LPS millimetres.")
    p.add_argument("ct", metavar="CT", help="CT: DICOM folder or NIfTI/NRRD/MHA image")
    p.add_argument("labels", metavar="LABELS",
                   help="label map (with its .labels.json table) or 3D Slicer .seg.nrrd")
    p.add_argument("site_dir", metavar="SITE_DIR", help="the site's training folder")
    p.add_argument("--label-map", metavar="MAPPING",
                   help="map the labels' names onto bone, nerve, disc and dura with this mapping "
                   "JSON or ready mapping (as in 'spinect plan')")
    p.add_argument("--source", choices=("operator-reviewed", "automatic", "manual"),
                   default="operator-reviewed",
                   help="where the labels come from (recorded in case.json; default "
                   "operator-reviewed)")
    p.add_argument("--edited", metavar="WHAT",
                   help="comma-separated list of what the operator changed (e.g. nerve,bone), "
                   "recorded in case.json (default: unknown)")
    p.add_argument("--no-slicer", action="store_true", help="do not write the .seg.nrrd")
    p.set_defaults(handler=run)
    one_line_errors(p)


def run(args: argparse.Namespace) -> int:
    from spinect_core.io import load_ct
    from spinect_core.io.labelmap import labels_on_ct_grid, load_label_map, resolve_label_mapping
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.training.case_export import export_training_case

    mapping = (resolve_label_mapping(args.label_map, default_table=DEFAULT_LABELS)
               if args.label_map else None)
    ct = load_ct(args.ct)
    for warning in ct.warnings:
        print(f"spinect: warning: {warning}", file=sys.stderr)
    labels, table = load_label_map(args.labels, default_table=DEFAULT_LABELS, mapping=mapping)
    # A Slicer segmentation is cropped to its segments by default: put it on the CT's grid.
    labels, _ = labels_on_ct_grid(labels, ct, atol=1e-3, check_overlap=False)
    edited = None
    if args.edited:
        edited = [e for e in re.split(r"[,\s]+", args.edited) if e]
    case = export_training_case(ct, labels, table, args.site_dir, source=args.source,
                                edited=edited, slicer=not args.no_slicer)
    print(f"wrote training case {case.name} to {case.folder}")
    return 0
