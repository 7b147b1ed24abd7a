"""Canal builder: the spinal canal's centreline and elliptic cross-section from L4 down the
sacral canal, and the epidural fat that fills it (bone is carved out of the canal)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import Layer, Part, Spine, VertebraGeometry, box_of_points


def canal_point(v: VertebraGeometry, zl: float, y_off: float) -> np.ndarray:
    """Patient point on the midline, ``y_off`` mm behind ``v``'s posterior body wall, at local z ``zl``."""
    return v.frame.point([0.0, 0.5 * v.body_depth_mm + y_off, zl])


def canal_top_z(v_l4: VertebraGeometry) -> float:
    """Local z (L4 frame) where the sac's modelled part starts, 12 mm above L4's top."""
    return 0.5 * v_l4.body_height_mm + 12.0


@dataclass(frozen=True, kw_only=True)
class Canal:
    """Canal centreline (n, 3) and half width/depth per point (n,), patient mm, and its fat part."""

    line: np.ndarray
    half_width: np.ndarray
    half_depth: np.ndarray
    part: Part

    def fields(self, x, y, z) -> dict:
        return {"d": S.sd_elliptic_tube(x, y, z, self.line, self.half_width, self.half_depth)}


def build_canal(spine: Spine) -> Canal:
    """The canal through L4, L5 and S1, widening to the sacral canal; its width follows each
    vertebra's interpedicular distance and its depth L5's canal depth."""
    v_l4, v_l5, v_s1 = spine["L4"], spine["L5"], spine["S1"]
    canal_d = v_l5.canal_depth_mm
    cw4, cw5, cw1 = v_l4.canal_width_mm, v_l5.canal_width_mm, v_s1.canal_width_mm
    H5, H1 = v_l5.body_height_mm, v_s1.body_height_mm
    top_z = canal_top_z(v_l4)
    ctrl = np.array([
        canal_point(v_l4, top_z + 5.0, 0.5 * canal_d), canal_point(v_l4, 0.0, 0.5 * canal_d),
        canal_point(v_l5, 0.5 * H5 + 5.0, 0.5 * canal_d), canal_point(v_l5, 0.0, 0.5 * canal_d),
        canal_point(v_s1, 0.5 * H1 + 4.0, 0.5 * canal_d), canal_point(v_s1, 0.0, 0.5 * canal_d - 1.0),
        canal_point(v_s1, -0.5 * H1 - 12.0, 6.0), canal_point(v_s1, -0.5 * H1 - 40.0, 8.0)])
    line = S.catmull_rom(ctrl, 6)
    hw = S.resample_values(ctrl, 0.5 * np.array([cw4, cw4, cw5, cw5, cw5, cw1, 20.0, 14.0]), line)
    hd = S.resample_values(ctrl, 0.5 * np.array([canal_d] * 6 + [11.0, 8.0]), line)
    part = Part("canal", lambda x, y, z: {"d": S.sd_elliptic_tube(x, y, z, line, hw, hd)},
                box_of_points(line, 16.0), [Layer("fat")], cache=True)
    return Canal(line=line, half_width=hw, half_depth=hd, part=part)
