"""The parts' watershed follows the distance map's necks on fine grids and floods through the
bone in voxel steps on coarse ones (``LevelOptions.geodesic_above_mm``), where the facet joints
are not seen and the narrowest necks are L5's pedicles."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy import levels
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom


@pytest.mark.parametrize("spacing_mm, steps", [(1.5, False), (3.0, True)])
def test_the_flood_is_in_steps_only_on_coarse_grids(monkeypatch, spacing_mm, steps) -> None:
    """On fine grids the parts' flood follows the bone's necks (the negated distance map); on
    coarse ones it goes in steps through the bone, nearest seed first (the geodesic distance
    from the seeds, 0 on them)."""
    import skimage.segmentation

    seen = []
    real = skimage.segmentation.watershed

    def watershed(image, markers, **kwargs):
        if markers.dtype == np.uint8:                      # the parts' flood
            seen.append((np.asarray(image), np.asarray(markers), kwargs.get("mask")))
        return real(image, markers, **kwargs)

    monkeypatch.setattr(skimage.segmentation, "watershed", watershed)
    ph = generate_phantom(seed=0, spacing_mm=(spacing_mm,) * 3)
    levels.derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    assert seen
    image, markers, mask = seen[-1]
    if steps:
        assert image.min() == 0.0
        assert np.all(image[(markers > 0) & mask] == 0.0)
        assert float(image[mask].max()) > 20.0             # millimetres through the bone
    else:
        assert image.min() < -5.0                           # the distance map's depth


def test_the_steps_are_geodesic_and_do_not_depend_on_the_array_order() -> None:
    """Distances through the bone, in millimetres of 26-neighbour steps: around a U-shaped bar
    they follow the bar (not the straight line across its gap); and two seeds part a square the
    same way whichever way the array runs (the thin CT's arch went to another vertebra when its
    array was read the other way, on 6-neighbour steps)."""
    sp = np.array([2.0, 1.0, 1.0])
    u = np.zeros((3, 30, 30), bool)
    u[1, 5:25, 5:8] = u[1, 5:25, 22:25] = u[1, 22:25, 5:25] = True        # a U in one slice
    seeds = np.zeros_like(u)
    seeds[1, 5, 6] = True
    d = levels._geodesic_from(seeds, u, sp)
    straight = 16.0                                                        # x 6 -> 22
    around = float(d[1, 5, 23])
    assert around > 2.0 * straight and around == pytest.approx(17 + 17 + 16, rel=0.15)
    assert np.all(d[~u] == 0.0)

    from skimage.segmentation import watershed

    box = np.ones((1, 21, 21), bool)
    markers = np.zeros(box.shape, np.uint8)
    markers[0, 0, 0], markers[0, 20, 13] = 1, 2
    parted = watershed(levels._geodesic_from(markers > 0, box, np.ones(3)), markers, mask=box)
    back = markers[:, ::-1, ::-1]
    flipped = watershed(levels._geodesic_from(back > 0, box, np.ones(3)), back, mask=box)
    assert np.array_equal(parted, flipped[:, ::-1, ::-1])


def _spy_derive(monkeypatch):
    """Record the ``geodesic_above_mm`` of every derive_parts call that identify makes."""
    from spinect_core.anatomy import identify

    calls: list[float] = []
    real = identify.derive_parts

    def derive(*args, options, **kwargs):
        calls.append(options.geodesic_above_mm)
        return real(*args, options=options, **kwargs)

    monkeypatch.setattr(identify, "derive_parts", derive)
    return calls


def test_plausible_landmarks_are_derived_once(monkeypatch) -> None:
    from spinect_core.anatomy import identify_lumbosacral

    calls = _spy_derive(monkeypatch)
    ph = generate_phantom(seed=0, spacing_mm=(1.0,) * 3)
    anatomy = identify_lumbosacral(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    assert anatomy.warnings == []
    assert calls == [2.0]
    assert not any("L5's arch" in r for r in anatomy.level_evidence.reasons)


@pytest.mark.parametrize("alternative_doubts, taken", [
    ((1, 30.0), True), ((2, 16.5), True), ((2, 17.5), False), ((3, 1.0), False)])
def test_the_other_flood_is_taken_when_its_landmarks_are_more_plausible(
        monkeypatch, alternative_doubts, taken) -> None:
    """The first parts' landmarks doubted twice (20 mm apart): the parts flooded the other way
    (voxel steps on this 1.5 mm grid) are kept when their landmarks have fewer doubts, and the
    level evidence says why; with as many doubts only when the sides differ by over 3 mm less
    in all (identify.FLOOD_MIRROR_GAIN_MM)."""
    from spinect_core.anatomy import identify

    calls = _spy_derive(monkeypatch)
    real_measure = identify._measure
    doubts = iter([(2, 20.0), alternative_doubts])

    def measure(*args, **kwargs):
        m = real_measure(*args, **kwargs)
        m.doubts = next(doubts)
        return m

    monkeypatch.setattr(identify, "_measure", measure)
    ph = generate_phantom(seed=0, spacing_mm=(1.5,) * 3)
    anatomy = identify.identify_lumbosacral(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    assert calls == [2.0, 0.0]
    reasons = [r for r in anatomy.level_evidence.reasons if r.startswith("L5's arch")]
    if taken:
        assert len(reasons) == 1
        assert "along voxel steps, since along the bone's necks" in reasons[0]
        n, apart = alternative_doubts
        assert (f"2 doubt(s) (their left and right sides 20 mm apart in all) against {n} "
                f"({apart:.0f} mm)") in reasons[0]
    else:
        assert reasons == []


def test_a_second_flood_takes_the_first_derivations_counts(monkeypatch) -> None:
    """Within ``shared_count_passes`` the count pass (the column, the ribs, the sacrum) runs once
    for two derivations that differ only in their flood, and each gets its own evidence."""
    calls = []
    real = levels._count_once

    def count_once(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(levels, "_count_once", count_once)
    ph = generate_phantom(seed=0, spacing_mm=(1.5,) * 3)
    alone = levels.derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    once = len(calls)
    with levels.shared_count_passes():
        necks = levels.derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct)
        first = necks.evidence.to_dict()
        necks.evidence.reasons.append("only in the first")
        steps = levels.derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct,
                                    options=levels.LevelOptions(geodesic_above_mm=0.0))
    assert once >= 1 and len(calls) == 2 * once          # counted for the first only
    np.testing.assert_array_equal(necks.parts, alone.parts)
    assert first == alone.evidence.to_dict()
    assert "only in the first" not in steps.evidence.reasons
    assert steps.evidence is not necks.evidence
    steps.evidence.reasons.append("only in the second")
    assert "only in the second" not in necks.evidence.reasons
    assert not np.array_equal(steps.parts, necks.parts)   # the other flood parts the bone
    levels.derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    assert len(calls) == 3 * once                        # outside the block: counted again


def test_a_shared_refusal_is_raised_again_with_its_own_evidence(monkeypatch) -> None:
    from spinect_core.anatomy.counting import LevelEvidence
    from spinect_core.errors import AnatomyError

    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        err = AnatomyError("no sacrum found")
        err.evidence = LevelEvidence()  # type: ignore[attr-defined]
        raise err

    monkeypatch.setattr(levels, "_count_once", refuse)
    ph = generate_phantom(seed=0, spacing_mm=(3.0,) * 3)
    raised = []
    with levels.shared_count_passes():
        for flood in (2.0, 0.0):
            with pytest.raises(AnatomyError, match="no sacrum found") as info:
                levels._count_pass(ph.labels, DEFAULT_LABELS, None,
                                   levels.LevelOptions(geodesic_above_mm=flood), None)
            raised.append(info.value)
    assert len(calls) == 1
    assert raised[0] is not raised[1] and raised[0].evidence is not raised[1].evidence
