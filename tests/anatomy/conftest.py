"""Phantoms shared by the anatomy tests (1.5 mm, no scanner effects: labels do not depend on them)."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.phantom import generate_phantom
from spinect_core.phantom.params import PhantomOptions

from spinect_core.anatomy import identify_lumbosacral
from spinect_core.labels import STUDY_LABELS

SEEDS = (0, 1)
_cache: dict = {}


@pytest.fixture(scope="session", params=SEEDS, ids=lambda s: f"seed{s}")
def phantom(request):
    return generate_phantom(seed=request.param, spacing_mm=(1.5, 1.5, 1.5),
                            options=PhantomOptions(blur=False, noise=False, streaks=False,
                                                   texture=False))


def landmarks(ph) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, float) for k, v in ph.meta["landmarks"].items()}


def angle_deg(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    c = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / s if s else 1.0


def identified(ph, mode: str):
    """``identify_lumbosacral`` on a phantom, cached per (seed, mode).

    ``mode``: ``"instances"`` (per-level labels), ``"labels"`` (default class map) or
    ``"bone+nerve"`` (disc and dura set to background: they become unlabelled soft tissue).
    """
    key = (ph.meta["seed"], mode)
    if key not in _cache:
        if mode == "instances":
            res = identify_lumbosacral(ph.labels, ph.label_table, instances=ph.instances,
                                       instance_table=ph.instance_table)
        elif mode == "labels":
            res = identify_lumbosacral(ph.labels, ph.label_table)
        else:
            arr = ph.labels.array.copy()
            arr[(arr == ph.label_table.id_of("disc")) | (arr == ph.label_table.id_of("dura"))] = 0
            res = identify_lumbosacral(ph.labels.with_array(arr), STUDY_LABELS)
        _cache[key] = res
    return _cache[key]


def collapsed_l5s1_disc(ph):
    """The phantom with a collapsed L5/S1 disc that its labels call bone: (labels, ct) Volumes
    (see :func:`_collapsed`)."""
    from spinect_core.anatomy.levels import derive_parts
    from spinect_core.anatomy.parts import PART_ID
    from spinect_core.labels import DEFAULT_LABELS

    return _collapsed(ph, derive_parts(ph.labels, DEFAULT_LABELS).parts == PART_ID["disc_L5S1"])


def collapsed_l4l5_disc(ph):
    """The phantom with a collapsed L4/L5 disc that its labels call bone: (labels, ct) Volumes."""
    from scipy import ndimage as ndi

    from spinect_core.labels import DEFAULT_LABELS

    pieces, _ = ndi.label(ph.labels.array == DEFAULT_LABELS.id_of("disc"))
    x, y, z = np.round(ph.labels.lps_to_index(landmarks(ph)["l4l5_disc_centre"])).astype(int)
    assert pieces[z, y, x] > 0
    return _collapsed(ph, pieces == pieces[z, y, x])


def _collapsed(ph, disc: np.ndarray):
    """``disc`` (bool, the labels' shape) labelled bone; on the CT its middle 3 mm (along z,
    column by column) is the bright plate of the two endplates (650 HU) and the rest marrow
    (220 HU): how a 3-4 mm disc looks through 3 mm slices (measured on a real-bone phantom:
    530-735 HU between marrow at 110-160 HU)."""
    from spinect_core.labels import DEFAULT_LABELS

    labels = ph.labels.array.copy()
    labels[disc] = DEFAULT_LABELS.id_of("bone")
    z = np.arange(disc.shape[0], dtype=float)[:, None, None] * ph.ct.spacing_mm[2]
    middle = (z * disc).sum(axis=0) / np.maximum(disc.sum(axis=0), 1)
    plate = disc & (np.abs(z - middle) <= 1.5)
    hu = ph.ct.array.copy()
    hu[disc] = 220
    hu[plate] = 650
    return ph.labels.with_array(labels), ph.ct.with_array(hu)
