"""Small vector helpers shared by the geometry modules."""

from __future__ import annotations

from typing import Any

import numpy as np


def unit(v: Any, what: str = "vector") -> np.ndarray:
    """``v`` as a float64 (3,) unit vector; ``ValueError`` naming ``what`` for a zero, non-finite
    or wrongly shaped input."""
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    n = float(np.linalg.norm(a)) if a.shape == (3,) else float("nan")
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"{what} must be a non-zero 3-vector, got {a.tolist()}")
    return a / n
