"""Deterministic train / validation / test splits of case ids.

The study split 50 CTs 32 : 8 : 10. :func:`kfold_splits` generalises that to K folds: the cases are
shuffled once with a fixed seed and cut into K nearly equal test folds (fold i is the test set of
split i, so the test sets are disjoint and together cover every case); of the remaining cases a
fixed fraction (``val_fraction=0.2``: 8 of 40) is the validation set, the rest is trained on. With
five folds of 50 cases every split is exactly the study's 32 : 8 : 10.

``folds=1`` means no test set: only train and validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Split", "kfold_splits", "split_for_fold"]


@dataclass(frozen=True, kw_only=True)
class Split:
    """One split of the cases.

    Attributes
    ----------
    fold : int
        Index of this split (0-based).
    folds : int
        Number of splits.
    seed : int
        Shuffling seed.
    train, val, test : tuple of str
        Case ids, each sorted; pairwise disjoint.
    """

    fold: int
    folds: int
    seed: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written as ``split.json`` and into the model card)."""
        return {"fold": self.fold, "folds": self.folds, "seed": self.seed,
                "train": list(self.train), "val": list(self.val), "test": list(self.test)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Split":
        return cls(fold=int(data["fold"]), folds=int(data["folds"]), seed=int(data["seed"]),
                   train=tuple(data["train"]), val=tuple(data["val"]), test=tuple(data["test"]))

    @property
    def counts(self) -> str:
        """``"32:8:10"``."""
        return f"{len(self.train)}:{len(self.val)}:{len(self.test)}"


def kfold_splits(case_ids: Sequence[str], *, folds: int = 5, seed: int = 0,
                 val_fraction: float = 0.2) -> list[Split]:
    """K train/val/test splits with disjoint test folds (see the module docstring).

    Parameters
    ----------
    case_ids : sequence of str
        Unique ids; their order does not matter (they are sorted before shuffling).
    folds : int
        K >= 1; ``1`` gives one split without a test set. K must not exceed the number of cases.
    seed : int
        Seed of the one shuffle (``numpy.random.default_rng(seed).permutation``).
    val_fraction : float
        Fraction of the non-test cases used for validation, rounded to the nearest integer, at
        least 1 when two or more non-test cases remain (0 <= val_fraction < 1).

    Returns
    -------
    list of Split
        ``folds`` splits.

    Raises
    ------
    ValueError
        Duplicate ids, too few cases for K folds, or an invalid fraction.
    """
    ids = sorted(str(c) for c in case_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be unique")
    folds = int(folds)
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    if folds > 1 and folds > len(ids):
        raise ValueError(f"{folds} folds need at least {folds} cases, got {len(ids)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    test_folds = [order[i::folds] for i in range(folds)] if folds > 1 else [[]]
    splits = []
    for k, test in enumerate(test_folds):
        rest = [c for c in order if c not in set(test)]  # keeps the shuffled order
        n_val = int(round(val_fraction * len(rest)))
        if val_fraction > 0 and len(rest) >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, max(len(rest) - 1, 0))
        splits.append(Split(fold=k, folds=folds, seed=seed, train=tuple(sorted(rest[n_val:])),
                            val=tuple(sorted(rest[:n_val])), test=tuple(sorted(test))))
    return splits


def split_for_fold(case_ids: Sequence[str], *, folds: int = 5, fold: int = 0, seed: int = 0,
                   val_fraction: float = 0.2) -> Split:
    """Split ``fold`` of :func:`kfold_splits` (raises ``ValueError`` when out of range)."""
    if not 0 <= int(fold) < max(int(folds), 1):
        raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
    return kfold_splits(case_ids, folds=folds, seed=seed, val_fraction=val_fraction)[int(fold)]
