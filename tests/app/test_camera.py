"""View directions in LPS: camera pose with the cranial axis up, description."""

from __future__ import annotations

import numpy as np
import pytest

from app.camera import POSTERIOR_VIEW, describe_direction, direction_of, pose_for_direction


@pytest.mark.parametrize("d", [POSTERIOR_VIEW, (0.5, -1.0, 0.2), (-0.3, -1.0, -0.4),
                               (1.0, 0.0, 0.0)])
def test_pose_looks_along_direction_with_head_up(d) -> None:
    focal = np.array([10.0, -20.0, 30.0])
    pose = pose_for_direction(d, focal, 200.0)
    unit = np.asarray(d, float) / np.linalg.norm(d)
    np.testing.assert_allclose(direction_of(pose.position, pose.focal_point), unit, atol=1e-12)
    assert np.linalg.norm(pose.position - focal) == pytest.approx(200.0)
    assert abs(np.dot(pose.view_up, unit)) < 1e-12
    assert pose.view_up[2] > 0  # cranial is up on screen


def test_axial_view_falls_back_to_anterior_up() -> None:
    pose = pose_for_direction((0, 0, -1), np.zeros(3), 100.0)
    np.testing.assert_allclose(pose.view_up, (0, -1, 0), atol=1e-12)


def test_zero_direction_is_refused() -> None:
    with pytest.raises(ValueError):
        pose_for_direction((0, 0, 0), np.zeros(3), 1.0)


def test_describe_direction() -> None:
    # The core's C-arm words (spinect_core.planning.carm; tests/app/test_carm_words.py).
    assert describe_direction(POSTERIOR_VIEW) == "straight PA, no tilt"
    # Looking in from the patient's left, behind (detector over the left): left oblique.
    a = np.radians(25)
    text = describe_direction((-np.sin(a), -np.cos(a), 0.0))
    assert text == "25.0° ipsilateral (left) oblique, no tilt"
    assert describe_direction((-np.sin(a), -np.cos(a), 0.0), "right").startswith(
        "25.0° contralateral (contra-right) oblique")
    # Looking caudally into the back: the detector leans to the head, a cranial tilt.
    assert "cranial tilt" in describe_direction((0.0, -1.0, -0.2))
