"""The real-CT benchmark's reference L5/S1 disc centre (``benchmarks/real_ct_reference.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from spinect_core.volume import Volume

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "real_ct_reference.py"
_spec = importlib.util.spec_from_file_location("real_ct_reference", _PATH)
assert _spec is not None and _spec.loader is not None
real_ct_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(real_ct_reference)


def test_the_reference_disc_centre_is_the_middle_of_the_whole_disc():
    """L5 (a body with a spinous process behind its canal) 10 mm above a sacrum of the same
    section: the disc's centre is the middle of the space between the bodies, not its front
    half (the reference once cut "in front of the canal" at the median of the whole L5 mask,
    inside the body, and lost the disc's back half)."""
    grid = Volume(array=np.zeros((70, 80, 60), np.uint8), spacing_mm=(1.0, 1.0, 1.0),
                  origin_lps_mm=(-30.0, -30.0, -30.0))

    def box(x, y, z):
        m = np.zeros(grid.array.shape, bool)
        m[z[0] + 30:z[1] + 30, y[0] + 30:y[1] + 30, x[0] + 30:x[1] + 30] = True
        return m

    l5 = box((-20, 20), (-15, 15), (10, 35)) | box((-4, 4), (25, 45), (15, 35))
    sacrum = box((-20, 20), (-15, 15), (-25, 0)) | box((-10, 10), (25, 40), (-25, 0))
    centre = np.asarray(real_ct_reference.reference_disc_centre(l5, sacrum, grid))
    # Voxel centres of the 10 mm gap (z 0..9) span x -20..19, y -15..14: its middle is -0.5.
    # The gap's rim in front of the bodies counts as between them, the back one is cut at the
    # wall: up to 3 mm forward. The old cut, 5 mm in front of the L5 mask's median, gave -10.
    assert abs(centre[0] + 0.5) < 1.0 and abs(centre[2] - 4.5) < 1.0
    assert -4.0 < centre[1] < 0.0


def test_the_space_between_a_transverse_process_and_the_ala_is_not_disc():
    """The same L5 with a transverse process on its left reaching down towards a sacral ala
    (8 mm apart, beside the body): that space lies between the two masks too, but not between
    the bodies; the centre stays at the disc's middle (on TotalSegmentator's example CT such
    space put the reference 4.6 mm right of L5's midline)."""
    grid = Volume(array=np.zeros((70, 80, 100), np.uint8), spacing_mm=(1.0, 1.0, 1.0),
                  origin_lps_mm=(-50.0, -30.0, -30.0))

    def box(x, y, z):
        m = np.zeros(grid.array.shape, bool)
        m[z[0] + 30:z[1] + 30, y[0] + 30:y[1] + 30, x[0] + 50:x[1] + 50] = True
        return m

    body = box((-20, 20), (-15, 15), (10, 35))
    l5 = body | box((-4, 4), (25, 45), (15, 35)) | box((20, 45), (0, 10), (20, 30))
    sacrum = (box((-20, 20), (-15, 15), (-25, 0)) | box((-10, 10), (25, 40), (-25, 0))
              | box((20, 45), (-10, 12), (-25, 12)))
    centre = np.asarray(real_ct_reference.reference_disc_centre(l5, sacrum, grid))
    assert abs(centre[0] + 0.5) < 1.5 and abs(centre[2] - 4.5) < 1.5
