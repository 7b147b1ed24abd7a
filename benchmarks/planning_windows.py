"""Speed of the free-window primitive on a phantom L5/S1 scene (``python benchmarks/planning_windows.py``).

Scene: phantom seed 0 at 1 mm; target = L5 body + L5/S1 disc (instance labels), blockers =
everything else (S1, ilium, L4, dura, roots); ROI 40 mm around the left L5/S1 foramen, no crop
sphere. Reports the scene build time (signed distance fields) and the median time of one window at
0.5 mm (optimiser, 6,400 rays) and 0.25 mm (reported numbers, 25,600 rays) ray spacing over three
views, with their areas, and optionally the time of a 16 x 15 grid + refinement.
``--surface voxel`` times the exact voxel-cube surface instead of the smooth one.
Timings vary 2-4x with the load of the other core; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from spinect_core.phantom import generate_phantom
from spinect_core.planning.optimise import LocalFrame, optimise_view, view_direction
from spinect_core.planning.scene import SceneFields, SceneOptions
from spinect_core.planning.windows import WindowOptions, benchmark_window, compute_window


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--surface", default="smooth", choices=["smooth", "voxel"])
    ap.add_argument("--optimise", action="store_true", help="also time one full optimisation")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ph = generate_phantom(seed=args.seed, spacing_mm=(args.spacing,) * 3)
    t_phantom = time.perf_counter() - t0
    inst, table = ph.instances, ph.instance_table
    target_ids = [table.id_of("L5"), table.id_of("disc_L5S1")]
    blocker_ids = [i for i in table.foreground() if i not in target_ids]
    lm = ph.meta["landmarks"]
    centre = np.asarray(lm["l5s1_foramen_centre_left"], float)
    t0 = time.perf_counter()
    scene = SceneFields.from_label_map(inst, table, target=target_ids, blockers=blocker_ids,
                                       options=SceneOptions(surface=args.surface))
    t_scene = time.perf_counter() - t0
    frame = LocalFrame(origin_lps=centre, x_lps=[1, 0, 0], y_lps=[0, 1, 0], z_lps=[0, 0, 1])
    out = {"phantom_s": t_phantom, "scene_s": t_scene, "crop_zyx": list(scene.shape_zyx),
           "spacing_mm": args.spacing, "surface": args.surface}
    for px in (0.5, 0.25):
        opts = WindowOptions(roi_size_mm=40.0, pixel_mm=px, polygons=False)
        times = []
        for a, b in [(0, 0), (25, 10), (45, -10)]:
            r = benchmark_window(scene, view_direction(frame, a, b), roi_center_lps=centre,
                                 options=opts, repeats=3)
            times.append(r["median_s"])
            out[f"window_{px}mm_area_{a}_{b}"] = round(r["area_mm2"], 2)
        out[f"window_{px}mm_median_s"] = float(np.median(times))
        out[f"window_{px}mm_rays"] = int(r["rays"])
    if args.optimise:
        opts = WindowOptions(roi_size_mm=40.0, pixel_mm=0.5, polygons=False)
        t0 = time.perf_counter()
        res = optimise_view(lambda a, b: compute_window(
            scene, view_direction(frame, a, b), roi_center_lps=centre, options=opts).area_mm2)
        out["optimise_s"] = time.perf_counter() - t0
        out["optimise_evaluations"] = res.evaluations
        out["best"] = res.best._asdict()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
