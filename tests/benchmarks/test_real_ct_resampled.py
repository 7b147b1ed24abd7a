"""The resampling of ``benchmarks/real_ct_resampled.py``: anisotropic voxel sizes (thick slices
smoothed to their width) and a moved grid."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tests.benchmarks import load_benchmark

real_ct_resampled = load_benchmark("real_ct_resampled")


def test_voxel_sizes_are_one_number_or_three():
    assert real_ct_resampled._spacing("2") == (2.0, 2.0, 2.0)
    assert real_ct_resampled._spacing("3x3x5") == (3.0, 3.0, 5.0)
    with pytest.raises(argparse.ArgumentTypeError):
        real_ct_resampled._spacing("3x5")


def test_thick_slices_and_a_moved_grid(tmp_path):
    """A 1 mm CT holding one bright 1 mm plate across the slices: 5 mm slices spread the plate
    over a slab (no slice keeps its 1000 HU), the in-plane size stays; a grid moved by 1.5 mm
    starts 1.5 mm further along every axis."""
    import SimpleITK as sitk

    hu = np.full((40, 20, 20), 0.0, np.float32)
    hu[20] = 1000.0
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing((1.0, 1.0, 1.0))
    ct_path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(img, str(ct_path))

    thick = real_ct_resampled.resample(ct_path, (1.0, 1.0, 5.0), 0.0, tmp_path / "thick")
    out = sitk.ReadImage(str(thick))
    assert out.GetSize() == (20, 20, 8) and out.GetSpacing() == (1.0, 1.0, 5.0)
    profile = sitk.GetArrayFromImage(out)[:, 10, 10]
    assert profile.max() < 600 and profile.sum() > 150          # spread, not lost

    moved = real_ct_resampled.resample(ct_path, (1.0, 1.0, 1.0), 0.0, tmp_path / "moved",
                                       shift_mm=1.5)
    assert np.allclose(sitk.ReadImage(str(moved)).GetOrigin(), (1.5, 1.5, 1.5))
