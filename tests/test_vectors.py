"""Unit vectors (the two documented answers to a zero vector) and the one LocalFrame."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.vectors import LocalFrame, unit, unit_or_zero


def test_unit_normalises_and_raises_the_callers_error_on_a_zero_vector() -> None:
    np.testing.assert_allclose(unit([3.0, 0.0, 4.0]), [0.6, 0.0, 0.8])
    assert unit(np.array([[0.0, 2.0, 0.0]])).shape == (3,)
    for bad in ([0.0, 0.0, 0.0], [1e-12, 0.0, 0.0], [np.nan, 1.0, 0.0], [np.inf, 0.0, 0.0],
                [1.0, 0.0]):
        with pytest.raises(ValueError, match="view direction"):
            unit(bad, "view direction")
    with pytest.raises(InputError, match="up vector"):
        unit([0, 0, 0], "up vector", error=InputError)
    # The minimum length is the caller's: a DICOM orientation shorter than 1e-6 is broken.
    with pytest.raises(ValueError):
        unit([1e-7, 0.0, 0.0], min_norm=1e-6)
    np.testing.assert_allclose(unit([1e-7, 0.0, 0.0]), [1.0, 0.0, 0.0])


def test_unit_or_zero_returns_zeros_and_never_nan() -> None:
    np.testing.assert_allclose(unit_or_zero([0.0, 3.0]), [0.0, 1.0])  # 2D works too
    z = unit_or_zero(np.zeros(3))
    assert z.shape == (3,) and not np.any(z) and np.all(np.isfinite(z))
    assert not np.any(unit_or_zero([1e-13, 0.0, 0.0]))


def test_one_local_frame_everywhere() -> None:
    from spinect_core.anatomy import LocalFrame as AnatomyFrame
    from spinect_core.anatomy.frames import LocalFrame as FramesFrame
    from spinect_core.planning.optimise import LocalFrame as PlanningFrame

    assert AnatomyFrame is FramesFrame is PlanningFrame is LocalFrame
    mirrored = LocalFrame(origin_lps=[1, 2, 3], x_lps=[-1, 0, 0], y_lps=[0, 1, 0], z_lps=[0, 0, 1])
    assert mirrored.handedness == -1
    p = np.array([[4.0, 5.0, 6.0]])
    np.testing.assert_allclose(mirrored.point_to_local(p), [[-3.0, 3.0, 3.0]])
    np.testing.assert_allclose(mirrored.point_to_lps(mirrored.point_to_local(p)), p)
    np.testing.assert_allclose(mirrored.to_local([1.0, 0.0, 0.0]), [-1.0, 0.0, 0.0])  # no origin
    with pytest.raises(InputError):
        LocalFrame(origin_lps=[0, 0, 0], x_lps=[1, 0, 0], y_lps=[1, 1, 0], z_lps=[0, 0, 1])
