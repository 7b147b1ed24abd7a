"""A cut that parted two bodies for the count is bone again where it is not the L5/S1 disc."""

from __future__ import annotations

import numpy as np

from spinect_core.anatomy.levels import _return_cut_bone
from spinect_core.anatomy.parts import PART_ID


def test_a_cut_through_l5_goes_back_to_l5_and_the_l5s1_disc_stays() -> None:
    """L5 (z 10-29) above other bone (L4, z 30-39), cut by a plate at z 28-31 that crosses into
    L5's body; the L5/S1 disc below L5 (z 6-9) was cut too. The plate's voxels take the part of
    the bone nearest each (L5 below z 30, L4's other bone above); the disc stays a disc."""
    parts = np.zeros((40, 12, 12), np.uint8)
    parts[10:30] = PART_ID["L5"]
    parts[30:40] = PART_ID["other_bone"]
    parts[6:10] = PART_ID["disc_L5S1"]
    cut = np.zeros(parts.shape, bool)
    cut[28:32] = True
    cut[6:10] = True
    parts[28:32] = PART_ID["disc_other"]
    _return_cut_bone(parts, cut, np.ones(3))
    assert (parts[28:30] == PART_ID["L5"]).all()
    assert (parts[30:32] == PART_ID["other_bone"]).all()
    assert (parts[6:10] == PART_ID["disc_L5S1"]).all()


def test_a_disc_outside_the_cut_is_left_alone() -> None:
    parts = np.full((10, 6, 6), PART_ID["L5"], np.uint8)
    parts[4:6] = PART_ID["disc_other"]
    before = parts.copy()
    _return_cut_bone(parts, np.zeros(parts.shape, bool), np.ones(3))
    assert np.array_equal(parts, before)


def test_a_cut_wider_than_the_search_margin_finds_the_nearest_bone_beyond_it() -> None:
    """A cut 30 mm thick (its middle 15 mm from any bone, beyond the first search box's margin):
    each half still goes to the bone on its side."""
    parts = np.zeros((70, 8, 8), np.uint8)
    parts[:20] = PART_ID["L5"]
    parts[50:] = PART_ID["other_bone"]
    cut = np.zeros(parts.shape, bool)
    cut[20:50] = True
    parts[cut] = PART_ID["disc_other"]
    _return_cut_bone(parts, cut, np.ones(3))
    assert (parts[20:35] == PART_ID["L5"]).all()
    assert (parts[35:50] == PART_ID["other_bone"]).all()
