"""A network segmentation whose levels cannot be counted is counted on the CT bone model's bone.

On real CT the network misses vertebral bodies or calls discs bone (a chest CT's fused labels
made one 71 mm block of T12 to L2), where the CT bone model's own bone counts right. The
engine then plans on the CT's bone (as ``--bone ct``) and says so; a user's label map, or a
refusal that says where the scan ends, stays refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import AnatomyError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.plan import PlanEngine, PlanOptions, _ct_bone_may_count
from tests.bone.cases import phantom_case


def _without_bone():
    ph, _ = phantom_case()
    array = np.asarray(ph.labels.array).copy()
    array[array == DEFAULT_LABELS.id_of("bone")] = 0          # a network that found no bone
    return ph, ph.labels.with_array(array)


def test_a_network_segmentation_without_countable_bone_is_planned_on_the_ct_bone() -> None:
    ph, labels = _without_bone()
    engine = PlanEngine(ph.ct, labels, DEFAULT_LABELS, bone_source="network",
                        options=PlanOptions(sides=("left",)))
    assert engine.bone_source == "ct" and engine.level_check is None
    assert engine.anatomy.warnings[0].startswith("the segmentation's bone could not be counted")
    assert any("CT bone model" in n for n in engine.notes)
    lm = ph.meta["landmarks"]
    assert np.linalg.norm(engine.anatomy.disc_centre_lps
                          - np.asarray(lm["l5s1_disc_centre"], float)) < 8.0
    bone = np.asarray(engine.labels.array) == DEFAULT_LABELS.id_of("bone")
    assert bone.sum() > 1000                      # the CT's bone is the engine's now


def test_a_users_label_map_is_not_replaced() -> None:
    ph, labels = _without_bone()
    with pytest.raises(AnatomyError, match="contains no bone"):
        PlanEngine(ph.ct, labels, DEFAULT_LABELS, options=PlanOptions(sides=("left",)))


def test_a_refusal_that_names_where_the_scan_ends_is_kept() -> None:
    from spinect_core.anatomy.counting import LevelEvidence

    ends = AnatomyError("the scan ends at L3")
    ends.evidence = LevelEvidence(last_level="L3")          # type: ignore[attr-defined]
    merged = AnatomyError("the vertebral bodies are not separated")
    merged.evidence = LevelEvidence(last_level=None)       # type: ignore[attr-defined]
    assert not _ct_bone_may_count(ends, "fused")
    assert _ct_bone_may_count(merged, "fused") and _ct_bone_may_count(merged, "network")
    assert not _ct_bone_may_count(merged, "ct") and not _ct_bone_may_count(merged, None)


def test_the_ct_bones_refusal_is_given_when_it_says_where_the_scan_ends() -> None:
    """A network that found no bone on a scan that ends above L5: the CT's bone is counted,
    refused with where it ends, and that refusal (not "no bone") is what the user reads."""
    from tests.anatomy.test_counting import THORACIC, Column, _names

    col = Column(_names(4, 3), ribs=set(THORACIC), sacrum=False)
    bone = col.volume(crop_below_mm=col.bottom["L3"] - 4.0)
    rng = np.random.default_rng(0)
    # Bone with a trabecular spread (a flat bright region is a contrast pool), soft tissue around.
    ct = bone.with_array(np.where(bone.array > 0, rng.normal(600.0, 200.0, bone.array.shape),
                                  rng.normal(40.0, 10.0, bone.array.shape)).astype(np.int16))
    nothing = bone.with_array(np.zeros(bone.array.shape, np.uint8))
    with pytest.raises(AnatomyError, match="^the scan ends at L3"):
        PlanEngine(ct, nothing, DEFAULT_LABELS, bone_source="network",
                   options=PlanOptions(sides=("left",)))
