"""The SPINECT 3D U-Net (AJNR 2019) and its configuration.

Tensor layout everywhere in this module is ``(B, C, D, H, W)`` with ``D = z`` (cranio-caudal slices),
``H = y`` and ``W = x``: the channel-first form of the core's ``(z, y, x)`` numpy convention, so a
volume ``array`` of shape ``(nz, ny, nx)`` becomes a tensor ``array[None, None]``.

Network (per resolution level ``l = 0 .. depth-1``, ``c_l = base_channels * 2**l``):

* encoder: two ``3x3x3`` convolutions with bias, each followed by normalisation and ReLU;
  between levels a ``2x2x2`` max-pool halves every spatial size;
* decoder: a ``2x2x2`` stride-2 transposed convolution doubles the spatial size and halves the
  channels (``c_{l+1} -> c_l``), its output is concatenated with the encoder's skip
  (``2 c_l`` channels), then two ``3x3x3`` conv + norm + ReLU bring it back to ``c_l``;
* head: a ``1x1x1`` convolution to ``num_classes`` logits; :meth:`UNet3D.predict_proba` applies
  the softmax over classes.

Padding is "same" (1 voxel for ``3x3x3``), so the output has the input's spatial size, and every
spatial size must be divisible by ``2**(depth-1)`` for the pools and up-convolutions to line up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

_NORMS = ("batch", "instance")


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Hyper-parameters that fix the network's tensors (names and shapes).

    Parameters
    ----------
    in_channels : int
        Input channels (1: one normalised CT channel).
    num_classes : int
        Output classes, including background; must equal the label table's size.
    base_channels : int
        Feature channels at full resolution; level ``l`` has ``base_channels * 2**l``.
    depth : int
        Number of resolution levels (``depth - 1`` poolings and skip connections).
    norm : {"batch", "instance"}
        Normalisation after every ``3x3x3`` convolution. ``"batch"`` keeps running statistics
        (used in eval mode); ``"instance"`` is affine and has none.
    """

    in_channels: int = 1
    num_classes: int = 3
    base_channels: int = 32
    depth: int = 5
    norm: str = "batch"

    def __post_init__(self) -> None:
        for name in ("in_channels", "num_classes", "base_channels", "depth"):
            value = getattr(self, name)
            # bool is an int subclass; True as a channel count is certainly a mistake.
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"UNetConfig.{name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"UNetConfig.num_classes must be >= 2 (background + one class), "
                             f"got {self.num_classes}")
        if self.norm not in _NORMS:
            raise ValueError(f"UNetConfig.norm must be one of {list(_NORMS)}, got {self.norm!r}")

    # --- presets ------------------------------------------------------------------------------
    @classmethod
    def study(cls) -> "UNetConfig":
        """The AJNR 2019 SPINECT network: 1 -> 3 classes, channels 32..512, 5 levels, BatchNorm.

        Trained on 32x64x64 (z, y, x) patches; 22,581,283 parameters, 128 (0.0006 %) fewer than
        the 22,581,411 the paper reports (see ``tests/model/test_unet.py``).
        """
        return cls(in_channels=1, num_classes=3, base_channels=32, depth=5, norm="batch")

    @classmethod
    def fast(cls) -> "UNetConfig":
        """Same topology with half the channels (16..256): 5,647,891 parameters, ~4x cheaper."""
        return cls(in_channels=1, num_classes=3, base_channels=16, depth=5, norm="batch")

    # --- derived ------------------------------------------------------------------------------
    @property
    def channels(self) -> tuple[int, ...]:
        """Feature channels per level, full resolution first (``(32, 64, 128, 256, 512)``)."""
        return tuple(self.base_channels * 2**level for level in range(self.depth))

    @property
    def size_multiple(self) -> int:
        """Every input spatial size must be a multiple of this (``2**(depth-1)``)."""
        return 2 ** (self.depth - 1)

    def num_parameters(self) -> int:
        """Trainable parameter count, computed in closed form (no tensors are allocated).

        Per ``3x3x3`` conv ``27 * c_in * c_out + c_out`` (weights + bias); per norm ``2 c``
        (scale + shift); per transposed conv ``8 * c_in * c_out + c_out``; head ``c_0 * K + K``.
        BatchNorm running statistics are buffers, not parameters.
        """
        ch = self.channels

        def block(c_in: int, c_out: int) -> int:
            return (27 * c_in * c_out + c_out) + 2 * c_out + (27 * c_out * c_out + c_out) + 2 * c_out

        total = 0
        for level, c in enumerate(ch):
            total += block(self.in_channels if level == 0 else ch[level - 1], c)
        for level in range(self.depth - 1):
            c, c_up = ch[level], ch[level + 1]
            total += 8 * c_up * c + c  # up-convolution
            total += block(2 * c, c)  # after concatenation with the skip
        total += ch[0] * self.num_classes + self.num_classes
        return total

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"in_channels": 1, "num_classes": 3, ...}``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "UNetConfig":
        """Inverse of :meth:`to_dict`; missing keys take the defaults.

        Raises
        ------
        ValueError
            On unknown keys or invalid values (callers reading files wrap it in ``WeightsError``).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"architecture must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown architecture keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**dict(data))


class _ConvBlock(nn.Module):
    """Two (3x3x3 conv with bias -> norm -> ReLU) at one resolution; keeps the spatial size."""

    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c_in, c_out, kernel_size=3, padding=1, bias=True)
        self.norm1 = _make_norm(norm, c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, kernel_size=3, padding=1, bias=True)
        self.norm2 = _make_norm(norm, c_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(x)))


def _make_norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm3d(channels)
    # Affine so both norms have the same parameters (weight, bias); no running stats, so eval
    # mode normalises each patch by itself, as in training.
    return nn.InstanceNorm3d(channels, affine=True, track_running_stats=False)


class UNet3D(nn.Module):
    """3D U-Net with concatenation skips (see the module docstring for the layout).

    Parameters
    ----------
    config : UNetConfig
        Channels, depth, classes and normalisation. ``UNetConfig.study()`` is the paper's network.

    Notes
    -----
    Tensor names in ``state_dict()`` are stable and are what weights files store:
    ``encoders.{l}.conv{1,2}.{weight,bias}``, ``encoders.{l}.norm{1,2}.*``, ``ups.{l}.*``,
    ``decoders.{l}.*`` (``l`` = resolution level of the output, 0 = full resolution) and
    ``head.{weight,bias}``.

    Works in eval mode with BatchNorm running statistics, under ``torch.autocast`` (e.g. bfloat16
    on CPU) and with ``memory_format=torch.channels_last_3d`` for both module and input.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else UNetConfig.study()
        cfg = self.config
        ch = cfg.channels
        self.encoders = nn.ModuleList(
            _ConvBlock(cfg.in_channels if level == 0 else ch[level - 1], c, cfg.norm)
            for level, c in enumerate(ch)
        )
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        # ups[l] / decoders[l] produce level l from level l+1; indexed by output level so the
        # names do not depend on the order in which forward() visits them.
        self.ups = nn.ModuleList(
            nn.ConvTranspose3d(ch[level + 1], ch[level], kernel_size=2, stride=2, bias=True)
            for level in range(cfg.depth - 1)
        )
        self.decoders = nn.ModuleList(
            _ConvBlock(2 * ch[level], ch[level], cfg.norm) for level in range(cfg.depth - 1)
        )
        self.head = nn.Conv3d(ch[0], cfg.num_classes, kernel_size=1, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal initialisation as in the study; biases 0, norm scales 1.

        Convolutions use ``std = sqrt(2 / fan_in)`` with ``fan_in = c_in * k**3`` (He et al. 2015:
        the factor 2 compensates the ReLU that produced the layer's input, so activations keep
        their variance through depth). For the stride-2 ``2x2x2`` transposed convolutions every
        output voxel sees exactly one input voxel, so the effective fan-in is ``c_in``; torch's
        generic fan computation would use ``c_out * 8`` for those weights, so they are set here.
        """
        for module in self.modules():
            if isinstance(module, nn.ConvTranspose3d):
                nn.init.normal_(module.weight, mean=0.0, std=math.sqrt(2.0 / module.in_channels))
                if module.bias is not None:  # always built with a bias; the check narrows the type
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:  # always built with a bias; the check narrows the type
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm3d, nn.InstanceNorm3d)):
                if module.weight is not None:
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
                if getattr(module, "running_mean", None) is not None:
                    module.reset_running_stats()

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, in_channels, D, H, W)`` with sizes that pool.

        Each of ``D, H, W`` must be a positive multiple of ``2**(depth-1)`` (16 for the study).
        """
        cfg = self.config
        if x.ndim != 5:
            raise ValueError(f"UNet3D expects a 5D tensor (B, C, D, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != cfg.in_channels:
            raise ValueError(f"UNet3D expects {cfg.in_channels} input channel(s), got {x.shape[1]} "
                             f"(shape {tuple(x.shape)})")
        m = cfg.size_multiple
        bad = [int(s) for s in x.shape[2:] if s < m or s % m]
        if bad:
            suggestion = tuple(max(m, -(-int(s) // m) * m) for s in x.shape[2:])
            raise ValueError(
                f"UNet3D with depth {cfg.depth} needs every spatial size (D, H, W) to be a positive "
                f"multiple of {m}; got {tuple(int(s) for s in x.shape[2:])}. Pad to {suggestion}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_channels, D, H, W), floating
            Normalised CT patch(es), axes (batch, channel, z, y, x).

        Returns
        -------
        torch.Tensor, shape (B, num_classes, D, H, W)
            Unnormalised scores (logits); same dtype as the computation (bfloat16 under autocast).
        """
        self.check_input(x)
        skips: list[torch.Tensor] = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.pool(x)
            x = encoder(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck has no skip partner
        for level in reversed(range(self.config.depth - 1)):
            x = self.ups[level](x)
            # Skip first, then upsampled: fixed order, so trained weights stay meaningful.
            x = self.decoders[level](torch.cat([skips[level], x], dim=1))
        return self.head(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities, shape (B, num_classes, D, H, W), float32, summing to 1.

        The softmax is taken in float32 even under autocast so probabilities near 0/1 keep
        their resolution (they are summed over overlapping windows downstream).
        """
        return torch.softmax(self.forward(x).float(), dim=1)

    def num_parameters(self) -> int:
        """Number of trainable parameter elements (equals ``config.num_parameters()``)."""
        return sum(p.numel() for p in self.parameters())
