"""Orientation helpers of :class:`spinect_core.volume.Volume`."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.volume import Volume


def _volume(direction: np.ndarray) -> Volume:
    return Volume(array=np.zeros((4, 5, 6), np.int16), spacing_mm=np.ones(3),
                  origin_lps_mm=np.zeros(3), direction=direction)


@pytest.mark.parametrize(("direction", "expected"), [
    (np.eye(3), (1, -1)),                                   # index y runs posterior (LPS +y)
    (np.diag([-1.0, -1.0, 1.0]), (1, 1)),                   # RAS-stored: index y runs anterior
    # Columns are the LPS directions of index x, y, z: index x runs anterior, z cranial.
    (np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), (2, 1)),
])
def test_anterior_step_names_the_antero_posterior_axis_and_its_sign(direction, expected):
    assert _volume(direction).anterior_step_zyx == expected
