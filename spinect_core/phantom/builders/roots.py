"""Roots builder: the exiting L4 and L5 roots with their ganglia (leaving the sac, passing under
their own pedicle, out through the foramen) and the traversing S1 root, as tubes of varying radius.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import SIDES, Layer, Part, Spine, box_of_points
from spinect_core.phantom.builders.sac import Sac
from spinect_core.phantom.params import PhantomParams


@dataclass(frozen=True, kw_only=True)
class RootShape:
    """Fixed shape of the roots' courses (mm, deg); diameters, exit angles and gaps are sampled.

    An exiting root's control points, in its vertebra's frame: (1) leaving the sac's side at the
    upper body, (2) down the pedicle's medial wall, (3) under the pedicle (the ganglion),
    (4) over the body's posterolateral rim below the pedicle, then two points along the exit
    direction. The S1 root's points: (1) leaving the sac behind the L5/S1 disc, (2) over the
    disc's back, (3) behind the S1 body, (4) in the sacral canal's lateral recess, (5) in the
    S1 anterior foramen, (6) in front of the sacrum.
    """

    #: Largest ganglion radius (the dorsal root ganglion is at most ~8 mm across).
    max_ganglion_radius_mm: float = 4.0
    #: Where the root leaves the sac: this far inside the sac's lateral edge, 1 mm behind the
    #: sac's centre and 2 mm below the body's top (local z).
    sac_exit_inset_mm: float = 1.5
    sac_exit_back_mm: float = 1.0
    sac_exit_below_top_mm: float = 2.0
    #: Along the medial pedicle wall: clearance from the wall, 1 mm behind the posterior body
    #: wall (plus the root's radius), at this fraction of the pedicle's height.
    medial_clearance_mm: float = 0.3
    medial_back_mm: float = 1.0
    medial_height_fraction: float = 0.45
    #: Under the pedicle: this fraction of the pedicle's width lateral of its medial wall, the
    #: ganglion 0.4 mm behind the posterior wall and 1.2 mm below the pedicle (plus its radius).
    under_width_fraction: float = 0.45
    under_back_mm: float = 0.4
    under_drop_mm: float = 1.2
    #: Direction (deg from the sagittal plane, local) of the body's posterolateral rim point
    #: the root crosses, and how much of the ganglion's radius it drops there.
    rim_angle_deg: float = 52.0
    rim_ganglion_drop: float = 0.95
    #: Lengths (mm) of the two segments after the foramen; the second bends by this (y, z) change
    #: of direction (forwards and down, towards the lumbosacral plexus).
    exit_lengths_mm: tuple[float, float] = (14.0, 22.0)
    exit_bend: tuple[float, float] = (-0.1, -0.5)
    #: Radius per control point as a multiple of the root's radius (points 1, 2, 5, 6) or of the
    #: ganglion's (points 3, 4).
    radius_factors: tuple[float, float, float, float, float, float] = (0.9, 1.0, 1.0, 0.95, 1.05, 1.1)
    #: Box margin around a root's centreline beyond its largest radius.
    box_margin_mm: float = 6.0
    #: Perineural fat sleeve around each root (and the clearance bone keeps from it).
    fat_sleeve_mm: float = 2.5
    # --- S1 (traversing) root, in S1's frame ---
    #: Leaves the sac this far inside its lateral edge, 1 mm + this fraction of the sac's depth
    #: behind the disc's back, 5 mm above the L5/S1 disc's posterior height.
    s1_sac_exit_inset_mm: float = 2.5
    s1_sac_exit_back_mm: float = 1.0
    s1_sac_exit_depth_fraction: float = 0.35
    s1_sac_exit_above_disc_mm: float = 5.0
    #: Lateral position as a fraction of the sac's width while it runs in the lateral recess.
    s1_recess_sac_fraction: float = 0.42
    #: Over the disc's back: lateral offset (times the radius), clearance behind the bulge, and
    #: height as a fraction of the disc's posterior height.
    s1_disc_radius_factor: float = 0.8
    s1_disc_clearance_mm: float = 0.3
    s1_disc_height_fraction: float = 0.4
    #: Behind the S1 body: lateral clearance, distance behind the posterior wall (plus the
    #: radius), depth below the superior endplate.
    s1_body_clearance_mm: float = 0.5
    s1_body_back_mm: float = 0.8
    s1_body_below_top_mm: float = 9.0
    #: Lateral recess of the sacral canal: lateral of the canal's edge, in front of the posterior
    #: wall, above S1's inferior endplate.
    s1_recess_lateral_mm: float = 2.0
    s1_recess_forward_mm: float = 3.0
    s1_recess_above_bottom_mm: float = 6.0
    #: Anterior S1 foramen and the point in front of the sacrum: lateral of 0.4 x body width,
    #: distance behind the front wall (negative: in front), below S1's inferior endplate.
    s1_lateral_width_fraction: float = 0.4
    s1_foramen_mm: tuple[float, float, float] = (4.0, 5.0, 4.0)
    s1_front_mm: tuple[float, float, float] = (10.0, -5.0, 14.0)


#: Default root shape.
ROOT = RootShape()


@dataclass(frozen=True, kw_only=True)
class Roots:
    """Root tubes ``name -> (centreline (n, 3), radius per point (n,))`` (patient mm) in the order
    L4 left, L4 right, L5 left, L5 right, S1 left, S1 right, and their landmarks."""

    tubes: dict[str, tuple[np.ndarray, np.ndarray]]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    shape: RootShape = ROOT

    def fat_sleeves(self) -> list[Part]:
        """Perineural fat: each root's tube grown by the sleeve (cached: bone is carved around it)."""
        k = self.shape
        return [Part(name, (lambda L, R: lambda x, y, z: {"d": S.sd_tube(x, y, z, L, R)})(
            line, radii), box_of_points(line, float(radii.max()) + k.box_margin_mm),
            [Layer("fat", offset_mm=-k.fat_sleeve_mm)], cache=True)
            for name, (line, radii) in self.tubes.items()]

    def nerve_parts(self, bbox: tuple[np.ndarray, np.ndarray]) -> list[Part]:
        """The nerves themselves, painted last from the sleeves' cached fields."""
        return [Part(f"{name}_nerve", None, bbox, [Layer("nerve", label="nerve", instance=name)],
                     from_cache=name) for name in self.tubes]


def exit_direction(s: float, angle_deg: float, caudal_share_deg: float) -> np.ndarray:
    """Unit direction (patient frame) of a root leaving the foramen on side sign ``s``:
    ``angle_deg`` from the sagittal plane, split caudal vs anterior by ``caudal_share_deg``."""
    A = np.deg2rad(angle_deg)
    C = np.deg2rad(caudal_share_deg)
    return np.array([s * np.sin(A), -np.cos(A) * np.cos(C), -np.cos(A) * np.sin(C)])


def build_roots(spine: Spine, sac: Sac, p: PhantomParams, shape: RootShape = ROOT) -> Roots:
    """Exiting L4 and L5 roots and traversing S1 roots.

    An exiting root leaves the sac's side at its vertebra's upper body, runs down the medial
    pedicle wall, turns under the pedicle's lower margin (ganglion), crosses the body's
    posterolateral rim a few mm below the pedicle and leaves along its exit direction. The S1
    root leaves the sac behind the L5/S1 disc and runs down the front of the sacral canal.
    Sizes (diameters, ganglion scale, exit angles, gaps) come from ``p``; positions from ``spine``.
    """
    k = shape
    tubes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    lm: dict[str, np.ndarray] = {}
    f0, f1, f2, f3, f4, f5 = k.radius_factors
    bulge = spine.disc_bulge_mm
    sac_w, sac_d, sac_y = sac.width_mm, sac.depth_mm, sac.y_mm
    for level, diam, angle in (("L4", p.root_diameter_l4_mm, p.root_exit_angle_l4_deg),
                               ("L5", p.root_diameter_l5_mm, p.root_exit_angle_l5_deg)):
        v = spine[level]
        for side, sname, s in SIDES:
            r = 0.5 * diam[side]
            g = min(r * p.ganglion_scale, k.max_ganglion_radius_mm)
            pw, ph = v.pedicle_width_mm[side], v.pedicle_height_mm[side]
            zb = v.pedicle_bottom_mm[side]
            theta = np.deg2rad(k.rim_angle_deg)
            rho = v.outline_radius(theta) + bulge
            rim = np.array([s * rho * np.sin(theta), rho * np.cos(theta)])
            out = np.array([s * np.sin(theta), np.cos(theta)])
            gap = p.root_disc_gap_mm[side]
            p3_xy = rim + (g + gap) * out
            D, H, cw = v.body_depth_mm, v.body_height_mm, v.canal_width_mm
            ctrl_local = [
                [s * (0.5 * sac_w - k.sac_exit_inset_mm), 0.5 * D + sac_y + k.sac_exit_back_mm,
                 0.5 * H - k.sac_exit_below_top_mm],
                [s * (0.5 * cw - r - k.medial_clearance_mm), 0.5 * D + r + k.medial_back_mm,
                 zb + k.medial_height_fraction * ph],
                [s * (0.5 * cw + k.under_width_fraction * pw), 0.5 * D + g + k.under_back_mm,
                 zb - g - k.under_drop_mm],
                # The root hugs the pedicle: it crosses the body's posterolateral rim a few mm
                # below the pedicle (the safe triangle's hypotenuse), then runs caudally over
                # the disc's lateral part (the Kambin triangle's hypotenuse).
                [p3_xy[0], p3_xy[1], zb - p.root_subpedicle_drop_mm[side] - k.rim_ganglion_drop * g],
            ]
            ctrl = [v.frame.point(c) for c in ctrl_local]
            d1 = exit_direction(s, angle[side], p.root_caudal_share_deg)
            ctrl.append(ctrl[-1] + k.exit_lengths_mm[0] * d1)
            d2 = d1 + np.array([0.0, k.exit_bend[0], k.exit_bend[1]])
            ctrl.append(ctrl[-1] + k.exit_lengths_mm[1] * d2 / np.linalg.norm(d2))
            ctrl = np.array(ctrl)
            radii = np.array([f0 * r, f1 * r, f2 * g, f3 * g, f4 * r, f5 * r])
            line = S.catmull_rom(ctrl, 8)
            tubes[f"root_{level}_{sname}"] = (line, S.resample_values(ctrl, radii, line))
            pc = v.pedicle_centre[side]
            lm[f"{level.lower()}_pedicle_centre_{sname}"] = v.frame.point(pc)
            lm[f"{level.lower()}_pedicle_lower_margin_{sname}"] = v.frame.point(
                pc - np.array([0.0, 0.0, 0.5 * ph]))
            lm[f"root_{level}_{sname}_exit_direction"] = d1
    v_s1 = spine["S1"]
    W1, D1, H1, cw1 = (v_s1.body_width_mm, v_s1.body_depth_mm, v_s1.body_height_mm,
                       v_s1.canal_width_mm)
    hp5 = spine.disc_posterior_height_mm["L5S1"]
    for side, sname, s in SIDES:
        r = 0.5 * p.root_diameter_s1_mm[side]
        sy = 0.5 * D1 + bulge
        fw = k.s1_lateral_width_fraction
        (fx, fy, fz), (ax, ay, az) = k.s1_foramen_mm, k.s1_front_mm
        ctrl_local = [
            [s * (0.5 * sac_w - k.s1_sac_exit_inset_mm),
             sy + k.s1_sac_exit_back_mm + k.s1_sac_exit_depth_fraction * sac_d,
             0.5 * H1 + hp5 + k.s1_sac_exit_above_disc_mm],
            [s * (k.s1_recess_sac_fraction * sac_w + k.s1_disc_radius_factor * r),
             sy + r + k.s1_disc_clearance_mm, 0.5 * H1 + k.s1_disc_height_fraction * hp5],
            [s * (k.s1_recess_sac_fraction * sac_w + r + k.s1_body_clearance_mm),
             0.5 * D1 + r + k.s1_body_back_mm, 0.5 * H1 - k.s1_body_below_top_mm],
            [s * (0.5 * cw1 + k.s1_recess_lateral_mm), 0.5 * D1 - k.s1_recess_forward_mm,
             -0.5 * H1 + k.s1_recess_above_bottom_mm],
            [s * (fw * W1 + fx), -0.5 * D1 + fy, -0.5 * H1 - fz],
            [s * (fw * W1 + ax), -0.5 * D1 + ay, -0.5 * H1 - az],
        ]
        ctrl = np.array([v_s1.frame.point(c) for c in ctrl_local])
        line = S.catmull_rom(ctrl, 8)
        tubes[f"root_S1_{sname}"] = (line, np.full(len(line), r))
        lm[f"s1_pedicle_centre_{sname}"] = v_s1.frame.point(v_s1.pedicle_centre[side])
    for name, (line, radii) in tubes.items():
        lm[f"{name}_centreline"] = line
        lm[f"{name}_radius"] = radii
    return Roots(tubes=tubes, landmarks=lm, shape=k)
