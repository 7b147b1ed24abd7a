"""The planned L5/S1 against the levels counted on the CT's own bone (never silently wrong).

A segmentation that merges or misses a body plans one level too high or too low (measured on a
real-bone phantom at 2.5 mm slices, seed 100: the network's labels put "L5/S1" 35 mm up, at
L4/L5, with "moderate" level confidence). The CT bone model's count is independent evidence:
the planned disc must lie between its L5 centre and one level spacing below it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.bone.agreement import (NOMINAL_LEVEL_SPACING_MM, BoneAgreement,
                                         LevelAgreement, check_planned_level, compare_bone)
from tests.bone.cases import phantom_case, truth_as_ct_bone


def _check(centres: dict[str, tuple[float, float, float]]) -> BoneAgreement:
    """A check whose CT chain holds the given body centres (LPS mm)."""
    levels = [LevelAgreement(level=name, found=name in centres,
                             centre_lps_mm=None if name not in centres
                             else np.asarray(centres[name], float))
              for name in ("L4", "L5", "S1")]
    return BoneAgreement(levels=levels, levels_found=True)


#: An upright column: L4, L5 and S1 centres 32 mm apart along -z (caudal).
COLUMN = {"L4": (0.0, 0.0, 0.0), "L5": (0.0, 0.0, -32.0), "S1": (0.0, 5.0, -70.0)}


@pytest.mark.parametrize("disc_z, agrees, words", [
    (-48.0, True, ""),            # half a level below L5's centre: the right level
    (-16.0, False, "L4/L5"),      # half a level above it: the disc above L5
    (-80.0, False, "S1/S2"),      # below the body under L5
])
def test_the_disc_must_lie_between_l5_and_the_body_below(disc_z, agrees, words) -> None:
    result = check_planned_level(_check(COLUMN), np.array([3.0, 20.0, disc_z]))
    assert result.judged
    assert result.level_spacing_mm == pytest.approx(32.0)
    assert result.offset_mm == pytest.approx(-32.0 - disc_z)
    assert result.agrees is agrees
    assert (words in result.warning) if words else result.warning == ""
    if not agrees:
        assert result.warning.startswith("the level is in doubt")
    json.dumps(result.to_dict(), allow_nan=False)


def test_without_l4_the_nominal_spacing_and_the_l5_to_s1_axis() -> None:
    column = {"L5": (0.0, 0.0, 0.0), "S1": (0.0, 0.0, -40.0)}
    inside = check_planned_level(_check(column), np.array([0.0, 0.0, -NOMINAL_LEVEL_SPACING_MM
                                                           + 1.0]))
    outside = check_planned_level(_check(column), np.array([0.0, 0.0, 2.0]))
    assert inside.level_spacing_mm == NOMINAL_LEVEL_SPACING_MM and inside.agrees is True
    assert outside.agrees is False and outside.offset_mm == pytest.approx(-2.0)


def test_not_judged_without_the_ct_levels() -> None:
    assert check_planned_level(BoneAgreement(), np.zeros(3)).judged is False
    no_s1 = check_planned_level(_check({"L4": (0, 0, 0), "L5": (0, 0, -30)}), np.zeros(3))
    assert no_s1.judged is False and no_s1.agrees is None and no_s1.warning == ""


def test_the_phantom_disc_agrees_and_the_disc_a_level_up_does_not() -> None:
    """On a phantom's CT-chain (the true bone as the CT's), the true L5/S1 disc agrees; the same
    point moved to the L4/L5 disc (one level up) is in doubt."""
    ph, _ = phantom_case()
    check = compare_bone(ph.labels.array == 1, truth_as_ct_bone(ph))
    lm = ph.meta["landmarks"]
    disc = np.asarray(lm["l5s1_disc_centre"], float)
    up = disc + (np.asarray(lm["l4_body_centre"], float) - np.asarray(lm["l5_body_centre"], float))
    right, wrong = check_planned_level(check, disc), check_planned_level(check, up)
    assert right.agrees is True, right
    assert wrong.agrees is False and "L4/L5" in wrong.warning, wrong


def test_a_level_in_doubt_lowers_the_plans_level_confidence_and_leads_its_warnings() -> None:
    """PlanEngine wiring: a check whose CT levels lie one level lower than the labels' makes
    the level evidence "low" with the reason, and its warning leads the plan's."""
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.planning.plan import PlanEngine

    ph, _ = phantom_case()
    check = compare_bone(ph.labels.array == 1, truth_as_ct_bone(ph))
    lm = ph.meta["landmarks"]
    step = np.asarray(lm["l5_body_centre"], float) - np.asarray(lm["l4_body_centre"], float)
    shifted = BoneAgreement(levels_found=True, levels=[
        LevelAgreement(level=r.level, found=r.found, agrees=r.agrees, dice=r.dice,
                       centre_lps_mm=None if r.centre_lps_mm is None else r.centre_lps_mm + step)
        for r in check.levels])
    engine = PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, segmentation_check=shifted)
    assert engine.level_check is not None and engine.level_check.agrees is False
    evidence = engine.anatomy.level_evidence
    assert evidence.confidence == "low"
    assert engine.level_check.warning in evidence.reasons
    assert engine.plan_warnings()[0] == engine.level_check.warning
    # The unshifted check agrees with the same anatomy (what the engine would ask it).
    assert check_planned_level(check, engine.anatomy.disc_centre_lps).agrees is True


def test_a_ct_count_that_ends_above_l5_puts_any_planned_l5_s1_in_doubt() -> None:
    """The CT's own bone, counted from the ribs, ends within L3 (a real chest CT): whatever the
    labels called L5/S1 is another level (the fused labels of that scan once found a "sacrum"
    at T11)."""
    result = check_planned_level(BoneAgreement(levels_found=False, ct_ends_at="L3"),
                                 np.array([0.0, 0.0, -40.0]))
    assert result.judged and result.agrees is False and result.offset_mm is None
    assert result.warning.startswith("the level is in doubt") and "ends at L3" in result.warning
    json.dumps(result.to_dict(), allow_nan=False)


def test_the_ct_count_of_a_scan_ending_at_l3_says_so() -> None:
    """compare_bone records where the CT's count ends (from T12 down) when it refuses; a count
    that ends at the sacrum region or cannot name the level records nothing."""
    from spinect_core.anatomy.counting import LevelEvidence
    from spinect_core.errors import AnatomyError
    from spinect_core.bone.agreement import _ends_above_l5
    from tests.anatomy.test_counting import THORACIC, Column, _names

    col = Column(_names(4, 3), ribs=set(THORACIC), sacrum=False)
    bone = col.volume(crop_below_mm=col.bottom["L3"] - 4.0)
    check = compare_bone(bone.array == 1, bone)
    assert not check.levels_found and check.ct_ends_at == "L3"
    assert check.to_dict()["ct_ends_at"] == "L3"
    def refused(evidence: LevelEvidence) -> AnatomyError:
        exc = AnatomyError("refused")
        exc.evidence = evidence                              # type: ignore[attr-defined]
        return exc

    assert _ends_above_l5(refused(LevelEvidence(last_level="L5", counted_from="ribs"))) is None
    assert _ends_above_l5(refused(LevelEvidence(last_level=None, counted_from="none"))) is None


def test_the_cts_count_sees_a_collapsed_disc_with_the_ct() -> None:
    """The CT bone bridging a collapsed L5/S1 disc joins L5 to the sacrum too: counted on the
    bone alone, the true disc is judged a level low ("S1/S2"); with the CT's plate, as the
    planning counts, it agrees."""
    from spinect_core.bone import CTBone
    from tests.anatomy.conftest import collapsed_l5s1_disc

    ph, _ = phantom_case()
    joined, ct = collapsed_l5s1_disc(ph)
    bone = joined.array == 1
    ct_bone = CTBone(mask=ct.with_array(bone.astype(np.uint8)))
    disc = np.asarray(ph.meta["landmarks"]["l5s1_disc_centre"], float)
    blind = check_planned_level(compare_bone(bone, ct_bone), disc)
    assert blind.agrees is False and "S1/S2" in blind.warning, blind
    seen = check_planned_level(compare_bone(bone, ct_bone, hu=ct), disc)
    assert seen.agrees is True, seen


def test_a_ct_count_in_doubt_is_said_beside_its_disagreement() -> None:
    """The CT's own count can be the one off (TotalSegmentator's CT at 1 mm: its 2 mm blocks
    counted four lumbar vertebrae while the plan was at L5/S1): the warning says so."""
    check = _check(COLUMN)
    check.ct_count_doubt = "it counts 4 lumbar vertebrae between T12 and the sacrum"
    off = check_planned_level(check, np.array([0.0, 0.0, -80.0]))
    assert off.agrees is False
    assert ("would make it S1/S2; that count is itself in doubt: it counts 4 lumbar vertebrae "
            "between T12 and the sacrum)") in off.warning
    assert check_planned_level(check, np.array([0.0, 0.0, -48.0])).warning == ""


def test_the_ct_counts_doubt_comes_from_its_evidence() -> None:
    from spinect_core.anatomy.counting import LevelEvidence
    from spinect_core.bone.agreement import _count_doubt

    ev = LevelEvidence()
    ev.confidence, ev.lumbar_count = "low", 4
    assert _count_doubt(ev) == "it counts 4 lumbar vertebrae between T12 and the sacrum"
    ev.lumbar_count = None
    assert _count_doubt(ev) == "its own level confidence is low"
    ev.confidence = "moderate"
    assert _count_doubt(ev) == ""
