"""The real-CT converter: bone -> 1, spine surroundings -> 255, the rest -> 0, slab geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io import load_ct, write_image
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.training import (
    UNLABELLED, BoneOnlyOptions, axial_slab, bone_mask_reference, bone_only_case,
    discover_cases, load_cases,
)
from spinect_core.training.real_ct import slab_slices
from spinect_core.volume import Volume

SPACING = (0.7, 0.7, 2.5)  # x, y, z mm, as the real chest CT
SHAPE = (20, 40, 40)  # z, y, x
VERT_BOX = (slice(8, 10), slice(18, 22), slice(18, 22))  # z, y, x voxel box of "vertebrae_T1"
STRUCTURES = """group,original_idx,structure,id
vertebrae,1,vertebrae_T1,1
ribs,1,rib_left_1,2
ribs,26,costal_cartilages,3
organs,10,lung_upper_lobe_left,4
muscles,11,spinal_cord,5
skeleton,1,humerus_left,6
"""


def _write_inputs(tmp_path, *, direction=np.eye(3)):
    labels = np.zeros(SHAPE, np.uint8)
    labels[:, 30:36, 5:30] = 4  # lung, partly within the margin of the vertebra
    labels[VERT_BOX] = 1
    labels[9, 20, 24] = 5  # cord voxel beside the vertebra (within 20 mm)
    labels[:, 2:4, 2:6] = 2  # rib, far from the vertebra
    labels[9, 16:18, 22:26] = 2  # rib head touching the vertebra: bone wins over the margin
    labels[:, 36:38, 30:34] = 3  # costal cartilage, > 5 mm from the vertebra
    labels[0:2, 0:2, 36:40] = 6  # humerus
    ct = np.where(labels == 0, -100, 60).astype(np.int16)
    ct[np.isin(labels, [1, 2, 6])] = 700
    vol = Volume(array=ct, spacing_mm=SPACING, origin_lps_mm=(-10.0, 20.0, -300.0),
                 direction=direction)
    write_image(vol, tmp_path / "ct.nii.gz")
    write_image(vol.with_array(labels), tmp_path / "labels.nii.gz")
    (tmp_path / "structures.csv").write_text(STRUCTURES)
    return vol, labels


def _distance_to_box_mm() -> np.ndarray:
    """Exact Euclidean distance (mm) of every voxel centre to the vertebra box (0 inside)."""
    grids = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    d2 = np.zeros(SHAPE)
    for g, box, s in zip(grids, VERT_BOX, SPACING[::-1]):
        gap = np.maximum(np.maximum(box.start - g, g - (box.stop - 1)), 0) * s
        d2 += gap ** 2
    return np.sqrt(d2)


def _convert(tmp_path, **opts):
    return bone_only_case(tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz",
                          tmp_path / "structures.csv", tmp_path / "out",
                          options=BoneOnlyOptions(**opts))


def _read(path):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("margin", [5.0, 20.0])
def test_mapping_and_anisotropic_margin(tmp_path, margin):
    _, src = _write_inputs(tmp_path)
    out = _convert(tmp_path, unlabelled_margin_mm=margin)
    lab = _read(out.labels)
    bone = np.isin(src, [1, 2, 6])
    near = _distance_to_box_mm() <= margin
    expected = np.zeros(SHAPE, np.uint8)
    expected[near | (src == 3)] = UNLABELLED
    expected[bone] = 1
    np.testing.assert_array_equal(lab, expected)
    # the margin really is in millimetres on the 0.7 x 0.7 x 2.5 grid, not in voxels:
    # 7 in-plane voxels (4.9 mm) are near at 5 mm, 3 slices (7.5 mm) are not
    if margin == 5.0:
        assert lab[9, 20, 21 + 7] == UNLABELLED and lab[9, 20, 21 + 8] == 0
        assert lab[9 + 2, 20, 20] == UNLABELLED and lab[9 + 3, 20, 20] == 0
    assert lab[9, 20, 24] == UNLABELLED  # the cord beside the vertebra
    assert (lab[9, 16:18, 22:26] == 1).all()  # rib head inside the margin stays bone
    assert (lab[:, 36:38, 30:34] == UNLABELLED).all()  # cartilage: excluded everywhere
    assert out.voxels == {"background": int((expected == 0).sum()), "bone": int(bone.sum()),
                          "unlabelled": int((expected == UNLABELLED).sum())}
    sidecar = json.loads(out.label_table.read_text())
    assert sidecar["labels"] == DEFAULT_LABELS.to_json()["labels"]
    prov = json.loads(out.provenance.read_text())
    assert prov["structures"]["bone"] == ["humerus_left", "rib_left_1", "vertebrae_T1"]
    assert prov["structures"]["unlabelled"] == ["costal_cartilages"]
    # the case loads as training data, 255 intact, with the 5-class table
    (case,) = load_cases(discover_cases(tmp_path / "out"))
    assert case.table == DEFAULT_LABELS
    np.testing.assert_array_equal(case.labels.array, expected)


def test_costal_cartilage_can_be_background(tmp_path):
    _, src = _write_inputs(tmp_path)
    out = _convert(tmp_path, unlabelled_structures=(), unlabelled_margin_mm=5.0)
    assert (_read(out.labels)[src == 3] == 0).all()


@pytest.mark.parametrize("superior_sign", [1.0, -1.0])
def test_slab_geometry_and_held_out_reference(tmp_path, superior_sign):
    direction = np.diag([1.0, 1.0, superior_sign])
    vol, src = _write_inputs(tmp_path, direction=direction)
    out = _convert(tmp_path, z_range=(0.0, 0.5))
    n = SHAPE[0]
    # the top (most superior) half: the last 10 slices when z grows superiorly, else the first
    start = n // 2 if superior_sign > 0 else 0
    assert out.slab == (0, start, start + n // 2)
    ct = load_ct(out.ct)
    assert ct.shape_zyx == (n // 2, SHAPE[1], SHAPE[2])
    np.testing.assert_allclose(ct.spacing_mm, SPACING, atol=1e-5)
    np.testing.assert_allclose(ct.direction, direction, atol=1e-6)
    expected_origin = np.array([-10.0, 20.0, -300.0 + superior_sign * 2.5 * start])
    np.testing.assert_allclose(ct.origin_lps_mm, expected_origin, atol=1e-3)
    np.testing.assert_array_equal(ct.array, vol.array[start:start + n // 2])
    # every voxel keeps its world position
    np.testing.assert_allclose(ct.index_to_lps([3, 4, 5]), vol.index_to_lps([3, 4, 5 + start]),
                               atol=1e-3)
    # the held-out half's reference bone mask, and the two halves tile the scan
    lower = bone_mask_reference(tmp_path / "labels.nii.gz", tmp_path / "structures.csv",
                                z_range=(0.5, 1.0))
    upper = bone_mask_reference(tmp_path / "labels.nii.gz", tmp_path / "structures.csv",
                                z_range=(0.0, 0.5))
    full = np.isin(src, [1, 2, 6])
    parts = [upper, lower] if superior_sign < 0 else [lower, upper]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    np.testing.assert_array_equal(upper, _read(out.labels) == 1)


def test_complementary_slabs_partition_the_slices():
    for n in (20, 133, 7):
        vol = Volume(array=np.zeros((n, 2, 2), np.int16), spacing_mm=(1, 1, 2.5),
                     origin_lps_mm=(0, 0, 0))
        top = axial_slab(vol, (0.0, 0.67))
        rest = axial_slab(vol, (0.67, 1.0))
        assert top.shape_zyx[0] + rest.shape_zyx[0] == n
        # the rest ends where the top slab begins (z grows superiorly here)
        assert rest.origin_lps_mm[2] == 0.0
        assert top.origin_lps_mm[2] == pytest.approx(2.5 * rest.shape_zyx[0])
        zs = slab_slices(n, (0.0, 0.67), ct=vol)
        np.testing.assert_array_equal(vol.array[zs], top.array)
        flipped = Volume(array=vol.array, spacing_mm=(1, 1, 2.5), origin_lps_mm=(0, 0, 0),
                         direction=np.diag([1.0, 1.0, -1.0]))
        assert slab_slices(n, (0.0, 0.67), ct=flipped) == slice(0, top.shape_zyx[0])


def test_errors(tmp_path):
    _write_inputs(tmp_path)
    with pytest.raises(ValueError, match="z_range"):
        BoneOnlyOptions(z_range=(0.5, 0.5))
    with pytest.raises(ValueError, match="unlabelled_margin_mm"):
        BoneOnlyOptions(unlabelled_margin_mm=-1)
    with pytest.raises(InputError, match="keeps no slice"):
        _convert(tmp_path, z_range=(0.0, 0.01))
    _convert(tmp_path)
    with pytest.raises(FileExistsRefusedError):
        _convert(tmp_path)
    _convert(tmp_path, overwrite=True)
    # a label id the structure list does not name: wrong list, refused
    renumbered = STRUCTURES.replace("humerus_left,6", "humerus_left,16")
    (tmp_path / "structures.csv").write_text(renumbered)
    with pytest.raises(InputError, match=r"\[6\]"):
        _convert(tmp_path, overwrite=True)
    (tmp_path / "structures.csv").write_text("name,value\nx,1\n")
    with pytest.raises(InputError, match="columns"):
        _convert(tmp_path, overwrite=True)


def test_real_chest_ct(shared_data, tmp_path):
    src = shared_data / "real_ct_chest"
    if not (src / "ct.nii.gz").is_file():
        pytest.skip(f"{src} is absent")
    out = bone_only_case(src / "ct.nii.gz", src / "labels.nii.gz", src / "structures.csv",
                         tmp_path, options=BoneOnlyOptions(z_range=(0.0, 0.67)))
    (case,) = load_cases(discover_cases(tmp_path))
    assert case.case_id == "real_ct_chest" and case.table == DEFAULT_LABELS
    values = set(np.unique(case.labels.array).tolist())
    assert values == {0, 1, UNLABELLED}
    # the slab is the cranial 67 %: this scan's z index grows superiorly, so its last slices
    full = load_ct(src / "ct.nii.gz")
    n = full.shape_zyx[0]
    kept = int(np.floor(0.67 * n + 0.5))
    assert out.slab == (0, n - kept, n)
    assert case.ct.shape_zyx == (kept, *full.shape_zyx[1:])
    np.testing.assert_allclose(case.ct.origin_lps_mm, full.index_to_lps([0, 0, n - kept]),
                               atol=1e-3)
    np.testing.assert_allclose(case.ct.spacing_mm, full.spacing_mm, atol=1e-5)
    np.testing.assert_array_equal(case.ct.array, full.array[n - kept:])
    # bone in the case is the reference bone mask of the same slab
    ref = bone_mask_reference(src / "labels.nii.gz", src / "structures.csv", z_range=(0.0, 0.67))
    np.testing.assert_array_equal(case.labels.array == 1, ref)
    held_out = bone_mask_reference(src / "labels.nii.gz", src / "structures.csv",
                                   z_range=(0.67, 1.0))
    assert held_out.shape[0] == n - kept and held_out.any()
    # the canal is unlabelled: the spinal cord's voxels in the slab are all 255
    import SimpleITK as sitk

    full_labels = sitk.GetArrayFromImage(sitk.ReadImage(str(src / "labels.nii.gz")))[n - kept:]
    cord = full_labels == 79  # spinal_cord in structures.csv
    assert cord.any() and (case.labels.array[cord] == UNLABELLED).all()
