"""Phantom cases for the bone-agreement tests (shared with the report, CLI and app tests)."""

from __future__ import annotations

import functools

import numpy as np

from spinect_core.labels import DEFAULT_LABELS

#: A seed whose 1.5 mm phantom's CT bone model finds L4, L5 and the sacrum (about 7 s to build;
#: at 2 mm the CT bone model takes the phantom's coarse bone for contrast pools).
SEED = 2
SPACING_MM = (1.5, 1.5, 1.5)


@functools.lru_cache(maxsize=1)
def phantom_case():
    """(phantom, CT bone model result) of the coarse test phantom, built once per test run
    (callers must not modify them)."""
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.phantom import generate_phantom

    ph = generate_phantom(seed=SEED, spacing_mm=SPACING_MM)
    return ph, segment_bone_from_ct(ph.ct)


def without_l5_body(ph) -> np.ndarray:
    """The phantom's true bone (bool, (z, y, x)) with the L5 vertebral body removed.

    The instance labels give the whole L5 vertebra; its body is the part more than 6 mm in front
    of the pedicle centres (LPS +y is posterior), most of the vertebra's bone.
    """
    truth = ph.labels.array == DEFAULT_LABELS.id_of("bone")
    lm = ph.meta["landmarks"]
    pedicle_y = 0.5 * (lm["l5_pedicle_centre_left"][1] + lm["l5_pedicle_centre_right"][1])
    zz, yy, xx = np.nonzero(truth & (ph.instances.array == ph.instance_table.id_of("L5")))
    y = ph.ct.index_to_lps(np.stack([xx, yy, zz], axis=1).astype(float))[:, 1]
    body = y < pedicle_y - 6.0
    if body.sum() <= 0.4 * len(y):
        raise AssertionError("the L5 body should be most of the vertebra's bone")
    out = truth.copy()
    out[zz[body], yy[body], xx[body]] = False
    return out


def truth_as_ct_bone(ph):
    """A :class:`CTBone` whose mask is the phantom's true bone: for tests of the check's wiring
    that must not depend on the CT bone model's accuracy (or run it)."""
    from spinect_core.bone import CTBone

    truth = (ph.labels.array == DEFAULT_LABELS.id_of("bone")).astype(np.uint8)
    return CTBone(mask=ph.ct.with_array(truth),
                  thresholds_hu={"soft_tissue_peak": 40.0, "noise_sd": 10.0, "seed": 300.0,
                                 "grow": 150.0})
