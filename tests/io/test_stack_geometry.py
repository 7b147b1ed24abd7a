"""Pure geometry of slice stacks: regular, irregular, tilted."""

import numpy as np
import pytest

from spinect_core.errors import InconsistentSeriesError, MissingSlicesError
from spinect_core.io.stack_geometry import plan_stack, resample_stack

R, C = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])


def test_regular_stack_needs_nothing_and_tolerates_rounding():
    pos = np.outer(np.arange(10) * 2.5, [0, 0, 1]) + np.random.default_rng(0).normal(0, 0.01, (10, 3))
    plan = plan_stack(pos[::-1], R, C, (1, 1), (4, 4))
    assert not plan.needs_resampling and plan.warnings == []
    assert plan.spacing_mm[2] == pytest.approx(2.5, abs=0.01)
    assert list(plan.order) == list(range(9, -1, -1))


def test_irregular_within_policy_interpolates_linearly():
    s = np.array([0, 2, 4, 8, 10, 12.0])
    pos = np.outer(s, [0, 0, 1])
    plan = plan_stack(pos, R, C, (1, 1), (2, 2))
    assert plan.out_shape == (7, 2, 2)
    slices = np.broadcast_to(s[:, None, None], (6, 2, 2)).astype(np.float32)
    out = resample_stack(slices, plan)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(7) * 2.0)


def test_gap_beyond_ratio_refused():
    pos = np.outer([0, 2, 4, 10, 12.0], [0, 0, 1])
    with pytest.raises(MissingSlicesError, match="3.0x"):
        plan_stack(pos, R, C, (1, 1), (2, 2))


def test_non_perpendicular_orientation_refused():
    with pytest.raises(InconsistentSeriesError):
        plan_stack(np.outer([0, 1, 2.0], [0, 0, 1]), R, np.array([0.3, 1, 0]), (1, 1), (2, 2))


def test_tilt_shifts_each_slice_in_plane():
    # steps of 1 mm along z plus 0.5 mm along y: tilt atan(0.5) = 26.57 degrees
    pos = np.array([[0, 0.5 * k, k] for k in range(5)], float)
    plan = plan_stack(pos, R, C, (1, 1), (3, 3))
    assert plan.tilt_deg == pytest.approx(np.degrees(np.arctan(0.5)))
    assert plan.out_shape == (5, 5, 3)  # y grows by the 2 mm total in-plane shift
    slices = np.zeros((5, 3, 3), np.float32)
    slices[:, 1, 1] = 100  # a line through the slice centres: y = 1 + 0.5 k in world
    out = resample_stack(slices, plan, fill_value=-1024)
    for k in range(5):
        world_y = plan.origin_lps_mm[1] + np.arange(5)
        profile = out[k, :, 1]
        assert np.sum(profile * (profile > 0) * world_y) / np.sum(profile * (profile > 0)) == \
            pytest.approx(1 + 0.5 * k)
    assert out.min() == -1024
