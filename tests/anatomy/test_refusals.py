"""Clear refusals when L5/S1 is not there or cannot be identified."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from spinect_core.anatomy import identify_lumbosacral
from spinect_core.errors import AnatomyError, InputError
from spinect_core.labels import DEFAULT_LABELS, STUDY_LABELS, LabelTable
from spinect_core.volume import Volume


def _load(path) -> Volume:
    import SimpleITK as sitk

    return Volume.from_sitk(sitk.ReadImage(str(path)))


def test_refuses_a_volume_without_bone():
    arr = np.zeros((20, 30, 30), np.uint8)
    arr[5:10, 5:10, 5:10] = 2                      # some nerve, no bone
    labels = Volume(array=arr, spacing_mm=(1.0, 1.0, 1.0), origin_lps_mm=(0, 0, 0))
    with pytest.raises(AnatomyError, match="no bone"):
        identify_lumbosacral(labels, DEFAULT_LABELS)


def test_refuses_instances_without_l5(phantom):
    # A TotalSegmentator-like instance table that stops at L4.
    arr = np.where(phantom.instances.array == phantom.instance_table.id_of("L4"), 1, 0)
    table = LabelTable({0: "background", 1: "vertebrae_L4"})
    with pytest.raises(AnatomyError, match="L5"):
        identify_lumbosacral(phantom.labels, phantom.label_table,
                             instances=phantom.instances.with_array(arr.astype(np.uint8)),
                             instance_table=table)


def test_instances_need_their_table(phantom):
    with pytest.raises(InputError):
        identify_lumbosacral(phantom.labels, phantom.label_table, instances=phantom.instances)


def test_refuses_the_real_chest_ct(shared_data):
    """C5-L3 chest CT (automatic 118-class labels): no L5, no sacrum."""
    folder = shared_data / "real_ct_chest"
    rows = list(csv.DictReader(open(folder / "structures.csv", encoding="utf-8")))
    bone_ids = [int(r["id"]) for r in rows if r["group"] in ("vertebrae", "ribs", "skeleton")
                and r["structure"] != "costal_cartilages"]
    vol = _load(folder / "labels.nii.gz")
    bone = np.isin(vol.array, bone_ids).astype(np.uint8)
    assert bone.sum() > 100_000
    with pytest.raises(AnatomyError, match="L5/S1 is not in the field of view"):
        identify_lumbosacral(vol.with_array(bone), STUDY_LABELS)


def test_refuses_the_verse_t9_l5_mask(shared_data):
    """Real manual vertebra mask T9-L5 (PIR orientation, 1 x 1 x 2 mm): no sacrum."""
    vol = _load(shared_data / "verse_vertebra_mask" / "sub-verse004_seg-vert_msk.nii.gz")
    assert set(np.unique(vol.array).astype(int)) == {0, *range(16, 25)}
    bone = (vol.array > 0).astype(np.uint8)
    with pytest.raises(AnatomyError, match="no sacrum"):
        identify_lumbosacral(vol.with_array(bone), STUDY_LABELS)
