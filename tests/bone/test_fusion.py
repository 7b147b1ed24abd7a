"""The fused bone (:func:`spinect_core.bone.combine_bone`, ``mode="fused"``) and the network's
soft-tissue classes."""

from __future__ import annotations

import numpy as np

from spinect_core.bone import FusionOptions, combine_bone
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.volume import Volume

BONE, NERVE, DISC, DURA = (DEFAULT_LABELS.id_of(c) for c in ("bone", "nerve", "disc", "dura"))
#: The rule is off by default (FusionOptions.soft_classes): these tests turn it on.
SOFT = FusionOptions(soft_classes=("disc", "dura", "nerve"))


def _case():
    """A column of 1 mm voxels: two bodies (cortex 900 HU, marrow 120 HU) and a disc (90 HU)
    between them that the CT bone model filled like marrow; the network calls the disc a disc
    and, in one corner of it, the cortex of the endplate above too."""
    shape = (30, 8, 8)
    hu = np.full(shape, 120.0)
    hu[[0, 9, 20, 29]] = 900.0                      # the bodies' endplates
    hu[10:20] = 90.0                                 # the disc
    hu[10, :2, :2] = 900.0                           # an osteophyte: cortex in the disc's rim
    net = np.full(shape, BONE, np.uint8)
    net[10:20] = DISC
    ct_bone = np.ones(shape, bool)                   # the CT bone model took it all for bone
    labels = Volume(array=net, spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3),
                    direction=np.eye(3))
    return labels, ct_bone, hu


def test_the_networks_disc_stays_where_the_ct_is_darker_than_cortex() -> None:
    labels, ct_bone, hu = _case()
    out = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="fused", ct_hu=hu, options=SOFT).array
    assert np.all(out[11:20] == DISC)
    assert np.all(out[10, 2:, 2:] == DISC)
    assert np.all(out[10, :2, :2] == BONE)          # cortex stays bone whatever the network says
    assert np.all(out[:10] == BONE) and np.all(out[20:] == BONE)


def test_by_default_without_the_ct_or_in_ct_mode_the_ct_bone_wins() -> None:
    labels, ct_bone, hu = _case()
    fused = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="fused", options=SOFT).array
    assert np.all(fused == BONE)
    ct_only = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="ct", ct_hu=hu,
                           options=SOFT).array
    assert np.all(ct_only == BONE)                   # --bone ct: exactly the CT's bone
    default = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="fused", ct_hu=hu).array
    assert np.all(default == BONE)                   # off by default


def test_dura_and_nerve_stay_too_and_slabs_change_nothing() -> None:
    """The rule runs 16 slices at a time: a 40-slice map gives what a whole pass would."""
    rng = np.random.default_rng(3)
    shape = (40, 6, 6)
    net = rng.choice([0, BONE, NERVE, DISC, DURA], size=shape).astype(np.uint8)
    hu = rng.uniform(-100.0, 1200.0, shape)
    ct_bone = rng.random(shape) < 0.6
    labels = Volume(array=net, spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3),
                    direction=np.eye(3))
    out = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="fused", ct_hu=hu,
                       options=FusionOptions(near_mm=0.0,
                                             soft_classes=("disc", "dura", "nerve"))).array
    soft = np.isin(net, [NERVE, DISC, DURA]) & (hu < 300.0)
    assert np.array_equal(out[soft], net[soft])
    assert np.all(out[ct_bone & ~soft] == BONE)


def test_the_networks_bone_is_not_put_back_in_a_disc_the_ct_model_left_out() -> None:
    """The CT bone model left out a disc walled in by osteophytes (``CTBone.discs``); the
    network calls its rim bone, within 3 mm of the endplates: fused does not put it back (on
    the real lumbar crop it did, fused Dice 0.844 against the CT model's 0.866)."""
    labels, _, hu = _case()
    net = labels.array.copy()
    net[10:13] = BONE                                # the network's bone in the disc, near cortex
    labels = labels.with_array(net)
    ct_bone = np.ones(net.shape, bool)
    ct_bone[10:20] = False                           # the CT model left the disc out ...
    discs = np.zeros(net.shape, np.uint8)
    discs[10:20] = 1                                 # ... as a disc
    plain = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="fused").array
    assert np.all(plain[10:13] == BONE)              # without the discs: near, so put back
    out = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode="fused", ct_not_bone=discs).array
    assert not np.any(out[10:20] == BONE)
    assert np.all(out[:10] == BONE) and np.all(out[20:] == BONE)


def test_the_networks_disc_stays_where_the_ct_filled_only_small_cavities() -> None:
    """The CT bone model bridged a disc but for a few voxels and filled those as small cavities
    of its bone (``CTBone.cavities``): where the network calls them disc they stay disc, in
    ``fused`` and ``ct`` (the level count needs them: filled, L5's core merged with a
    neighbour's on 4 of 17 patient-like phantoms), and the caller's CT mask is not changed.
    Cavities the network calls bone or background are bone."""
    labels, _, _ = _case()
    net = labels.array.copy()
    net[15, 6:, 6:] = 0                              # the network's background in the disc
    labels = labels.with_array(net)
    ct_bone = np.ones(net.shape, bool)               # the disc bridged ...
    cavities = np.zeros(net.shape, np.uint8)
    cavities[14:16, 3:, 3:] = 1                      # ... its last voxels filled as cavities
    for mode in ("fused", "ct"):
        before = ct_bone.copy()
        out = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode=mode,
                           ct_cavities=cavities).array
        assert np.array_equal(ct_bone, before)
        kept = (cavities == 1) & (net == DISC)
        assert kept.any() and np.all(out[kept] == DISC)
        assert np.all(out[~kept] == BONE)
        plain = combine_bone(labels, DEFAULT_LABELS, ct_bone, mode=mode).array
        assert np.all(plain == BONE)
