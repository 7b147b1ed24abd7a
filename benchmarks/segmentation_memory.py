"""Peak memory of ``Segmenter.segment`` on a large CT (issue 16: 900 x 512 x 512 int16, 472 MB).

The volume is the real chest CT of ``../shared/data/real_ct_chest`` (512 x 512 x 133) mirrored
along z to ``--slices`` slices and declared at 0.7 x 0.7 x 0.5 mm (a thin-slice CT of the same
size as the audit's; the anatomy is squashed, which does not change the memory), or, without it,
a synthetic torso of the same size. The segmentation runs in a fresh subprocess with the bundled
weights and the default options (``--bone fused``: the network, then the CT bone model). A
sampling thread reads the resident set size every 20 ms and remembers the progress message at
each new peak, so the report says *which step* needs the memory.

Reported: the CT's own size, the process's RSS just before segmenting (Python, torch, the
weights and the CT), the peak RSS during segmentation, the increase over that baseline and its
ratio to the CT's size (issue 16's target: within 3x), and the peak's step. Nothing here asserts
a figure (see README.md).

    .venv/bin/python benchmarks/segmentation_memory.py [--slices 900] [--bone fused] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACING_XYZ_MM = (0.7, 0.7, 0.5)


def _volume(slices: int):
    import numpy as np

    from spinect_core.volume import Volume

    chest = ROOT.parent / "shared" / "data" / "real_ct_chest" / "ct.nii.gz"
    if chest.is_file():
        from spinect_core.io import load_ct

        a = load_ct(chest).array
        reps = [a if k % 2 == 0 else a[::-1] for k in range(slices // a.shape[0] + 1)]
        arr = np.ascontiguousarray(np.concatenate(reps, axis=0)[:slices])
        source = "real_ct_chest mirrored along z"
    else:
        rng = np.random.default_rng(0)
        yy, xx = np.ogrid[:512, :512]
        body = (yy - 256) ** 2 / 180 ** 2 + (xx - 256) ** 2 / 230 ** 2 <= 1
        spine = (yy - 330) ** 2 + (xx - 256) ** 2 <= 25 ** 2
        plane = np.where(spine, 250, np.where(body, 40, -1000)).astype(np.int16)
        arr = np.empty((slices, 512, 512), np.int16)
        for k in range(slices):
            arr[k] = plane + rng.normal(0, 15, plane.shape).astype(np.int16)
        source = "synthetic torso"
    return Volume(array=arr, spacing_mm=np.array(SPACING_XYZ_MM), origin_lps_mm=np.zeros(3),
                  direction=np.eye(3)), source


class _PeakSampler:
    """Samples this process's RSS every ``interval_s`` and keeps the peak and its step."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval_s
        self.step = "start"
        self.peak_mb = 0.0
        self.peak_step = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._proc.memory_info().rss / 2 ** 20
            if rss > self.peak_mb:
                self.peak_mb, self.peak_step = rss, self.step
            time.sleep(self._interval)

    def __enter__(self) -> "_PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _child(slices: int, bone: str) -> dict:
    import psutil

    from spinect_core.segment import SegmentOptions, Segmenter

    vol, source = _volume(slices)
    segmenter = Segmenter.from_weights(None, options=SegmentOptions(bone=bone, device="cpu"))
    base_mb = psutil.Process().memory_info().rss / 2 ** 20
    t0 = time.perf_counter()
    with _PeakSampler() as sampler:
        def progress(fraction: float, message: str) -> bool:
            sampler.step = message
            return True

        result = segmenter.segment(vol, progress=progress)
    seconds = time.perf_counter() - t0
    volume_mb = vol.array.nbytes / 2 ** 20
    increase = sampler.peak_mb - base_mb
    return {"source": source, "shape_zyx": list(vol.array.shape),
            "spacing_xyz_mm": list(SPACING_XYZ_MM), "bone": bone,
            "volume_mb": round(volume_mb, 1), "rss_before_mb": round(base_mb, 1),
            "peak_rss_mb": round(sampler.peak_mb, 1), "increase_mb": round(increase, 1),
            "increase_over_volume": round(increase / volume_mb, 2),
            "peak_over_volume": round(sampler.peak_mb / volume_mb, 2),
            "peak_step": sampler.peak_step, "seconds": round(seconds, 1),
            "timings_s": {k: round(v, 1) for k, v in result.timings_s.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slices", type=int, default=900)
    p.add_argument("--bone", choices=("network", "ct", "fused"), default="fused")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.slices, args.bone)))
        return 0
    out = subprocess.run([sys.executable, __file__, "--child", "--slices", str(args.slices),
                          "--bone", args.bone], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        return out.returncode
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
