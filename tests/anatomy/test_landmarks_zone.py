"""The foraminal zone's landmarks on the bone itself (issue 12 follow-up).

The body's lateral border is the raw L5 bone's lateral edge below the pedicle (not the opened
body's, which the 8.5 mm ball rounds off), and the foramen centre lies above the S1 superior
endplate (the floor of Kambin's triangle).
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy import geometry as G

from .conftest import identified


@pytest.mark.parametrize("side", ["left", "right"])
def test_lateral_border_is_the_raw_bodys_edge_below_the_pedicle(phantom, side):
    res = identified(phantom, "labels")
    sa = res.sides[side]
    frame = sa.frame
    border = frame.point_to_local(sa.vertebral_body_lateral_border_lps)
    wall_y = float(frame.point_to_local(sa.posterior_wall_lps)[1])
    low_z = float(frame.point_to_local(sa.pedicle_lower_margin_lps)[2])
    l5_z = float(frame.point_to_local(res.l5_endplate_centre_lps)[2])
    q = frame.point_to_local(G.voxel_points(res.parts, res.mask("L5")))
    # L5 bone in front of the body's posterior wall, from the inferior endplate up to the
    # pedicle: the body only (local x points laterally on both sides).
    body = q[(q[:, 1] <= wall_y - 3.0) & (q[:, 2] >= l5_z - 1.0) & (q[:, 2] <= low_z)]
    assert len(body) > 50
    half_voxel = 0.5 * float(res.parts.spacing_mm.max())
    edge = float(body[:, 0].max())
    # No body bone lies lateral of the border, and the border is at the bone's edge, not
    # millimetres inside it (the opened body's border was 1.5-3 mm medial on these phantoms).
    assert border[0] >= edge - half_voxel, (border[0], edge)
    assert border[0] <= edge + 2.5 + half_voxel, (border[0], edge)
    assert l5_z - 1.0 - half_voxel <= border[2] <= max(low_z, l5_z + 3.0) + half_voxel


@pytest.mark.parametrize("side", ["left", "right"])
def test_foramen_centre_lies_above_the_s1_endplate_below_the_pedicle(phantom, side):
    res = identified(phantom, "labels")
    sa = res.sides[side]
    frame = sa.frame  # origin at the foramen centre, z along the S1 endplate normal
    endplate_z = float(frame.point_to_local(res.s1_endplate_centre_lps)[2])
    low_z = float(frame.point_to_local(sa.pedicle_lower_margin_lps)[2])
    assert endplate_z < 0.0 < low_z, (endplate_z, low_z)
    # Midway between the pedicle and the S1 bone under it, which is not below the endplate.
    assert low_z <= -endplate_z + 1e-6, (endplate_z, low_z)
    assert np.isfinite(sa.foramen_centre_lps).all()
