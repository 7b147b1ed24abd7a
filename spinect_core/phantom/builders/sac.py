"""Sac builder: the dural sac (dura and CSF) lying on the back of the discs, ending in the sacrum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.canal import CANAL, canal_point, canal_top_z
from spinect_core.phantom.builders.record import Layer, Part, Spine, box_of_points


@dataclass(frozen=True, kw_only=True)
class SacShape:
    """Fixed shape of the dural sac (mm); its width, depth and end come from the caller."""

    #: Epidural gap between the bulging disc's back and the sac's front (a thin fat layer).
    disc_gap_mm: float = 1.0
    #: The sac starts this far above L4's superior endplate centre (as the canal, which holds it).
    top_above_l4_mm: float = CANAL.top_above_l4_mm
    #: Control points above the L5 and S1 endplates (the disc levels).
    above_l5_mm: float = 5.0
    above_s1_mm: float = 4.0
    #: A point this far below the S1 endplate, where the thecal sac starts to narrow.
    narrowing_below_s1_mm: float = 10.0
    #: In the sacrum the sac moves back with the canal: extra distance behind the posterior
    #: wall at the narrowing point and at the end.
    sacral_backwards_mm: tuple[float, float] = (1.0, 2.0)
    #: Cross-section scale at the narrowing point and at the end (the sac tapers to the filum).
    taper: tuple[float, float] = (0.9, 0.15)
    #: Thickness of the dura: CSF lies this far inside the sac's surface.
    dura_mm: float = 0.6
    #: Box margin around the centreline.
    box_margin_mm: float = 12.0


#: Default sac shape.
SAC = SacShape()


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


def sac_offset_mm(bulge_mm: float, depth_mm: float, gap_mm: float = SAC.disc_gap_mm) -> float:
    """Posterior body wall -> sac centre (mm): the sac lies on the bulging disc's back."""
    return bulge_mm + gap_mm + 0.5 * depth_mm


def build_sac(spine: Spine, *, width_mm: float, depth_mm: float, end_mm: float,
              shape: SacShape = SAC) -> Sac:
    """The sac from above L4 to ``end_mm`` below the S1 endplate, tapering at its end.

    Parameters
    ----------
    spine : Spine
    width_mm, depth_mm : float
        Sac cross-section (lumbar part).
    end_mm : float
        How far below the S1 superior endplate the sac ends (S1-S2).
    shape : SacShape
    """
    k = shape
    v_l4, v_l5, v_s1 = spine["L4"], spine["L5"], spine["S1"]
    H5, H1 = v_l5.body_height_mm, v_s1.body_height_mm
    sy = sac_offset_mm(spine.disc_bulge_mm, depth_mm, k.disc_gap_mm)
    top_z = canal_top_z(v_l4, k.top_above_l4_mm)
    back_mid, back_end = k.sacral_backwards_mm
    ctrl = np.array([
        canal_point(v_l4, top_z, sy), canal_point(v_l4, 0.0, sy),
        canal_point(v_l5, 0.5 * H5 + k.above_l5_mm, sy), canal_point(v_l5, 0.0, sy),
        canal_point(v_s1, 0.5 * H1 + k.above_s1_mm, sy),
        canal_point(v_s1, 0.5 * H1 - k.narrowing_below_s1_mm, sy + back_mid),
        canal_point(v_s1, 0.5 * H1 - end_mm, sy + back_end)])
    line = S.catmull_rom(ctrl, 6)
    taper = np.ones(len(ctrl))
    taper[-1] = k.taper[1]
    taper[-2] = k.taper[0]
    hw = S.resample_values(ctrl, 0.5 * width_mm * taper, line)
    hd = S.resample_values(ctrl, 0.5 * depth_mm * taper, line)
    part = Part("dura", lambda x, y, z: {"d": S.sd_elliptic_tube(x, y, z, line, hw, hd)},
                box_of_points(line, k.box_margin_mm), [
                    Layer("dura", label="dura", instance="dura"),
                    Layer("csf", offset_mm=k.dura_mm, label="dura", instance="dura")])
    return Sac(line=line, half_width=hw, half_depth=hd, width_mm=width_mm, depth_mm=depth_mm,
               y_mm=sy, part=part)
