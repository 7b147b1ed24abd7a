"""Tiny networks for inference tests (CPU, float32, a fraction of a second each)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """Two 3x3x3 convolutions: position-dependent output, so blending errors show."""

    def __init__(self, num_classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv3d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv3d(4, num_classes, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.tanh(self.conv1(x))) * 3.0


class SoftmaxWrapper(nn.Module):
    """What MONAI needs to average probabilities rather than logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x).float(), dim=1)


class OOMNet(nn.Module):
    """Raises ``torch.OutOfMemoryError`` for batches larger than ``max_batch`` (or always)."""

    def __init__(self, net: nn.Module, max_batch: int) -> None:
        super().__init__()
        self.net = net
        self.max_batch = max_batch
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(int(x.shape[0]))
        if x.shape[0] > self.max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.net(x)


@pytest.fixture
def tiny_net() -> TinyNet:
    return TinyNet().eval()


@pytest.fixture
def rng() -> "np.random.Generator":  # noqa: F821
    import numpy as np

    return np.random.default_rng(1234)
