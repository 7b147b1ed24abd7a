"""L5 joined to the sacrum's core through a bridge of bone the labels put in the disc: the
levels are counted again with the bridge cut, only when the ribs and the sacroiliac joints both
say the body on top of the "sacrum" is a vertebra."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from spinect_core.anatomy import levels
from spinect_core.anatomy.necks import Neck
from spinect_core.anatomy.sacroiliac import SI_JOINT_DEPTH_MM
from spinect_core.labels import DEFAULT_LABELS
from tests.anatomy.test_ct_bands import _bridged_derivation


def _stubbed(monkeypatch, derived, *, joints_mm, lumbar_after=5, l5_moved_mm=0.0):
    """Stubs: the joints' depth below the disc (first call: the first count's, then the
    recount's), a neck whose top body is the first count's L5 plus ``l5_moved_mm`` and a recount
    of ``lumbar_after`` lumbar vertebrae whose L5 is the neck's top body. Returns what they
    saw."""
    seen: dict = {"joints": list(joints_mm)}
    top = np.asarray(derived.l5_centre_lps, float)

    def joints(d, grid):
        return seen["joints"].pop(0)

    def neck(bone, part, grid, **kwargs):
        cut = np.zeros(bone.shape, bool)
        cut[tuple(s // 2 for s in bone.shape)] = True
        seen["neck"] = Neck(top, cut, kwargs["core_mm"] + 1.0)
        return seen["neck"]

    def recount(labels, table, carved, options, progress, hu=None):
        seen["carved"] = carved
        out = copy.deepcopy(derived)
        out.l5_centre_lps = top + np.array([0.0, 0.0, l5_moved_mm])
        out.evidence.lumbar_count, out.evidence.rib_count_agrees = lumbar_after, True
        return out

    monkeypatch.setattr(levels, "_joints_below_disc_mm", joints)
    monkeypatch.setattr(levels, "top_body_neck", neck)
    monkeypatch.setattr(levels, "_derive_coarse_then_fine", recount)
    return seen


def _split(phantom, derived, bridged):
    # No CT dark band: only the neck can part the bodies.
    return levels._split_at_neck(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                 levels.LevelOptions(), None, ribs=True,
                                 joints_before_mm=levels._joints_below_disc_mm(derived, bridged))


def test_a_bridged_l5_is_parted_when_the_joints_begin_a_vertebra_low(phantom, monkeypatch):
    """The joints 31 mm below the first count's L5/S1 (the TotalSegmentator CT at 1.5 mm), 5
    below the new one, five lumbar vertebrae with the parted body as L5: the plan moves one
    level down at low confidence, with words, and the cut was the neck's."""
    bridged, derived, _ = _bridged_derivation(phantom)
    seen = _stubbed(monkeypatch, derived, joints_mm=[31.0, 5.0])
    result = _split(phantom, derived, bridged)
    assert result is not None and result is not derived
    assert np.array_equal(seen["carved"], seen["neck"].cut)
    assert result.evidence.confidence == "low"
    assert any("bridge of bone" in w and "31 mm below" in w and "one level lower" in w
               for w in result.evidence.warnings)


@pytest.mark.parametrize("joints_mm, lumbar_after, l5_moved_mm", [
    ([SI_JOINT_DEPTH_MM - 5.0], 5, 0.0),        # joints beside S1: a sacrum's own S1/S2 neck
    ([None], 5, 0.0),                          # no joints found
    ([31.0, 5.0], 4, 0.0),                     # still four lumbar vertebrae
    ([31.0, 5.0], 5, 25.0),                    # the parted body is not the new L5
    ([31.0, 30.0], 5, 0.0),                    # the joints still a vertebra low
])
def test_a_neck_split_the_evidence_does_not_back_is_not_kept(phantom, monkeypatch, joints_mm,
                                                              lumbar_after, l5_moved_mm):
    bridged, derived, _ = _bridged_derivation(phantom)
    seen = _stubbed(monkeypatch, derived, joints_mm=joints_mm, lumbar_after=lumbar_after,
                    l5_moved_mm=l5_moved_mm)
    assert _split(phantom, derived, bridged) is None
    if joints_mm[0] is None or joints_mm[0] <= SI_JOINT_DEPTH_MM:
        assert "carved" not in seen                            # not even counted again


def test_the_neck_is_tried_only_when_the_ribs_want_one_more_lumbar(phantom, monkeypatch):
    """Five lumbar vertebrae, or the ribs agreeing: nothing is parted."""
    bridged, derived, _ = _bridged_derivation(phantom)
    seen = _stubbed(monkeypatch, derived, joints_mm=[31.0, 5.0])
    monkeypatch.setattr(levels, "_plate_cut", lambda *a, **k: None)
    derived.evidence.rib_count_agrees = True
    assert levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                      levels.LevelOptions(), None) is derived
    assert "carved" not in seen
    derived.evidence.rib_count_agrees = False
    result = levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                        levels.LevelOptions(), None)
    assert result is not derived and seen["carved"] is not None


@pytest.mark.parametrize("joints_mm, kept", [
    ([31.0, 5.0], True),                        # the joints a vertebra low, then beside S1
    ([31.0, 30.0], False),                      # still a vertebra low
    ([SI_JOINT_DEPTH_MM - 5.0], False),         # beside S1 already: not tried
])
def test_without_ribs_the_joints_alone_judge_a_neck_split(phantom, monkeypatch, joints_mm,
                                                          kept):
    """A lumbar CT has no ribs: the sacroiliac joints beginning a vertebra below the disc are
    what asks for the split, and their beginning beside S1 after it what keeps it (a real-bone
    phantom at 1 mm, seed 109: planned 31 mm off at L4/L5, 1.6 mm off once parted)."""
    bridged, derived, _ = _bridged_derivation(phantom)
    seen = _stubbed(monkeypatch, derived, joints_mm=joints_mm, lumbar_after=None)
    monkeypatch.setattr(levels, "_plate_cut", lambda *a, **k: None)      # no dark band
    ev = derived.evidence
    ev.ribs_found, ev.rib_count_agrees, ev.lumbar_count = False, None, None
    result = levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                        levels.LevelOptions(), None)
    if not kept:
        assert result is derived
        return
    assert result is not derived and np.array_equal(seen["carved"], seen["neck"].cut)
    assert result.evidence.confidence == "low"
    assert any("bridge of bone" in w and "no ribs are in view" in w and "one level lower" in w
               for w in result.evidence.warnings)


def test_ribs_that_agree_or_are_in_view_keep_the_joints_from_splitting(phantom, monkeypatch):
    bridged, derived, _ = _bridged_derivation(phantom)
    seen = _stubbed(monkeypatch, derived, joints_mm=[31.0, 5.0], lumbar_after=None)
    monkeypatch.setattr(levels, "_plate_cut", lambda *a, **k: None)
    ev = derived.evidence
    ev.ribs_found, ev.rib_count_agrees = True, None       # ribs seen, the count not made
    assert levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                      levels.LevelOptions(), None) is derived
    assert "carved" not in seen
