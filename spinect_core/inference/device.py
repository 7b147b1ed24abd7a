"""Choice of compute device, precision and memory layout for inference.

Rules (all decided at call time, never at import time):

* device ``"auto"``: CUDA if available, then Apple MPS, then the CPU.
* precision ``"auto"``: bfloat16 autocast on CUDA GPUs that support it (Ampere and newer), float16
  on older CUDA GPUs, bfloat16 on CPUs with native bf16 arithmetic (x86 AVX512_BF16 or AMX; on
  such CPUs bf16 convolutions run ~3x faster than float32), float32 everywhere else (CPUs that
  would only emulate bf16, and MPS). float16 is accepted only on CUDA: CPU float16 convolutions are
  slow or missing.
* channels-last ``"auto"``: ``channels_last_3d`` (NDHWC) on CUDA and on the CPU, where cuDNN and
  oneDNN pick faster 3D convolution kernels for it; off on MPS.
"""

from __future__ import annotations

import contextlib
import logging
import platform
from typing import ContextManager, Literal

import torch

log = logging.getLogger(__name__)

Precision = Literal["float32", "bfloat16", "float16"]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

__all__ = [
    "Precision",
    "resolve_device",
    "resolve_precision",
    "resolve_channels_last",
    "cpu_has_fast_bf16",
    "autocast",
    "precision_dtype",
]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for a user's choice.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"`` (CUDA, then MPS, then CPU) or any torch device name (``"cpu"``, ``"cuda:1"``).

    Raises
    ------
    ValueError
        If a CUDA or MPS device is named but not available.
    """
    if isinstance(name, torch.device):
        dev = name
    elif str(name).lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        dev = torch.device(str(name).lower())
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} was requested but CUDA is not available")
    if dev.type == "mps" and not _mps_available():
        raise ValueError(f"device {str(dev)!r} was requested but Apple MPS is not available")
    return dev


def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (x86 AVX512_BF16 or AMX tiles).

    oneDNN also *emulates* bf16 on plain AVX512 CPUs, which is slower than float32, so
    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is not the right test. We ask torch's cpuinfo
    (``torch.cpu._is_avx512_bf16_supported``, a private helper) and fall back to the Linux CPU
    flags.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        helpers = torch.cpu
        return bool(helpers._is_avx512_bf16_supported() or helpers._is_amx_tile_supported())
    except Exception:  # private API moved: read the flags ourselves (Linux only)
        pass
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        return False
    return False


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """The compute precision for a user's choice on ``device``.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16", "float16"}
    device : torch.device

    Returns
    -------
    str
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    Raises
    ------
    ValueError
        Unknown precision, or float16 requested on a non-CUDA device.
    """
    p = str(precision).lower()
    if p == "auto":
        if device.type == "cuda":
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        if device.type == "cpu" and cpu_has_fast_bf16():
            return "bfloat16"
        return "float32"
    if p not in _DTYPES:
        raise ValueError(f"precision must be auto, float32, bfloat16 or float16, got {precision!r}")
    if p == "float16" and device.type != "cuda":
        raise ValueError("float16 precision is only supported on CUDA; use bfloat16 or float32")
    return p  # type: ignore[return-value]


def precision_dtype(precision: Precision) -> torch.dtype:
    """``torch.float32``, ``torch.bfloat16`` or ``torch.float16``."""
    return _DTYPES[precision]


def resolve_channels_last(option: bool | str, device: torch.device) -> bool:
    """Whether to run the network in ``channels_last_3d`` memory format.

    Parameters
    ----------
    option : bool or "auto"
    device : torch.device
    """
    if isinstance(option, bool):
        return option
    if str(option).lower() != "auto":
        raise ValueError(f"channels_last must be 'auto', True or False, got {option!r}")
    return device.type in ("cuda", "cpu")


def autocast(device: torch.device, precision: Precision) -> ContextManager[object]:
    """An autocast context for reduced precision, or a no-op context for float32."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])
