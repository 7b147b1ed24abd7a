"""Two bodies the labels joined through a narrow bridge: parted at its neck."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy.necks import top_body_neck
from spinect_core.volume import Volume

CORE_MM, MIN_CORE_MM3 = 7.0, 400.0


def _grid(shape) -> Volume:
    """1 mm voxels, identity direction: index (x, y, z) -> LPS (x, y, z) mm."""
    return Volume(array=np.zeros(shape, np.uint8), spacing_mm=np.array([1.0, 1.0, 1.0]),
                  origin_lps_mm=np.zeros(3), direction=np.eye(3))


def _two_bodies(bridge_radius_mm: float | None) -> np.ndarray:
    """Two 40 x 40 x 24 mm 'bodies' (z 8-32 and 38-62) with a 6 mm 'disc' between them that a
    central cylinder of bone of ``bridge_radius_mm`` crosses (None: no bridge). Shape (70, 60,
    60) (z, y, x)."""
    bone = np.zeros((70, 60, 60), bool)
    bone[8:32, 10:50, 10:50] = True
    bone[38:62, 10:50, 10:50] = True
    if bridge_radius_mm is not None:
        yy, xx = np.mgrid[0:60, 0:60]
        disc = (yy - 29.5) ** 2 + (xx - 29.5) ** 2 <= bridge_radius_mm ** 2
        bone[32:38][:, disc] = True
    return bone


def _cores(bone: np.ndarray) -> int:
    """How many cores of at least MIN_CORE_MM3 the bone has at CORE_MM (as the level count
    finds bodies)."""
    lab, n = ndi.label(ndi.distance_transform_edt(bone) >= CORE_MM, structure=np.ones((3,) * 3))
    return int(np.sum(np.bincount(lab.ravel())[1:] >= MIN_CORE_MM3))


def test_two_bodies_joined_by_a_narrow_bridge_are_parted_at_its_neck() -> None:
    """A bridge 9 mm in radius joins the two cores at 7 mm; the neck found lies in the disc,
    its cut parts the cores and leaves every other voxel of bone, and the top body is the
    upper one."""
    bone = _two_bodies(9.0)
    assert _cores(bone) == 1                                   # the level count sees one body
    neck = top_body_neck(bone, bone, _grid(bone.shape), core_mm=CORE_MM,
                         min_core_mm3=MIN_CORE_MM3)
    assert neck is not None
    zz, yy, xx = np.nonzero(neck.cut)
    assert zz.min() >= 30 and zz.max() <= 39                   # in the disc, a voxel either side
    assert np.all((yy - 29.5) ** 2 + (xx - 29.5) ** 2 <= 9.0 ** 2)
    assert neck.cut.sum() < 0.01 * bone.sum()
    assert _cores(bone & ~neck.cut) == 2
    np.testing.assert_allclose(neck.top_centre_lps, [29.5, 29.5, 49.5], atol=1.5)
    assert CORE_MM < neck.depth_mm <= CORE_MM + 5.0


def test_a_single_body_or_two_apart_have_no_neck() -> None:
    """One solid body does not part at any depth tried; two bodies the labels kept apart have
    no bridge to cut (their cores stand apart at the core depth already)."""
    solid = np.zeros((70, 60, 60), bool)
    solid[8:62, 10:50, 10:50] = True
    grid = _grid(solid.shape)
    assert top_body_neck(solid, solid, grid, core_mm=CORE_MM, min_core_mm3=MIN_CORE_MM3) is None
    apart = _two_bodies(None)
    assert top_body_neck(apart, apart, grid, core_mm=CORE_MM, min_core_mm3=MIN_CORE_MM3) is None


def test_a_bridge_as_wide_as_the_bodies_is_no_neck() -> None:
    """Bodies joined across their whole face (a disc the labels filled entirely) are one block
    at every depth tried: nothing is cut (the CT's dark band is the evidence then)."""
    bone = _two_bodies(30.0)
    assert top_body_neck(bone, bone, _grid(bone.shape), core_mm=CORE_MM,
                         min_core_mm3=MIN_CORE_MM3) is None


def test_only_the_part_given_is_searched() -> None:
    """The part restricts the search: the bridged pair outside it is left alone."""
    bone = _two_bodies(9.0)
    part = np.zeros_like(bone)
    part[:, :, :5] = True                                      # a strip with no bone
    assert top_body_neck(bone, part, _grid(bone.shape), core_mm=CORE_MM,
                         min_core_mm3=MIN_CORE_MM3) is None
