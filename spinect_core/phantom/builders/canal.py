"""Canal builder: the spinal canal's centreline and elliptic cross-section from L4 down the
sacral canal, and the epidural fat that fills it (bone is carved out of the canal)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import Layer, Part, Spine, VertebraGeometry, box_of_points


@dataclass(frozen=True, kw_only=True)
class CanalShape:
    """Fixed shape of the canal (mm); its width and depth come from the vertebrae.

    The centreline runs through control points on the midline behind the posterior body walls:
    above L4, at the L4 and L5 body centres and above their tops, above and at the S1 body
    centre, then down the sacral canal, which narrows and moves forwards (closer to the
    posterior body wall) as the sacrum curves.
    """

    #: Where the modelled canal and sac start: this far above L4's superior endplate centre
    #: (local z), so they leave the field of view at its top.
    top_above_l4_mm: float = 12.0
    #: The canal starts this much higher still than the sac, so the sac's cap is inside it.
    top_above_sac_mm: float = 5.0
    #: Control points above the L5 and S1 endplates (local z): the disc levels, where the
    #: canal runs behind the discs.
    above_l5_mm: float = 5.0
    above_s1_mm: float = 4.0
    #: At the S1 body centre the canal lies 1 mm further forward (the sacral canal's roof dips).
    s1_forward_mm: float = 1.0
    #: Sacral canal points: depth below S1's inferior endplate (local z) and distance behind
    #: the posterior wall, ``(below, behind)`` for S2 and S3.
    sacral_points_mm: tuple[tuple[float, float], ...] = ((12.0, 6.0), (40.0, 8.0))
    #: Sacral canal (width, depth) at the S2 and S3 points (the hiatus narrows).
    sacral_size_mm: tuple[tuple[float, float], ...] = ((20.0, 11.0), (14.0, 8.0))
    #: Box margin around the centreline (largest half size + clearance).
    box_margin_mm: float = 16.0


#: Default canal shape.
CANAL = CanalShape()


def canal_point(v: VertebraGeometry, zl: float, y_off: float) -> np.ndarray:
    """Patient point on the midline, ``y_off`` mm behind ``v``'s posterior body wall, at local z ``zl``."""
    return v.frame.point([0.0, 0.5 * v.body_depth_mm + y_off, zl])


def canal_top_z(v_l4: VertebraGeometry, above_mm: float = CANAL.top_above_l4_mm) -> float:
    """Local z (L4 frame) where the sac's modelled part starts, ``above_mm`` above L4's top."""
    return 0.5 * v_l4.body_height_mm + above_mm


@dataclass(frozen=True, kw_only=True)
class Canal:
    """Canal centreline (n, 3) and half width/depth per point (n,), patient mm, and its fat part."""

    line: np.ndarray
    half_width: np.ndarray
    half_depth: np.ndarray
    part: Part

    def fields(self, x, y, z) -> dict:
        return {"d": S.sd_elliptic_tube(x, y, z, self.line, self.half_width, self.half_depth)}


def build_canal(spine: Spine, shape: CanalShape = CANAL) -> Canal:
    """The canal through L4, L5 and S1, widening to the sacral canal; its width follows each
    vertebra's interpedicular distance and its depth L5's canal depth."""
    k = shape
    v_l4, v_l5, v_s1 = spine["L4"], spine["L5"], spine["S1"]
    canal_d = v_l5.canal_depth_mm
    cw4, cw5, cw1 = v_l4.canal_width_mm, v_l5.canal_width_mm, v_s1.canal_width_mm
    H5, H1 = v_l5.body_height_mm, v_s1.body_height_mm
    top_z = canal_top_z(v_l4, k.top_above_l4_mm)
    (below2, behind2), (below3, behind3) = k.sacral_points_mm
    (w2, d2), (w3, d3) = k.sacral_size_mm
    ctrl = np.array([
        canal_point(v_l4, top_z + k.top_above_sac_mm, 0.5 * canal_d),
        canal_point(v_l4, 0.0, 0.5 * canal_d),
        canal_point(v_l5, 0.5 * H5 + k.above_l5_mm, 0.5 * canal_d),
        canal_point(v_l5, 0.0, 0.5 * canal_d),
        canal_point(v_s1, 0.5 * H1 + k.above_s1_mm, 0.5 * canal_d),
        canal_point(v_s1, 0.0, 0.5 * canal_d - k.s1_forward_mm),
        canal_point(v_s1, -0.5 * H1 - below2, behind2), canal_point(v_s1, -0.5 * H1 - below3, behind3)])
    line = S.catmull_rom(ctrl, 6)
    hw = S.resample_values(ctrl, 0.5 * np.array([cw4, cw4, cw5, cw5, cw5, cw1, w2, w3]), line)
    hd = S.resample_values(ctrl, 0.5 * np.array([canal_d] * 6 + [d2, d3]), line)
    part = Part("canal", lambda x, y, z: {"d": S.sd_elliptic_tube(x, y, z, line, hw, hd)},
                box_of_points(line, k.box_margin_mm), [Layer("fat")], cache=True)
    return Canal(line=line, half_width=hw, half_depth=hd, part=part)
