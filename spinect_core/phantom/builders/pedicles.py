"""Pedicles builder: pedicle heights placed from the sampled foramen heights, canal widths, and
the three procedural vertebrae (L4, L5, S1) on their frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom.builders.frames import Frames
from spinect_core.phantom.builders.record import SIDES, Spine
from spinect_core.phantom.builders.vertebra import Vertebra
from spinect_core.phantom.params import PhantomParams


@dataclass(frozen=True, kw_only=True)
class Vertebrae:
    """The procedural vertebrae and the canal size they share (mm)."""

    l4: Vertebra
    l5: Vertebra
    s1: Vertebra
    #: Sagittal depth of the lumbar canal (at least the sac's depth + disc bulge + 4 mm).
    canal_depth_mm: float
    derived: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Vertebra]:
        return {"L4": self.l4, "L5": self.l5, "S1": self.s1}


@dataclass(frozen=True, kw_only=True)
class VertebraeShape:
    """Fixed sizes of the procedural vertebrae (mm, deg); the others are sampled."""

    #: The canal is at least this much deeper than the sac plus the disc bulge (epidural fat
    #: behind the sac).
    canal_depth_margin_mm: float = 4.0
    #: Interpedicular distance of L4 and S1 relative to L5's (it widens caudally).
    l4_canal_width_change_mm: float = -1.5
    s1_canal_width_change_mm: float = 4.0
    #: A pedicle's lower margin stays this far above its body's inferior endplate centre, its
    #: upper margin this far below the superior one.
    pedicle_floor_mm: float = 5.0
    pedicle_ceiling_mm: float = 1.0
    #: The foramen's height (L5 pedicle to S1 pedicle) includes the 1 mm the S1 pedicle's top
    #: lies below the S1 endplate (next field).
    s1_pedicle_top_below_endplate_mm: float = 1.0
    #: S1 pedicle height and convergence (the sacral pedicle is short and stout).
    s1_pedicle_height_mm: float = 14.0
    s1_pedicle_convergence_deg: float = 15.0
    #: How much the transverse process's tip rises above the pedicle/lamina junction.
    l4_transverse_rise_mm: float = 1.0
    l5_transverse_rise_mm: float = 4.0
    #: Spinous process length relative to the sampled one (L4's is longer than L5's).
    l4_spinous_change_mm: float = 2.0
    l5_spinous_change_mm: float = -3.0


#: Default vertebra sizes.
VERTEBRAE = VertebraeShape()


def build_vertebrae(p: PhantomParams, frames: Frames, shape: VertebraeShape = VERTEBRAE) -> Vertebrae:
    """L4, L5 and S1 with pedicles whose lower margins give the sampled foramen heights."""
    k = shape
    W1, D1, H1 = p.s1_body_width_mm, p.s1_body_depth_mm, p.s1_body_height_mm
    W5, D5, H5 = p.l5_body_width_mm, p.l5_body_depth_mm, p.l5_body_height_mm
    W4, D4, H4 = p.l4_body_width_mm, p.l4_body_depth_mm, p.l4_body_height_mm
    hp5, hp4 = p.disc_l5s1_posterior_mm, p.disc_l4l5_posterior_mm
    wb5, wb4 = frames.l5_body_wedge_deg, frames.l4_body_wedge_deg
    derived: dict[str, object] = {}

    # --- canal --------------------------------------------------------------------------------
    bulge = p.disc_bulge_mm
    sac_d = p.dural_sac_depth_mm
    canal_d = max(p.canal_depth_mm, sac_d + bulge + k.canal_depth_margin_mm)
    cw5 = p.canal_width_mm
    cw4 = cw5 + k.l4_canal_width_change_mm
    cw1 = cw5 + k.s1_canal_width_change_mm
    derived["canal_depth_mm"] = canal_d

    # --- pedicle heights from the foramen heights ------------------------------------------------
    gap = k.s1_pedicle_top_below_endplate_mm
    lo, hi = k.pedicle_floor_mm, k.pedicle_ceiling_mm
    s1_ped_top = 0.5 * H1 - gap
    ped_bottom5, ped_bottom4, fh5, fh4 = [], [], [], []
    for side, _n, _s in SIDES:
        h5 = p.l5_pedicle_height_mm[side]
        # Foramen height = L5 pedicle bottom -> S1 pedicle top, through the posterior disc.
        post_edge5 = 0.5 * D5 * np.tan(np.deg2rad(wb5) / 2)
        zb = -0.5 * H5 + post_edge5 + (p.foramen_height_l5s1_mm[side] - hp5 - gap)
        zb = float(np.clip(zb, -0.5 * H5 + lo, 0.5 * H5 - hi - h5))
        ped_bottom5.append(zb)
        fh5.append(zb - (-0.5 * H5 + post_edge5) + hp5 + gap)
        h4 = p.l4_pedicle_height_mm[side]
        post_edge4 = 0.5 * D4 * np.tan(np.deg2rad(wb4) / 2)
        post_top5 = 0.5 * H5 - 0.5 * D5 * np.tan(np.deg2rad(wb5) / 2)
        l5_ped_top = zb + h5
        # L4/L5 foramen: L4 pedicle bottom -> L5 pedicle top.
        zb4 = (-0.5 * H4 + post_edge4) + (p.foramen_height_l4l5_mm[side] - hp4
                                           - (post_top5 - l5_ped_top))
        zb4 = float(np.clip(zb4, -0.5 * H4 + lo, 0.5 * H4 - hi - h4))
        ped_bottom4.append(zb4)
        fh4.append(zb4 - (-0.5 * H4 + post_edge4) + hp4 + (post_top5 - l5_ped_top))
    derived["foramen_height_l5s1_mm"] = fh5
    derived["foramen_height_l4l5_mm"] = fh4

    common = dict(conc=p.endplate_concavity_mm, cort=p.cortical_thickness_mm,
                  post_cort=p.posterior_cortical_thickness_mm)
    v_l4 = Vertebra("L4", frames.l4, W4, D4, H4, wb4, ped_w=p.l4_pedicle_width_mm,
                    ped_h=p.l4_pedicle_height_mm, ped_bottom=tuple(ped_bottom4),
                    conv_deg=p.pedicle_convergence_l4_deg, canal_w=cw4, canal_d=canal_d,
                    tp_tip=p.l4_transverse_tip_mm, tp_rise=k.l4_transverse_rise_mm,
                    spinous_len=p.spinous_length_mm + k.l4_spinous_change_mm, **common)
    v_l5 = Vertebra("L5", frames.l5, W5, D5, H5, wb5, ped_w=p.l5_pedicle_width_mm,
                    ped_h=p.l5_pedicle_height_mm, ped_bottom=tuple(ped_bottom5),
                    conv_deg=p.pedicle_convergence_l5_deg, canal_w=cw5, canal_d=canal_d,
                    tp_tip=p.l5_transverse_tip_mm, tp_rise=k.l5_transverse_rise_mm,
                    spinous_len=p.spinous_length_mm + k.l5_spinous_change_mm, **common)
    h1 = k.s1_pedicle_height_mm
    s1_ph = (h1, h1)
    v_s1 = Vertebra("S1", frames.s1, W1, D1, H1, 0.0, ped_w=p.s1_pedicle_width_mm, ped_h=s1_ph,
                    ped_bottom=(s1_ped_top - h1, s1_ped_top - h1), conv_deg=k.s1_pedicle_convergence_deg,
                    canal_w=cw1, canal_d=canal_d - 2.0, tp_tip=(0.0, 0.0), tp_rise=0.0,
                    spinous_len=0.0, sacrum=True, **common)
    return Vertebrae(l4=v_l4, l5=v_l5, s1=v_s1, canal_depth_mm=canal_d, derived=derived)


def procedural_spine(vertebrae: Vertebrae, p: PhantomParams) -> Spine:
    """The geometry record of the procedural vertebrae, for the soft-tissue builders."""
    return Spine(vertebrae={n: v.geometry() for n, v in vertebrae.as_dict().items()},
                 disc_bulge_mm=p.disc_bulge_mm,
                 disc_posterior_height_mm={"L5S1": p.disc_l5s1_posterior_mm,
                                           "L4L5": p.disc_l4l5_posterior_mm})
