"""The planner's bone surface at the CT's half-maximum (PlanOptions.bone_surface)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy.parts import PART_ID
from spinect_core.planning.plan import PlanOptions, moves_bone_surface, peel_partial_volume_rim
from spinect_core.volume import Volume


def _scene(*, ct_edge: bool = True):
    """A 30 mm L5 block and a 30 mm S1 block in soft tissue (40 HU) at 1 mm, cortex 1000 HU;
    the parts map's bone one voxel wider all round (a label map with the partial-volume rim).
    Returns the anatomy stand-in, the CT and the true bone."""
    shape = (80, 60, 60)
    zz, yy, xx = np.indices(shape)
    l5 = (zz >= 44) & (zz < 74) & (np.abs(yy - 30) < 15) & (np.abs(xx - 30) < 15)
    s1 = (zz >= 6) & (zz < 36) & (np.abs(yy - 30) < 15) & (np.abs(xx - 30) < 15)
    hu = np.full(shape, 40.0)
    if ct_edge:
        hu[l5 | s1] = 1000.0
        hu = ndi.gaussian_filter(hu, 0.5)
    parts = np.zeros(shape, np.uint8)
    parts[ndi.binary_dilation(l5)] = PART_ID["L5"]
    parts[ndi.binary_dilation(s1)] = PART_ID["S1"]
    geometry = dict(spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3), direction=np.eye(3))
    anatomy = SimpleNamespace(parts=Volume(array=parts, **geometry))
    return anatomy, Volume(array=hu.astype(np.int16), **geometry), l5 | s1


def test_the_rim_a_voxel_wider_than_the_bone_is_peeled_and_the_bone_kept():
    anatomy, ct, bone = _scene()
    rim = (anatomy.parts.array > 0) & ~bone
    peeled = peel_partial_volume_rim(anatomy, ct)
    left = anatomy.parts.array > 0
    assert peeled == np.count_nonzero(rim)
    assert np.array_equal(left, bone)                     # the true bone, to the voxel
    # Once on the surface, nothing more goes.
    assert peel_partial_volume_rim(anatomy, ct) == 0


def test_nothing_is_peeled_where_the_ct_shows_no_bone_edge():
    anatomy, ct, _ = _scene(ct_edge=False)
    before = anatomy.parts.array.copy()
    assert peel_partial_volume_rim(anatomy, ct) == 0
    assert np.array_equal(anatomy.parts.array, before)


def test_the_planner_moves_the_surface_by_default():
    assert PlanOptions().bone_surface == "ct_half_maximum"
    assert moves_bone_surface(PlanOptions(), (0.8, 0.8, 1.0))
    assert not moves_bone_surface(PlanOptions(bone_surface="labels"), (0.8, 0.8, 1.0))


def test_a_coarse_cts_bone_keeps_its_labelled_surface():
    """A 3 mm voxel is more than the rim: peeling one took the thin edges of laminae on a real
    3 mm CT, and the windows looked through the gaps (a "Kambin window" through the canal whose
    needle crossed 9 mm of lamina). Such a CT's bone keeps the label map's surface."""
    assert not moves_bone_surface(PlanOptions(), (0.7, 0.7, 3.0))
    assert not moves_bone_surface(PlanOptions(), (3.0, 3.0, 3.0))
    assert moves_bone_surface(PlanOptions(), (1.5, 1.5, 1.5))
    # plan.json says which surface the windows were measured on.
    from spinect_core.planning.plan import Plan

    def said(spacing):
        plan = Plan(sides={}, ct_geometry={"spacing_mm": list(spacing)}, segmentation_source="",
                    anatomy={})
        return plan.to_dict()["view_search"]["bone_surface"]

    assert said((3.0, 3.0, 3.0)) == "labels"
    assert said((0.8, 0.8, 1.0)) == "ct_half_maximum"


def _window(kind: str, area: float | None, usable: float | None = None) -> SimpleNamespace:
    """A WindowPlan's fields that the choice of the needle's window and the warnings read."""
    return SimpleNamespace(kind=kind, found=area is not None,
                           usable_area_mm2=usable if usable is not None else area,
                           window=SimpleNamespace(area_mm2=area),
                           best_view=None if area is None else SimpleNamespace(area_mm2=area))


def test_an_implausibly_large_safe_window_is_not_the_needles_choice():
    """TotalSegmentator's real 3 mm CT cropped below L2: the left needle went through a 44 mm^2
    safe window (warned of as implausible) past a 14 mm^2 Kambin one. "auto" takes the larger
    usable area among plausible windows, the implausible one only when it is alone; an
    explicit choice is kept."""
    from spinect_core.planning.plan import needle_window

    kambin, wrong, plausible = _window("kambin", 14.3), _window("safe", 44.5), \
        _window("safe", 18.0)
    assert needle_window(kambin, wrong, "auto") is kambin
    assert needle_window(kambin, plausible, "auto") is plausible
    assert needle_window(_window("kambin", None), wrong, "auto") is wrong
    assert needle_window(kambin, wrong, "safe") is wrong
    assert needle_window(_window("kambin", None), _window("safe", None), "auto") is None


def test_an_implausibly_large_safe_window_is_warned_of():
    """A safe window far above the published ones (a real 3 mm CT cropped below L2: 109 and 143
    mm^2, the roots not found) is said to be bounded wrongly; a plausible one, a missing one
    and the Kambin window are not."""
    from spinect_core.planning.plan import SAFE_AREA_IMPLAUSIBLE_MM2, window_area_warnings

    def side(safe_mm2: float | None, kambin_mm2: float = 150.0) -> SimpleNamespace:
        return SimpleNamespace(safe=_window("safe", safe_mm2),
                               kambin=_window("kambin", kambin_mm2))

    warned = window_area_warnings({"left": side(143.0), "right": side(12.0)})
    assert len(warned) == 1 and warned[0].startswith("the left safe window's best area, 143")
    assert "review" in warned[0]
    assert window_area_warnings({"left": side(None), "right": side(SAFE_AREA_IMPLAUSIBLE_MM2)}) == []
