"""Time and memory of the model-free CT bone model on a 512 x 512 x 300 CT.

The volume is the real chest CT of ``../shared/data/real_ct_chest`` (512 x 512 x 133, 0.7 x 0.7 x
2.5 mm) mirrored along z to 300 slices, or, without it, a synthetic torso of the same size. Each
timed run happens in a fresh subprocess (its peak RSS is its own), alternating with the yardstick
the issue names: ``HU > 120`` with slice-wise hole filling on the same volume. The report gives
the median seconds of each, their ratio and the peak RSS of each process and of the volume alone.
Nothing here asserts a time (see README.md).

Each run also reports its CPU time (``time.process_time``, all threads) and, from the model's
progress reports, the wall and CPU seconds of each step; on a shared machine the CPU time is the
figure to compare (the wall time grows with the other jobs), so the 1-minute load average before
and after each run is reported with it. ``--threads`` sets ``CTBoneOptions.threads`` (default:
the model's, 2).

    .venv/bin/python benchmarks/ct_bone.py [--repeat 3] [--slices 300] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout this script lies in is measured, not whichever one the environment installed
# (a git worktree of an older commit benchmarks its own code).
sys.path.insert(0, str(ROOT))


def _volume(slices: int) -> tuple[Any, str]:
    import numpy as np

    from spinect_core.volume import Volume

    chest = ROOT.parent / "shared" / "data" / "real_ct_chest" / "ct.nii.gz"
    if chest.is_file():
        from spinect_core.io import load_ct

        ct = load_ct(chest)
        a = ct.array
        reps = [a if k % 2 == 0 else a[::-1] for k in range(slices // a.shape[0] + 1)]
        arr = np.concatenate(reps, axis=0)[:slices]
        return Volume(array=np.ascontiguousarray(arr), spacing_mm=ct.spacing_mm,
                      origin_lps_mm=ct.origin_lps_mm, direction=ct.direction), "real_ct_chest mirrored"
    rng = np.random.default_rng(0)
    zz, yy, xx = np.ogrid[:slices, :512, :512]
    arr = np.full((slices, 512, 512), -1000, np.int16)
    arr[((yy - 256) ** 2 / 180 ** 2 + (xx - 256) ** 2 / 230 ** 2 <= 1).repeat(slices, 0)] = 40
    spine = ((yy - 330) ** 2 + (xx - 256) ** 2 <= 25 ** 2)
    arr[spine.repeat(slices, 0)] = 250
    arr = (arr + rng.normal(0, 15, arr.shape)).astype(np.int16)
    return Volume(array=arr, spacing_mm=np.array([0.7, 0.7, 1.0]), origin_lps_mm=np.zeros(3),
                  direction=np.eye(3)), "synthetic torso"


#: The model's progress messages that start each step, and the step's name in the report.
STEPS = {"finding the body": "body", "reading the histogram": "histogram_and_smoothing",
         "finding contrast-filled vessels and organs": "pools",
         "hysteresis from cortical seeds": "hysteresis",
         "closing and filling the cortical shells": "closing_and_filling",
         "rejecting vessels, organs and bowel contrast": "rejection_and_output"}


def _child(kind: str, slices: int, threads: int | None) -> dict:
    import os
    import resource
    import time

    import numpy as np
    from scipy import ndimage as ndi

    vol, source = _volume(slices)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = os.getloadavg()[0]
    marks: list[tuple[str, float, float]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    if kind == "ct_bone":
        from spinect_core.bone import CTBoneOptions, segment_bone_from_ct

        def progress(fraction: float, message: str) -> bool:
            marks.append((message, time.perf_counter(), time.process_time()))
            return True

        options = CTBoneOptions() if threads is None else CTBoneOptions(threads=threads)
        mask = segment_bone_from_ct(vol, options=options, progress=progress).mask.array
    else:
        mask = np.stack([ndi.binary_fill_holes(s) for s in vol.array > 120])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = {}
    for (message, w, c), (_, w1, c1) in zip(marks, marks[1:]):
        steps[STEPS.get(message, message)] = {"s": w1 - w, "cpu_s": c1 - c}
    return {"kind": kind, "seconds": seconds, "cpu_s": cpu, "steps": steps,
            "peak_rss_mb": peak_mb, "rss_before_mb": base_mb,
            "volume_mb": vol.array.nbytes / 2 ** 20, "load_1min": [load_before,
                                                                  os.getloadavg()[0]],
            "shape": list(vol.array.shape), "source": source, "bone_voxels": int(mask.sum())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("--threads", type=int, default=None,
                   help="CTBoneOptions.threads (default: the model's)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", choices=("ct_bone", "threshold"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.slices, args.threads)))
        return 0
    runs: dict[str, list[dict]] = {"ct_bone": [], "threshold": []}
    for _ in range(args.repeat):
        for kind in ("ct_bone", "threshold"):
            cmd = [sys.executable, __file__, "--child", kind, "--slices", str(args.slices)]
            if args.threads is not None:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu_s"] for r in v) for k, v in runs.items()}
    steps = {name: {key: statistics.median(r["steps"][name][key] for r in runs["ct_bone"])
                    for key in ("s", "cpu_s")} for name in runs["ct_bone"][0]["steps"]}
    result = {"shape": runs["ct_bone"][0]["shape"], "source": runs["ct_bone"][0]["source"],
              "threads": args.threads if args.threads is not None else "default",
              "ct_bone_s": med["ct_bone"], "ct_bone_cpu_s": cpu["ct_bone"],
              "threshold_s": med["threshold"], "threshold_cpu_s": cpu["threshold"],
              "ratio": med["ct_bone"] / med["threshold"],
              "ct_bone_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["ct_bone"]),
              "ct_bone_rss_before_mb": runs["ct_bone"][0]["rss_before_mb"],
              "volume_mb": runs["ct_bone"][0]["volume_mb"],
              "load_1min": [round(x, 1) for r in runs["ct_bone"] for x in r["load_1min"]],
              "steps": steps}
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            if k == "steps":
                for name, t in v.items():
                    print(f"  {name:26s} wall {t['s']:5.2f} s  cpu {t['cpu_s']:5.2f} s")
            else:
                print(f"{k:24s} {v:.2f}" if isinstance(v, float) else f"{k:24s} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
