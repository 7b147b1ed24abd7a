"""The network-vs-CT bone check at L4-S1: quiet on the true labels, loud when L5's body is gone."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from spinect_core.bone.agreement import (MIN_DICE, AgreementOptions, LevelAgreement,
                                         check_segmentation, compare_bone, disagreement_warning)
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.volume import Volume
from tests.bone.cases import phantom_case, without_l5_body

#: "the segmentation disagrees with the CT at L5 (bone Dice 0.42 against the CT bone model):
#: review it"
WARNING = re.compile(r"^the segmentation disagrees with the CT at (L4|L5|S1) \(bone Dice "
                     r"\d\.\d\d against the CT bone model\): review it$")


@pytest.fixture(scope="module")
def case():
    """A coarse phantom (1.5 mm) whose CT bone model finds L4, L5 and the sacrum."""
    return phantom_case()


def test_true_labels_agree_with_the_ct_bone_model(case) -> None:
    ph, ct_bone = case
    check = compare_bone(ph.labels.array == 1, ct_bone)
    assert check.levels_found, check.reason
    assert [r.level for r in check.levels] == ["L4", "L5", "S1"]
    assert check.warnings == []
    assert check.agrees is True
    for name in ("L5", "S1"):
        r = check.level(name)
        assert r.found and r.agrees and r.dice >= MIN_DICE, r
        assert r.ct_ml > 20.0 and r.network_ml > 20.0
    # The body centres come from the CT's bone and lie near the phantom's own.
    lm = ph.meta["landmarks"]
    assert np.linalg.norm(check.level("L5").centre_lps_mm - lm["l5_body_centre"]) < 10.0
    assert check.ct_thresholds_hu == ct_bone.thresholds_hu


def test_deleted_l5_body_is_a_warning_naming_l5(case) -> None:
    """The issue's required test: the network's L5 body deleted -> a warning at L5."""
    ph, ct_bone = case
    check = compare_bone(without_l5_body(ph), ct_bone)
    assert len(check.warnings) == 1, check.warnings
    assert WARNING.match(check.warnings[0]), check.warnings[0]
    assert " at L5 " in check.warnings[0]
    l5 = check.level("L5")
    assert l5.agrees is False and l5.dice < MIN_DICE and l5.missed_ml > 10.0
    assert l5.reason == check.warnings[0]
    assert check.level("S1").agrees is True
    assert check.agrees is False


def test_the_same_bone_agrees_exactly(case) -> None:
    """Independent of the CT bone model's accuracy: a mask against itself has Dice 1."""
    ph, ct_bone = case
    check = compare_bone(ct_bone.mask.array.astype(bool), ct_bone.mask)
    assert check.warnings == []
    for r in check.levels:
        if r.found:
            assert r.dice == pytest.approx(1.0) and r.volume_ratio == pytest.approx(1.0)


def test_the_block_json_is_strict_and_complete(case) -> None:
    ph, ct_bone = case
    doc = compare_bone(without_l5_body(ph), ct_bone).to_dict()
    text = json.dumps(doc, allow_nan=False)
    back = json.loads(text)
    assert back["bounds"]["min_bone_dice"] == MIN_DICE
    assert back["levels_found"] is True and back["agrees"] is False
    assert [lv["level"] for lv in back["levels"]] == ["L4", "L5", "S1"]
    assert back["levels"][1]["agrees"] is False and back["levels"][1]["bone_dice"] < MIN_DICE
    assert back["warnings"] and "soft_tissue_peak" in back["ct_thresholds_hu"]


def test_the_warning_text() -> None:
    r = LevelAgreement(level="L5", found=True, dice=0.4249, network_ml=20.0, ct_ml=50.0,
                       agrees=False)
    assert disagreement_warning(r) == ("the segmentation disagrees with the CT at L5 (bone Dice "
                                       "0.42 against the CT bone model): review it")
    # A good Dice but a volume out of bounds (only reachable with a lower Dice bound).
    loose = AgreementOptions(min_dice=0.5)
    r = LevelAgreement(level="S1", found=True, dice=0.6, network_ml=30.0, ct_ml=50.0,
                       agrees=False)
    assert disagreement_warning(r, loose) == ("the segmentation disagrees with the CT at S1 (bone "
                                              "volume 0.60 times the CT bone model's): review it")
    assert disagreement_warning(LevelAgreement(level="L4", found=False)) is None


def test_levels_not_found_are_reported_not_raised() -> None:
    """No spine in the CT's bone (one block): the check says it could not run."""
    bone = np.zeros((30, 40, 40), np.uint8)
    bone[10:20, 15:25, 15:25] = 1
    grid = Volume(array=bone, spacing_mm=np.array([2.0, 2.0, 2.0]), origin_lps_mm=np.zeros(3),
                  direction=np.eye(3))
    check = compare_bone(bone.astype(bool), grid)
    assert not check.levels_found and check.levels == [] and check.agrees is None
    assert len(check.warnings) == 1
    assert check.warnings[0].startswith("the segmentation could not be checked against the CT: "
                                        "the levels L4-S1 could not be found in the CT's bone")
    assert json.loads(json.dumps(check.to_dict()))["levels_found"] is False


def test_shape_mismatch_is_refused(case) -> None:
    _, ct_bone = case
    with pytest.raises(ValueError, match="shape"):
        compare_bone(np.zeros((2, 2, 2), bool), ct_bone)


def test_check_segmentation_reuses_the_ct_bone_model(case, monkeypatch) -> None:
    from spinect_core.bone import ct_model
    from spinect_core.segment import Segmentation

    ph, ct_bone = case
    # A "fused" segmentation: the check compares the network's own bone, not the fused labels.
    seg = Segmentation(labels=ph.labels.with_array(ph.labels.array.copy()), table=DEFAULT_LABELS,
                       bone_source="fused", ct_bone=ct_bone,
                       network_bone=without_l5_body(ph))
    monkeypatch.setattr(ct_model, "segment_bone_from_ct",
                        lambda *a, **k: pytest.fail("the CT bone model ran again"))
    check = check_segmentation(seg, ph.ct)
    assert seg.bone_check is check and any(" at L5 " in w for w in check.warnings)
    assert seg.summary()["segmentation_check"]["agrees"] is False
    assert seg.summary()["ct_bone"]["thresholds_hu"] == ct_bone.thresholds_hu


def test_check_segmentation_runs_the_ct_bone_model_for_a_network_only_result(case) -> None:
    from spinect_core.segment import Segmentation

    ph, _ = case
    seg = Segmentation(labels=ph.labels, table=DEFAULT_LABELS, bone_source="network")
    calls = []
    check = check_segmentation(seg, ph.ct, progress=lambda f, m: calls.append(f) or True)
    assert seg.ct_bone is not None and seg.bone_check is check
    assert check.warnings == []
    assert calls[-1] == 1.0 and all(b >= a - 1e-9 for a, b in zip(calls, calls[1:]))


def test_a_count_that_fails_without_the_cavities_is_made_with_them(case, monkeypatch) -> None:
    # In an elderly spine the CT bone model's small filled cavities are the fatty marrow's
    # pockets: without them TotalSegmentator's real 3 mm CT found no gap between L5 and S1 and
    # the check did not run. The count is then made again on the bone with them.
    import dataclasses

    from spinect_core.bone import agreement
    from spinect_core.errors import AnatomyError

    ph, ct_bone = case
    cav = np.zeros(ct_bone.mask.array.shape, np.uint8)
    cav[ct_bone.mask.array > 0] = 1                      # every bone voxel: none left without
    with_cavities = dataclasses.replace(ct_bone, cavities=ct_bone.mask.with_array(cav))
    real_chain = agreement._chain
    seen = []

    def chain(grid, bone, options, *, hu, progress):
        seen.append(int(np.count_nonzero(bone)))
        if not bone.any():
            if progress is not None:
                progress(1.0, "counted")           # it failed at the count's very end
            raise AnatomyError("no bone")
        return real_chain(grid, bone, options, hu=hu, progress=progress)

    monkeypatch.setattr(agreement, "_chain", chain)
    calls: list[float] = []
    check = compare_bone(ph.labels.array == 1, with_cavities,
                         progress=lambda f, m: calls.append(f))
    assert seen == [0, int(np.count_nonzero(ct_bone.mask.array))]
    # The second count does not take the bar back.
    assert calls[-1] == 1.0 and all(b >= a - 1e-9 for a, b in zip(calls, calls[1:]))
    assert check.levels_found and [r.level for r in check.levels] == ["L4", "L5", "S1"]
    assert check.warnings == [] and check.agrees is True
    # Both counts failing: the check says why, naming the first refusal.
    def refused(*args, **kwargs):
        raise AnatomyError("no sacrum")

    monkeypatch.setattr(agreement, "_chain", refused)
    check = compare_bone(ph.labels.array == 1, with_cavities)
    assert not check.levels_found and "(no sacrum)" in check.warnings[0]
