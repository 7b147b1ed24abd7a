"""The procedural vertebra: kidney-shaped body between concave wedged endplates, pedicles,
laminae, transverse and spinous processes (signed distances in vertebra-local coordinates).

:meth:`Vertebra.geometry` gives the :class:`~spinect_core.phantom.builders.record.VertebraGeometry`
the soft-tissue builders read, so those never depend on how the bone was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import SIDES, VertebraGeometry, axis_frame, outline_radius


def body_outline(x, y, W, D, waist=1.0):
    """Kidney-shaped axial outline of a vertebral body (2D distance), body centre at origin."""
    a, b = 0.5 * W * waist, 0.5 * D * waist
    d = S.sd_superellipse2(x, y, a, b, 2.5)
    # Posterior wall: flattened and slightly concave (kidney shape) where the canal lies.
    R = 0.55 * a
    cy = b + R - 1.5
    hole = np.sqrt(x * x + (y - cy) ** 2) - R
    return S.smax(d, -hole, 3.0)


def endplate_profile(x, y, W, D, depth):
    """Depth (mm) of the concave endplate: parabolic, zero at the ring apophysis."""
    r2 = (2 * x / W) ** 2 + (2 * y / D) ** 2
    return depth * np.clip(1.0 - r2 / 0.75, 0.0, 1.0)


def body_top(x, y, W, D, H, wedge_deg, conc):
    """Local z of the superior endplate surface (concave), body frame."""
    return 0.5 * H - y * np.tan(np.deg2rad(wedge_deg) / 2) - endplate_profile(x, y, W, D, conc)


def body_bottom(x, y, W, D, H, wedge_deg, conc):
    """Local z of the inferior endplate surface (concave), body frame."""
    return -0.5 * H + y * np.tan(np.deg2rad(wedge_deg) / 2) + endplate_profile(x, y, W, D, conc)


def sd_body(x, y, z, W, D, H, wedge_deg, conc):
    """Vertebral body: kidney prism between two wedged, concave endplates, rounded edges."""
    zz = np.clip(2 * z / H, -1, 1)
    waist = 1.0 - 0.04 * (1 - zz * zz)   # bodies are waisted at mid-height
    d2 = body_outline(x, y, W, D, waist)
    dz = np.maximum(z - body_top(x, y, W, D, H, wedge_deg, conc),
                    body_bottom(x, y, W, D, H, wedge_deg, conc) - z)
    return S.smax(d2, dz, 1.5)


def body_outline_radius(W, D, theta):
    """Distance from the body centre to the kidney outline along (sin theta, cos theta)."""
    return outline_radius(body_outline, W, D, theta)


@dataclass
class Vertebra:
    """Dimensions (mm, deg) and frame of one vertebra; per-side values indexed 0 = left, 1 = right."""

    name: str
    frame: S.Frame
    W: float
    D: float
    H: float
    wedge_deg: float
    conc: float
    cort: float
    post_cort: float
    ped_w: tuple[float, float]
    ped_h: tuple[float, float]
    ped_bottom: tuple[float, float]     # local z of the pedicle's lower margin
    conv_deg: float
    canal_w: float
    canal_d: float
    tp_tip: tuple[float, float]
    tp_rise: float
    spinous_len: float
    sacrum: bool = False
    extras: list = field(default_factory=list)   # patient-frame SDF callables (facets, pars)

    def ped_len(self) -> float:
        return 16.0 if not self.sacrum else 12.0

    def pedicle_frame(self, side: int) -> S.Frame:
        """Local frame of a pedicle in vertebra coordinates: y along the pedicle (posterior)."""
        s = SIDES[side][2]
        conv = np.deg2rad(self.conv_deg)
        u = np.array([s * np.sin(conv), np.cos(conv), 0.0])
        zc = self.ped_bottom[side] + 0.5 * self.ped_h[side]
        mid = np.array([s * (0.5 * self.canal_w + 0.5 * self.ped_w[side]),
                        0.5 * self.D + 0.5 * self.ped_len(), zc])
        return axis_frame(mid, u)

    def junction(self, side: int) -> np.ndarray:
        """Vertebra-local pedicle/lamina/transverse junction (posterior end of the pedicle)."""
        f = self.pedicle_frame(side)
        return f.point([0.0, 0.5 * self.ped_len() + 2.0, 0.0])

    def transverse_tip(self, side: int) -> np.ndarray:
        """Vertebra-local tip of the transverse process (centre of its capsule's end)."""
        s = SIDES[side][2]
        J = self.junction(side)
        return np.array([s * self.tp_tip[side], J[1] - 6.0, J[2] + self.tp_rise])

    def geometry(self) -> VertebraGeometry:
        """This vertebra as the geometry record the soft-tissue builders read."""
        W, D, H, wedge, conc = self.W, self.D, self.H, self.wedge_deg, self.conc
        return VertebraGeometry(
            name=self.name, frame=self.frame, body_width_mm=W, body_depth_mm=D, body_height_mm=H,
            canal_width_mm=self.canal_w, canal_depth_mm=self.canal_d,
            pedicle_width_mm=tuple(self.ped_w), pedicle_height_mm=tuple(self.ped_h),
            pedicle_bottom_mm=tuple(self.ped_bottom),
            pedicle_centre=(self.pedicle_frame(0).t, self.pedicle_frame(1).t),
            transverse_tip=None if self.sacrum else (self.transverse_tip(0), self.transverse_tip(1)),
            superior_endplate=lambda x, y: body_top(x, y, W, D, H, wedge, conc),
            inferior_endplate=lambda x, y: body_bottom(x, y, W, D, H, wedge, conc),
            outline=body_outline)

    def local_parts(self, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        """(body distance, posterior-elements distance) for vertebra-local coordinates."""
        body = sd_body(x, y, z, self.W, self.D, self.H, self.wedge_deg, self.conc)
        post = []
        lam_y = 0.5 * self.D + self.canal_d
        for side, _name, s in SIDES:
            pf = self.pedicle_frame(side)
            a, b, c = pf.to_local(x, y, z)
            half = 0.5 * self.ped_len() + (8.0 if not self.sacrum else 6.0)
            # Extend forwards into the body, keep the posterior end at the junction.
            ped = S.smax(S.sd_ellipse2(a, c, 0.5 * self.ped_w[side], 0.5 * self.ped_h[side]),
                         np.abs(b + (half - 0.5 * self.ped_len() - 2.0)) - half, 2.0)
            post.append(ped)
            J = self.junction(side)
            if not self.sacrum:
                # Lamina: a plate from the junction to the spinous base, behind the canal.
                base = np.array([0.0, lam_y + 3.5, J[2] - 4.0])
                mid = 0.5 * (J + base)
                axis = base - J
                lf = axis_frame(mid, np.array([axis[1], -axis[0], 0.0]) * s)
                la, lb, lc = lf.to_local(x, y, z)
                half_len = 0.5 * np.hypot(axis[0], axis[1]) + 3.0
                post.append(S.sd_round_box(la, lb, lc, (half_len, 3.5, 11.0), 2.5))
                # Transverse process: tapered capsule laterally, slightly rising.
                tip = np.array([s * self.tp_tip[side], J[1] - 6.0, J[2] + self.tp_rise])
                root = J + np.array([-s * 2.0, -4.0, 0.0])
                post.append(S.sd_capsule(x, y, z, root, tip, 6.5, 4.0))
        if not self.sacrum:
            # Spinous process: a sagittal plate running posteriorly and a little caudally.
            L = self.spinous_len
            J0 = self.junction(0)
            sf = S.Frame(S.rot_x(12.0), np.array([0.0, lam_y + 3.0 + 0.5 * L, J0[2] - 7.0]))
            sa, sb, sc = sf.to_local(x, y, z)
            post.append(S.sd_round_box(sa, sb, sc, (3.5, 0.5 * L + 2.0, 9.0), 3.0))
        return body, S.union(post, 2.5)

    def bbox_local(self) -> tuple[np.ndarray, np.ndarray]:
        w = max(self.tp_tip) + 10.0
        return (np.array([-w, -0.5 * self.D - 4.0, -0.5 * self.H - 22.0]),
                np.array([w, 0.5 * self.D + self.canal_d + self.spinous_len + 18.0,
                          0.5 * self.H + 26.0]))
