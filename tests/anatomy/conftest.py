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
