"""Kambin and safe windows on real-bone phantoms, planned on the TRUE labels (issue 12).

``python benchmarks/real_bone_windows.py [--seeds 100-109] [--anatomy real] [--cache DIR]``

For each seed: a phantom (``--anatomy real`` by default, 1 mm), cached on disk in ``--cache``
(the key holds the seed, anatomy, spacing and a hash of ``spinect_core/phantom``'s sources, so
a changed phantom is rebuilt); the planner on its exact labels and instances (no network, the
label map's roots as they are: ``PlanOptions(roots=None)``), and per side:

* ``kam``/``safe``: best area (mm^2) at the best view, and the usable area at the plateau view;
* ``view``: best view as C-arm ipsilateral oblique / tilt (degrees);
* ``plat``: plateau view's oblique, and whether it lies within 15-45 deg (issue 12's target);
* ``dz_ped``: detected L5 pedicle lower margin minus the phantom's true one, along the S1
  endplate normal (mm; + = detected higher), and the 3D distance between them;
* ``root``: the exiting L5 root (true centreline) where it crosses the foramen: the gap from the
  pedicle's true lower margin down to the root's top (centre height + radius, mm; + = root below
  the pedicle), and its offset from the pedicle's true centre along the side frame's y (mm, + = posterior).

Heights are along the detected side frame's z (the S1 endplate normal), lateral along its x.
The literature at L5/S1 (Pain Pract 2015): Kambin 37.8 +- 20.9 mm^2 (11-88), safe 8.7 +- 2.2
(3-18), safe largest at 25-30 deg oblique (18-24 mm^2). ``--quick`` (default) uses a coarse
optimisation (5 deg grid at 1 mm rays, 1 mm refinement, 0.5 mm reported rays); ``--json FILE``
appends one JSON line per seed. The summary gives the phantoms' generation time (those
generated in this run; the first one in a process also loads the bones' distance grids).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT_DIR))

from spinect_core.anatomy.identify import LumbosacralAnatomy  # noqa: E402
from spinect_core.labels import DEFAULT_LABELS  # noqa: E402
from spinect_core.phantom import Phantom, generate_phantom  # noqa: E402
from spinect_core.phantom.params import PhantomOptions  # noqa: E402
from spinect_core.planning.plan import PlanEngine, PlanOptions  # noqa: E402
from spinect_core.training.demo_weights import parse_seeds  # noqa: E402

QUICK: dict[str, Any] = dict(coarse_step_deg=5.0, final_step_deg=1.0, grid_pixel_mm=1.0,
                             optimise_pixel_mm=1.0, report_pixel_mm=0.5)
PLATEAU_RANGE = (15.0, 45.0)


def in_plateau_range(oblique_deg: float) -> bool:
    """Whether a plateau view's oblique (degrees) lies in :data:`PLATEAU_RANGE`.

    The optimiser's views come out a float rounding off the grid (a 15 deg view as
    14.999999999999998, counted out before): 1e-6 deg of slack.
    """
    return PLATEAU_RANGE[0] - 1e-6 <= oblique_deg <= PLATEAU_RANGE[1] + 1e-6


def _phantom_hash() -> str:
    h = hashlib.sha256()
    for f in sorted((ROOT_DIR / "spinect_core" / "phantom").rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def load_phantom(seed: int, anatomy: str, spacing: float,
                 cache: Path | None) -> tuple[Phantom, float]:
    """The phantom of ``seed`` (from the on-disk cache when its sources are unchanged)."""
    path = None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"ph_{anatomy}_{seed}_{spacing:g}_{_phantom_hash()}.pkl"
        if path.exists():
            with open(path, "rb") as f:
                return pickle.load(f), 0.0
    t = time.perf_counter()
    ph = generate_phantom(seed=seed, spacing_mm=(spacing,) * 3,
                          options=PhantomOptions(anatomy=anatomy))
    dt = time.perf_counter() - t
    if path is not None:
        with open(path, "wb") as f:
            pickle.dump(ph, f)
    return ph, dt


def side_geometry(anatomy: LumbosacralAnatomy, lm: dict, side: str) -> dict:
    """Detected vs true pedicle lower margin, and the true L5 root under the pedicle."""
    sa = anatomy.sides[side]
    fr = sa.frame
    true_low = np.asarray(lm[f"l5_pedicle_lower_margin_{side}"], float)
    det_low = np.asarray(sa.pedicle_lower_margin_lps, float)
    zt = float(fr.point_to_local(true_low)[2])
    zd = float(fr.point_to_local(det_low)[2])
    out = {"dz_ped": zd - zt, "d_ped": float(np.linalg.norm(det_low - true_low))}
    line = np.asarray(lm[f"root_L5_{side}_centreline"], float)
    rad = np.asarray(lm[f"root_L5_{side}_radius"], float)
    q = fr.point_to_local(line)
    ped_c = fr.point_to_local(np.asarray(lm[f"l5_pedicle_centre_{side}"], float))
    # Where the root passes under the pedicle: the centreline point nearest the pedicle
    # centre's lateral position (x) that lies below it.
    below = q[:, 2] < ped_c[2]
    if below.any():
        i = int(np.argmin(np.where(below, np.abs(q[:, 0] - ped_c[0]), np.inf)))
        out["root_gap"] = zt - float(q[i, 2] + rad[i])
        out["root_post"] = float(q[i, 1] - ped_c[1])
        out["root_r"] = float(rad[i])
    # Root's lowest-gap point: its closest approach to the pedicle's margin height.
    out["zone_h"] = zd - float(fr.point_to_local(anatomy.s1_endplate_centre_lps)[2])
    out["zone_h_true"] = zt - float(fr.point_to_local(anatomy.s1_endplate_centre_lps)[2])
    return out


def plan_seed(ph: Phantom, options: PlanOptions) -> dict:
    lm = ph.meta["landmarks"]
    e = PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, instances=ph.instances,
                   instance_table=ph.instance_table, options=options,
                   segmentation_source="phantom truth")
    plan = e.plan()
    rec: dict = {}
    for side in options.sides:
        sp = plan.sides[side]
        r = side_geometry(e.anatomy, lm, side)
        for kind in ("kambin", "safe"):
            w = sp.window(kind)
            b, p = w.best_view, w.plateau_view
            if not w.found or b is None or p is None:
                r[kind] = None
                continue
            r[kind] = {"best": float(b.area_mm2), "usable": float(w.usable_area_mm2),
                       "plateau_area": float(p.area_mm2),
                       "best_oblique": b.oblique_deg, "best_tilt": b.tilt_deg,
                       "plateau_oblique": p.oblique_deg, "plateau_tilt": p.tilt_deg,
                       "edge": list(w.search_edges),
                       "lit": {v.label.split(" deg")[0].split(",")[0]: round(float(v.area_mm2), 1)
                               for v in w.literature_views}}
        rec[side] = r
    rec["warnings"] = list(plan.warnings)
    return rec


def _f(v: Any, fmt: str = "{:5.1f}") -> str:
    return "   - " if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def print_row(seed: int, side: str, r: dict) -> None:
    k, s = r.get("kambin"), r.get("safe")

    def win(w: dict | None) -> str:
        if w is None:
            return "  none" + " " * 27
        return (f"{_f(w['best'])} {_f(w['usable'])} {_f(w['best_oblique'], '{:4.0f}')}/"
                f"{_f(w['best_tilt'], '{:<4.0f}')} {_f(w['plateau_oblique'], '{:4.0f}')}")
    ins = s is not None and in_plateau_range(s["plateau_oblique"])
    print(f"{seed:4d} {side:5s} | {win(k)} | {win(s)} {'in ' if ins else 'OUT'} | "
          f"{_f(r['dz_ped'])} {_f(r['d_ped'])} | {_f(r.get('root_gap'))} {_f(r.get('root_post'))} "
          f"| {_f(r['zone_h'])} {_f(r['zone_h_true'])}", flush=True)


def summary(recs: list[dict]) -> None:
    rows = [(r["seed"], side, r[side]) for r in recs for side in ("left", "right") if side in r]
    kb = [x["kambin"]["best"] for _s, _d, x in rows if x.get("kambin")]
    sb = [x["safe"]["best"] for _s, _d, x in rows if x.get("safe")]
    su = [x["safe"]["usable"] for _s, _d, x in rows if x.get("safe")]
    ku = [x["kambin"]["usable"] for _s, _d, x in rows if x.get("kambin")]

    def st(v):
        return (f"median {np.median(v):.1f} (range {min(v):.1f}-{max(v):.1f}), n={len(v)}"
                if v else "none")
    print(f"Kambin best: {st(kb)}; usable at plateau: {st(ku)}")
    print(f"safe   best: {st(sb)}; usable at plateau: {st(su)}")
    ok_seed = 0
    for r in recs:
        ins = [r.get(s, {}).get("safe") for s in ("left", "right")]
        if all(w is not None and in_plateau_range(w["plateau_oblique"])
               for w in ins):
            ok_seed += 1
    n_side_in = sum(1 for _s, _d, x in rows if x.get("safe") and
                    in_plateau_range(x["safe"]["plateau_oblique"]))
    # A window of (almost) no area still has a plateau view: say how many of those count.
    n_tiny = sum(1 for _s, _d, x in rows if x.get("safe") and x["safe"]["best"] < 3.0
                 and in_plateau_range(x["safe"]["plateau_oblique"]))
    print(f"safe plateau within {PLATEAU_RANGE[0]:g}-{PLATEAU_RANGE[1]:g} deg on both sides: "
          f"{ok_seed}/{len(recs)} seeds ({n_side_in}/{len(rows)} sides, {n_tiny} of them with a "
          "safe best under 3 mm^2)")
    print(f"Kambin found {len(kb)}/{len(rows)}, safe found {len(sb)}/{len(rows)}; "
          f"safe best 3-30 mm^2: {sum(3 <= v <= 30 for v in sb)}/{len(rows)}; "
          f"Kambin best 10-90 mm^2: {sum(10 <= v <= 90 for v in kb)}/{len(rows)}")
    dz = [x["dz_ped"] for _s, _d, x in rows]
    print(f"pedicle lower margin detected - true (mm): median {np.median(dz):+.1f}, "
          f"range {min(dz):+.1f}..{max(dz):+.1f}")
    # Phantoms read from the cache took no generation time (gen_s 0): left out.
    gen = [r["gen_s"] for r in recs if r.get("gen_s", 0.0) > 0.0]
    print(f"phantom generation (s; {len(recs) - len(gen)} read from the cache): "
          + (f"median {np.median(gen):.1f}, max {max(gen):.1f}, n={len(gen)}" if gen else "none"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="100-109")
    ap.add_argument("--anatomy", default="real", choices=["real", "procedural"])
    ap.add_argument("--spacing", type=float, default=1.0)
    ap.add_argument("--cache", default="/tmp/h3", help="phantom cache folder ('' for none)")
    ap.add_argument("--full", action="store_true", help="the planner's default optimisation")
    ap.add_argument("--geometry-only", action="store_true",
                    help="landmarks only (no view optimisation)")
    ap.add_argument("--json", default="", help="append one JSON line per seed to this file")
    ap.add_argument("--zone-depth", default="default",
                    help="L5S1Options.zone_depth_mm: a number (mm), 'none' (no anterior limit) "
                         "or 'default'")
    args = ap.parse_args()
    options = PlanOptions() if args.full else PlanOptions(**QUICK)
    if args.zone_depth != "default":
        import dataclasses

        from spinect_core.planning.l5s1 import L5S1Options
        depth = None if args.zone_depth.lower() == "none" else float(args.zone_depth)
        options = dataclasses.replace(options, l5s1=L5S1Options(zone_depth_mm=depth))
    cache = Path(args.cache) if args.cache else None
    print("seed side  | Kambin best usable obl/tilt plat | safe best usable obl/tilt plat 15-45 "
          "| dz_ped d_ped | root_gap root_post | zone_h true")
    recs: list[dict[str, Any]] = []
    for seed in parse_seeds(args.seeds):
        t = time.perf_counter()
        ph, t_gen = load_phantom(seed, args.anatomy, args.spacing, cache)
        if args.geometry_only:
            from spinect_core.anatomy import identify_lumbosacral
            a = identify_lumbosacral(ph.labels, DEFAULT_LABELS, instances=ph.instances,
                                     instance_table=ph.instance_table, ct=ph.ct)
            rec: dict[str, Any] = {s: side_geometry(a, ph.meta["landmarks"], s)
                                   for s in ("left", "right")}
        else:
            rec = plan_seed(ph, options)
        rec.update(seed=seed, anatomy=args.anatomy, gen_s=round(t_gen, 1),
                   time_s=round(time.perf_counter() - t, 1))
        for side in ("left", "right"):
            if args.geometry_only:
                r = rec[side]
                print(f"{seed:4d} {side:5s} | dz_ped {_f(r['dz_ped'])} d {_f(r['d_ped'])} | "
                      f"root_gap {_f(r.get('root_gap'))} lat {_f(r.get('root_post'))} | "
                      f"zone_h {_f(r['zone_h'])} true {_f(r['zone_h_true'])}", flush=True)
            else:
                print_row(seed, side, rec[side])
        recs.append(rec)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(rec) + "\n")
    if not args.geometry_only:
        summary(recs)


if __name__ == "__main__":
    main()
