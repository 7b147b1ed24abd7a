"""Level identification on the phantom and on real label maps: the evidence for L5/S1, refusals
that name what is missing and where the scan ends (issue 11 item 3, issue 16 case 1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spinect_core.anatomy import identify_lumbosacral
from spinect_core.anatomy.counting import instance_levels, require_l5_s1
from spinect_core.anatomy.levels import derive_parts
from spinect_core.errors import AnatomyError
from spinect_core.labels import STUDY_LABELS
from spinect_core.volume import Volume

from .conftest import landmarks


def _load(path) -> Volume:
    import SimpleITK as sitk

    return Volume.from_sitk(sitk.ReadImage(str(path)))


def _crop_below(vol: Volume, z_lps: float) -> Volume:
    """Drop the slices under LPS z (a field of view ending there); the phantom's grid is axial
    with z growing with the slice index."""
    assert np.allclose(vol.direction, np.eye(3))
    zs = vol.origin_lps_mm[2] + vol.spacing_mm[2] * np.arange(vol.array.shape[0])
    k = int(np.argmax(zs >= z_lps))
    return dataclasses.replace(vol, array=vol.array[k:].copy(),
                               origin_lps_mm=vol.index_to_lps(np.array([0.0, 0.0, k])))


def test_phantom_levels_counted_from_the_sacrum(phantom):
    d = derive_parts(phantom.labels, phantom.label_table)
    ev = d.evidence
    assert ev.sacrum_found and ev.s1_endplate_found and set(ev.ilia_sides) == {"left", "right"}
    assert ev.levels == ("L4", "L5", "S1") and ev.counted_from == "sacrum"
    assert not ev.ribs_found and ev.confidence == "moderate"       # no rib cross-check
    assert ev.sacrum_depth_mm > 45.0
    lm = landmarks(phantom)
    # The L5 found is the phantom's L5: its centre lies between the L4/L5 and L5/S1 discs.
    z = d.l5_centre_lps[2]
    assert lm["l5s1_disc_centre"][2] < z < lm["l4l5_disc_centre"][2]


@pytest.mark.parametrize("below_mm", [3.0, 10.0])
def test_phantom_cropped_below_the_l5s1_disc_is_refused(phantom, below_mm):
    """Issue 16 case 1: the CT ends just below the L5/S1 disc; it was planned at L4/L5."""
    cut = landmarks(phantom)["s1_superior_endplate_centre"][2] - below_mm
    labels = _crop_below(phantom.labels, cut)
    with pytest.raises(AnatomyError) as err:
        identify_lumbosacral(labels, phantom.label_table)
    msg = str(err.value)
    assert "sacrum" in msg and "L5/S1 is not in the field of view" in msg
    assert ("not shaped like a sacrum" in msg) or ("mostly outside the field of view" in msg)
    assert not err.value.evidence.sacrum_found


def test_phantom_with_the_sacrum_in_view_is_still_accepted(phantom):
    cut = landmarks(phantom)["s1_superior_endplate_centre"][2] - 40.0
    d = derive_parts(_crop_below(phantom.labels, cut), phantom.label_table)
    assert d.evidence.sacrum_found and d.evidence.levels[-2:] == ("L5", "S1")


# --- real label maps ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chest(shared_data):
    from spinect_core.training.real_ct import bone_mask_reference, read_structures

    folder = shared_data / "real_ct_chest"
    labels = _load(folder / "labels.nii.gz")
    bone = bone_mask_reference(folder / "labels.nii.gz", folder / "structures.csv")
    return labels, bone, read_structures(folder / "structures.csv")


def test_real_chest_ct_ends_at_l3_counted_from_the_ribs(chest):
    """Vertebrae C5-L3 and 12 rib pairs (automatic labels): the bone alone is counted down from
    the last rib-bearing vertebra."""
    labels, bone, structures = chest
    with pytest.raises(AnatomyError, match=r"ends at L3 \(counted down from the last rib-bearing "
                                           r"vertebra, T12\)") as err:
        derive_parts(labels.with_array(bone.astype(np.uint8)), STUDY_LABELS)
    assert "L5/S1 is not in the field of view" in str(err.value)
    ev = err.value.evidence
    assert ev.ribs_found and ev.last_rib_level == "T12" and ev.last_level == "L3"
    assert min(ev.rib_levels.values()) >= 4
    # Every body named below T5 is the vertebra the labels call so.
    name_of = {i: n for i, n in structures.items()}
    for level, centre in zip(ev.levels, ev.level_centres_lps):
        x, y, z = np.round(labels.lps_to_index(centre)).astype(int)
        assert name_of.get(int(labels.array[z, y, x])) == f"vertebrae_{level}", level
    assert ev.levels[-4:] == ("T12", "L1", "L2", "L3")


def test_real_chest_ct_instance_labels_end_at_l3(chest):
    labels, _, structures = chest
    levels = instance_levels(labels, structures)
    assert levels.levels[0] == "C5" and levels.last == "L3" and not levels.has_sacrum
    assert levels.levels[-5:] == ("T11", "T12", "L1", "L2", "L3")
    with pytest.raises(AnatomyError, match="ends at L3.*L4, L5 and the sacrum are not in"):
        require_l5_s1(levels)


def test_real_verse_mask_ends_at_l5_without_the_sacrum(shared_data):
    vol = _load(shared_data / "verse_vertebra_mask" / "sub-verse004_seg-vert_msk.nii.gz")
    levels = instance_levels(vol)                        # VerSe ids
    assert levels.levels == ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")
    assert levels.last == "L5" and not levels.has_sacrum
    with pytest.raises(AnatomyError, match=r"ends at L5.*the sacrum \(S1\) is not in the field"):
        require_l5_s1(levels)
    # The bone alone (no ribs, no sacrum): the levels cannot be counted.
    with pytest.raises(AnatomyError, match="no sacrum.*levels cannot be counted"):
        derive_parts(vol.with_array((vol.array > 0).astype(np.uint8)), STUDY_LABELS)


def test_transitional_signs_join_the_level_evidence(phantom):
    """L5 fused to the sacrum (the disc painted as bone): the sacroiliac sign is added to the
    evidence's warnings and lowers its confidence; the count's own warnings lead the list."""
    from spinect_core.anatomy.checks import transitional_warnings
    from spinect_core.anatomy.landmarks import endplates

    disc = phantom.instances.array == phantom.instance_table.id_of("disc_L5S1")
    arr = phantom.labels.array.copy()
    arr[disc] = phantom.label_table.id_of("bone")
    labels = phantom.labels.with_array(arr)
    d = derive_parts(labels, phantom.label_table)
    ev = d.evidence
    ev.confidence = "high"                       # as if the ribs had agreed
    ev.warnings.append("count warning")
    core = endplates(labels, d.parts, [])
    out = transitional_warnings(labels, d.parts, core, evidence=ev)
    assert out[0] == "count warning"
    assert any("sacroiliac" in w for w in out) and out == ev.warnings
    assert ev.confidence == "moderate" and any("transitional" in r for r in ev.reasons)
    # Without evidence the function is unchanged.
    assert transitional_warnings(labels, d.parts, core) == out[1:]


def test_no_bone_names_the_values_found():
    import numpy as np

    from spinect_core.anatomy.levels import derive_parts
    from spinect_core.errors import AnatomyError
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.volume import Volume

    a = np.zeros((10, 10, 10), np.uint8)
    a[3:7, 3:7, 3:7] = 7
    vol = Volume(array=a, spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3), direction=np.eye(3))
    with pytest.raises(AnatomyError, match=r"values found: \[0, 7\]"):
        derive_parts(vol, DEFAULT_LABELS)


def test_a_disc_found_beside_the_column_is_refused(phantom):
    """The L5/S1 disc lies on the column: one found beside it means S1's body was a piece of an
    ala (a real CT resampled to 0.7 x 0.7 x 1 mm: 25 mm to the side at "high")."""
    from spinect_core.anatomy.levels import LevelOptions, _check_disc_on_column, column_x_at

    d = derive_parts(phantom.labels, phantom.label_table)
    column_x = column_x_at(d.chain_centres_lps, d.l5_centre_lps, d.disc_centre_lps)
    assert abs(d.disc_centre_lps[0] - column_x) < 5.0
    _check_disc_on_column(d, LevelOptions())
    moved = d.disc_centre_lps.copy()
    moved[0] = column_x + 25.0
    aside = dataclasses.replace(d, disc_centre_lps=moved,
                                evidence=dataclasses.replace(d.evidence, reasons=[]))
    with pytest.raises(AnatomyError, match="25 mm to the left of the vertebral column") as info:
        _check_disc_on_column(aside, LevelOptions())
    assert info.value.evidence.confidence == "low"
    assert any("25 mm to the left" in r for r in info.value.evidence.reasons)


def test_the_column_beside_the_disc_is_the_column_at_its_level(phantom):
    """A column that leans (a patient rolled in the coronal plane, a scoliotic spine) lies far
    to the side of L5/S1 higher up: the disc is judged against the line from the body above
    L5 through L5, carried down to it, not against the bodies' median (10 degrees of roll put
    the patient-like phantoms' discs 22-27 mm beside that median, and they were refused)."""
    from spinect_core.anatomy.levels import LevelOptions, _check_disc_on_column, column_x_at

    d = derive_parts(phantom.labels, phantom.label_table)
    # Five bodies above L5, 35 mm apart, each 12 mm further left than the one below it; L5 and
    # the sacrum as found.
    l5 = d.l5_centre_lps
    lean = np.array([12.0, 0.0, 35.0])
    above = np.array([l5 + k * lean for k in range(5, 0, -1)])
    centres = np.vstack([above, l5, d.sacrum_centre_lps])
    leaning = dataclasses.replace(d, chain_centres_lps=centres,
                                  evidence=dataclasses.replace(d.evidence, reasons=[]))
    # The bodies' median lies 24 mm to the left of L5 (the median's test refused at 20 mm).
    assert np.median(centres[:, 0]) - l5[0] == pytest.approx(24.0)
    # The line from the body above through L5 goes on to the right below L5.
    u = -lean / np.linalg.norm(lean)
    expected = l5[0] + float(np.dot(d.disc_centre_lps - l5, u)) * u[0]
    assert column_x_at(centres, l5, d.disc_centre_lps) == pytest.approx(expected)
    _check_disc_on_column(leaning, LevelOptions())          # not refused
    assert column_x_at(centres[5:], l5, d.disc_centre_lps) == l5[0]     # nothing above L5
