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


#: Superellipse exponent of a body's axial outline (2 = ellipse; 2.5: the flatter sides of a
#: lumbar body).
BODY_OUTLINE_EXPONENT = 2.5
#: The posterior wall is flattened and slightly concave (kidney shape) where the canal lies: a
#: circle of radius ``fraction x half width`` cuts ``depth`` mm into it, blended over ``rounding``.
POSTERIOR_CONCAVITY = {"radius_fraction": 0.55, "depth_mm": 1.5, "rounding_mm": 3.0}
#: The concave part of an endplate ends at this fraction of the normalised radius squared
#: (the ring apophysis, ~87 % of the radius, is flat).
ENDPLATE_RING_R2 = 0.75
#: Bodies are waisted at mid-height: the outline shrinks by this fraction there.
BODY_WAIST = 0.04
#: Rounding of a body's edge between its outline and the endplates.
BODY_EDGE_ROUNDING_MM = 1.5


def body_outline(x, y, W, D, waist=1.0):
    """Kidney-shaped axial outline of a vertebral body (2D distance), body centre at origin."""
    a, b = 0.5 * W * waist, 0.5 * D * waist
    d = S.sd_superellipse2(x, y, a, b, BODY_OUTLINE_EXPONENT)
    # Posterior wall: flattened and slightly concave (kidney shape) where the canal lies.
    R = POSTERIOR_CONCAVITY["radius_fraction"] * a
    cy = b + R - POSTERIOR_CONCAVITY["depth_mm"]
    hole = np.sqrt(x * x + (y - cy) ** 2) - R
    return S.smax(d, -hole, POSTERIOR_CONCAVITY["rounding_mm"])


def endplate_profile(x, y, W, D, depth):
    """Depth (mm) of the concave endplate: parabolic, zero at the ring apophysis."""
    r2 = (2 * x / W) ** 2 + (2 * y / D) ** 2
    return depth * np.clip(1.0 - r2 / ENDPLATE_RING_R2, 0.0, 1.0)


def body_top(x, y, W, D, H, wedge_deg, conc):
    """Local z of the superior endplate surface (concave), body frame."""
    return 0.5 * H - y * np.tan(np.deg2rad(wedge_deg) / 2) - endplate_profile(x, y, W, D, conc)


def body_bottom(x, y, W, D, H, wedge_deg, conc):
    """Local z of the inferior endplate surface (concave), body frame."""
    return -0.5 * H + y * np.tan(np.deg2rad(wedge_deg) / 2) + endplate_profile(x, y, W, D, conc)


def sd_body(x, y, z, W, D, H, wedge_deg, conc):
    """Vertebral body: kidney prism between two wedged, concave endplates, rounded edges."""
    zz = np.clip(2 * z / H, -1, 1)
    waist = 1.0 - BODY_WAIST * (1 - zz * zz)   # bodies are waisted at mid-height
    d2 = body_outline(x, y, W, D, waist)
    dz = np.maximum(z - body_top(x, y, W, D, H, wedge_deg, conc),
                    body_bottom(x, y, W, D, H, wedge_deg, conc) - z)
    return S.smax(d2, dz, BODY_EDGE_ROUNDING_MM)


def body_outline_radius(W, D, theta):
    """Distance from the body centre to the kidney outline along (sin theta, cos theta)."""
    return outline_radius(body_outline, W, D, theta)


@dataclass(frozen=True, kw_only=True)
class PosteriorShape:
    """Fixed shape of a procedural vertebra's posterior elements (mm, deg).

    Pedicles are elliptic cylinders along their axis; laminae are plates from the pedicle's
    posterior end (the junction) to the spinous base; the transverse process is a tapered
    capsule; the spinous process a sagittal plate. Values are lumbar unless named sacral.
    """

    #: Pedicle length (body wall -> junction), lumbar and sacral.
    pedicle_length_mm: float = 16.0
    sacral_pedicle_length_mm: float = 12.0
    #: How far the pedicle's cylinder runs on into the body (it merges with it), lumbar and
    #: sacral, and how far behind the pedicle's end the junction lies.
    pedicle_into_body_mm: float = 8.0
    sacral_pedicle_into_body_mm: float = 6.0
    junction_behind_mm: float = 2.0
    pedicle_rounding_mm: float = 2.0
    #: Lamina: its medial end (spinous base) lies this far behind the canal's roof and below the
    #: junction; the plate is longer than the junction-base span by this much at each end, half
    #: thick and half high, with this rounding.
    lamina_base_back_mm: float = 3.5
    lamina_base_drop_mm: float = 4.0
    lamina_overhang_mm: float = 3.0
    lamina_half_thickness_mm: float = 3.5
    lamina_half_height_mm: float = 11.0
    lamina_rounding_mm: float = 2.5
    #: Transverse process: the tip lies this far in front of the junction; the root starts
    #: this far medial and in front of the junction; radii at the root and the tip.
    transverse_tip_forward_mm: float = 6.0
    transverse_root_offset_mm: tuple[float, float] = (2.0, 4.0)
    transverse_radii_mm: tuple[float, float] = (6.5, 4.0)
    #: Spinous process: tilt caudally (deg), start behind the canal's roof, drop below the
    #: junction, half thickness, extra half length, half height, rounding.
    spinous_tilt_deg: float = 12.0
    spinous_back_mm: float = 3.0
    spinous_drop_mm: float = 7.0
    spinous_half_thickness_mm: float = 3.5
    spinous_extra_mm: float = 2.0
    spinous_half_height_mm: float = 9.0
    spinous_rounding_mm: float = 3.0
    #: Blending of the posterior elements with each other.
    blend_mm: float = 2.5
    #: Box around the vertebra (local): beyond the transverse tips, in front of the body, below,
    #: behind the spinous process, above.
    box_mm: tuple[float, float, float, float, float] = (10.0, 4.0, 22.0, 18.0, 26.0)


#: Default posterior elements.
POSTERIOR = PosteriorShape()


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
    shape: PosteriorShape = POSTERIOR

    def ped_len(self) -> float:
        k = self.shape
        return k.pedicle_length_mm if not self.sacrum else k.sacral_pedicle_length_mm

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
        return f.point([0.0, 0.5 * self.ped_len() + self.shape.junction_behind_mm, 0.0])

    def transverse_tip(self, side: int) -> np.ndarray:
        """Vertebra-local tip of the transverse process (centre of its capsule's end)."""
        s = SIDES[side][2]
        J = self.junction(side)
        return np.array([s * self.tp_tip[side], J[1] - self.shape.transverse_tip_forward_mm,
                         J[2] + self.tp_rise])

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
        k = self.shape
        body = sd_body(x, y, z, self.W, self.D, self.H, self.wedge_deg, self.conc)
        post = []
        lam_y = 0.5 * self.D + self.canal_d
        into = k.pedicle_into_body_mm if not self.sacrum else k.sacral_pedicle_into_body_mm
        for side, _name, s in SIDES:
            pf = self.pedicle_frame(side)
            a, b, c = pf.to_local(x, y, z)
            half = 0.5 * self.ped_len() + into
            # Extend forwards into the body, keep the posterior end at the junction.
            ped = S.smax(S.sd_ellipse2(a, c, 0.5 * self.ped_w[side], 0.5 * self.ped_h[side]),
                         np.abs(b + (half - 0.5 * self.ped_len() - k.junction_behind_mm)) - half,
                         k.pedicle_rounding_mm)
            post.append(ped)
            J = self.junction(side)
            if not self.sacrum:
                # Lamina: a plate from the junction to the spinous base, behind the canal.
                base = np.array([0.0, lam_y + k.lamina_base_back_mm, J[2] - k.lamina_base_drop_mm])
                mid = 0.5 * (J + base)
                axis = base - J
                lf = axis_frame(mid, np.array([axis[1], -axis[0], 0.0]) * s)
                la, lb, lc = lf.to_local(x, y, z)
                half_len = 0.5 * np.hypot(axis[0], axis[1]) + k.lamina_overhang_mm
                post.append(S.sd_round_box(la, lb, lc, (half_len, k.lamina_half_thickness_mm,
                                                        k.lamina_half_height_mm), k.lamina_rounding_mm))
                # Transverse process: tapered capsule laterally, slightly rising.
                tip = self.transverse_tip(side)
                rx, ry = k.transverse_root_offset_mm
                root = J + np.array([-s * rx, -ry, 0.0])
                post.append(S.sd_capsule(x, y, z, root, tip, *k.transverse_radii_mm))
        if not self.sacrum:
            # Spinous process: a sagittal plate running posteriorly and a little caudally.
            L = self.spinous_len
            J0 = self.junction(0)
            sf = S.Frame(S.rot_x(k.spinous_tilt_deg), np.array([0.0, lam_y + k.spinous_back_mm + 0.5 * L,
                                                                J0[2] - k.spinous_drop_mm]))
            sa, sb, sc = sf.to_local(x, y, z)
            post.append(S.sd_round_box(sa, sb, sc, (k.spinous_half_thickness_mm, 0.5 * L + k.spinous_extra_mm,
                                                    k.spinous_half_height_mm), k.spinous_rounding_mm))
        return body, S.union(post, k.blend_mm)

    def bbox_local(self) -> tuple[np.ndarray, np.ndarray]:
        lat, front, below, back, above = self.shape.box_mm
        w = max(self.tp_tip) + lat
        return (np.array([-w, -0.5 * self.D - front, -0.5 * self.H - below]),
                np.array([w, 0.5 * self.D + self.canal_d + self.spinous_len + back,
                          0.5 * self.H + above]))
