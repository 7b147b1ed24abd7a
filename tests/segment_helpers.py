"""Small known-answer networks and CTs for segmentation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spinect_core.labels import STUDY_LABELS
from spinect_core.model import LoadedModel, ModelCard, UNet3D, UNetConfig, save_weights
from spinect_core.volume import Volume

NORMALISATION = {"scheme": "ct_percentile_zscore", "clip_hu": [-1000.0, 2000.0],
                 "mean_hu": 0.0, "std_hu": 500.0}
BONE_HU = 700.0


class ThresholdNet(torch.nn.Module):
    """Classifies voxels above 300 HU as bone (class 1), nothing as nerve, the rest background.

    A 1x1x1 convolution on the normalised input, so the segmentation pipeline's answer is known
    exactly: any geometric error in preprocessing or mapping back shows up as a Dice loss.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 3, kernel_size=1)
        threshold = 300.0 / NORMALISATION["std_hu"]
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[1, 0] = 40.0
            self.conv.bias[1] = -40.0 * threshold
            self.conv.bias[2] = -100.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TopFaceNet(torch.nn.Module):
    """Classifies as bone (class 1) the voxels brighter by over 250 HU than the next one up the
    array's z axis: the top faces of bright blocks, as the network sees the array. A network
    that saw a CT upside down would mark the other faces."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 3, kernel_size=(3, 1, 1), padding=(1, 0, 0),
                                    padding_mode="replicate")
        step = 250.0 / NORMALISATION["std_hu"]
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[1, 0, 1, 0, 0] = 40.0       # the voxel
            self.conv.weight[1, 0, 2, 0, 0] = -40.0      # the one above it (z + 1)
            self.conv.bias[1] = -40.0 * step
            self.conv.bias[2] = -100.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def top_face_model(patch=(16, 32, 32)) -> LoadedModel:
    card = ModelCard(name="top-face", version="0", normalisation=dict(NORMALISATION),
                     architecture=UNetConfig(num_classes=3, base_channels=4, depth=3),
                     labels=STUDY_LABELS, patch_size_zyx=patch)
    return LoadedModel(model=TopFaceNet().eval(), card=card, path=Path("top-face"))


def threshold_model(patch=(16, 32, 32)) -> LoadedModel:
    card = ModelCard(name="threshold", version="0", normalisation=dict(NORMALISATION),
                     architecture=UNetConfig(num_classes=3, base_channels=4, depth=3),
                     labels=STUDY_LABELS, patch_size_zyx=patch)
    return LoadedModel(model=ThresholdNet().eval(), card=card, path=Path("threshold"))


def tiny_unet_weights(path: Path, *, seed: int = 0) -> Path:
    """Save a tiny random U-Net (3 classes, patch 16x32x32) and return the weights path."""
    torch.manual_seed(seed)
    config = UNetConfig(num_classes=3, base_channels=4, depth=3)
    card = ModelCard(name="tiny", version="0", normalisation=dict(NORMALISATION),
                     architecture=config, labels=STUDY_LABELS, patch_size_zyx=(16, 32, 32))
    return save_weights(UNet3D(config).eval(), card, path)


def oblique_direction(angle_deg: float = 12.0) -> np.ndarray:
    """A rotation about z then x: an oblique, non-axis-aligned LPS direction matrix."""
    a = np.deg2rad(angle_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return rz @ rx


def sphere_ct(*, spacing=(0.7, 0.7, 2.5), shape_zyx=(24, 96, 96), radius_mm=9.0,
              direction=None, origin=(-30.0, 20.0, 150.0)) -> tuple[Volume, np.ndarray]:
    """A soft-tissue block with a bone sphere in the middle.

    Returns the CT (int16 HU) and the true bone mask at voxel centres (z, y, x).
    """
    direction = oblique_direction() if direction is None else direction
    grid = Volume(array=np.zeros(shape_zyx, np.int16), spacing_mm=spacing,
                  origin_lps_mm=origin, direction=direction)
    nz, ny, nx = shape_zyx
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    world = grid.index_to_lps(np.stack([i, j, k], axis=-1))
    centre = grid.index_to_lps(np.array([(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2]))
    inside = np.linalg.norm(world - centre, axis=-1) <= radius_mm
    array = np.full(shape_zyx, 40, np.int16)
    array[inside] = int(BONE_HU)
    array[:, :6, :] = -1000  # air in front of the body so the body crop has something to crop
    return grid.with_array(array), inside
