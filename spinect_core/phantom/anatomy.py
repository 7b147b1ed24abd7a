"""Lumbosacral anatomy (L4, L5, S1/sacrum, ilia, discs, dural sac, roots, soft tissue) as SDF parts.

Everything here lives in the *patient frame*: millimetres, axes as LPS (x = patient left,
y = posterior, z = superior), origin at the centre of the S1 superior endplate. The renderer later
applies the seeded pose (rotation, tilt, table position) to place it in the scanner.

Each vertebra has its own frame (origin = body centre, z = body axis, y = posterior) chained from
the sacrum upwards by the sacral slope and the disc/body wedge angles, so lordosis, segmental
angles and disc heights are exact by construction. Posterior elements, facets, foramina and root
courses are placed from those frames and the sampled dimensions (``params.py``).

A :class:`Part` is one paintable object: a function returning named signed-distance arrays for
patient-frame points, a conservative bounding box, and layers saying which tissue, class label
and instance each distance array paints. Parts are returned in paint order (later wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.params import PhantomParams

FieldFn = Callable[[np.ndarray, np.ndarray, np.ndarray], dict]

SIDES = ((0, "left", 1.0), (1, "right", -1.0))  # (index, name, sign of x): left = +x in LPS


@dataclass(frozen=True)
class Layer:
    """One tissue painted from a part's distance array ``key`` (inside where ``d + offset < 0``)."""

    tissue: str
    key: str = "d"
    offset_mm: float = 0.0
    label: str | None = None       # default-table class ("bone", "nerve", "disc", "dura")
    instance: str | None = None    # instance name (instance table)


@dataclass
class Part:
    """A paintable object of the phantom.

    Attributes
    ----------
    name : str
        Unique name (also the cache key of its fields when ``cache`` is set).
    fields : callable or None
        ``fields(x, y, z) -> {key: distance array}`` for patient-frame coordinate arrays (mm).
        ``None`` reuses the cached fields of the part named ``from_cache``.
    bbox : (ndarray (3,), ndarray (3,))
        Conservative patient-frame axis-aligned box containing every surface of the part.
    layers : list of Layer
        Painted in order.
    cache : bool
        Keep the evaluated fields for carving / later painting.
    carve : list of (str, float, float)
        ``(cached part name, clearance mm, extra for key "inner" mm)``: remove the cached
        object dilated by the clearance from every field of this part (roots, canal, sacrum).
    """

    name: str
    fields: FieldFn | None
    bbox: tuple[np.ndarray, np.ndarray]
    layers: list[Layer]
    cache: bool = False
    from_cache: str | None = None
    carve: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass
class Anatomy:
    """Parts in paint order, vertebra frames and analytic landmarks (patient frame, mm)."""

    parts: list[Part]
    frames: dict[str, S.Frame]
    landmarks: dict[str, object]
    fov_lo: np.ndarray
    fov_hi: np.ndarray
    body_centre: np.ndarray
    derived: dict[str, float]
    #: Building blocks for extensions (``torso.py``): vertebrae, canal and sac sizes, soft-tissue
    #: geometry, the sacrum and ilium field functions. Not part of the phantom's output.
    internals: dict[str, object] = field(default_factory=dict)


# --- helpers --------------------------------------------------------------------------------------
def _box_of_points(points, margin: float) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(points, float).reshape(-1, 3)
    return P.min(axis=0) - margin, P.max(axis=0) + margin


def _local_box(frame: S.Frame, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Patient AABB of a box given in a frame's local coordinates."""
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])], float)
    return _box_of_points(corners @ frame.R.T + frame.t, 0.0)


def _ellipsoid(frame: S.Frame, radii) -> Callable:
    return lambda x, y, z: S.sd_ellipsoid(*frame.to_local(x, y, z), radii)


def _body_outline(x, y, W, D, waist=1.0):
    """Kidney-shaped axial outline of a vertebral body (2D distance), body centre at origin."""
    a, b = 0.5 * W * waist, 0.5 * D * waist
    d = S.sd_superellipse2(x, y, a, b, 2.5)
    # Posterior wall: flattened and slightly concave (kidney shape) where the canal lies.
    R = 0.55 * a
    cy = b + R - 1.5
    hole = np.sqrt(x * x + (y - cy) ** 2) - R
    return S.smax(d, -hole, 3.0)


def _endplate_profile(x, y, W, D, depth):
    """Depth (mm) of the concave endplate: parabolic, zero at the ring apophysis."""
    r2 = (2 * x / W) ** 2 + (2 * y / D) ** 2
    return depth * np.clip(1.0 - r2 / 0.75, 0.0, 1.0)


def body_top(x, y, W, D, H, wedge_deg, conc):
    """Local z of the superior endplate surface (concave), body frame."""
    return 0.5 * H - y * np.tan(np.deg2rad(wedge_deg) / 2) - _endplate_profile(x, y, W, D, conc)


def body_bottom(x, y, W, D, H, wedge_deg, conc):
    """Local z of the inferior endplate surface (concave), body frame."""
    return -0.5 * H + y * np.tan(np.deg2rad(wedge_deg) / 2) + _endplate_profile(x, y, W, D, conc)


def sd_body(x, y, z, W, D, H, wedge_deg, conc):
    """Vertebral body: kidney prism between two wedged, concave endplates, rounded edges."""
    zz = np.clip(2 * z / H, -1, 1)
    waist = 1.0 - 0.04 * (1 - zz * zz)   # bodies are waisted at mid-height
    d2 = _body_outline(x, y, W, D, waist)
    dz = np.maximum(z - body_top(x, y, W, D, H, wedge_deg, conc),
                    body_bottom(x, y, W, D, H, wedge_deg, conc) - z)
    return S.smax(d2, dz, 1.5)


def _outline_radius(W, D, theta):
    """Distance from the body centre to the outline along (sin theta, cos theta) (bisection)."""
    lo, hi = 0.0, max(W, D)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        d = _body_outline(np.array(mid * np.sin(theta)), np.array(mid * np.cos(theta)), W, D)
        lo, hi = (mid, hi) if d < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _axis_frame(origin, axis_y, up=(0.0, 0.0, 1.0)) -> S.Frame:
    """Frame with local y along ``axis_y`` and local z as close to ``up`` as possible."""
    yv = np.asarray(axis_y, float)
    yv = yv / np.linalg.norm(yv)
    zv = np.asarray(up, float) - np.dot(up, yv) * yv
    zv = zv / np.linalg.norm(zv)
    xv = np.cross(yv, zv)
    return S.Frame(np.column_stack([xv, yv, zv]), np.asarray(origin, float))


# --- vertebrae ------------------------------------------------------------------------------------
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
        return _axis_frame(mid, u)

    def junction(self, side: int) -> np.ndarray:
        """Vertebra-local pedicle/lamina/transverse junction (posterior end of the pedicle)."""
        f = self.pedicle_frame(side)
        return f.point([0.0, 0.5 * self.ped_len() + 2.0, 0.0])

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
                lf = _axis_frame(mid, np.array([axis[1], -axis[0], 0.0]) * s)
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


def _facet(lower: Vertebra, upper: Vertebra, side: int, angle_deg: float, sap_h: float,
           foramen_w: float, gap: float = 1.5) -> dict:
    """Superior articular process of ``lower`` and inferior articular process of ``upper``.

    Returns patient-frame SDF callables ``sap``, ``iap``, ``capsule`` and landmark points. The
    joint plane makes ``angle_deg`` with the sagittal plane; the SAP lies anterolateral to it and
    its anterior face is ``foramen_w`` behind the posterior body wall (the foramen's AP width).
    """
    s = SIDES[side][2]
    phi = np.deg2rad(angle_deg)
    n = np.array([s * np.cos(phi), -np.sin(phi), 0.0])       # towards the SAP (anterolateral)
    t = np.array([np.sin(phi), s * np.cos(phi), 0.0])
    zax = np.array([0.0, 0.0, 1.0])
    an, at, az = 4.5, 8.0, 0.5 * sap_h + 5.0
    ey = np.sqrt((an * np.sin(phi)) ** 2 + (at * np.cos(phi)) ** 2)
    c_sap = np.array([s * (0.5 * lower.canal_w + 4.0), 0.5 * lower.D + foramen_w + ey,
                      0.5 * lower.H + sap_h - az])
    p_joint = c_sap - 0.5 * an * n
    ai, ati, azi = 4.0, 7.0, 9.0
    c_iap = p_joint - (gap + ai) * n + np.array([0.0, 0.0, -1.0])
    c_iap[2] = 0.5 * lower.H + 4.0
    F = lower.frame
    Rj = np.column_stack([n, t, zax])
    f_sap = F.compose(S.Frame(Rj, c_sap))
    f_iap = F.compose(S.Frame(Rj, c_iap))
    n_p = F.vector(n)
    pj_p = F.point(p_joint)
    pj2_p = F.point(p_joint - gap * n)
    J_low = F.point(lower.junction(side))
    J_up = upper.frame.point(upper.junction(side))
    sap_base = F.point(c_sap - np.array([0.0, 0.0, 0.6 * az]))
    c_iap_p = F.point(c_iap)

    def sap(x, y, z):
        d = S.sd_ellipsoid(*f_sap.to_local(x, y, z), (an, at, az))
        d = S.smin(d, S.sd_capsule(x, y, z, sap_base, J_low, 5.5), 3.0)
        return S.smax(d, -S.sd_halfspace(x, y, z, pj_p, n_p), 0.8)

    def iap(x, y, z):
        d = S.sd_ellipsoid(*f_iap.to_local(x, y, z), (ai, ati, azi))
        d = S.smin(d, S.sd_capsule(x, y, z, c_iap_p + np.array([0, 0, 4.0]), J_up, 4.5), 3.0)
        return S.smax(d, S.sd_halfspace(x, y, z, pj2_p, n_p), 0.8)

    mid = F.point(p_joint - 0.5 * gap * n)
    f_cap = S.Frame(F.R @ Rj, mid)

    def capsule(x, y, z):
        return S.sd_ellipsoid(*f_cap.to_local(x, y, z), (an + ai + 1.5, 9.0, 11.0))

    tip = F.point(np.array([c_sap[0], c_sap[1], 0.5 * lower.H + sap_h]))
    return {"sap": sap, "iap": iap, "capsule": capsule, "joint_centre": mid,
            "sap_tip": tip, "normal": n_p}


# --- builder ------------------------------------------------------------------------------------
def disc_field_function(low, up, bulge: float) -> FieldFn:
    """Signed-distance fields (mm, patient frame) of the disc between two vertebral bodies:
    ``"outer"`` (annulus surface: the bodies' mean outline grown by ``bulge``, between the
    lower body's top and the upper body's bottom) and ``"inner"`` (nucleus)."""
    def disc_fields(x, y, z):
        xl, yl, zl = low.frame.to_local(x, y, z)
        xu, yu, zu = up.frame.to_local(x, y, z)
        W = 0.5 * (low.W + up.W) + 2 * bulge
        D = 0.5 * (low.D + up.D) + 2 * bulge
        prism = _body_outline(xl, yl, W, D)
        lower = body_top(xl, yl, low.W, low.D, low.H, low.wedge_deg, low.conc) - 0.3 - zl
        upper = zu - body_bottom(xu, yu, up.W, up.D, up.H, up.wedge_deg, up.conc) - 0.3
        d = S.smax(prism, np.maximum(lower, upper), 1.0)
        nuc = S.smax(prism + 8.0, np.maximum(lower, upper) + 2.5, 1.0)
        return {"outer": d, "inner": nuc}
    return disc_fields


def build_anatomy(p: PhantomParams) -> Anatomy:
    """Assemble every part of the phantom from sampled parameters (patient frame)."""
    lm: dict[str, object] = {}
    derived: dict[str, float] = {}

    # --- frames: sacrum -> L5 -> L4 (lordosis) ---------------------------------------------------
    W1, D1, H1 = p.s1_body_width_mm, p.s1_body_depth_mm, p.s1_body_height_mm
    W5, D5, H5 = p.l5_body_width_mm, p.l5_body_depth_mm, p.l5_body_height_mm
    W4, D4, H4 = p.l4_body_width_mm, p.l4_body_depth_mm, p.l4_body_height_mm
    ss = p.sacral_slope_deg
    R_s1 = S.rot_x(ss)
    f_s1 = S.Frame(R_s1, R_s1 @ np.array([0.0, 0.0, -0.5 * H1]))

    def disc_wedge(ha, hp, depth):
        return np.rad2deg(np.arctan2(ha - hp, depth))

    ha5, hp5 = p.disc_l5s1_anterior_mm, p.disc_l5s1_posterior_mm
    ha4, hp4 = p.disc_l4l5_anterior_mm, p.disc_l4l5_posterior_mm
    wd5 = disc_wedge(ha5, hp5, 0.5 * (D1 + D5))
    wb5 = float(np.clip(p.segmental_angle_l5s1_deg - wd5, 0.0, 12.0))
    wd4 = disc_wedge(ha4, hp4, 0.5 * (D5 + D4))
    wb4 = float(np.clip(p.segmental_angle_l4l5_deg - wd4, 0.0, 10.0))
    derived.update(l5s1_disc_wedge_deg=wd5, l5_body_wedge_deg=wb5, l4l5_disc_wedge_deg=wd4,
                   l4_body_wedge_deg=wb4, segmental_angle_l5s1_deg=wd5 + wb5,
                   segmental_angle_l4l5_deg=wd4 + wb4)

    def stack(lower_f: S.Frame, lower_top_h: float, lower_wedge: float, wd: float, hmid: float,
              upper_wedge: float, upper_h: float, slip: float) -> S.Frame:
        # Upper body frame: rotate back by the disc wedge and half the upper body's wedge.
        R = lower_f.R @ S.rot_x(-(0.5 * lower_wedge + wd + 0.5 * upper_wedge))
        q = lower_f.point([0.0, -slip, lower_top_h + hmid])
        return S.Frame(R, q + R @ np.array([0.0, 0.0, 0.5 * upper_h]))

    f_l5 = stack(f_s1, 0.5 * H1, 0.0, wd5, 0.5 * (ha5 + hp5), wb5, H5, p.listhesis_l5_mm)
    f_l4 = stack(f_l5, 0.5 * H5, wb5, wd4, 0.5 * (ha4 + hp4), wb4, H4, 0.0)
    frames = {"S1": f_s1, "L5": f_l5, "L4": f_l4}

    # --- canal, sac ------------------------------------------------------------------------------
    bulge = p.disc_bulge_mm
    sac_w, sac_d = p.dural_sac_width_mm, p.dural_sac_depth_mm
    canal_d = max(p.canal_depth_mm, sac_d + bulge + 4.0)
    cw5 = p.canal_width_mm
    cw4 = cw5 - 1.5
    cw1 = cw5 + 4.0
    derived["canal_depth_mm"] = canal_d

    # --- pedicle heights from the foramen heights ------------------------------------------------
    s1_ped_top = 0.5 * H1 - 1.0
    ped_bottom5, ped_bottom4, fh5, fh4 = [], [], [], []
    for side, _n, _s in SIDES:
        h5 = p.l5_pedicle_height_mm[side]
        # Foramen height = L5 pedicle bottom -> S1 pedicle top, through the posterior disc.
        post_edge5 = 0.5 * D5 * np.tan(np.deg2rad(wb5) / 2)
        zb = -0.5 * H5 + post_edge5 + (p.foramen_height_l5s1_mm[side] - hp5 - 1.0)
        zb = float(np.clip(zb, -0.5 * H5 + 5.0, 0.5 * H5 - 1.0 - h5))
        ped_bottom5.append(zb)
        fh5.append(zb - (-0.5 * H5 + post_edge5) + hp5 + 1.0)
        h4 = p.l4_pedicle_height_mm[side]
        post_edge4 = 0.5 * D4 * np.tan(np.deg2rad(wb4) / 2)
        post_top5 = 0.5 * H5 - 0.5 * D5 * np.tan(np.deg2rad(wb5) / 2)
        l5_ped_top = zb + h5
        # L4/L5 foramen: L4 pedicle bottom -> L5 pedicle top.
        zb4 = (-0.5 * H4 + post_edge4) + (p.foramen_height_l4l5_mm[side] - hp4
                                           - (post_top5 - l5_ped_top))
        zb4 = float(np.clip(zb4, -0.5 * H4 + 5.0, 0.5 * H4 - 1.0 - h4))
        ped_bottom4.append(zb4)
        fh4.append(zb4 - (-0.5 * H4 + post_edge4) + hp4 + (post_top5 - l5_ped_top))
    derived["foramen_height_l5s1_mm"] = fh5
    derived["foramen_height_l4l5_mm"] = fh4

    common = dict(conc=p.endplate_concavity_mm, cort=p.cortical_thickness_mm,
                  post_cort=p.posterior_cortical_thickness_mm)
    v_l4 = Vertebra("L4", f_l4, W4, D4, H4, wb4, ped_w=p.l4_pedicle_width_mm,
                    ped_h=p.l4_pedicle_height_mm, ped_bottom=tuple(ped_bottom4),
                    conv_deg=p.pedicle_convergence_l4_deg, canal_w=cw4, canal_d=canal_d,
                    tp_tip=p.l4_transverse_tip_mm, tp_rise=1.0,
                    spinous_len=p.spinous_length_mm + 2.0, **common)
    v_l5 = Vertebra("L5", f_l5, W5, D5, H5, wb5, ped_w=p.l5_pedicle_width_mm,
                    ped_h=p.l5_pedicle_height_mm, ped_bottom=tuple(ped_bottom5),
                    conv_deg=p.pedicle_convergence_l5_deg, canal_w=cw5, canal_d=canal_d,
                    tp_tip=p.l5_transverse_tip_mm, tp_rise=4.0,
                    spinous_len=p.spinous_length_mm - 3.0, **common)
    s1_ph = (14.0, 14.0)
    v_s1 = Vertebra("S1", f_s1, W1, D1, H1, 0.0, ped_w=p.s1_pedicle_width_mm, ped_h=s1_ph,
                    ped_bottom=(s1_ped_top - 14.0, s1_ped_top - 14.0), conv_deg=15.0,
                    canal_w=cw1, canal_d=canal_d - 2.0, tp_tip=(0.0, 0.0), tp_rise=0.0,
                    spinous_len=0.0, sacrum=True, **common)

    # --- facets ------------------------------------------------------------------------------
    facet_parts = []
    for side, sname, s in SIDES:
        fj5 = _facet(v_s1, v_l5, side, p.facet_angle_l5s1_deg[side], p.s1_sap_height_mm[side],
                     p.foramen_width_l5s1_mm[side])
        fj4 = _facet(v_l5, v_l4, side, p.facet_angle_l4l5_deg[side], 14.0,
                     p.foramen_width_l4l5_mm[side])
        # L4's own SAP (joint with L3, outside the model): use a nominal shape.
        fj3 = _facet(v_l4, v_l4, side, 35.0, 13.0, 8.0)
        v_s1.extras.append(fj5["sap"])
        v_l5.extras += [fj5["iap"], fj4["sap"]]
        v_l4.extras += [fj4["iap"], fj3["sap"]]
        facet_parts += [(f"facet_capsule_l5s1_{sname}", fj5), (f"facet_capsule_l4l5_{sname}", fj4)]
        lm[f"s1_sap_tip_{sname}"] = fj5["sap_tip"]
        lm[f"l5s1_facet_centre_{sname}"] = fj5["joint_centre"]
        lm[f"l4l5_facet_centre_{sname}"] = fj4["joint_centre"]

    # --- dural sac and canal centrelines ---------------------------------------------------------
    def canal_pt(v: Vertebra, zl: float, y_off: float) -> np.ndarray:
        return v.frame.point([0.0, 0.5 * v.D + y_off, zl])

    sac_y = lambda v: bulge + 1.0 + 0.5 * sac_d  # noqa: E731 - sac lies on the disc's back
    top_z = 0.5 * H4 + 12.0
    sac_end = p.dural_sac_end_mm
    sac_ctrl = np.array([
        canal_pt(v_l4, top_z, sac_y(v_l4)), canal_pt(v_l4, 0.0, sac_y(v_l4)),
        canal_pt(v_l5, 0.5 * H5 + 5.0, sac_y(v_l5)), canal_pt(v_l5, 0.0, sac_y(v_l5)),
        canal_pt(v_s1, 0.5 * H1 + 4.0, sac_y(v_s1)), canal_pt(v_s1, 0.5 * H1 - 10.0, sac_y(v_s1) + 1.0),
        canal_pt(v_s1, 0.5 * H1 - sac_end, sac_y(v_s1) + 2.0)])
    sac_line = S.catmull_rom(sac_ctrl, 6)
    n_sac = len(sac_ctrl)
    taper = np.ones(n_sac)
    taper[-1] = 0.15
    taper[-2] = 0.9
    sac_hw = S.resample_values(sac_ctrl, 0.5 * sac_w * taper, sac_line)
    sac_hd = S.resample_values(sac_ctrl, 0.5 * sac_d * taper, sac_line)

    canal_ctrl = np.array([
        canal_pt(v_l4, top_z + 5.0, 0.5 * canal_d), canal_pt(v_l4, 0.0, 0.5 * canal_d),
        canal_pt(v_l5, 0.5 * H5 + 5.0, 0.5 * canal_d), canal_pt(v_l5, 0.0, 0.5 * canal_d),
        canal_pt(v_s1, 0.5 * H1 + 4.0, 0.5 * canal_d), canal_pt(v_s1, 0.0, 0.5 * canal_d - 1.0),
        canal_pt(v_s1, -0.5 * H1 - 12.0, 6.0), canal_pt(v_s1, -0.5 * H1 - 40.0, 8.0)])
    canal_line = S.catmull_rom(canal_ctrl, 6)
    canal_hw = S.resample_values(canal_ctrl, 0.5 * np.array([cw4, cw4, cw5, cw5, cw5, cw1, 20.0, 14.0]),
                                 canal_line)
    canal_hd = S.resample_values(canal_ctrl, 0.5 * np.array([canal_d] * 6 + [11.0, 8.0]), canal_line)
    lm["dural_sac_centreline"] = sac_line

    # --- roots -------------------------------------------------------------------------------
    roots: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def exit_dir(s: float, angle_deg: float) -> np.ndarray:
        A = np.deg2rad(angle_deg)
        C = np.deg2rad(p.root_caudal_share_deg)
        return np.array([s * np.sin(A), -np.cos(A) * np.cos(C), -np.cos(A) * np.sin(C)])

    for level, v, hp_disc, diam, angle in (("L4", v_l4, hp4, p.root_diameter_l4_mm,
                                            p.root_exit_angle_l4_deg),
                                           ("L5", v_l5, hp5, p.root_diameter_l5_mm,
                                            p.root_exit_angle_l5_deg)):
        for side, sname, s in SIDES:
            r = 0.5 * diam[side]
            g = min(r * p.ganglion_scale, 4.0)
            pw, ph, zb = v.ped_w[side], v.ped_h[side], v.ped_bottom[side]
            theta = np.deg2rad(52.0)
            rho = _outline_radius(v.W, v.D, theta) + bulge
            rim = np.array([s * rho * np.sin(theta), rho * np.cos(theta)])
            out = np.array([s * np.sin(theta), np.cos(theta)])
            gap = p.root_disc_gap_mm[side]
            p3_xy = rim + (g + gap) * out
            ctrl_local = [
                [s * (0.5 * sac_w - 1.5), 0.5 * v.D + sac_y(v) + 1.0, 0.5 * v.H - 2.0],
                [s * (0.5 * v.canal_w - r - 0.3), 0.5 * v.D + r + 1.0, zb + 0.45 * ph],
                [s * (0.5 * v.canal_w + 0.45 * pw), 0.5 * v.D + g + 0.4, zb - g - 1.2],
                # The root hugs the pedicle: it crosses the body's posterolateral rim a few mm
                # below the pedicle (the safe triangle's hypotenuse), then runs caudally over
                # the disc's lateral part (the Kambin triangle's hypotenuse).
                [p3_xy[0], p3_xy[1], zb - p.root_subpedicle_drop_mm[side] - 0.95 * g],
            ]
            ctrl = [v.frame.point(c) for c in ctrl_local]
            d1 = exit_dir(s, angle[side])
            ctrl.append(ctrl[-1] + 14.0 * d1)
            d2 = d1 + np.array([0.0, -0.1, -0.5])
            ctrl.append(ctrl[-1] + 22.0 * d2 / np.linalg.norm(d2))
            ctrl = np.array(ctrl)
            radii = np.array([0.9 * r, r, g, 0.95 * g, 1.05 * r, 1.1 * r])
            line = S.catmull_rom(ctrl, 8)
            roots[f"root_{level}_{sname}"] = (line, S.resample_values(ctrl, radii, line))
            lm[f"{level.lower()}_pedicle_centre_{sname}"] = v.frame.point(v.pedicle_frame(side).t)
            lm[f"{level.lower()}_pedicle_lower_margin_{sname}"] = v.frame.point(
                v.pedicle_frame(side).t - np.array([0.0, 0.0, 0.5 * ph]))
            lm[f"root_{level}_{sname}_exit_direction"] = d1
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
        roots[f"root_S1_{sname}"] = (line, np.full(len(line), r))
        lm[f"s1_pedicle_centre_{sname}"] = v_s1.frame.point(v_s1.pedicle_frame(side).t)
    for name, (line, radii) in roots.items():
        lm[f"{name}_centreline"] = line
        lm[f"{name}_radius"] = radii

    # --- soft-tissue geometry (extruded along the patient z axis) --------------------------------
    post_wall_y = f_l5.point([0.0, 0.5 * D5, 0.0])[1]
    y_skin = post_wall_y + p.skin_depth_mm
    bw, bd = p.body_half_width_mm, p.body_half_depth_mm
    body_c = np.array([0.0, y_skin - bd, 0.0])
    l5_front_y = f_l5.point([0.0, -0.5 * D5, 0.0])[1]

    # Field of view (patient frame), z from below S2 to the top of L4.
    l4_top = f_l4.point([0.0, 0.0, 0.5 * H4])
    fov_lo = np.array([-0.5 * p.fov_x_mm, l5_front_y - p.fov_anterior_margin_mm, -p.fov_inferior_mm])
    fov_hi = np.array([0.5 * p.fov_x_mm, y_skin + p.fov_posterior_air_mm,
                       l4_top[2] + p.fov_superior_margin_mm])
    BIG = (fov_lo - 5.0, fov_hi + 5.0)

    skin_t, fat_t = p.skin_thickness_mm, p.subcutaneous_fat_mm

    def body_fields(x, y, z):
        # Posterior skin follows the lumbar lordosis a little (deeper groove at L4/L5).
        yy = y - body_c[1] + 0.02 * (z - 30.0) ** 2 / 10.0
        d = S.sd_superellipse2(x, yy, bw, bd, 2.6)
        # Midline groove between the paraspinal muscles.
        groove = 4.0 * np.exp(-(x / 12.0) ** 2) * np.clip((yy / bd), 0, 1) ** 4
        return {"d": d + groove}

    parts: list[Part] = [
        Part("body", body_fields, BIG, [
            Layer("skin"), Layer("subcutaneous_fat", offset_mm=skin_t),
            Layer("fat", offset_mm=skin_t + fat_t)]),
    ]

    # Bowel and vessels in front of the spine.
    rng_soft = np.random.Generator(np.random.PCG64(
        int(1e6 * (p.body_half_width_mm + p.skin_depth_mm)) % (2 ** 32)))
    bowel_y = l5_front_y - 14.0

    def bowel_fields(x, y, z):
        d = np.maximum(y - bowel_y + 0.01 * x * x, body_fields(x, y, z)["d"] + skin_t + fat_t)
        return {"d": d}

    parts.append(Part("bowel", bowel_fields, (np.array([BIG[0][0], BIG[0][1], BIG[0][2]]),
                                              np.array([BIG[1][0], bowel_y + 5.0, BIG[1][2]])),
                      [Layer("bowel")]))
    gas = []
    for _ in range(6):
        c = np.array([rng_soft.uniform(-70, 70), rng_soft.uniform(fov_lo[1] - 20, bowel_y - 15),
                      rng_soft.uniform(fov_lo[2], fov_hi[2])])
        rad = rng_soft.uniform(4.0, 11.0, size=3)
        gas.append((c, rad))
    for i, (c, rad) in enumerate(gas):
        f_g = S.Frame(np.eye(3), c)
        parts.append(Part(f"bowel_gas_{i}", (lambda f, rr: lambda x, y, z: {
            "d": np.maximum(_ellipsoid(f, rr)(x, y, z), y - bowel_y + 4.0)})(f_g, rad),
            _box_of_points([c - rad, c + rad], 2.0), [Layer("air")]))

    # Muscles: paraspinal (erector spinae + multifidus), psoas, quadratus lumborum.
    lam_back = f_l5.point([0.0, 0.5 * D5 + canal_d + 6.0, 0.0])[1]
    fascia_y = y_skin - skin_t - fat_t - 2.0
    for side, sname, s in SIDES:
        cx = s * 32.0
        cy = 0.5 * (lam_back - 12.0 + fascia_y)
        hy = max(0.5 * (fascia_y - lam_back + 12.0), 12.0)

        def para(x, y, z, cx=cx, cy=cy, hy=hy, s=s):
            d = S.sd_superellipse2(x - cx, y - cy, 30.0, hy, 2.4)
            return {"d": S.smax(d, 2.5 - s * x, 2.0)}   # midline septum

        parts.append(Part(f"paraspinal_{sname}", para,
                          (np.array([min(cx - 32, 0), cy - hy - 2, BIG[0][2]]),
                           np.array([max(cx + 32, 0), cy + hy + 2, BIG[1][2]])), [Layer("muscle")]))
        ps_ctrl = np.array([f_l4.point([s * (0.5 * W4 + 9.0), -3.0, 8.0]),
                            f_l5.point([s * (0.5 * W5 + 13.0), -6.0, 0.0]),
                            f_s1.point([s * (0.5 * W1 + 22.0), -0.5 * D1 - 6.0, -5.0]),
                            f_s1.point([s * (0.5 * W1 + 30.0), -0.5 * D1 - 14.0, -45.0])])
        ps_r = np.array([13.0, 16.0, 19.0, 20.0])
        ps_line = S.catmull_rom(ps_ctrl, 6)
        ps_rr = S.resample_values(ps_ctrl, ps_r, ps_line)
        parts.append(Part(f"psoas_{sname}", (lambda L, R: lambda x, y, z: {
            "d": S.sd_tube(x, y, z, L, R)})(ps_line, ps_rr), _box_of_points(ps_line, 24.0),
            [Layer("muscle")]))
        ql_a = f_l4.point([s * (p.l4_transverse_tip_mm[side] + 6.0), 20.0, 20.0])
        ql_b = f_l5.point([s * (p.l5_transverse_tip_mm[side] + 12.0), 18.0, -5.0])
        parts.append(Part(f"quadratus_{sname}", (lambda a, b: lambda x, y, z: {
            "d": S.sd_capsule(x, y, z, a, b, 9.0)})(ql_a, ql_b), _box_of_points([ql_a, ql_b], 12.0),
            [Layer("muscle")]))

    # Common iliac arteries and veins (non-contrast blood).
    for side, sname, s in SIDES:
        a0 = f_l4.point([s * 6.0, -0.5 * D4 - 9.0, 0.0])
        a1 = f_s1.point([s * 30.0, -0.5 * D1 - 18.0, -30.0])
        v0 = f_l4.point([-s * 2.0 + s * 10.0, -0.5 * D4 - 5.0, -10.0])
        v1 = f_s1.point([s * 24.0, -0.5 * D1 - 9.0, -30.0])
        for nm, a, b, rr in (("artery", a0, a1, 5.0), ("vein", v0, v1, 6.5)):
            parts.append(Part(f"iliac_{nm}_{sname}", (lambda a, b, rr: lambda x, y, z: {
                "d": S.sd_capsule(x, y, z, a, b, rr)})(a, b, rr), _box_of_points([a, b], rr + 3.0),
                [Layer("vessel")]))

    # --- ilium -------------------------------------------------------------------------------
    y_c1 = f_s1.t[1]
    post1 = f_s1.point([0.0, 0.5 * D1, 0.0])[1]
    x_si = 0.5 * W1 + p.sacral_ala_width_mm
    l45_centre = 0.5 * (f_l5.point([0, 0, 0.5 * H5]) + f_l4.point([0, 0, -0.5 * H4]))
    t_wing = p.ilium_wing_thickness_mm
    ilium_info = {}
    ilium_geometry = {}
    for side, sname, s in SIDES:
        tp5 = f_l5.point(np.array([s * p.l5_transverse_tip_mm[side], v_l5.junction(side)[1] - 6.0,
                                   v_l5.junction(side)[2] + 4.0]))
        lm[f"l5_transverse_tip_{sname}"] = tp5
        # The wing leans outwards going up (coronal obliquity of the SI joint and the iliac
        # fossa): lateral shear of ``shear`` mm per mm above the S1 body centre.
        shear, z_ref = 0.25, float(f_s1.t[2])
        x_w = max(x_si + 22.0, abs(tp5[0]) + p.iliac_crest_gap_mm[side] + 0.5 * t_wing + 6.0
                  - shear * (tp5[2] - z_ref))
        ctrl = np.array([[s * (x_si - 10.0), post1 + 34.0],
                         [s * (x_si + 1.0), post1 + 8.0],
                         [s * (x_si + 5.0), y_c1 - 8.0],
                         [s * x_w, y_c1 - 26.0],
                         [s * (x_w + 22.0), y_c1 - 52.0]])
        thick = np.array([17.0, 20.0, 12.0, t_wing, t_wing])
        u_ctrl = np.array([0.0, 0.2, 0.4, 0.75, 1.0])
        z_crest = float(l45_centre[2] + p.iliac_crest_height_mm[side])
        z_psis = float(p.iliac_crest_height_mm[side] * 0.3 - 2.0)

        def ilium_fields(x, y, z, ctrl=ctrl, thick=thick, u_ctrl=u_ctrl, z_crest=z_crest,
                         z_psis=z_psis, s=s, shear=shear, z_ref=z_ref):
            x = x - s * shear * (z - z_ref)
            best = np.full(x.shape, np.inf)
            u_best = np.zeros(x.shape)
            for i in range(len(ctrl) - 1):
                a, b = ctrl[i], ctrl[i + 1]
                ab = b - a
                L2 = float(ab @ ab)
                t = np.clip(((x - a[0]) * ab[0] + (y - a[1]) * ab[1]) / L2, 0.0, 1.0)
                dist = np.hypot(x - a[0] - t * ab[0], y - a[1] - t * ab[1])
                closer = dist < best
                best = np.where(closer, dist, best)
                u_best = np.where(closer, u_ctrl[i] + t * (u_ctrl[i + 1] - u_ctrl[i]), u_best)
            w = np.clip(u_best / 0.65, 0.0, 1.0)
            z_top = z_psis + (z_crest - z_psis) * (3 * w * w - 2 * w ** 3)
            th = np.interp(u_best, u_ctrl, thick) + 5.0 * np.exp(-np.clip(z_top - z, 0, None) / 7.0)
            d = best - 0.5 * th
            return {"outer": S.smax(d, z - z_top, 4.0), "inner": S.smax(d + 1.5, z - z_top + 1.5, 4.0),
                    "muscle": S.smax(d - 14.0, z - z_top - 2.0, 4.0)}

        sh = shear * max(abs(z_crest - z_ref), abs(BIG[0][2] - z_ref)) + 25.0
        lo = np.array([ctrl[:, 0].min() - sh, ctrl[:, 1].min() - 25.0, BIG[0][2]])
        hi = np.array([ctrl[:, 0].max() + sh, ctrl[:, 1].max() + 25.0, z_crest + 8.0])
        ilium_info[sname] = (ilium_fields, (lo, hi))
        ilium_geometry[sname] = (ctrl, thick, shear, z_ref)
        top_i = int(np.argmin(np.abs(u_ctrl - 0.65 * 1.0)))
        lm[f"iliac_crest_top_{sname}"] = np.array([ctrl[3, 0] + s * shear * (z_crest - z_ref),
                                                    ctrl[3, 1], z_crest])
        _ = top_i
        parts.append(Part(f"ilium_muscle_{sname}", ilium_fields, (lo, hi),
                          [Layer("muscle", key="muscle")]))

    # --- canal / foramen fat, facet capsules, root fat sleeves ---------------------------------
    parts.append(Part("canal", lambda x, y, z: {"d": S.sd_elliptic_tube(
        x, y, z, canal_line, canal_hw, canal_hd)}, _box_of_points(canal_line, 16.0),
        [Layer("fat")], cache=True))
    for name, fj in facet_parts:
        parts.append(Part(name, (lambda f: lambda x, y, z: {"d": f(x, y, z)})(fj["capsule"]),
                          _box_of_points([fj["joint_centre"]], 16.0), [Layer("ligament")]))
    for up, low, lname in ((v_l5, v_s1, "l5s1"), (v_l4, v_l5, "l4l5")):
        for side, sname, s in SIDES:
            top = up.frame.point([s * (0.5 * up.canal_w + 0.5 * up.ped_w[side]), 0.5 * up.D + 3.0,
                                  up.ped_bottom[side]])
            bot = low.frame.point([s * (0.5 * low.canal_w + 0.5 * low.ped_w[side]), 0.5 * low.D + 3.0,
                                   low.ped_bottom[side] + low.ped_h[side]])
            c = 0.5 * (top + bot)
            lm[f"{lname}_foramen_centre_{sname}"] = c
            half_h = 0.5 * np.linalg.norm(top - bot) + 3.0
            f_f = _axis_frame(c, [0.0, 1.0, 0.0], up=(top - bot))
            parts.append(Part(f"foramen_fat_{lname}_{sname}",
                              (lambda f, hh: lambda x, y, z: {"d": S.sd_ellipsoid(
                                  *f.to_local(x, y, z), (13.0, 9.0, hh))})(f_f, half_h),
                              _box_of_points([c], half_h + 14.0), [Layer("fat")]))
    for name, (line, radii) in roots.items():
        parts.append(Part(name, (lambda L, R: lambda x, y, z: {"d": S.sd_tube(x, y, z, L, R)})(
            line, radii), _box_of_points(line, float(radii.max()) + 6.0),
            [Layer("fat", offset_mm=-2.5)], cache=True))

    # --- discs -------------------------------------------------------------------------------
    for lname, low, up in (("L5S1", v_s1, v_l5), ("L4L5", v_l5, v_l4)):
        disc_fields = disc_field_function(low, up, bulge)
        inst = f"disc_{lname}"
        c = 0.5 * (low.frame.point([0, 0, 0.5 * low.H]) + up.frame.point([0, 0, -0.5 * up.H]))
        parts.append(Part(inst, disc_fields, _box_of_points([c], 0.5 * max(W5, W1) + 10.0), [
            Layer("disc", key="outer", label="disc", instance=inst),
            Layer("disc_nucleus", key="inner", label="disc", instance=inst)]))
        lm[f"{lname.lower()}_disc_centre"] = c

    # --- bones -------------------------------------------------------------------------------
    root_carve = [(name, 1.0, 1.0) for name in roots]
    for v, inst in ((v_l4, "L4"), (v_l5, "L5")):
        def vert_fields(x, y, z, v=v):
            xl, yl, zl = v.frame.to_local(x, y, z)
            body, post = v.local_parts(xl, yl, zl)
            extras = [f(x, y, z) for f in v.extras]
            post = S.union([post] + extras, 2.0)
            return {"outer": S.smin(body, post, 2.0),
                    "inner": S.smin(body + v.cort, post + v.post_cort, 2.0)}
        parts.append(Part(inst, vert_fields, _local_box(v.frame, *v.bbox_local()), [
            Layer("cortical", key="outer", label="bone", instance=inst),
            Layer("cancellous", key="inner", label="bone", instance=inst)],
            carve=root_carve + [("canal", 0.0, 0.0)]))

    ala_w = p.sacral_ala_width_mm

    def sacrum_fields(x, y, z):
        v = v_s1
        xl, yl, zl = v.frame.to_local(x, y, z)
        body, post = v.local_parts(xl, yl, zl)
        # S2 and S3 bodies below S1, following the sacral kyphosis (posterior curve).
        f2 = S.Frame(S.rot_x(-12.0), np.array([0.0, 3.0, -0.5 * H1 - 11.5]))
        b2 = sd_body(*f2.to_local(xl, yl, zl), 0.82 * W1, 0.82 * D1, 24.0, 0.0, 0.0)
        f3 = S.Frame(S.rot_x(-25.0), np.array([0.0, 9.0, -0.5 * H1 - 33.0]))
        b3 = sd_body(*f3.to_local(xl, yl, zl), 0.62 * W1, 0.65 * D1, 20.0, 0.0, 0.0)
        bodies = S.union([body, b2, b3], 3.0)
        pieces = [post]
        for side, _sn, s in SIDES:
            # Ala and lateral mass, top sloping down laterally, reaching the SI joint.
            xs = x_si - 0.5 * t_wing * 0.5 + 2.5
            cx = 0.5 * (0.5 * W1 - 8.0 + xs)
            # Ala: z from below S2 up to 3 mm under the endplate, y from near the body's front
            # to just behind its posterior wall (the SAP and the roof of the canal lie behind).
            fa = S.Frame(S.rot_y(s * 14.0), np.array([s * cx, 0.5 * (-0.5 * D1 + 6.0 + 0.5 * D1 + 4.0),
                                                       0.5 * (-0.5 * H1 - 20.0 + 0.5 * H1 - 3.0)]))
            half = (0.5 * (xs - (0.5 * W1 - 8.0)), 0.5 * (D1 - 2.0), 0.5 * (H1 + 17.0))
            pieces.append(S.sd_round_box(*fa.to_local(xl, yl, zl), half, 5.0))
            fm = S.Frame(S.rot_x(-18.0), np.array([s * (0.5 * cw1 + 0.5 * (ala_w + 4)), 10.0, -0.5 * H1 - 22.0]))
            pieces.append(S.sd_round_box(*fm.to_local(xl, yl, zl),
                                         (0.5 * (ala_w + 8), 0.5 * D1 + 4.0, 20.0), 5.0))
        # Dorsal wall of the sacral canal (fused laminae) with the median crest.
        yb = 0.5 * D1 + v.canal_d + 3.0
        fr = S.Frame(S.rot_x(-15.0), np.array([0.0, yb, -19.0]))
        pieces.append(S.sd_round_box(*fr.to_local(xl, yl, zl), (0.5 * cw1 + 12.0, 4.0, 0.5 * H1 + 21.0), 3.0))
        fc = S.Frame(S.rot_x(-15.0), np.array([0.0, yb + 7.0, -6.0]))
        pieces.append(S.sd_round_box(*fc.to_local(xl, yl, zl), (3.5, 6.0, 0.5 * H1 + 6.0), 2.5))
        extras = [f(x, y, z) for f in v.extras]
        post_all = S.union(pieces + extras, 3.0)
        return {"outer": S.smin(bodies, post_all, 3.0),
                "inner": S.smin(bodies + v.cort, post_all + v.post_cort, 3.0)}

    s1_lo = np.array([-(x_si + 12.0), -0.5 * D1 - 8.0, -0.5 * H1 - 60.0])
    s1_hi = np.array([x_si + 12.0, 0.5 * D1 + canal_d + 30.0, 0.5 * H1 + 28.0])
    parts.append(Part("S1", sacrum_fields, _local_box(f_s1, s1_lo, s1_hi), [
        Layer("cortical", key="outer", label="bone", instance="S1"),
        Layer("cancellous", key="inner", label="bone", instance="S1")],
        cache=True, carve=root_carve + [("canal", 0.0, 0.0)]))
    for side, sname, s in SIDES:
        fn, box = ilium_info[sname]
        inst = f"ilium_{sname}"
        parts.append(Part(inst, fn, box, [
            Layer("cortical", key="outer", label="bone", instance=inst),
            Layer("cancellous", key="inner", label="bone", instance=inst)],
            carve=[("S1", 2.0, 2.0)] + root_carve))

    # --- roots and dural sac (highest priority) --------------------------------------------------
    for name in roots:
        parts.append(Part(f"{name}_nerve", None, parts[0].bbox, [
            Layer("nerve", label="nerve", instance=name)], from_cache=name))
    parts.append(Part("dura", lambda x, y, z: {"d": S.sd_elliptic_tube(
        x, y, z, sac_line, sac_hw, sac_hd)}, _box_of_points(sac_line, 12.0), [
        Layer("dura", label="dura", instance="dura"),
        Layer("csf", offset_mm=0.6, label="dura", instance="dura")]))

    # --- landmarks -----------------------------------------------------------------------------
    lm["s1_superior_endplate_centre"] = np.zeros(3)
    lm["s1_superior_endplate_normal"] = f_s1.R[:, 2].copy()
    lm["l5_inferior_endplate_normal"] = (f_l5.R @ S.rot_x(0.5 * wb5))[:, 2]
    lm["l5_body_centre"] = f_l5.t.copy()
    lm["l4_body_centre"] = f_l4.t.copy()
    lm["s1_body_centre"] = f_s1.t.copy()
    derived["skin_y_mm"] = float(y_skin)
    internals = {
        "vertebrae": {"L4": v_l4, "L5": v_l5, "S1": v_s1}, "bulge": bulge, "sac_w": sac_w,
        "sac_d": sac_d, "sac_y": sac_y(v_l4), "canal_d": canal_d, "y_skin": y_skin,
        "x_si": x_si, "t_wing": t_wing, "sacrum_fields": sacrum_fields,
        "ilium_fields": {sname: ilium_info[sname][0] for _i, sname, _s in SIDES},
        "ilium_geometry": ilium_geometry,
        "l4_wedge_deg": wb4, "skin_thickness": skin_t, "subcutaneous_fat": fat_t,
        "body_half_width": bw, "body_half_depth": bd,
    }
    return Anatomy(parts=parts, frames=frames, landmarks=lm, fov_lo=fov_lo, fov_hi=fov_hi,
                   body_centre=body_c, derived=derived, internals=internals)
