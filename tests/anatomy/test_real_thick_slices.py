"""Levels of real-bone phantoms at 1-3 mm slices, from their true labels and from the fused
labels of the bundled network (slow: real bones, and the network on the CPU).

Measured before the fixes: seeds 100 and 104 were planned at L4/L5 (L5, beside the iliac
crests and sacrum-shaped against an L4 the field of view cut, was taken for the sacrum), seed
102 was refused as "sacrum mostly outside the field of view" (the depth line aimed at a sacrum
core merged with an ilium crossed the disc obliquely).
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy.levels import derive_parts
from spinect_core.labels import DEFAULT_LABELS


@pytest.mark.slow
@pytest.mark.parametrize("seed", [100, 102, 104])
def test_true_labels_at_3_mm_give_l5_and_the_sacrum(seed) -> None:
    from spinect_core.phantom import PhantomOptions, generate_phantom

    ph = generate_phantom(seed=seed, spacing_mm=(1.0, 1.0, 3.0),
                          options=PhantomOptions(anatomy="real"))
    lm = ph.meta["landmarks"]
    derived = derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    assert np.linalg.norm(derived.l5_centre_lps - np.asarray(lm["l5_body_centre"])) < 8.0
    assert derived.evidence.confidence != "low"


@pytest.mark.slow
@pytest.mark.parametrize("seed, slice_mm", [(101, 3.0), (102, 3.0), (103, 1.0), (104, 3.0)])
def test_fused_labels_never_put_the_level_off_with_confidence(seed, slice_mm) -> None:
    """The product's own labels (the bundled network and the CT bone model, fused): L5/S1 within
    3 mm of the true disc (a level is 30-40 mm; 4 mm with 3 mm slices, whose disc centre moves
    with the slice the endplate falls in: 102's was 3.72 mm off on 2026-12-07, its S1
    endplate found a slice high), at "moderate" where the sacrum is plain. Measured 2026-12-05: in
    session 15 101 at 3 mm, 102 at 3 mm and 103 at 1 mm were a level off in these labels (at
    "low"): session 14's wide closing filled the sacral canal (102, 103: now left out as fat),
    and 101's collapsed L5/S1 disc read as a plate on one side only (now cut there, at "low"
    with a warning); 104 is planned right at "moderate"."""
    from spinect_core.anatomy.landmarks import endplates
    from spinect_core.phantom import PhantomOptions, generate_phantom
    from spinect_core.segment import SegmentOptions, segment_ct

    ph = generate_phantom(seed=seed, spacing_mm=(1.0, 1.0, slice_mm),
                          options=PhantomOptions(anatomy="real"))
    labels = segment_ct(ph.ct, options=SegmentOptions(bone="fused")).labels
    truth = np.asarray(ph.meta["landmarks"]["l5s1_disc_centre"], float)
    derived = derive_parts(labels, DEFAULT_LABELS, ct=ph.ct)
    disc = endplates(labels, derived.parts, []).disc_centre_lps
    off = float(np.linalg.norm(disc - truth))
    assert off <= max(3.0, slice_mm + 1.0), (off, derived.evidence.confidence)
    if seed == 101:
        assert derived.evidence.confidence == "low"
        assert any("collapsed disc" in w for w in derived.evidence.warnings)
    if seed in (102, 104):
        assert derived.evidence.confidence == "moderate"
