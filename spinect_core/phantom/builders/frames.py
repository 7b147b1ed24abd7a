"""Frames builder: the vertebra frames S1 -> L5 -> L4 chained by the sacral slope and the disc
and body wedge angles, so lordosis, segmental angles and disc heights are exact by construction."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.params import PhantomParams


@dataclass(frozen=True, kw_only=True)
class Frames:
    """Vertebra frames (origin = body centre, z = body axis, y = posterior; patient frame, mm)
    and the wedge angles (deg) that chain them.

    ``l5_body_wedge_deg`` and ``l4_body_wedge_deg`` are the bodies' own wedges (anterior minus
    posterior height as an angle), ``*_disc_wedge_deg`` the discs'; a segmental angle is the
    sum of the disc's wedge and the upper body's.
    """

    s1: S.Frame
    l5: S.Frame
    l4: S.Frame
    l5s1_disc_wedge_deg: float
    l5_body_wedge_deg: float
    l4l5_disc_wedge_deg: float
    l4_body_wedge_deg: float
    derived: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, S.Frame]:
        return {"S1": self.s1, "L5": self.l5, "L4": self.l4}


@dataclass(frozen=True, kw_only=True)
class FrameLimits:
    """Limits on the bodies' own wedge (deg): the segmental angle not taken by the disc's wedge
    goes to the upper body, within these (a lumbar body's wedge is a few degrees; L5 is the most
    wedged lumbar body)."""

    l5_body_wedge_max_deg: float = 12.0
    l4_body_wedge_max_deg: float = 10.0


#: Default limits.
FRAME_LIMITS = FrameLimits()


def disc_wedge_deg(anterior_mm: float, posterior_mm: float, depth_mm: float) -> float:
    """Wedge angle (deg) of a disc of the given anterior/posterior heights over ``depth_mm``."""
    return np.rad2deg(np.arctan2(anterior_mm - posterior_mm, depth_mm))


def stack_frame(lower_f: S.Frame, lower_top_h: float, lower_wedge: float, wd: float, hmid: float,
                upper_wedge: float, upper_h: float, slip: float) -> S.Frame:
    """Frame of the body above ``lower_f``: a disc of mid height ``hmid`` and wedge ``wd`` (deg)
    on the lower body's top (``lower_top_h`` above its centre), shifted ``slip`` mm forwards."""
    # Upper body frame: rotate back by the disc wedge and half the upper body's wedge.
    R = lower_f.R @ S.rot_x(-(0.5 * lower_wedge + wd + 0.5 * upper_wedge))
    q = lower_f.point([0.0, -slip, lower_top_h + hmid])
    return S.Frame(R, q + R @ np.array([0.0, 0.0, 0.5 * upper_h]))


def build_frames(p: PhantomParams, limits: FrameLimits = FRAME_LIMITS) -> Frames:
    """Frames of S1, L5 and L4 from the sacral slope, disc heights and segmental angles."""
    H1 = p.s1_body_height_mm
    D1, D5, D4 = p.s1_body_depth_mm, p.l5_body_depth_mm, p.l4_body_depth_mm
    H5, H4 = p.l5_body_height_mm, p.l4_body_height_mm
    R_s1 = S.rot_x(p.sacral_slope_deg)
    f_s1 = S.Frame(R_s1, R_s1 @ np.array([0.0, 0.0, -0.5 * H1]))

    ha5, hp5 = p.disc_l5s1_anterior_mm, p.disc_l5s1_posterior_mm
    ha4, hp4 = p.disc_l4l5_anterior_mm, p.disc_l4l5_posterior_mm
    wd5 = disc_wedge_deg(ha5, hp5, 0.5 * (D1 + D5))
    wb5 = float(np.clip(p.segmental_angle_l5s1_deg - wd5, 0.0, limits.l5_body_wedge_max_deg))
    wd4 = disc_wedge_deg(ha4, hp4, 0.5 * (D5 + D4))
    wb4 = float(np.clip(p.segmental_angle_l4l5_deg - wd4, 0.0, limits.l4_body_wedge_max_deg))
    derived = dict(l5s1_disc_wedge_deg=wd5, l5_body_wedge_deg=wb5, l4l5_disc_wedge_deg=wd4,
                   l4_body_wedge_deg=wb4, segmental_angle_l5s1_deg=wd5 + wb5,
                   segmental_angle_l4l5_deg=wd4 + wb4)
    f_l5 = stack_frame(f_s1, 0.5 * H1, 0.0, wd5, 0.5 * (ha5 + hp5), wb5, H5, p.listhesis_l5_mm)
    f_l4 = stack_frame(f_l5, 0.5 * H5, wb5, wd4, 0.5 * (ha4 + hp4), wb4, H4, 0.0)
    return Frames(s1=f_s1, l5=f_l5, l4=f_l4, l5s1_disc_wedge_deg=wd5, l5_body_wedge_deg=wb5,
                  l4l5_disc_wedge_deg=wd4, l4_body_wedge_deg=wb4, derived=derived)
