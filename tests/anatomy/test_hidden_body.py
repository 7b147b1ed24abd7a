"""A body hidden between the body named L5 and the sacrum lowers the level confidence.

When labels merge L5 with the sacrum (a disc bridged at 2-3 mm slices) or miss L5, the count
names L4 "L5" and the plan is one level too high. The sacrum's centre then lies about two body
spacings below the body named L5 instead of 1.2-1.7.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy.levels import (HIDDEN_BODY_LINK_FACTOR, NOMINAL_BODY_SPACING_MM,
                                         derive_parts, hidden_body_above_sacrum)
from spinect_core.errors import AnatomyError
from spinect_core.labels import DEFAULT_LABELS
from tests.bone.cases import phantom_case, without_l5_body


def _chain(*z_mm: float) -> np.ndarray:
    return np.array([[0.0, 0.0, z] for z in z_mm])


def test_a_normal_sacral_link_is_quiet() -> None:
    # L3, L4, L5 35 mm apart, the sacrum's centre 55 mm below L5 (the longest measured).
    assert hidden_body_above_sacrum(_chain(0.0, -35.0, -70.0, -125.0)) is None
    assert hidden_body_above_sacrum(_chain(0.0, -50.0)) is None
    assert hidden_body_above_sacrum(_chain(0.0)) is None


def test_a_link_of_two_spacings_hides_a_body() -> None:
    why = hidden_body_above_sacrum(_chain(0.0, -36.0, -110.0))
    assert why is not None and why.startswith("the sacrum's centre lies 74 mm from the body named L5")
    assert "one level too high" in why
    # Without a body above L5 the nominal spacing is the reference.
    limit = HIDDEN_BODY_LINK_FACTOR * NOMINAL_BODY_SPACING_MM
    assert hidden_body_above_sacrum(_chain(0.0, -(limit + 1.0))) is not None
    assert hidden_body_above_sacrum(_chain(0.0, -(limit - 1.0))) is None
    # A large patient's spacing raises the limit.
    assert hidden_body_above_sacrum(_chain(0.0, -45.0, -90.0, -160.0)) is None


def _without_l5_body(ph) -> "np.ndarray":
    arr = np.asarray(ph.labels.array).copy()
    arr[(arr == DEFAULT_LABELS.id_of("bone")) & ~without_l5_body(ph)] = 0
    return arr


@pytest.mark.parametrize("with_ct", [False, True])
def test_labels_without_the_l5_body_are_never_counted_with_confidence(with_ct) -> None:
    """The procedural phantom (L4 cut by its field of view) without L5's body: refused, or
    counted with "low" confidence, never a confident plan at L4/L5."""
    ph, _ = phantom_case()
    refusal = ""
    try:
        derived = derive_parts(ph.labels.with_array(_without_l5_body(ph)), DEFAULT_LABELS,
                               ct=ph.ct if with_ct else None)
    except AnatomyError as exc:
        refusal = str(exc)
    if refusal:
        assert "L5" in refusal
    else:
        assert derived.evidence.confidence == "low"


@pytest.mark.slow
def test_real_bone_labels_with_l5_merged_into_the_sacrum_are_counted_with_low_confidence() -> None:
    """A real-bone phantom (L4 in view) at 2.5 mm whose L5/S1 disc is labelled bone (bridged, as
    partial volume does): without the CT, L4 is named L5 and the count says it may be one level
    too high; the intact labels do not."""
    from spinect_core.phantom import PhantomOptions, generate_phantom

    ph = generate_phantom(seed=106, spacing_mm=(1.0, 1.0, 2.5),
                          options=PhantomOptions(anatomy="real"))
    arr = np.asarray(ph.labels.array).copy()
    arr[np.asarray(ph.instances.array) == ph.instance_table.id_of("disc_L5S1")] = \
        DEFAULT_LABELS.id_of("bone")
    ev = derive_parts(ph.labels.with_array(arr), DEFAULT_LABELS).evidence
    assert ev.confidence == "low"
    assert any(w.startswith("the sacrum's centre lies") for w in ev.warnings), ev.warnings
    intact = derive_parts(ph.labels, DEFAULT_LABELS).evidence
    assert intact.confidence != "low"
    assert not any(w.startswith("the sacrum's centre lies") for w in intact.warnings)
