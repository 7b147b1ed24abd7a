"""Decision weights: per-class factors on the probabilities before the argmax, fitted on
validation cases.

A network trained with class-weighted cross-entropy and a Dice term tends to over-predict rare
classes (a thin nerve comes out a little too thick): its probabilities are not calibrated to the
argmax. Scaling each class's probability by a factor before the argmax, with the factors chosen
to maximise the mean foreground Dice on **validation** cases (never the test cases), corrects
that without retraining. The factors travel in the model card (``decision_weights``) and
:class:`spinect_core.segment.Segmenter` applies them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spinect_core.labels import LabelTable

__all__ = ["fit_decision_weights", "mean_dice"]

#: Factors tried for each class (a geometric ladder around 1).
DEFAULT_LADDER = tuple(float(v) for v in np.geomspace(0.01, 2.0, 24))


def _crop(probabilities: np.ndarray, reference: np.ndarray, margin: int = 2
          ) -> tuple[np.ndarray, np.ndarray]:
    """The box that holds every voxel a factor could change (foreground likely or labelled)."""
    active = (probabilities[1:].max(axis=0) > 0.01) | (reference > 0)
    if not active.any():
        return probabilities[:, :1, :1, :1], reference[:1, :1, :1]
    idx = np.nonzero(active)
    box = tuple(slice(max(int(i.min()) - margin, 0), int(i.max()) + margin + 1) for i in idx)
    return probabilities[(slice(None),) + box], reference[box]


def mean_dice(probabilities: Sequence[np.ndarray], references: Sequence[np.ndarray],
              factors: np.ndarray) -> float:
    """Mean over cases and foreground classes of the Dice of ``argmax(factors * p)``.

    Parameters
    ----------
    probabilities : sequence of np.ndarray, each (C, z, y, x)
        Per-class probabilities of a case.
    references : sequence of np.ndarray, each (z, y, x)
        Reference class ids (values >= C, e.g. 255 = unlabelled, are ignored).
    factors : np.ndarray, (C,)
    """
    scores = []
    for p, ref in zip(probabilities, references):
        c = p.shape[0]
        pred = np.argmax(p * factors.reshape(-1, 1, 1, 1).astype(p.dtype), axis=0)
        labelled = ref < c
        for k in range(1, c):
            a, b = (pred == k) & labelled, ref == k
            denom = int(a.sum()) + int(b.sum())
            if denom:
                scores.append(2.0 * int((a & b).sum()) / denom)
    return float(np.mean(scores)) if scores else 0.0


def fit_decision_weights(probabilities: Sequence[np.ndarray], references: Sequence[np.ndarray],
                         table: LabelTable, *, ladder: Sequence[float] = DEFAULT_LADDER,
                         passes: int = 2, match_volume: Sequence[str] = ()
                         ) -> tuple[dict[str, float], float, float]:
    """Coordinate ascent of one factor per foreground class (background stays 1).

    Classes named in ``match_volume`` then get, instead, the factor whose predicted volume is
    closest to the reference volume (summed over the cases). Dice is nearly flat in a class's
    boundary position, but a planner is not: a bone surface one voxel too far out blocks the
    thin windows next to it.

    Parameters
    ----------
    probabilities : sequence of np.ndarray, each (C, z, y, x)
        Validation cases' probabilities on their reference grids (float16 or float32).
    references : sequence of np.ndarray, each (z, y, x)
        Their reference label maps (the table's ids).
    table : LabelTable
        Names of the classes (the keys of the result).
    ladder : sequence of float
        Factors tried per class and pass.
    passes : int
        Rounds over the classes.
    match_volume : sequence of str
        Classes whose factor equalises predicted and reference volumes.

    Returns
    -------
    (dict, float, float)
        ``{class name: factor}`` for the classes whose factor is not 1, the mean foreground Dice
        before and after.
    """
    cropped = [_crop(np.asarray(p), np.asarray(r)) for p, r in zip(probabilities, references)]
    probs = [c[0] for c in cropped]
    refs = [c[1] for c in cropped]
    n = table.num_classes
    factors = np.ones(n, np.float32)
    before = best = mean_dice(probs, refs, factors)
    for _ in range(int(passes)):
        for k in range(1, n):
            for value in ladder:
                trial = factors.copy()
                trial[k] = value
                score = mean_dice(probs, refs, trial)
                if score > best + 1e-6:
                    best, factors = score, trial
    for name in match_volume:
        k = table.id_of(name)
        true_volume = sum(int((r == k).sum()) for r in refs)

        def volume_error(value: float) -> float:
            trial = factors.copy()
            trial[k] = value
            predicted = sum(int((np.argmax(p * trial.reshape(-1, 1, 1, 1).astype(p.dtype), axis=0)
                                 == k).sum()) for p in probs)
            return abs(predicted / max(true_volume, 1) - 1.0)

        factors[k] = min(ladder, key=volume_error)
    best = mean_dice(probs, refs, factors)
    weights = {table.name_of(k): round(float(factors[k]), 4) for k in range(1, n)
               if abs(float(factors[k]) - 1.0) > 1e-6}
    return weights, before, best
