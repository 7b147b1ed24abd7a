"""``spinect window LABELS --target IDS --blockers IDS --view-direction DX DY DZ ...``.

The free window of a label map seen along one view direction: the area (mm^2) of the parallel
rays that reach a target label before any blocker label, the largest inscribed circle diameter,
the usable area after eroding by needle radius + margin and the uncertainty band (iso-levels 0.35
and 0.65). The view direction is the direction in which rays travel (LPS, any length); the needle
enters along its opposite. IDS are label ids or names (from the label map's sidecar table),
separated by commas or spaces. ``--json`` prints exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from spinect_core.errors import InputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "window", help="free window (mm^2) of a target behind blockers along one view",
        description="Cast parallel rays along --view-direction (LPS, direction of travel) over a "
        "square ROI and measure where they reach a target label before any blocker label.")
    parser.add_argument("labels", metavar="LABELS", help="label map (.nii.gz, .nrrd, .mha); "
                        "names need its sidecar .labels.json")
    parser.add_argument("--target", nargs="+", required=True, metavar="IDS",
                        help="target label ids or names (comma- or space-separated)")
    parser.add_argument("--blockers", nargs="+", default=[], metavar="IDS",
                        help="blocker label ids or names (comma- or space-separated)")
    parser.add_argument("--view-direction", nargs=3, type=float, required=True,
                        metavar=("DX", "DY", "DZ"), help="ray direction, LPS")
    parser.add_argument("--roi-center", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"),
                        help="ROI centre, LPS mm (default: centroid of the target)")
    parser.add_argument("--roi-size-mm", type=float, default=40.0, metavar="S",
                        help="side of the square ROI, mm (default 40)")
    parser.add_argument("--pixel-mm", type=float, default=0.25, help="ray spacing, mm (0.25)")
    parser.add_argument("--needle-radius-mm", type=float, default=0.36,
                        help="needle radius for the usable area, mm (0.36: 22 G)")
    parser.add_argument("--margin-mm", type=float, default=1.0,
                        help="clearance added to the needle radius, mm (1.0)")
    parser.add_argument("--sigma-voxels", type=float, default=0.6,
                        help="boundary uncertainty of the labels for the 0.35/0.65 band, voxels (0.6)")
    parser.add_argument("--surface", choices=("smooth", "voxel"), default="smooth",
                        help="smooth: surfaces through the voxel staircase (anatomy); voxel: "
                        "exact voxel cubes, sharp rims (machined or synthetic objects)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def split_ids(tokens: list[str]) -> list[str]:
    """``["1,2", "bone"]`` -> ``["1", "2", "bone"]``."""
    return [p.strip() for t in tokens for p in str(t).split(",") if p.strip()]


def window_of_file(path: str, *, target: list[str], blockers: list[str],
                   view_direction_lps: list[float], roi_center_lps: list[float] | None = None,
                   roi_size_mm: float = 40.0, pixel_mm: float = 0.25,
                   needle_radius_mm: float = 0.36, margin_mm: float = 1.0,
                   sigma_voxels: float = 0.6, surface: str = "smooth") -> dict[str, Any]:
    """The JSON-ready result printed by ``spinect window`` (see :meth:`WindowResult.to_dict`),
    plus ``labels_file``, ``target_ids``, ``blocker_ids`` and ``roi_center_lps``."""
    from spinect_core.io.labelmap import load_label_map, read_label_table
    from spinect_core.labels import LabelTable
    from spinect_core.planning.raycast import unit_vector
    from spinect_core.planning.scene import SceneFields, SceneOptions, resolve_label_ids
    from spinect_core.planning.windows import WindowOptions, compute_window

    d = unit_vector(view_direction_lps)  # fail fast, before reading the file
    table = read_label_table(path)
    volume, _ = load_label_map(path, default_table=LabelTable({0: "background"}))
    # Without a sidecar (table None) numeric ids still work; names raise a one-line error.
    target_ids = resolve_label_ids(target, table)
    blocker_ids = resolve_label_ids(blockers, table)
    if roi_size_mm <= 0 or pixel_mm <= 0:
        raise InputError("--roi-size-mm and --pixel-mm must be positive")
    if roi_size_mm / pixel_mm > 2000:
        raise InputError("the ROI has more than 2000 x 2000 rays; raise --pixel-mm")
    scene = SceneFields.from_label_map(volume, table, target=target_ids, blockers=blocker_ids,
                                       options=SceneOptions(sigma_voxels=sigma_voxels,
                                                            surface=surface))
    centre = (scene.target_centroid_lps() if roi_center_lps is None
              else np.asarray(roi_center_lps, float))
    result = compute_window(scene, d, roi_center_lps=centre, options=WindowOptions(
        roi_size_mm=roi_size_mm, pixel_mm=pixel_mm, needle_radius_mm=needle_radius_mm,
        margin_mm=margin_mm))
    out = result.to_dict()
    out.update({"labels_file": str(path), "target_ids": target_ids, "blocker_ids": blocker_ids,
                "roi_center_lps": [float(v) for v in centre], "roi_size_mm": float(roi_size_mm),
                "sigma_voxels": float(sigma_voxels)})
    return out


def run(args: argparse.Namespace) -> int:
    info = window_of_file(
        args.labels, target=split_ids(args.target), blockers=split_ids(args.blockers),
        view_direction_lps=list(args.view_direction), roi_center_lps=args.roi_center,
        roi_size_mm=args.roi_size_mm, pixel_mm=args.pixel_mm,
        needle_radius_mm=args.needle_radius_mm, margin_mm=args.margin_mm,
        sigma_voxels=args.sigma_voxels, surface=args.surface)
    if args.json:
        print(json.dumps(info))
        return 0
    band = list(info["area_band_mm2"].items())
    print(f"Window of labels {info['target_ids']} behind {info['blocker_ids'] or 'nothing'} "
          f"in {args.labels}")
    d = info["view_direction_lps"]
    print(f"  view direction (LPS): [{d[0]:.4f}, {d[1]:.4f}, {d[2]:.4f}]")
    print(f"  area:                 {info['area_mm2']:.2f} mm^2 "
          f"(band {band[0][1]:.2f} at {band[0][0]} / {band[1][1]:.2f} at {band[1][0]})")
    print(f"  inscribed diameter:   {info['inscribed_diameter_mm']:.2f} mm")
    print(f"  usable area:          {info['usable_area_mm2']:.2f} mm^2 "
          f"(eroded by {info['erosion_radius_mm']:.2f} mm)")
    return 0
