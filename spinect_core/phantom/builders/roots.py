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
class Roots:
    """Root tubes ``name -> (centreline (n, 3), radius per point (n,))`` (patient mm) in the order
    L4 left, L4 right, L5 left, L5 right, S1 left, S1 right, and their landmarks."""

    tubes: dict[str, tuple[np.ndarray, np.ndarray]]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)

    def fat_sleeves(self) -> list[Part]:
        """Perineural fat: each root's tube grown by 2.5 mm (cached: bone is carved around it)."""
        return [Part(name, (lambda L, R: lambda x, y, z: {"d": S.sd_tube(x, y, z, L, R)})(
            line, radii), box_of_points(line, float(radii.max()) + 6.0),
            [Layer("fat", offset_mm=-2.5)], cache=True) for name, (line, radii) in self.tubes.items()]

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


def build_roots(spine: Spine, sac: Sac, p: PhantomParams) -> Roots:
    """Exiting L4 and L5 roots and traversing S1 roots.

    An exiting root leaves the sac's side at its vertebra's upper body, runs down the medial
    pedicle wall, turns under the pedicle's lower margin (ganglion), crosses the body's
    posterolateral rim a few mm below the pedicle and leaves along its exit direction. The S1
    root leaves the sac behind the L5/S1 disc and runs down the front of the sacral canal.
    Sizes (diameters, ganglion scale, exit angles, gaps) come from ``p``; positions from ``spine``.
    """
    tubes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    lm: dict[str, np.ndarray] = {}
    bulge = spine.disc_bulge_mm
    sac_w, sac_d, sac_y = sac.width_mm, sac.depth_mm, sac.y_mm
    for level, diam, angle in (("L4", p.root_diameter_l4_mm, p.root_exit_angle_l4_deg),
                               ("L5", p.root_diameter_l5_mm, p.root_exit_angle_l5_deg)):
        v = spine[level]
        for side, sname, s in SIDES:
            r = 0.5 * diam[side]
            g = min(r * p.ganglion_scale, 4.0)
            pw, ph = v.pedicle_width_mm[side], v.pedicle_height_mm[side]
            zb = v.pedicle_bottom_mm[side]
            theta = np.deg2rad(52.0)
            rho = v.outline_radius(theta) + bulge
            rim = np.array([s * rho * np.sin(theta), rho * np.cos(theta)])
            out = np.array([s * np.sin(theta), np.cos(theta)])
            gap = p.root_disc_gap_mm[side]
            p3_xy = rim + (g + gap) * out
            D, H, cw = v.body_depth_mm, v.body_height_mm, v.canal_width_mm
            ctrl_local = [
                [s * (0.5 * sac_w - 1.5), 0.5 * D + sac_y + 1.0, 0.5 * H - 2.0],
                [s * (0.5 * cw - r - 0.3), 0.5 * D + r + 1.0, zb + 0.45 * ph],
                [s * (0.5 * cw + 0.45 * pw), 0.5 * D + g + 0.4, zb - g - 1.2],
                # The root hugs the pedicle: it crosses the body's posterolateral rim a few mm
                # below the pedicle (the safe triangle's hypotenuse), then runs caudally over
                # the disc's lateral part (the Kambin triangle's hypotenuse).
                [p3_xy[0], p3_xy[1], zb - p.root_subpedicle_drop_mm[side] - 0.95 * g],
            ]
            ctrl = [v.frame.point(c) for c in ctrl_local]
            d1 = exit_direction(s, angle[side], p.root_caudal_share_deg)
            ctrl.append(ctrl[-1] + 14.0 * d1)
            d2 = d1 + np.array([0.0, -0.1, -0.5])
            ctrl.append(ctrl[-1] + 22.0 * d2 / np.linalg.norm(d2))
            ctrl = np.array(ctrl)
            radii = np.array([0.9 * r, r, g, 0.95 * g, 1.05 * r, 1.1 * r])
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
        ctrl_local = [
            [s * (0.5 * sac_w - 2.5), sy + 1.0 + 0.35 * sac_d, 0.5 * H1 + hp5 + 5.0],
            [s * (0.42 * sac_w + 0.8 * r), sy + r + 0.3, 0.5 * H1 + 0.4 * hp5],
            [s * (0.42 * sac_w + r + 0.5), 0.5 * D1 + r + 0.8, 0.5 * H1 - 9.0],
            [s * (0.5 * cw1 + 2.0), 0.5 * D1 - 3.0, -0.5 * H1 + 6.0],
            [s * (0.4 * W1 + 4.0), -0.5 * D1 + 5.0, -0.5 * H1 - 4.0],
            [s * (0.4 * W1 + 10.0), -0.5 * D1 - 5.0, -0.5 * H1 - 14.0],
        ]
        ctrl = np.array([v_s1.frame.point(c) for c in ctrl_local])
        line = S.catmull_rom(ctrl, 8)
        tubes[f"root_S1_{sname}"] = (line, np.full(len(line), r))
        lm[f"s1_pedicle_centre_{sname}"] = v_s1.frame.point(v_s1.pedicle_centre[side])
    for name, (line, radii) in tubes.items():
        lm[f"{name}_centreline"] = line
        lm[f"{name}_radius"] = radii
    return Roots(tubes=tubes, landmarks=lm)
