"""Sliding-window predictor: load a network once, segment many volumes.

The volume is covered by overlapping windows (:mod:`spinect_core.inference.tiling`); several
windows go through the network per forward pass; the softmax probabilities of the windows are
summed per voxel (the study's Algorithm 1, ``blend="sum"``) or summed with a Gaussian weight
(nnU-Net style, ``blend="gaussian"``); the label of a voxel is the argmax of the summed
probabilities, and the probabilities are divided by their per-voxel total so they sum to 1.

Memory (a 200 x 300 x 300 volume, 5 classes, ``keep_probabilities=True``):

* one float32 accumulator ``(C, d, y, x)`` on the compute device, only as deep (``d``) as the
  windows of a batch reach: the windows run z-major, so the slices above the current batch are
  finished, normalised and handed over, and the buffer rolls on (about 2 patch depths: 24 MB
  here instead of 360 MB for the whole volume);
* the float16 probabilities returned: 180 MB, and the uint8 labels: 18 MB;
* the network's activations for one batch of windows (a few hundred MB for the study's U-Net at
  batch 4 and 32 x 64 x 64 patches).

No per-voxel weight map is kept: because every window's softmax sums to 1 over the classes, the
class-sum of the accumulator *is* the summed window weight of that voxel, so dividing by it
normalises and blends in one step (and is exactly MONAI's division by its count map).

A float16 accumulator would halve the 360 MB but is too coarse: float16 has an 11-bit mantissa,
so a sum of up to 8 overlapping probabilities (the default stride gives 2 x 2 x 2 overlap) carries
an absolute error of ~4e-3, enough to flip the argmax of voxels whose two best classes differ by
less than that, i.e. exactly the boundary voxels the planner measures. bfloat16 is worse still.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from spinect_core.errors import InputError, SpinectError
from spinect_core.inference import tiling
from spinect_core.inference.device import (
    Precision,
    autocast,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
)
from spinect_core.progress import ProgressCallback, report

log = logging.getLogger(__name__)

__all__ = ["PredictorOptions", "Prediction", "Predictor"]

_PROB_DTYPES = {"float16": np.float16, "float32": np.float32}
#: Windows per forward pass on the CPU for ``batch_size="auto"``: oneDNN keeps both cores busy
#: from batch 1; 4 amortises the per-call overhead without growing the activations.
CPU_BATCH = 4
#: Share of the GPU's free memory an ``"auto"`` batch may use (the rest is the accumulator's,
#: the allocator's fragmentation and other processes').
_FREE_MEMORY_SHARE = 0.6


def auto_batch_size(*, free_bytes: int, per_window_bytes: int, reserved_bytes: int = 0,
                    cap: int = 32) -> int:
    """The largest batch whose activations fit in the share of free memory we allow.

    Parameters
    ----------
    free_bytes : int
        Free device memory (``torch.cuda.mem_get_info``).
    per_window_bytes : int
        Peak memory one more window adds to a forward pass (measured at batch 1 and 2).
    reserved_bytes : int
        Memory still to be allocated besides the batch (the rolling accumulator), bytes.
    cap : int
        Upper bound; throughput saturates well before memory runs out on large GPUs.

    Returns
    -------
    int
        In ``1 .. cap``.
    """
    budget = _FREE_MEMORY_SHARE * free_bytes - reserved_bytes
    return int(min(cap, max(1, budget // max(1, per_window_bytes))))


def windows_touching(mask: np.ndarray, starts: Sequence[tuple[int, int, int]],
                     patch_size: tuple[int, int, int]) -> np.ndarray:
    """Which windows hold at least one voxel of ``mask``.

    Parameters
    ----------
    mask : np.ndarray of bool, shape (Z, Y, X)
        On the padded grid of the windows.
    starts : sequence of (z0, y0, x0)
    patch_size : (pz, py, px)

    Returns
    -------
    np.ndarray of bool, shape (len(starts),)
    """
    pz, py, px = patch_size
    # Per-z-slab projections first: a window touches the mask iff the mask's union over its
    # slab, seen from z, has a voxel in the window's (y, x) rectangle. Windows share few z-starts.
    out = np.zeros(len(starts), bool)
    by_z: dict[int, np.ndarray] = {}
    for n, (z, y, x) in enumerate(starts):
        if z not in by_z:
            by_z[z] = mask[z:z + pz].any(axis=0)
        out[n] = bool(by_z[z][y:y + py, x:x + px].any())
    return out
#: Voxels per slab in the final normalisation / argmax: bounds its temporaries to ~100 MB.


@dataclass(frozen=True, kw_only=True)
class PredictorOptions:
    """How to run sliding-window inference.

    Attributes
    ----------
    patch_size : tuple of 3 int
        Window size ``(z, y, x)`` in voxels; the study used 32 x 64 x 64. Must suit the network
        (divisible by 16 for the depth-5 U-Net).
    stride : tuple of 3 int
        Step between windows ``(z, y, x)``; ``<= patch_size`` so no voxel is skipped. The study
        used 20 x 40 x 40. The last window on each axis is moved back to end at the volume's end.
    blend : {"sum", "gaussian"}
        ``"sum"``: every window's softmax probabilities count equally (the study's Algorithm 1).
        ``"gaussian"``: each window is weighted by a Gaussian centred on it with
        ``sigma = sigma_scale * patch`` (nnU-Net; MONAI ``mode="gaussian"``).
    sigma_scale : float
        Gaussian width as a fraction of the window (0.125 = patch / 8); ignored for ``"sum"``.
    batch_size : int or "auto"
        Windows per forward pass. Halved automatically on device out-of-memory errors.
        ``"auto"``: :data:`CPU_BATCH` on the CPU (larger batches gain nothing there); on a GPU the
        largest batch up to ``max_auto_batch`` that free memory holds, measured once per
        predictor from the network's memory at batch 1 and 2 (:func:`auto_batch_size`).
    max_auto_batch : int
        Cap of the ``"auto"`` batch on a GPU (throughput saturates at a few tens of windows).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU) or a torch device name (``"cpu"``, ``"cuda:0"``).
    precision : {"auto", "float32", "bfloat16", "float16"}
        Autocast precision of the network; see :mod:`spinect_core.inference.device` for what
        ``"auto"`` picks on the CPU. On a CUDA GPU ``"auto"`` times float32 and the GPU's half
        precision once per predictor at the chosen batch and keeps the faster (half precision is
        not always faster: at batch 4 on an H200 bf16 was slower than float32). The
        probabilities are always summed in float32.
    channels_last : bool or "auto"
        Run the network in ``channels_last_3d`` layout (faster 3D convolutions on CPU and CUDA).
    prob_dtype : {"float16", "float32"}
        dtype of the returned probabilities (float16 halves their memory; resolution ~5e-4).
    keep_probabilities : bool
        Return the probabilities; ``False`` returns only the labels (saves ``C * z*y*x * 2`` bytes).
    pad_value : float or "minimum"
        Constant that pads volumes smaller than a patch. ``"minimum"`` (default) uses the image's
        minimum: after normalisation that is air, the natural surrounding of a body, whereas 0 is
        the mean intensity and looks like soft tissue to the network. The padding is centred and
        cropped off the result.
    stitch_on_cpu : bool
        Keep the accumulators in CPU memory even when the network runs on a GPU (otherwise they
        live on the GPU and only move to the CPU after an out-of-memory error).
    cpu_fallback : bool
        After device out-of-memory errors at batch 1, finish on the CPU instead of failing.
    skip_air : bool
        Do not run windows that hold no voxel of the body mask given to :meth:`Predictor.predict`
        (they count as background); without a mask every window runs.
    """

    patch_size: tuple[int, int, int] = (32, 64, 64)
    stride: tuple[int, int, int] = (20, 40, 40)
    blend: Literal["sum", "gaussian"] = "sum"
    sigma_scale: float = 0.125
    batch_size: int | Literal["auto"] = "auto"
    max_auto_batch: int = 32
    device: str = "auto"
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    channels_last: bool | Literal["auto"] = "auto"
    prob_dtype: Literal["float16", "float32"] = "float16"
    keep_probabilities: bool = True
    pad_value: float | Literal["minimum"] = "minimum"
    stitch_on_cpu: bool = False
    cpu_fallback: bool = True
    skip_air: bool = True

    def __post_init__(self) -> None:
        patch = tuple(int(v) for v in self.patch_size)
        stride = tuple(int(v) for v in self.stride)
        if len(patch) != 3 or len(stride) != 3:
            raise ValueError("patch_size and stride must have 3 values (z, y, x)")
        if min(patch) < 1 or min(stride) < 1:
            raise ValueError(f"patch_size and stride must be positive, got {patch}, {stride}")
        if any(s > p for s, p in zip(stride, patch)):
            raise ValueError(
                f"stride {stride} exceeds the patch {patch} on some axis: voxels between windows "
                "would never be predicted"
            )
        object.__setattr__(self, "patch_size", patch)
        object.__setattr__(self, "stride", stride)
        if self.blend not in ("sum", "gaussian"):
            raise ValueError(f"blend must be 'sum' or 'gaussian', got {self.blend!r}")
        if self.sigma_scale <= 0:
            raise ValueError(f"sigma_scale must be positive, got {self.sigma_scale}")
        if self.batch_size != "auto" and (isinstance(self.batch_size, bool)
                                          or not isinstance(self.batch_size, int)
                                          or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or an integer >= 1, got {self.batch_size!r}")
        if int(self.max_auto_batch) < 1:
            raise ValueError(f"max_auto_batch must be >= 1, got {self.max_auto_batch}")
        if self.precision not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"unknown precision {self.precision!r}")
        if self.prob_dtype not in _PROB_DTYPES:
            raise ValueError(f"prob_dtype must be 'float16' or 'float32', got {self.prob_dtype!r}")
        if not (isinstance(self.channels_last, bool) or self.channels_last == "auto"):
            raise ValueError(f"channels_last must be True, False or 'auto', got {self.channels_last!r}")
        if not (self.pad_value == "minimum" or isinstance(self.pad_value, (int, float))):
            raise ValueError(f"pad_value must be a number or 'minimum', got {self.pad_value!r}")


@dataclass(kw_only=True)
class Prediction:
    """Result of :meth:`Predictor.predict`.

    Attributes
    ----------
    labels : np.ndarray, shape (z, y, x), uint8
        Argmax class id of every voxel.
    probabilities : np.ndarray, shape (C, z, y, x), float16 or float32, or None
        Blended softmax probabilities, summing to 1 over ``C`` per voxel (up to the dtype's
        rounding); ``None`` when ``keep_probabilities=False``.
    device_used : str
        Device that ran the network at the end (``"cpu"`` after a full CPU fallback).
    precision_used : str
        ``"float32"``, ``"bfloat16"`` or ``"float16"``, the precision at the end.
    notes : list of str
        What happened that a user may want to know (out-of-memory fallbacks, padding).
    num_windows : int
        Windows of the tiling (run and skipped).
    num_skipped : int
        Windows not run because they lie wholly outside the body mask.
    batch_size : int
        Windows per forward pass at the start (after ``"auto"`` was resolved).
    seconds : float
        Wall-clock time of the prediction.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    device_used: str
    precision_used: str
    notes: list[str] = field(default_factory=list)
    num_windows: int = 0
    num_skipped: int = 0
    batch_size: int = 0
    seconds: float = 0.0


# --- execution stages and out-of-memory fallback ------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _Stage:
    """One configuration in the out-of-memory fallback chain."""

    compute_device: torch.device
    stitch_device: torch.device
    precision: Precision
    batch_size: int
    channels_last: bool
    note: str = ""  # why we entered this stage (empty for the first)


def _plan_stages(
    *,
    device: torch.device,
    precision: Precision,
    batch_size: int,
    channels_last_option: bool | str,
    stitch_on_cpu: bool,
    cpu_fallback: bool,
    cpu_precision: Precision,
) -> list[_Stage]:
    """The fallback chain: halve the batch, then stitch on the CPU, then run on the CPU.

    On the CPU itself there is no chain (out of host memory is not recoverable by these steps).
    """
    cpu = torch.device("cpu")
    stitch = cpu if (stitch_on_cpu or device.type == "cpu") else device
    cl = resolve_channels_last(channels_last_option, device)
    stages = [_Stage(compute_device=device, stitch_device=stitch, precision=precision,
                     batch_size=batch_size, channels_last=cl)]
    if device.type == "cpu":
        return stages
    b = batch_size
    while b > 1:
        nb = b // 2
        stages.append(dataclasses.replace(
            stages[-1], batch_size=nb,
            note=f"out of memory on {device}: batch size {b} -> {nb}"))
        b = nb
    if stitch.type != "cpu":
        stages.append(dataclasses.replace(
            stages[-1], stitch_device=cpu,
            note=f"out of memory on {device} at batch size 1: stitching on the CPU"))
    if cpu_fallback:
        stages.append(_Stage(
            compute_device=cpu, stitch_device=cpu, precision=cpu_precision,
            batch_size=batch_size, channels_last=resolve_channels_last(channels_last_option, cpu),
            note=f"out of memory on {device} at batch size 1: running on the CPU ({cpu_precision})"))
    return stages


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError)


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        try:
            torch.mps.empty_cache()
        except Exception:  # pragma: no cover - older torch
            pass


def _sliding_window_sum(
    image: torch.Tensor,
    *,
    starts: Sequence[tuple[int, int, int]],
    patch_size: tuple[int, int, int],
    stages: Sequence[_Stage],
    prepare: Callable[[_Stage], Callable[[torch.Tensor], torch.Tensor]],
    weight: torch.Tensor | None,
    num_classes: int | None,
    progress: ProgressCallback | None,
    notes: list[str],
    progress_span: float = 0.98,
    emit: Callable[[torch.Tensor, int], None] | None = None,
    skip: Sequence[bool] | None = None,
    background: int = 0,
) -> tuple[torch.Tensor | None, _Stage]:
    """Run all windows and sum their (weighted) softmax probabilities.

    With ``emit`` the sums are kept only for the z-range the windows still reach (a rolling
    buffer about two patch depths deep): the windows come z-major (:func:`tiling.tile_starts`),
    so once a window at ``z`` is due, every voxel above ``z`` has all its windows and is handed
    to ``emit(sums, z0)`` (``sums`` ``(C, n, Y, X)`` for padded slices ``z0 .. z0 + n``) and
    dropped. A thin-slice CT then never holds a whole-volume accumulator.

    Windows marked in ``skip`` (wholly in air) are not run: each adds its weight to the
    ``background`` class, which is what the network says of air, so the blend and the
    normalisation of the voxels it shares with run windows stay as they were.

    This is the device-agnostic core, testable on the CPU: ``stages`` is the fallback chain and
    ``prepare(stage)`` puts the network where the stage wants it and returns the forward callable,
    so a test can inject a network that raises :class:`torch.OutOfMemoryError` on demand.

    Parameters
    ----------
    image : torch.Tensor, shape (Z, Y, X), float32
        The padded volume; every axis ``>= patch_size``. On the CPU, or already on the compute
        device (a GPU then slices windows without a host transfer per batch).
    starts : sequence of (z0, y0, x0)
        Window corners (:func:`~spinect_core.inference.tiling.tile_starts`), z-major.
    patch_size : (pz, py, px)
    stages : sequence of _Stage
        Tried in order; the next one is entered on an out-of-memory error.
    prepare : callable
        ``prepare(stage) -> forward``; ``forward(x)`` maps ``(B, 1, pz, py, px)`` to logits
        ``(B, C, pz, py, px)``.
    weight : torch.Tensor, shape (pz, py, px), float32, or None
        Per-voxel window weight (Gaussian blending); ``None`` weights all voxels 1.
    num_classes : int or None
        Expected ``C``; ``None`` takes it from the first output (then ``skip`` must be None).
    progress : callable or None
        Called after every batch with ``run windows done / run windows * progress_span``.
    notes : list of str
        Appended with a line per fallback step.
    emit : callable, optional
        ``emit(sums, z0)`` receives every finished slab of the sums, in z order, exactly once.
    skip : sequence of bool, optional
        Per window of ``starts``: ``True`` = not run, counted as background.
    background : int
        Class index that skipped windows add to.

    Returns
    -------
    acc : torch.Tensor, shape (C, Z, Y, X), float32, or None
        Summed probabilities on the final stage's stitch device (``None`` with ``emit``).
    stage : _Stage
        The stage that finished the job.
    """
    pz, py, px = patch_size
    total = len(starts)
    skipped = [False] * total if skip is None else [bool(s) for s in skip]
    if len(skipped) != total:
        raise ValueError(f"skip has {len(skipped)} entries for {total} windows")
    if any(skipped) and num_classes is None:
        raise ValueError("skipping windows needs num_classes")
    run = [i for i in range(total) if not skipped[i]]
    stage_index = 0
    stage = stages[0]
    forward = prepare(stage)
    w_dev = None if weight is None else weight.to(stage.compute_device)
    acc: torch.Tensor | None = None
    base = 0                       # padded z of acc's first slice (0 without ``emit``)
    depth = image.shape[0]
    if emit is not None:
        # Deep enough for any batch (its run windows reach from its first z to its last z + pz)
        # and for any skipped window (pz, rolled to its own z first).
        zs = [starts[i][0] for i in run]
        b = max(1, *(st.batch_size for st in stages))
        span = max((zs[min(j + b, len(zs)) - 1] - zs[j] for j in range(len(zs))), default=0)
        depth = min(image.shape[0], span + pz)

    def allocate(c: int, first_z: int) -> torch.Tensor:
        nonlocal base
        if num_classes is not None and c != num_classes:
            raise SpinectError(
                f"the network outputs {c} classes but {num_classes} were expected; "
                "check that the weights match the label table")
        base = first_z if emit is not None else 0
        return torch.zeros((c, depth, *image.shape[1:]), dtype=torch.float32,
                           device=stage.stitch_device)

    def roll_to(z: int) -> None:
        """Hand over the slices above ``z`` (all their windows are in) and roll the buffer."""
        nonlocal base
        if emit is None or acc is None or z <= base:
            return
        n = z - base
        emit(acc[:, :n], base)
        acc[:, : depth - n] = acc[:, n:].clone()
        acc[:, depth - n:] = 0
        base = z

    k = 0         # run windows done
    i = 0         # next window index whose skip is still to be applied
    report(progress, 0.0, f"0/{len(run)} windows")
    while True:
        next_run = run[k] if k < len(run) else total
        while i < next_run and not skipped[i]:
            i += 1
        if i < next_run:
            unit = "skip"
        elif k < len(run):
            unit = "run"
            batch = [starts[j] for j in run[k: k + stage.batch_size]]
        else:
            break
        allocating = False
        try:
            if unit == "skip":
                z, y, x_ = starts[i]
                if acc is None:
                    allocating = True
                    acc = allocate(int(num_classes), z)  # type: ignore[arg-type]
                    allocating = False
                roll_to(z)
                region = acc[background, z - base:z - base + pz, y:y + py, x_:x_ + px]
                region += 1.0 if w_dev is None else w_dev.to(acc.device)
                i += 1
                continue
            first_z = batch[0][0]
            roll_to(first_z)
            x = torch.stack([image[z:z + pz, y:y + py, x_:x_ + px] for z, y, x_ in batch])
            x = x.unsqueeze(1)
            if x.device != stage.compute_device:
                if stage.compute_device.type == "cuda":
                    x = x.pin_memory()  # page-locked: the copy runs asynchronously
                x = x.to(stage.compute_device, non_blocking=True)
            if stage.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            with autocast(stage.compute_device, stage.precision):
                logits = forward(x)
            del x
            if logits.ndim != 5 or logits.shape[0] != len(batch) or tuple(logits.shape[2:]) != patch_size:
                raise SpinectError(
                    f"the network returned shape {tuple(logits.shape)} for a batch of "
                    f"{len(batch)} windows of {patch_size}; expected (B, C, *patch)")
            # softmax in float32 whatever the autocast precision; contiguous (NCDHW) because the
            # strided adds below are several times faster from a contiguous source
            probs = torch.softmax(logits, dim=1, dtype=torch.float32).contiguous()
            del logits
            if w_dev is not None:
                probs.mul_(w_dev)
            probs = probs.to(stage.stitch_device)
            if acc is None:
                allocating = True
                acc = allocate(probs.shape[1], first_z)
                allocating = False
            # in-place adds allocate nothing, so an OOM cannot strike half-way through a batch
            for j, (z, y, x_) in enumerate(batch):
                acc[:, z - base:z - base + pz, y:y + py, x_:x_ + px] += probs[j]
            del probs
        except Exception as exc:
            if not _is_oom(exc):
                raise
            x = logits = probs = None  # noqa: F841 - drop references before freeing the cache
            _free_device_memory(stage.compute_device)
            nxt = stage_index + 1
            if allocating:  # the accumulator itself does not fit: a smaller batch will not help
                while nxt < len(stages) and stages[nxt].stitch_device == stage.stitch_device:
                    nxt += 1
            if nxt >= len(stages):
                raise SpinectError(
                    f"out of memory on {stage.compute_device} even at batch size "
                    f"{stage.batch_size}; use a smaller patch or the CPU") from exc
            stage_index = nxt
            old = stage
            stage = stages[stage_index]
            notes.append(stage.note)
            log.warning("%s", stage.note)
            report(progress, progress_span * k / max(1, len(run)), stage.note)
            # prepare() moves the network only when the device or layout changes
            forward = prepare(stage)
            if stage.compute_device != old.compute_device:
                _free_device_memory(old.compute_device)
                if image.device != torch.device("cpu"):
                    image = image.cpu()  # a GPU-resident copy goes with the GPU
            if w_dev is not None:
                w_dev = w_dev.to(stage.compute_device)
            if acc is not None and acc.device != stage.stitch_device:
                acc = acc.to(stage.stitch_device)
                _free_device_memory(old.stitch_device)
            continue
        k += len(batch)
        report(progress, progress_span * k / len(run), f"{k}/{len(run)} windows")
    assert acc is not None
    if emit is None:
        return acc, stage
    emit(acc[:, : image.shape[0] - base], base)
    return None, stage


# --- the predictor ------------------------------------------------------------------------------
class Predictor:
    """Sliding-window segmentation with a network loaded once.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(B, 1, pz, py, px)`` float32 to logits ``(B, C, pz, py, px)``. It is put in eval
        mode, moved to the device and (when channels-last is on) converted to ``channels_last_3d``
        **in place**: the predictor owns it from now on.
    options : PredictorOptions, optional
        Defaults to the study's settings (patch 32 x 64 x 64, stride 20 x 40 x 40, sum blending).
    num_classes : int, optional
        Expected number of output classes; checked against the network's output.

    Examples
    --------
    >>> predictor = Predictor.from_weights("weights.safetensors")      # doctest: +SKIP
    >>> result = predictor.predict(normalised_ct)                        # doctest: +SKIP
    >>> result.labels.shape == normalised_ct.shape                       # doctest: +SKIP
    True
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        options: PredictorOptions | None = None,
        num_classes: int | None = None,
    ) -> None:
        self.options = options or PredictorOptions()
        self.num_classes = None if num_classes is None else int(num_classes)
        self.device = resolve_device(self.options.device)
        self.precision: Precision = resolve_precision(self.options.precision, self.device)
        # on a CPU fallback the user's bfloat16/float32 choice stands; float16 is CUDA-only
        cpu_request = "auto" if self.options.precision == "float16" else self.options.precision
        self._cpu_precision: Precision = resolve_precision(cpu_request, torch.device("cpu"))
        self.network = network
        self.network.eval()
        self.card: Any = None  # the model card when built by from_weights
        self._placement: tuple[torch.device, bool] | None = None
        self._place(self.device, resolve_channels_last(self.options.channels_last, self.device))
        weight = None
        if self.options.blend == "gaussian":
            weight = torch.from_numpy(
                tiling.gaussian_importance_map(self.options.patch_size, self.options.sigma_scale))
        self._weight = weight
        # Measured once on a GPU (batch "auto", precision "auto"), reused for every volume.
        self._window_bytes: int | None = None
        self._gpu_precision: tuple[Precision, str] | None = None

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_weights(
        cls, path: str | Path, *, options: PredictorOptions | None = None
    ) -> "Predictor":
        """Load weights and model card (``spinect_core.model.load_weights``) and build a predictor.

        When ``options`` is omitted, the card's patch size is used, with a stride of 5/8 of the
        patch (the study's 20/32 and 40/64).
        """
        from spinect_core.model import load_weights  # lazy: keeps this module light to import

        loaded = load_weights(path)
        card = loaded.card
        if options is None:
            patch = tuple(int(v) for v in getattr(card, "patch_size_zyx", (32, 64, 64)))
            stride = tuple(max(1, int(round(p * 5 / 8))) for p in patch)
            options = PredictorOptions(patch_size=patch, stride=stride)  # type: ignore[arg-type]
        num_classes = None
        labels = getattr(card, "labels", None)
        if labels is not None:
            try:
                num_classes = int(labels.num_classes)
            except (AttributeError, ValueError, TypeError):
                num_classes = None
        predictor = cls(loaded.model, options=options, num_classes=num_classes)
        predictor.card = card
        return predictor

    def _place(self, device: torch.device, channels_last: bool) -> None:
        """Move the network (once per change) to ``device`` and memory format."""
        if self._placement == (device, channels_last):
            return
        self.network.to(device)
        fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
        # Module.to(memory_format=...) only re-lays out 4D/5D parameters (conv weights)
        self.network.to(memory_format=fmt)
        self._placement = (device, channels_last)

    def _stages(self, batch_size: int, precision: Precision) -> list[_Stage]:
        o = self.options
        return _plan_stages(
            device=self.device, precision=precision, batch_size=batch_size,
            channels_last_option=o.channels_last, stitch_on_cpu=o.stitch_on_cpu,
            cpu_fallback=o.cpu_fallback, cpu_precision=self._cpu_precision)

    # --- GPU settings measured, not assumed ---------------------------------------------------
    def _gpu_input(self, batch: int) -> torch.Tensor:
        x = torch.randn((batch, 1, *self.options.patch_size), device=self.device)
        if resolve_channels_last(self.options.channels_last, self.device):
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def _measure_window_bytes(self) -> int:
        """Peak device memory one more window adds to a forward pass (+ its float32 softmax)."""
        dev = self.device
        peaks = []
        for b in (1, 2):
            x = self._gpu_input(b)
            torch.cuda.synchronize(dev)
            before = torch.cuda.memory_allocated(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            with torch.inference_mode(), autocast(dev, self.precision):
                probs = torch.softmax(self.network(x), dim=1, dtype=torch.float32)
            torch.cuda.synchronize(dev)
            peaks.append(torch.cuda.max_memory_allocated(dev) - before)
            del x, probs
        return max(1, peaks[1] - peaks[0])

    def _seconds_per_batch(self, batch: int, precision: Precision, repeats: int = 3) -> float:
        dev = self.device
        x = self._gpu_input(batch)
        times = []
        with torch.inference_mode(), autocast(dev, precision):
            for n in range(2 + repeats):  # two warm-up calls let cuDNN pick its kernels
                torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                self.network(x)
                torch.cuda.synchronize(dev)
                if n >= 2:
                    times.append(time.perf_counter() - t0)
        return float(np.median(times))

    def _run_settings(self, accumulator_bytes: int) -> tuple[int, Precision, list[str]]:
        """Batch size and precision for this volume, with notes on how they were chosen."""
        o = self.options
        if self.device.type != "cuda":
            batch = CPU_BATCH if o.batch_size == "auto" else int(o.batch_size)
            return batch, self.precision, []
        self._place(self.device, resolve_channels_last(o.channels_last, self.device))
        notes: list[str] = []
        if o.batch_size == "auto":
            if self._window_bytes is None:
                self._window_bytes = self._measure_window_bytes()
            free, _ = torch.cuda.mem_get_info(self.device)
            batch = auto_batch_size(free_bytes=free, per_window_bytes=self._window_bytes,
                                    reserved_bytes=accumulator_bytes, cap=o.max_auto_batch)
            notes.append(f"batch size {batch} from {free / 2**30:.1f} GiB free on "
                         f"{self.device} ({self._window_bytes / 2**20:.0f} MiB per window)")
        else:
            batch = int(o.batch_size)
        precision = self.precision
        if o.precision == "auto" and precision != "float32":
            if self._gpu_precision is None:
                half = self._seconds_per_batch(batch, precision)
                full = self._seconds_per_batch(batch, "float32")
                pick: Precision = precision if half < full else "float32"
                self._gpu_precision = (pick, f"precision {pick}: {precision} "
                                       f"{1e3 * half / batch:.2f} ms/window, float32 "
                                       f"{1e3 * full / batch:.2f} ms/window at batch {batch}")
            precision = self._gpu_precision[0]
            notes.append(self._gpu_precision[1])
        return batch, precision, notes

    # --- prediction ---------------------------------------------------------------------------
    def predict(self, image: np.ndarray, *, body_mask: np.ndarray | None = None,
                progress: ProgressCallback | None = None) -> Prediction:
        """Segment one volume.

        Parameters
        ----------
        image : np.ndarray, shape (z, y, x)
            Normalised intensities (as the weights expect), any real dtype; converted to float32
            (no copy when it already is contiguous float32).
        body_mask : np.ndarray of bool, shape (z, y, x), optional
            The body (e.g. :func:`spinect_core.preprocess.crop.body_mask`); with
            ``skip_air`` the windows holding none of it are not run and count as background.
        progress : callable, optional
            ``progress(fraction, message)`` after every batch of windows; returning ``False``
            raises :class:`~spinect_core.errors.Cancelled` before the next batch.

        Returns
        -------
        Prediction
            ``labels`` (z, y, x) uint8, ``probabilities`` (C, z, y, x) ``prob_dtype`` or None.

        Raises
        ------
        InputError
            The image is not 3D or holds NaN / infinite values.
        Cancelled
            The progress callback returned ``False``.
        SpinectError
            The network's output does not fit, or the device ran out of memory with no fallback.
        """
        t0 = time.perf_counter()
        o = self.options
        arr = np.asarray(image)
        if arr.ndim != 3:
            raise InputError(f"expected a 3D (z, y, x) image, got shape {arr.shape}")
        if min(arr.shape) < 1:
            raise InputError(f"the image is empty: shape {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise InputError("the image contains NaN or infinite values; normalise it first")
        notes: list[str] = []
        shape = arr.shape
        pads = tiling.padding_for(arr.shape, o.patch_size)
        if any(before or after for before, after in pads):
            value = float(arr.min()) if o.pad_value == "minimum" else float(o.pad_value)
            arr = np.pad(arr, pads, mode="constant", constant_values=value)
            notes.append(
                f"volume {shape} is smaller than "
                f"the patch {o.patch_size}: padded with {value:g}")
        starts = tiling.tile_starts(arr.shape, o.patch_size, o.stride)
        skip = None
        if o.skip_air and body_mask is not None:
            mask = np.asarray(body_mask, dtype=bool)
            if mask.shape != shape:
                raise InputError(f"the body mask {mask.shape} does not match the image {shape}")
            if self.num_classes is None:
                notes.append("no window skipped: the number of classes is unknown")
            else:
                skip = ~windows_touching(np.pad(mask, pads), starts, o.patch_size)
                del mask
                if skip.any():
                    notes.append(f"{int(skip.sum())} of {len(starts)} windows lie wholly "
                                 "outside the body and were not run (background)")
        c = self.num_classes or 1
        batch, precision, settings_notes = self._run_settings(
            4 * c * (2 * o.patch_size[0] + o.stride[0]) * arr.shape[1] * arr.shape[2] + arr.nbytes)
        notes.extend(settings_notes)
        tensor = torch.from_numpy(arr)
        if self.device.type == "cuda":
            try:  # windows are then sliced on the GPU: no host copy per batch
                tensor = tensor.to(self.device)
            except torch.OutOfMemoryError:
                _free_device_memory(self.device)
                notes.append(f"the volume stays in host memory (no room on {self.device})")

        def prepare(stage: _Stage) -> Callable[[torch.Tensor], torch.Tensor]:
            self._place(stage.compute_device, stage.channels_last)
            return self.network

        crop = tuple(slice(b, b + n) for (b, _), n in zip(pads, shape))
        prob_dtype = np.dtype(_PROB_DTYPES[o.prob_dtype])
        labels = np.empty(shape, np.uint8)
        probs = np.empty((self.num_classes or 0, *shape), prob_dtype) \
            if o.keep_probabilities else None
        torch_prob_dtype = torch.float16 if prob_dtype == np.float16 else torch.float32

        def emit(sums: torch.Tensor, z0: int) -> None:
            """Labels and normalised probabilities of finished padded slices z0.. (cropped)."""
            nonlocal probs
            a = max(z0, crop[0].start)
            b = min(z0 + sums.shape[1], crop[0].stop)
            if b <= a:
                return
            part = sums[:, a - z0: b - z0, crop[1], crop[2]]
            out = slice(a - crop[0].start, b - crop[0].start)
            labels[out] = part.argmax(dim=0).to(torch.uint8).cpu().numpy()
            if o.keep_probabilities:
                if probs is None or probs.shape[0] != part.shape[0]:
                    probs = np.empty((part.shape[0], *shape), prob_dtype)
                total_ = part.sum(dim=0, keepdim=True)
                probs[:, out] = (part / total_).to(torch_prob_dtype).cpu().numpy()

        with torch.inference_mode():
            # The sums are kept only for the z-range the windows still reach and handed to
            # emit() as they finish: no whole-volume accumulator (C x volume x 4 bytes).
            _, stage = _sliding_window_sum(
                tensor, starts=starts, patch_size=o.patch_size,
                stages=self._stages(batch, precision), prepare=prepare, weight=self._weight,
                num_classes=self.num_classes, progress=progress, notes=notes, emit=emit,
                skip=skip)
        if stage.compute_device != self.device:
            # the next volume may fit: go back to the preferred device
            self._place(self.device, resolve_channels_last(o.channels_last, self.device))
        report(progress, 1.0, "done")
        return Prediction(
            labels=labels, probabilities=probs, device_used=str(stage.compute_device),
            precision_used=stage.precision, notes=notes, num_windows=len(starts),
            num_skipped=0 if skip is None else int(skip.sum()), batch_size=batch,
            seconds=time.perf_counter() - t0)

    def __repr__(self) -> str:
        o = self.options
        return (f"Predictor(device={str(self.device)!r}, precision={self.precision!r}, "
                f"patch={o.patch_size}, stride={o.stride}, blend={o.blend!r})")

