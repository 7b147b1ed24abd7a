"""Benchmark: SPINECT's sliding-window Predictor against MONAI's ``sliding_window_inference``.

Both run the same network (``UNet3D``, study config, 22.6 M parameters, He-initialised with a fixed
seed, eval mode) on the same random 96 x 192 x 192 volume with 32 x 64 x 64 windows at stride
20 x 40 x 40 (125 windows), 4 windows per forward pass, summing softmax probabilities per voxel
(MONAI ``mode="constant"``), in float32 and in bfloat16 autocast. Each implementation runs in
its own subprocess so that its peak resident memory is its own; the timed runs of the two
alternate (one run per process) so that a drifting machine load hits both alike.

Usage::

    python benchmarks/segmentation.py                 # full: study model, 3 repeats (~10 min, 2 cores)
    python benchmarks/segmentation.py --quick         # fast config, 64x128x128, 1 repeat (<1 min)
    python benchmarks/segmentation.py --json          # one JSON line on stdout
    python benchmarks/segmentation.py --device cuda --repeat 5 --precisions float32
    python benchmarks/segmentation.py --device cuda --best --json   # + best settings and ceiling

``--best`` (default on CUDA) adds, beside the comparison at the same settings: ours at its own
best settings (``batch_size="auto"``, ``precision="auto"``: batch from free memory, precision
measured), MONAI at its best (the fastest of ``sw_batch_size`` 4/8/16/32 in each precision), and
the **raw forward ceiling**: the same windows, cut out beforehand and already on the device, through
the network alone at the batch and precision ours chose. ``fraction_of_ceiling`` is the ceiling's
time over ours: the share of the hardware's pace that the sliding-window machinery keeps.

This is not a test: timings depend on the machine and on what else runs on it. MONAI is a
benchmark-only dependency (``pip install monai`` / the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PATCH = (32, 64, 64)
STRIDE = (20, 40, 40)
BATCH = 4
SEED = 0


# --- memory -------------------------------------------------------------------------------------
class _RssSampler:
    """Fallback peak-RSS meter: samples psutil every 20 ms (for platforms without ``resource``)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _peak_rss_mb(sampler: _RssSampler | None) -> float:
    """Peak resident set size of this process so far, MiB."""
    try:
        import resource  # POSIX only

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except ImportError:
        pass
    try:
        import psutil

        info = psutil.Process().memory_info()
        if hasattr(info, "peak_wset"):  # Windows keeps the peak itself
            return info.peak_wset / 2**20
    except ImportError:
        return float("nan")
    return (sampler.stop() if sampler else float("nan")) / 2**20


# --- one implementation in one process ----------------------------------------------------------
def _build_model(config: str):
    import torch

    from spinect_core.model import UNet3D, UNetConfig

    torch.manual_seed(SEED)  # same He-initialised weights in every process
    cfg = UNetConfig.study() if config == "study" else UNetConfig.fast()
    return UNet3D(cfg).eval()


def _raw_forward(model, image: np.ndarray, device: str, precision: str, batch: int,
                 repeat: int) -> tuple[list[float], int]:
    """Seconds for the network alone over every window, cut out and on the device beforehand."""
    import torch

    from spinect_core.inference import tiling
    from spinect_core.inference.device import autocast, resolve_channels_last, resolve_device

    dev = resolve_device(device)
    model = model.to(dev)
    starts = tiling.tile_starts(image.shape, PATCH, STRIDE)
    vol = torch.from_numpy(image).to(dev)
    windows = torch.stack([vol[z:z + PATCH[0], y:y + PATCH[1], x:x + PATCH[2]]
                           for z, y, x in starts]).unsqueeze(1)
    if resolve_channels_last("auto", dev):  # the layout our predictor uses on this device
        model = model.to(memory_format=torch.channels_last_3d)
        windows = windows.contiguous(memory_format=torch.channels_last_3d)
    batches = [windows[i:i + batch] for i in range(0, len(starts), batch)]
    times = []
    with torch.inference_mode(), autocast(dev, precision):
        model(batches[0])  # warm-up
        for _ in range(repeat):
            _sync(device)
            t0 = time.perf_counter()
            for b in batches:
                model(b)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return times, len(starts)


def _worker(args: argparse.Namespace) -> None:
    sampler = None
    try:
        import resource  # noqa: F401
    except ImportError:
        sampler = _RssSampler()
    import torch

    shape = tuple(args.shape)
    image = np.random.default_rng(SEED).standard_normal(shape).astype(np.float32)
    model = _build_model(args.config)
    times: list[float] = []
    labels = None
    extra: dict[str, object] = {}

    batch = "auto" if args.batch == "auto" else int(args.batch)
    if args.impl == "raw":
        times, n = _raw_forward(model, image, args.device, args.precision, int(args.batch),
                                args.repeat)
        extra = {"windows": n, "batch": int(args.batch)}
        labels = np.zeros(1, np.uint8)
    elif args.impl == "ours":
        from spinect_core.inference import Predictor, PredictorOptions

        opts = PredictorOptions(patch_size=PATCH, stride=STRIDE, batch_size=batch, blend="sum",
                                device=args.device, precision=args.precision)
        predictor = Predictor(model, options=opts)
        # warm-up: one small volume (one batch) so oneDNN/cuDNN pick their kernels
        predictor.predict(image[: PATCH[0], : PATCH[1], : PATCH[2]])
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pred = predictor.predict(image)
            _sync(args.device)
            times.append(time.perf_counter() - t0)
        labels = pred.labels
        extra = {"device_used": pred.device_used, "precision_used": pred.precision_used,
                 "notes": pred.notes, "windows": pred.num_windows, "batch": pred.batch_size,
                 "channels_last": bool(predictor._placement and predictor._placement[1])}
    else:
        from monai.inferers import sliding_window_inference

        device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                              else ("cpu" if args.device == "auto" else args.device))
        model = model.to(device)
        overlap = tuple((p - s) / p for p, s in zip(PATCH, STRIDE))
        # MONAI's interval is int(roi * (1 - overlap)); check it lands exactly on our stride
        assert all(int(p * (1 - o)) == s for p, o, s in zip(PATCH, overlap, STRIDE))

        def softmax_net(x):
            return torch.softmax(model(x).float(), dim=1)

        def run(vol: np.ndarray):
            x = torch.from_numpy(vol)[None, None].to(device)
            ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bfloat16"
                   else torch.autocast(device.type, enabled=False))
            with torch.inference_mode(), ctx:
                out = sliding_window_inference(x, PATCH, int(args.batch), softmax_net,
                                               overlap=overlap, mode="constant")
                return out[0].argmax(0).to(torch.uint8).cpu().numpy()

        run(image[: PATCH[0], : PATCH[1], : PATCH[2]])  # warm-up
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            labels = run(image)
            _sync(args.device)
            times.append(time.perf_counter() - t0)
        extra = {"device_used": str(device), "precision_used": args.precision,
                 "batch": int(args.batch)}

    if args.labels_out:
        np.save(args.labels_out, labels)
    result = {"impl": args.impl, "precision": args.precision, "times_s": times,
              "median_s": statistics.median(times), "peak_rss_mb": _peak_rss_mb(sampler),
              "torch_threads": torch.get_num_threads(), **extra}
    print("RESULT " + json.dumps(result), flush=True)


def _sync(device: str) -> None:
    import torch

    if torch.cuda.is_available() and (device == "auto" or device.startswith("cuda")):
        torch.cuda.synchronize()


# --- driver -------------------------------------------------------------------------------------
def _run_worker(impl: str, precision: str, args: argparse.Namespace, labels_out: Path,
                batch: int | str = BATCH, repeat: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--_worker", impl, "--precision", precision,
           "--config", args.config, "--shape", *map(str, args.shape), "--repeat", str(repeat),
           "--device", args.device, "--labels-out", str(labels_out), "--batch", str(batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{impl}/{precision} worker failed:\n{proc.stdout}\n{proc.stderr}")


def _machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from spinect_core.inference.device import cpu_has_fast_bf16

    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "cpu_fast_bf16": cpu_has_fast_bf16(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "os": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fast config on 64x128x128, 1 repeat (under a minute on 2 cores)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per case (default 3)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    ap.add_argument("--precisions", default="float32,bfloat16",
                    help="comma-separated subset of float32,bfloat16")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--config", choices=("study", "fast"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--shape", type=int, nargs=3, default=None, help="volume (z y x)")
    ap.add_argument("--best", action=argparse.BooleanOptionalAction, default=None,
                    help="also each implementation at its best settings and the raw forward "
                         "ceiling (default: on for CUDA, off on the CPU)")
    ap.add_argument("--_worker", choices=("ours", "monai", "raw"), default=None,
                    help=argparse.SUPPRESS)
    ap.add_argument("--batch", default=str(BATCH), help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--labels-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.config is None:
        args.config = "fast" if args.quick else "study"
    if args.shape is None:
        args.shape = [64, 128, 128] if args.quick else [96, 192, 192]
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args._worker:
        args.impl = args._worker
        _worker(args)
        return 0

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    details: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            runs: dict[str, list[dict]] = {"ours": [], "monai": []}
            # Interleave the two implementations, one timed run per fresh process, alternating
            # who goes first: on a shared 2-core machine the load drifts over minutes, and
            # back-to-back blocks of repeats would turn that drift into a fake speed difference.
            for r in range(args.repeat):
                order = ("monai", "ours") if r % 2 == 0 else ("ours", "monai")
                for impl in order:
                    if not args.json:
                        print(f"running {impl} {precision} ({r + 1}/{args.repeat}) ...",
                              file=sys.stderr, flush=True)
                    runs[impl].append(_run_worker(impl, precision, args,
                                                  Path(tmp) / f"{impl}.npy"))
            a, b = np.load(Path(tmp) / "ours.npy"), np.load(Path(tmp) / "monai.npy")
            ours_t = [t for res in runs["ours"] for t in res["times_s"]]
            monai_t = [t for res in runs["monai"] for t in res["times_s"]]
            details[precision] = {
                "ours_s": statistics.median(ours_t), "monai_s": statistics.median(monai_t),
                "ratio": statistics.median(ours_t) / statistics.median(monai_t),
                # ratio of each interleaved pair: robust to slow drifts of the machine's load
                "paired_ratio_median": statistics.median(o / m for o, m in zip(ours_t, monai_t)),
                "ours_peak_rss_mb": max(res["peak_rss_mb"] for res in runs["ours"]),
                "monai_peak_rss_mb": max(res["peak_rss_mb"] for res in runs["monai"]),
                "label_agreement": float((a == b).mean()),
                "ours_times_s": ours_t, "monai_times_s": monai_t,
                "ours_device": runs["ours"][0].get("device_used"),
                "ours_channels_last": runs["ours"][0].get("channels_last"),
                "windows": runs["ours"][0].get("windows"),
            }
    best = _best_settings(args) if (args.best if args.best is not None
                                    else args.device.startswith("cuda")) else None
    # headline: the precision "auto" would pick on this machine, when it was measured
    from spinect_core.inference.device import resolve_device, resolve_precision

    auto = resolve_precision("auto", resolve_device(args.device))
    head = auto if auto in details else precisions[0]
    out = {
        "case": {"config": args.config, "shape_zyx": list(args.shape), "patch_zyx": list(PATCH),
                 "stride_zyx": list(STRIDE), "batch": BATCH, "repeat": args.repeat,
                 "device": args.device},
        "headline_precision": head,
        "ours_s": details[head]["ours_s"], "monai_s": details[head]["monai_s"],
        "ratio": details[head]["ratio"],
        "peak_rss_mb": max(d["ours_peak_rss_mb"] for d in details.values()),
        "monai_peak_rss_mb": max(d["monai_peak_rss_mb"] for d in details.values()),
        "precisions": details, "best": best, "machine": _machine(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"case: {out['case']}")
        print(f"machine: {out['machine']}")
        for p, d in details.items():
            print(f"{p:9s} ours {d['ours_s']:7.2f} s  MONAI {d['monai_s']:7.2f} s  "
                  f"ratio {d['ratio']:.2f} (paired {d['paired_ratio_median']:.2f})  peak RSS ours {d['ours_peak_rss_mb']:.0f} MB / "
                  f"MONAI {d['monai_peak_rss_mb']:.0f} MB  label agreement {d['label_agreement']:.5f}")
        if best:
            print(f"best settings: ours {best['ours_s']:.3f} s (batch {best['ours_batch']}, "
                  f"{best['ours_precision']})  MONAI {best['monai_s']:.3f} s "
                  f"(sw_batch_size {best['monai_batch']}, {best['monai_precision']})  ratio "
                  f"{best['ratio']:.2f}  raw forward ceiling {best['ceiling_s']:.3f} s: ours "
                  f"reaches {100 * best['fraction_of_ceiling']:.0f} %")
    return 0


def _best_settings(args: argparse.Namespace) -> dict:
    """Ours at batch/precision "auto", MONAI at its fastest swept setting, and the ceiling."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.npy"
        ours = _run_worker("ours", "auto", args, out, batch="auto", repeat=args.repeat)
        monai = []
        for precision in ("float32", "bfloat16"):
            for b in (4, 8, 16, 32):
                res = _run_worker("monai", precision, args, out, batch=b, repeat=args.repeat)
                monai.append((res["median_s"], b, precision))
        m_s, m_b, m_p = min(monai)
        raw = _run_worker("raw", ours["precision_used"], args, out, batch=ours["batch"],
                          repeat=args.repeat)
    return {"ours_s": ours["median_s"], "ours_batch": ours["batch"],
            "ours_precision": ours["precision_used"], "ours_notes": ours.get("notes"),
            "monai_s": m_s, "monai_batch": m_b, "monai_precision": m_p,
            "monai_sweep": [{"s": s, "batch": b, "precision": p} for s, b, p in monai],
            "ratio": ours["median_s"] / m_s, "ceiling_s": raw["median_s"],
            "fraction_of_ceiling": raw["median_s"] / ours["median_s"]}


if __name__ == "__main__":
    sys.exit(main())
