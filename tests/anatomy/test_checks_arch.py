"""The warning for an L5 whose posterior arch the derived parts cut short (the lower half given to
S1 through a facet joint that thick bone labels fill)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.checks import ARCH_POSTERIOR_MM, short_arch_warnings
from spinect_core.anatomy.landmarks import CoreLandmarks
from spinect_core.anatomy.parts import PART_ID

from .conftest import identified


def _core(anatomy) -> CoreLandmarks:
    return CoreLandmarks(**{f.name: getattr(anatomy, f.name) for f in fields(CoreLandmarks)})


def test_a_whole_l5_arch_is_not_warned_of(phantom) -> None:
    anatomy = identified(phantom, "instances")
    assert short_arch_warnings(phantom.labels, anatomy.parts.array, _core(anatomy)) == []


def test_l5s_lower_arch_given_to_s1_is_warned_of_on_that_side(phantom) -> None:
    anatomy = identified(phantom, "instances")
    core = _core(anatomy)
    parts = anatomy.parts.array.copy()
    l5 = parts == PART_ID["L5"]
    pts = G.voxel_points(phantom.labels, l5)
    normal = core.s1_endplate_normal_lps
    post = np.cross(normal, G.orthogonal_part(core.midline_normal_lps, normal))
    h = (pts - core.s1_endplate_centre_lps) @ normal
    behind = (pts - core.disc_centre_lps) @ post > ARCH_POSTERIOR_MM
    left = (pts - core.midline_point_lps) @ core.midline_normal_lps > 0
    # The left arch below 2 mm over the S1 endplate goes to S1, as the watershed does when the
    # facet joint is filled and the arch splits at the pars interarticularis.
    moved = behind & left & (h < 2.0)
    assert moved.any()
    zz, yy, xx = np.nonzero(l5)
    parts[zz[moved], yy[moved], xx[moved]] = PART_ID["S1"]
    warnings = short_arch_warnings(phantom.labels, parts, core)
    assert len(warnings) == 1 and "on the left side" in warnings[0], warnings
