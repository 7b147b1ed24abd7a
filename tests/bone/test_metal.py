"""Metal in a CT (:mod:`spinect_core.bone.metal`) and its warning in the plan."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.bone.metal import MetalOptions, find_metal
from spinect_core.volume import Volume


def _torso(*, screw_at_x: float | None, bone_hu: float = 1900.0) -> Volume:
    """Soft tissue (40 HU) at 1 x 1 x 2 mm (x, y, z), LPS origin (-40, -30, 0): a dense cortical
    block (``bone_hu``) and, optionally, a screw (3000 HU, radius 3 mm, 40 mm along y) whose axis
    lies at LPS x = ``screw_at_x``, z = 20."""
    shape = (20, 60, 80)                                      # z, y, x
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(float)
    x, y, z = xx - 40.0, yy - 30.0, 2.0 * zz                  # LPS mm (identity direction)
    hu = np.full(shape, 40.0)
    hu[(np.abs(x) < 8) & (np.abs(y) < 8) & (np.abs(z - 20) < 6)] = bone_hu
    if screw_at_x is not None:
        hu[((x - screw_at_x) ** 2 + (z - 20) ** 2 <= 9.0) & (np.abs(y) <= 20)] = 3000.0
    return Volume(array=hu.astype(np.int16), spacing_mm=np.array([1.0, 1.0, 2.0]),
                  origin_lps_mm=np.array([-40.0, -30.0, 0.0]), direction=np.eye(3))


def test_a_screw_near_the_point_is_found_and_warned_of() -> None:
    ct = _torso(screw_at_x=25.0)
    report = find_metal(ct, point_lps_mm=[0.0, 0.0, 20.0], point_name="the L5/S1 disc centre")
    assert len(report.pieces) == 1                            # the 1900 HU bone is not metal
    piece = report.pieces[0]
    # 41 rows of y; the cross-section's voxels within 3 mm of the axis (x every 1 mm, z every
    # 2 mm): 7 at z = 20 and 5 at z = 18 and 22.
    assert piece.volume_ml == pytest.approx(41 * 17 * 2.0 / 1000.0)
    np.testing.assert_allclose(piece.centroid_lps_mm, [25.0, 0.0, 20.0], atol=1e-9)
    assert piece.distance_mm == pytest.approx(22.0)           # its nearest voxel, x = 22
    assert report.near == (piece,)
    assert "22 mm from the L5/S1 disc centre" in report.warning
    doc = report.to_dict()
    assert doc["near"] is True and doc["coordinate_system"] == "LPS"
    assert doc["pieces"][0]["distance_mm"] == 22.0


def test_metal_beyond_the_near_distance_is_listed_without_a_warning() -> None:
    ct = _torso(screw_at_x=34.0)                              # a hip implant, say: 31 mm away
    report = find_metal(ct, point_lps_mm=[0.0, 0.0, 20.0],
                        options=MetalOptions(near_mm=30.0))
    assert len(report.pieces) == 1 and report.pieces[0].distance_mm == pytest.approx(31.0)
    assert report.near == () and report.warning == ""
    assert report.to_dict()["near"] is False


def test_no_metal_and_stray_voxels() -> None:
    assert find_metal(_torso(screw_at_x=None), point_lps_mm=[0, 0, 20]).pieces == ()
    ct = _torso(screw_at_x=None)
    arr = ct.array.copy()
    arr[3, 10, 10] = 3000                                     # one voxel: 0.002 ml
    report = find_metal(ct.with_array(arr))
    assert report.pieces == () and report.warning == ""
    kept = find_metal(ct.with_array(arr), options=MetalOptions(min_ml=0.001))
    assert len(kept.pieces) == 1 and kept.pieces[0].distance_mm is None


def test_the_plan_warns_of_pedicle_screws_at_l5_s1() -> None:
    """A patient-like phantom with pedicle screws at L5-S1: the plan's warnings and its
    ``metal`` block say so; the same patient without screws has no metal warning."""
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.phantom import generate_phantom
    from spinect_core.phantom.params import PhantomOptions
    from spinect_core.planning.plan import PlanEngine, PlanOptions

    def engine(screws: str) -> PlanEngine:
        ph = generate_phantom(seed=7, spacing_mm=(3.0, 3.0, 3.0), options=PhantomOptions(
            realism="patient", patient_overrides={"screws": screws, "hip_prosthesis": "none"}))
        return PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, instances=ph.instances,
                          instance_table=ph.instance_table, options=PlanOptions(sides=("left",)))

    with_screws = engine("L5-S1")
    metal = with_screws.metal
    assert metal.near and metal.near[0].distance_mm < 50.0
    assert metal.warning in with_screws.plan_warnings()
    assert not any("metal" in w for w in engine("none").plan_warnings())
