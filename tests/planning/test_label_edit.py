"""The brush and eraser on a label map (spinect_core.planning.label_edit).

Small synthetic label maps (a 40 x 48 x 56 grid, a bone block and a nerve rod) with voxel counts
known by construction; no phantom.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.label_edit import LabelEditor, summary_from_dict
from spinect_core.volume import Volume

BONE, NERVE = DEFAULT_LABELS.id_of("bone"), DEFAULT_LABELS.id_of("nerve")


def _labels(spacing=(1.0, 1.0, 1.0), direction=None) -> Volume:
    a = np.zeros((40, 48, 56), np.uint8)
    a[10:30, 10:30, 10:30] = BONE       # a bone block
    a[15:25, 20:22, 34:40] = NERVE      # a nerve rod beside it
    return Volume(array=a, spacing_mm=spacing, origin_lps_mm=(-20.0, 5.0, 100.0),
                  direction=np.eye(3) if direction is None else direction)


def _at(vol: Volume, x: float, y: float, z: float) -> np.ndarray:
    """LPS of the continuous index (x, y, z)."""
    return vol.index_to_lps(np.array([x, y, z], float))


def _disc_count(radius_mm: float, ry: float = 1.0, rx: float = 1.0) -> int:
    """Voxel centres within the radius (mm) of a voxel centre on a grid of (ry, rx) mm pixels."""
    n = int(np.ceil(radius_mm / min(ry, rx))) + 2
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    return int(np.count_nonzero((yy * ry) ** 2 + (xx * rx) ** 2 <= radius_mm ** 2))


def test_brush_paints_a_disc_of_known_size_in_one_slice() -> None:
    vol = _labels(spacing=(0.5, 0.8, 2.0))
    ed = LabelEditor(vol, DEFAULT_LABELS)
    centre = _at(vol, 45.0, 40.0, 5.0)  # in background, away from bone and nerve
    n = ed.paint(centre, 3.0, "nerve", plane="axial")
    assert n == _disc_count(3.0, ry=0.8, rx=0.5)
    changed = np.argwhere(ed.volume.array != vol.array)
    assert set(changed[:, 0]) == {5}  # the axial slice through the centre only
    assert ed.counts() == {"nerve": {"added": n, "removed": 0, "changed": n}}
    assert np.array_equal(vol.array, _labels(spacing=(0.5, 0.8, 2.0)).array)  # input untouched
    # The same disc in the coronal plane lies in one y slice, round in mm (x 0.5, z 2 mm).
    m = ed.paint(_at(vol, 45.0, 10.0, 30.0), 3.0, "nerve", plane="coronal")
    assert m == _disc_count(3.0, ry=2.0, rx=0.5)
    assert ed.summary().get("nerve").changed == n + m


def test_eraser_removes_only_the_chosen_class() -> None:
    vol = _labels()
    ed = LabelEditor(vol, DEFAULT_LABELS)
    # A disc of radius 6 around the nerve rod's slice overlaps the bone block too.
    centre = _at(vol, 32.0, 20.0, 20.0)
    before_bone = int(np.count_nonzero(ed.volume.array == BONE))
    erased = ed.erase(centre, 6.0, "nerve", plane="axial")
    expected = int(np.count_nonzero(vol.array[20][
        (np.mgrid[0:48, 0:56][0] - 20.0) ** 2 + (np.mgrid[0:48, 0:56][1] - 32.0) ** 2 <= 36.0]
        == NERVE))
    assert erased == expected > 0
    assert np.count_nonzero(ed.volume.array == BONE) == before_bone  # no bone lost
    assert ed.edited() == ("nerve",)
    assert ed.counts()["nerve"] == {"added": 0, "removed": erased, "changed": erased}
    # Erasing nerve where there is none changes nothing and adds no undo step.
    assert ed.erase(_at(vol, 5.0, 5.0, 5.0), 3.0, "nerve") == 0
    ed.undo()
    assert np.array_equal(ed.volume.array, vol.array) and not ed.can_undo


def test_brush_without_overwrite_keeps_other_classes() -> None:
    vol = _labels()
    ed = LabelEditor(vol, DEFAULT_LABELS)
    centre = _at(vol, 30.0, 20.0, 20.0)  # on the bone block's edge (x = 29 is its last column)
    n = ed.paint(centre, 4.0, "nerve", plane="axial", overwrite=False)
    ed.undo()
    full = ed.paint(centre, 4.0, "nerve", plane="axial")
    assert 0 < n < full  # without overwrite the bone half of the disc stays bone
    # The full brush changed the disc's background (as before) and its bone.
    assert ed.counts()["bone"]["removed"] == full - n


def test_stroke_is_one_step_and_undo_redo_are_exact() -> None:
    vol = _labels()
    ed = LabelEditor(vol, DEFAULT_LABELS)
    snapshots = [ed.volume.array.copy()]
    ed.paint(_at(vol, 40.0, 40.0, 20.0), 2.0, "bone")
    snapshots.append(ed.volume.array.copy())
    with ed.stroke():
        for i in range(8):  # overlapping dabs along x, over bone, nerve and background
            ed.paint(_at(vol, 26.0 + 1.5 * i, 21.0, 18.0), 2.5, "nerve", plane="axial")
        ed.erase(_at(vol, 31.0, 21.0, 18.0), 1.0, "nerve")  # and part of it erased again
    snapshots.append(ed.volume.array.copy())
    ed.paint(_at(vol, 20.0, 20.0, 20.0), 3.0, "bone", mode="erase", plane="sagittal")
    snapshots.append(ed.volume.array.copy())
    assert len({s.tobytes() for s in snapshots}) == 4
    counts = [ed.counts()]
    for expected in snapshots[-2::-1]:
        assert ed.undo()
        assert np.array_equal(ed.volume.array, expected)
    assert not ed.undo() and ed.counts() == {} and ed.edited() == ()
    for expected in snapshots[1:]:
        assert ed.redo()
        assert np.array_equal(ed.volume.array, expected)
    assert ed.counts() == counts[0]
    # The counts equal a full comparison with the original.
    for name in ("bone", "nerve"):
        i = DEFAULT_LABELS.id_of(name)
        now, was = ed.volume.array == i, vol.array == i
        assert ed.counts()[name]["added"] == np.count_nonzero(now & ~was)
        assert ed.counts()[name]["removed"] == np.count_nonzero(was & ~now)
    # A new edit after an undo drops the redo branch.
    ed.undo()
    ed.paint(_at(vol, 5.0, 5.0, 5.0), 1.0, "bone")
    assert not ed.can_redo


def test_summary_says_where_and_how_much() -> None:
    vol = _labels(spacing=(1.0, 1.0, 2.0))
    ed = LabelEditor(vol, DEFAULT_LABELS)
    centre = _at(vol, 45.0, 40.0, 5.0)
    n = ed.paint(centre, 2.0, "bone")
    s = ed.summary()
    bone = s.get("bone")
    assert bone.added == n and bone.removed == 0
    assert bone.changed_ml == pytest.approx(n * 2.0 / 1000.0)
    assert np.allclose(bone.centroid_lps_mm, centre, atol=1e-6)  # a symmetric disc
    assert np.allclose(bone.bbox_lps_mm[0], centre - [2.0, 2.0, 0.0])
    assert s.lines()[0].startswith(f"bone edited by the operator: {n} voxels (")
    assert "around LPS (25.0, 45.0, 110.0) mm" in s.lines()[0]
    again = summary_from_dict(s.to_dict())
    assert again.lines() == s.lines()


def test_small_radius_oblique_plane_and_edges() -> None:
    vol = _labels()
    ed = LabelEditor(vol, DEFAULT_LABELS)
    # A radius below half a voxel still paints the voxel under the centre.
    assert ed.paint(_at(vol, 45.2, 40.1, 5.3), 0.1, "nerve") == 1
    assert ed.volume.array[5, 40, 45] == NERVE
    # A disc at the edge of the grid is clipped; a centre outside paints nothing.
    assert 0 < ed.paint(_at(vol, 0.0, 0.0, 0.0), 3.0, "bone") < _disc_count(3.0)
    assert ed.paint(_at(vol, -10.0, 0.0, 0.0), 3.0, "bone") == 0
    # An oblique plane paints a thin slab: every voxel within half a voxel of it.
    n = np.array([1.0, 0.0, 1.0]) / np.sqrt(2.0)
    c = _at(vol, 45.0, 24.0, 20.0)
    before = ed.volume.array.copy()
    assert ed.paint(c, 4.0, "nerve", plane=n) > 0
    new = np.argwhere(ed.volume.array != before)
    pts = vol.index_to_lps(new[:, ::-1].astype(float)) - c
    along = pts @ n
    assert np.abs(along).max() <= 0.5 * np.sqrt(2.0) + 1e-9
    assert np.linalg.norm(pts - along[:, None] * n, axis=1).max() <= 4.0 + 1e-9


def test_refusals_and_replace_all() -> None:
    vol = _labels()
    ed = LabelEditor(vol, DEFAULT_LABELS)
    c = _at(vol, 40.0, 40.0, 5.0)
    for bad, match in ((dict(label="disc"), "cannot be edited"),
                       (dict(label="cartilage"), "no class"),
                       (dict(radius_mm=0.0), "radius"), (dict(radius_mm=80.0), "radius"),
                       (dict(mode="fill"), "mode"), (dict(plane="oblique"), "plane"),
                       (dict(plane=(0.0, 0.0, 0.0)), "normal")):
        args = dict(label="bone", radius_mm=2.0) | bad
        label, radius = args.pop("label"), args.pop("radius_mm")
        with pytest.raises(InputError, match=match):
            ed.paint(c, radius, label, **args)
    with pytest.raises(InputError, match="centre"):
        ed.paint([np.nan, 0, 0], 2.0, "bone")
    # A saved edited map applied in one step (reopening a session).
    edited = vol.array.copy()
    edited[0:3, 0:4, 0:5] = NERVE
    assert ed.replace_all(edited) == 60
    assert ed.counts() == {"nerve": {"added": 60, "removed": 0, "changed": 60}}
    ed.undo()
    assert np.array_equal(ed.volume.array, vol.array)
    with pytest.raises(InputError, match="not the same grid"):
        ed.replace_all(edited[1:])
    with pytest.raises(InputError, match="does not name"):
        ed.replace_all(np.full_like(edited, 9))


def test_named_planes_on_a_real_ct_in_pir_orientation(shared_data) -> None:
    """The real lumbar crop's grid is PIR (no index axis is S first): "axial" still paints one
    axial plane (one S coordinate), "coronal" one P and "sagittal" one L coordinate."""
    from spinect_core.io.labelmap import read_label_image

    path = shared_data / "real_ct_lumbar_crop" / "vertebrae.nii.gz"
    if not path.exists():
        pytest.skip("real_ct_lumbar_crop is not in the shared data")
    vertebrae = read_label_image(path)
    labels = vertebrae.with_array((vertebrae.array > 0).astype(np.uint8) * BONE)
    ed = LabelEditor(labels, DEFAULT_LABELS)
    bone = np.argwhere(labels.array == BONE)
    centre = labels.index_to_lps(bone[len(bone) // 2][::-1].astype(float))
    for plane, flat in (("axial", 2), ("coronal", 1), ("sagittal", 0)):
        before = ed.volume.array.copy()
        assert ed.erase(centre, 6.0, "bone", plane=plane) > 10
        pts = labels.index_to_lps(np.argwhere(ed.volume.array != before)[:, ::-1].astype(float))
        spread = np.ptp(pts, axis=0)
        assert spread[flat] < 1e-6 and np.all(np.delete(spread, flat) > 3.0)
        assert np.all(np.linalg.norm(np.delete(pts - centre, flat, axis=1), axis=1) <= 6.0)
