"""Per-side local frames: orthonormal, mirrored, tied to the S1 endplate."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy import LocalFrame, side_frame
from spinect_core.errors import SpinectError
from spinect_core.planning.optimise import LocalFrame as PlanningLocalFrame
from spinect_core.planning.optimise import angles_of

from .conftest import angle_deg, identified, landmarks


def test_side_frame_axes_and_handedness():
    cranial = np.array([0.0, -0.6, 0.8])
    left = np.array([1.0, 0.05, 0.02])
    fl = side_frame(origin_lps=[1, 2, 3], cranial_lps=cranial, left_lps=left, side="left")
    fr = side_frame(origin_lps=[1, 2, 3], cranial_lps=cranial, left_lps=left, side="right")
    assert np.allclose(fl.z_lps, cranial / np.linalg.norm(cranial))
    assert fl.y_lps[1] > 0.5                      # posterior = +y LPS
    assert fl.x_lps[0] > 0.9 and fr.x_lps[0] < -0.9
    assert np.allclose(fl.x_lps, -fr.x_lps) and np.allclose(fl.y_lps, fr.y_lps)
    assert fl.handedness == 1 and fr.handedness == -1
    q = np.array([[3.0, -4.0, 5.0], [0.0, 0.0, 0.0]])
    for f in (fl, fr):
        assert np.allclose(f.point_to_local(f.point_to_lps(q)), q)
        assert np.allclose(f.point_to_local(f.origin_lps), 0.0)
        # to_local maps directions (the planning frame's contract): no origin subtraction.
        assert np.allclose(f.to_local(f.x_lps), [1.0, 0.0, 0.0])
        assert np.allclose(f.vector_to_lps(f.to_local(q)), q)
        assert isinstance(f, PlanningLocalFrame)
    # The view optimiser's angles work on these frames: straight posterior is alpha = beta = 0,
    # and the same lateral tilt gives the same alpha on both sides.
    assert np.allclose(angles_of(fl, fl.y_lps), (0.0, 0.0), atol=1e-9)
    assert np.allclose(angles_of(fl, fl.y_lps + 0.5 * fl.x_lps),
                       angles_of(fr, fr.y_lps + 0.5 * fr.x_lps))
    with pytest.raises(ValueError):
        side_frame(origin_lps=[0, 0, 0], cranial_lps=cranial, left_lps=left, side="up")
    with pytest.raises(SpinectError):
        LocalFrame(origin_lps=[0, 0, 0], x_lps=[1, 0, 0], y_lps=[1, 1, 0], z_lps=[0, 0, 1])


def test_phantom_frames(phantom):
    res = identified(phantom, "instances")
    lm = landmarks(phantom)
    fl, fr = res.sides["left"].frame, res.sides["right"].frame
    for side, f in (("left", fl), ("right", fr)):
        m = f.matrix
        assert np.allclose(m.T @ m, np.eye(3), atol=1e-9)
        assert angle_deg(f.z_lps, lm["s1_superior_endplate_normal"]) <= 5.0
        assert np.allclose(f.origin_lps, res.sides[side].foramen_centre_lps)
        # x points towards its own side: the foramen of that side is lateral of the midline.
        lat = np.dot(res.sides[side].foramen_centre_lps - res.midline_point_lps, f.x_lps)
        assert lat > 10.0
    assert np.allclose(fl.x_lps, -fr.x_lps, atol=1e-9)
    assert np.allclose(fl.y_lps, fr.y_lps, atol=1e-9) and np.allclose(fl.z_lps, fr.z_lps)
    # Mirror images: the left foramen seen in the left frame matches the right one in the right
    # frame (up to the phantom's own left/right differences, a few mm).
    ql = fl.point_to_local(res.sides["left"].pedicle_lower_margin_lps)
    qr = fr.point_to_local(res.sides["right"].pedicle_lower_margin_lps)
    assert np.linalg.norm(ql - qr) <= 8.0
