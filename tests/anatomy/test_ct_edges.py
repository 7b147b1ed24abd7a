"""bone_edge: the sub-voxel bone edge on a CT profile, wherever the label put its estimate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spinect_core.anatomy.ct_edges import bone_edge
from spinect_core.volume import Volume


def _slab_ct(edge_x_mm: float, *, voxel_mm: float = 1.0, seed: int = 0) -> Volume:
    """Bone (cortex 900 HU over cancellous 250 HU) for x < edge_x_mm, fat (-90 HU) beyond;
    partial volume at 1/8-voxel resolution, a 0.6-voxel Gaussian blur and 15 HU noise."""
    n, sub = 32, 8
    x = (np.arange(n * sub) + 0.5) / sub * voxel_mm  # fine-grid centres (mm), origin at 0
    fine = np.where(x < edge_x_mm - 1.5, 250.0, np.where(x < edge_x_mm, 900.0, -90.0))
    row = fine.reshape(n, sub).mean(axis=1)  # partial volume per voxel
    ct = np.broadcast_to(row, (n, n, n)).astype(np.float32)
    ct = ndimage.gaussian_filter(ct, 0.6) + np.random.default_rng(seed).normal(0, 15, ct.shape)
    # Voxel i spans [i, i + 1) * voxel_mm: its centre (the LPS position of index i) is i + 0.5.
    return Volume(array=ct.astype(np.float32), spacing_mm=[voxel_mm] * 3,
                  origin_lps_mm=[0.5 * voxel_mm] * 3, direction=np.eye(3))


@pytest.mark.parametrize("edge", [15.0, 15.3, 15.7])
@pytest.mark.parametrize("start_offset", [-2.0, -0.6, 0.0, 0.8, 2.0])
def test_finds_the_edge_from_any_nearby_estimate(edge, start_offset) -> None:
    ct = _slab_ct(edge)
    found = bone_edge(ct, np.array([edge + start_offset, 16.0, 16.0]), np.array([1.0, 0.0, 0.0]))
    assert found is not None
    # Within a third of a voxel (partial volume lowers the thin cortex's peak, which moves the
    # half-maximum outwards a little), and the same from every start (next test).
    assert found[0] == pytest.approx(edge, abs=0.35)
    assert found[1:] == pytest.approx([16.0, 16.0])  # moved along the outward axis only


def test_the_same_edge_from_estimates_a_voxel_apart() -> None:
    ct = _slab_ct(15.4)
    a = bone_edge(ct, np.array([14.5, 16.0, 16.0]), np.array([1.0, 0.0, 0.0]))
    b = bone_edge(ct, np.array([15.5, 16.0, 16.0]), np.array([1.0, 0.0, 0.0]))
    assert abs(a[0] - b[0]) < 0.1


def test_no_edge_without_contrast() -> None:
    flat = Volume(array=np.random.default_rng(1).normal(30, 15, (32, 32, 32)).astype(np.float32),
                  spacing_mm=[1.0] * 3, origin_lps_mm=[0.0] * 3, direction=np.eye(3))
    assert bone_edge(flat, np.array([16.0, 16.0, 16.0]), np.array([1.0, 0.0, 0.0])) is None
