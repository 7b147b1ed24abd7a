"""Sac builder: the dural sac (dura and CSF) lying on the back of the discs, ending in the sacrum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.canal import canal_point, canal_top_z
from spinect_core.phantom.builders.record import Layer, Part, Spine, box_of_points


@dataclass(frozen=True, kw_only=True)
class Sac:
    """Dural sac: centreline (n, 3), half width/depth per point (n,), sizes (mm), dura part.

    ``y_mm`` is the distance from a vertebra's posterior body wall to the sac's centre.
    """

    line: np.ndarray
    half_width: np.ndarray
    half_depth: np.ndarray
    width_mm: float
    depth_mm: float
    y_mm: float
    part: Part


def sac_offset_mm(bulge_mm: float, depth_mm: float) -> float:
    """Posterior body wall -> sac centre (mm): the sac lies on the bulging disc's back."""
    return bulge_mm + 1.0 + 0.5 * depth_mm


def build_sac(spine: Spine, *, width_mm: float, depth_mm: float, end_mm: float) -> Sac:
    """The sac from above L4 to ``end_mm`` below the S1 endplate, tapering at its end.

    Parameters
    ----------
    spine : Spine
    width_mm, depth_mm : float
        Sac cross-section (lumbar part).
    end_mm : float
        How far below the S1 superior endplate the sac ends (S1-S2).
    """
    v_l4, v_l5, v_s1 = spine["L4"], spine["L5"], spine["S1"]
    H5, H1 = v_l5.body_height_mm, v_s1.body_height_mm
    sy = sac_offset_mm(spine.disc_bulge_mm, depth_mm)
    top_z = canal_top_z(v_l4)
    ctrl = np.array([
        canal_point(v_l4, top_z, sy), canal_point(v_l4, 0.0, sy),
        canal_point(v_l5, 0.5 * H5 + 5.0, sy), canal_point(v_l5, 0.0, sy),
        canal_point(v_s1, 0.5 * H1 + 4.0, sy), canal_point(v_s1, 0.5 * H1 - 10.0, sy + 1.0),
        canal_point(v_s1, 0.5 * H1 - end_mm, sy + 2.0)])
    line = S.catmull_rom(ctrl, 6)
    taper = np.ones(len(ctrl))
    taper[-1] = 0.15
    taper[-2] = 0.9
    hw = S.resample_values(ctrl, 0.5 * width_mm * taper, line)
    hd = S.resample_values(ctrl, 0.5 * depth_mm * taper, line)
    part = Part("dura", lambda x, y, z: {"d": S.sd_elliptic_tube(x, y, z, line, hw, hd)},
                box_of_points(line, 12.0), [
                    Layer("dura", label="dura", instance="dura"),
                    Layer("csf", offset_mm=0.6, label="dura", instance="dura")])
    return Sac(line=line, half_width=hw, half_depth=hd, width_mm=width_mm, depth_mm=depth_mm,
               y_mm=sy, part=part)
