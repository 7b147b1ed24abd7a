"""``spinect info INPUT [--json] [--series UID]``: what a CT input holds and how it loads.

Lists the series found (DICOM) or the file, then loads the chosen CT and prints its geometry
(size [x, y, z], spacing, LPS origin, direction), modality and the loader's warnings. ``--json``
prints exactly one JSON object on stdout. Errors (not CT, missing slices, ...) go through the
dispatcher: one line on stderr, exit code 2. No patient identifiers are printed.

SeriesDescription is free text typed at the scanner and sometimes holds the patient's name, so it
is shown only with ``--show-descriptions`` (on the terminal, and in ``--json`` only when that flag
is given too); otherwise series are told apart by their UID, size and spacing.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from spinect_core.io.load import list_series, load_ct
from spinect_core.io.options import LoadOptions


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a CT input (DICOM folder/file, NIfTI, NRRD, MHA)",
        description="List the series in INPUT and the geometry (LPS mm) of the CT that "
        "`spinect segment` would load, with any corrections the loader made.")
    parser.add_argument("input", metavar="INPUT", help="DICOM folder or file, .nii(.gz), .nrrd, .mha")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--series", metavar="UID", default=None,
                        help="SeriesInstanceUID to load when the folder holds several")
    parser.add_argument("--show-descriptions", action="store_true",
                        help="also show the series descriptions (free text that may hold the "
                        "patient's name; not shown by default)")
    parser.set_defaults(handler=run)


def describe(path: str, *, series_uid: str | None = None,
             descriptions: bool = False) -> dict[str, Any]:
    """The JSON-ready description printed by ``spinect info``.

    Keys: ``coordinate_system`` ("LPS"), ``size`` [x, y, z], ``spacing_mm``, ``origin_lps_mm``,
    ``direction`` (9 numbers, row-major; columns are the x, y, z axes), ``modality``,
    ``slice_thickness_mm``, ``source_format``, ``dtype``, ``warnings`` (list of str),
    ``series`` (every series found, see ``SeriesInfo.to_dict``). With ``descriptions`` also
    ``series_description`` and each series' ``description``; without, neither key is present.
    """
    series = list_series(path)
    volume = load_ct(path, options=LoadOptions(series_uid=series_uid))
    meta = volume.metadata
    out = volume.geometry_dict()
    out.update({
        "modality": meta.modality,
        "series_description": meta.series_description,
        "series_instance_uid": meta.series_instance_uid,
        "slice_thickness_mm": meta.slice_thickness_mm,
        "convolution_kernel": meta.convolution_kernel,
        "manufacturer": meta.manufacturer,
        "source_format": meta.source_format,
        "dtype": str(volume.array.dtype),
        "warnings": list(volume.warnings),
        "series": [s.to_dict() for s in series],
    })
    if not descriptions:
        del out["series_description"]
        for s in out["series"]:
            s.pop("description", None)
    return out


def run(args: argparse.Namespace) -> int:
    info = describe(args.input, series_uid=args.series, descriptions=args.show_descriptions)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"Input: {args.input}")
    print(f"Series found: {len(info['series'])}")
    for s in info["series"]:
        mark = "*" if s["uid"] == info["series_instance_uid"] and s["uid"] else "-"
        sx, sy, sz = s["spacing_mm"]
        desc = f" '{s['description']}'" if s.get("description") else ""
        problem = f" [not loadable: {s['problem']}]" if s["problem"] else ""
        print(f"  {mark} {s['modality'] or '?'} {s['size'][0]}x{s['size'][1]}x{s['size'][2]}, "
              f"{sx:.3g}x{sy:.3g}x{sz:.3g} mm{desc} uid={s['uid'] or '-'}{problem}")
    print("Loaded volume (LPS millimetres):")
    print(f"  modality:        {info['modality']} ({info['source_format']}, {info['dtype']})")
    if info.get("series_description"):
        print(f"  description:     {info['series_description']}")
    print(f"  size [x y z]:    {' x '.join(str(n) for n in info['size'])}")
    print(f"  spacing_mm:      {_nums(info['spacing_mm'])}")
    print(f"  origin_lps_mm:   {_nums(info['origin_lps_mm'])}")
    d = info["direction"]
    print(f"  direction:       {_nums(d[0:3])} / {_nums(d[3:6])} / {_nums(d[6:9])} (rows)")
    if info["slice_thickness_mm"]:
        print(f"  slice thickness: {info['slice_thickness_mm']:g} mm")
    if info["convolution_kernel"]:
        print(f"  kernel:          {info['convolution_kernel']}")
    print(f"Warnings: {len(info['warnings'])}")
    for w in info["warnings"]:
        print(f"  - {w}")
    return 0


def _nums(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
