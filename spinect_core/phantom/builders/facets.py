"""Facets builder: superior and inferior articular processes of the procedural vertebrae, the
joint capsules between them, and the facet landmarks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.pedicles import Vertebrae
from spinect_core.phantom.builders.record import SIDES, Layer, Part, box_of_points
from spinect_core.phantom.builders.vertebra import Vertebra
from spinect_core.phantom.params import PhantomParams


@dataclass(frozen=True, kw_only=True)
class FacetShape:
    """Fixed shape of a facet joint (mm); its angle, SAP height and foramen width are sampled.

    Axes of the ellipsoids: along the joint's normal, along the joint plane (in the axial
    plane), and vertical.
    """

    #: Joint space between the articular surfaces (cartilage and fluid).
    gap_mm: float = 1.5
    #: Superior articular process: semi-axes (normal, along the joint) and how much its vertical
    #: semi-axis exceeds half the SAP's height; it starts this far lateral of the canal's edge.
    sap_radii_mm: tuple[float, float] = (4.5, 8.0)
    sap_extra_height_mm: float = 5.0
    sap_lateral_mm: float = 4.0
    #: The SAP's base (joined to the pedicle/lamina junction by a strut of this radius) lies at
    #: this fraction of its vertical semi-axis below its centre.
    sap_base_fraction: float = 0.6
    sap_strut_radius_mm: float = 5.5
    #: Inferior articular process: semi-axes, its centre's height above the lower body's top,
    #: the strut to the upper vertebra's junction (starting this far above its centre, radius).
    iap_radii_mm: tuple[float, float, float] = (4.0, 7.0, 9.0)
    iap_above_lower_top_mm: float = 4.0
    iap_strut_rise_mm: float = 4.0
    iap_strut_radius_mm: float = 4.5
    #: Blending of the processes with their struts, and rounding of the cut at the joint plane.
    strut_blend_mm: float = 3.0
    cut_rounding_mm: float = 0.8
    #: Capsule: ellipsoid around the joint, thicker than both processes by this much along the
    #: normal, and these semi-axes along the joint and vertically.
    capsule_extra_mm: float = 1.5
    capsule_radii_mm: tuple[float, float] = (9.0, 11.0)
    #: Box margin around the joint's centre.
    box_margin_mm: float = 16.0
    #: L4/L5 SAP height (not sampled: L5's SAP is not a window's border at L5/S1).
    l4l5_sap_height_mm: float = 14.0
    #: L4's own SAP (joint with L3, outside the model): nominal angle, height, foramen width.
    l3l4_angle_deg: float = 35.0
    l3l4_sap_height_mm: float = 13.0
    l3l4_foramen_width_mm: float = 8.0


#: Default facet shape.
FACET = FacetShape()


def facet_joint(lower: Vertebra, upper: Vertebra, side: int, angle_deg: float, sap_h: float,
                foramen_w: float, gap: float | None = None, shape: FacetShape = FACET) -> dict:
    """Superior articular process of ``lower`` and inferior articular process of ``upper``.

    Returns patient-frame SDF callables ``sap``, ``iap``, ``capsule`` and landmark points. The
    joint plane makes ``angle_deg`` with the sagittal plane; the SAP lies anterolateral to it and
    its anterior face is ``foramen_w`` behind the posterior body wall (the foramen's AP width).
    ``gap`` (mm) defaults to the shape's joint space.
    """
    k = shape
    gap = k.gap_mm if gap is None else gap
    s = SIDES[side][2]
    phi = np.deg2rad(angle_deg)
    n = np.array([s * np.cos(phi), -np.sin(phi), 0.0])       # towards the SAP (anterolateral)
    t = np.array([np.sin(phi), s * np.cos(phi), 0.0])
    zax = np.array([0.0, 0.0, 1.0])
    (an, at), az = k.sap_radii_mm, 0.5 * sap_h + k.sap_extra_height_mm
    ey = np.sqrt((an * np.sin(phi)) ** 2 + (at * np.cos(phi)) ** 2)
    c_sap = np.array([s * (0.5 * lower.canal_w + k.sap_lateral_mm), 0.5 * lower.D + foramen_w + ey,
                      0.5 * lower.H + sap_h - az])
    p_joint = c_sap - 0.5 * an * n
    ai, ati, azi = k.iap_radii_mm
    c_iap = p_joint - (gap + ai) * n
    c_iap[2] = 0.5 * lower.H + k.iap_above_lower_top_mm
    F = lower.frame
    Rj = np.column_stack([n, t, zax])
    f_sap = F.compose(S.Frame(Rj, c_sap))
    f_iap = F.compose(S.Frame(Rj, c_iap))
    n_p = F.vector(n)
    pj_p = F.point(p_joint)
    pj2_p = F.point(p_joint - gap * n)
    J_low = F.point(lower.junction(side))
    J_up = upper.frame.point(upper.junction(side))
    sap_base = F.point(c_sap - np.array([0.0, 0.0, k.sap_base_fraction * az]))
    blend, cut = k.strut_blend_mm, k.cut_rounding_mm
    c_iap_p = F.point(c_iap)

    def sap(x, y, z):
        d = S.sd_ellipsoid(*f_sap.to_local(x, y, z), (an, at, az))
        d = S.smin(d, S.sd_capsule(x, y, z, sap_base, J_low, k.sap_strut_radius_mm), blend)
        return S.smax(d, -S.sd_halfspace(x, y, z, pj_p, n_p), cut)

    def iap(x, y, z):
        d = S.sd_ellipsoid(*f_iap.to_local(x, y, z), (ai, ati, azi))
        d = S.smin(d, S.sd_capsule(x, y, z, c_iap_p + np.array([0, 0, k.iap_strut_rise_mm]), J_up,
                                   k.iap_strut_radius_mm), blend)
        return S.smax(d, S.sd_halfspace(x, y, z, pj2_p, n_p), cut)

    mid = F.point(p_joint - 0.5 * gap * n)
    f_cap = S.Frame(F.R @ Rj, mid)

    def capsule(x, y, z):
        return S.sd_ellipsoid(*f_cap.to_local(x, y, z), (an + ai + k.capsule_extra_mm, *k.capsule_radii_mm))

    tip = F.point(np.array([c_sap[0], c_sap[1], 0.5 * lower.H + sap_h]))
    return {"sap": sap, "iap": iap, "capsule": capsule, "joint_centre": mid,
            "sap_tip": tip, "normal": n_p}


@dataclass(frozen=True, kw_only=True)
class Facets:
    """Facet joints L5/S1 and L4/L5 (per side): ``joints`` maps a capsule part name to the
    :func:`facet_joint` dict; ``capsules`` are the ligament parts; ``landmarks`` patient mm."""

    joints: dict[str, dict]
    capsules: list[Part]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)


def build_facets(p: PhantomParams, vertebrae: Vertebrae, shape: FacetShape = FACET) -> Facets:
    """Articular processes (appended to the vertebrae's ``extras``) and the joint capsules."""
    k = shape
    v_l4, v_l5, v_s1 = vertebrae.l4, vertebrae.l5, vertebrae.s1
    joints: dict[str, dict] = {}
    lm: dict[str, np.ndarray] = {}
    for side, sname, _s in SIDES:
        fj5 = facet_joint(v_s1, v_l5, side, p.facet_angle_l5s1_deg[side], p.s1_sap_height_mm[side],
                          p.foramen_width_l5s1_mm[side], shape=k)
        fj4 = facet_joint(v_l5, v_l4, side, p.facet_angle_l4l5_deg[side], k.l4l5_sap_height_mm,
                          p.foramen_width_l4l5_mm[side], shape=k)
        # L4's own SAP (joint with L3, outside the model): use a nominal shape.
        fj3 = facet_joint(v_l4, v_l4, side, k.l3l4_angle_deg, k.l3l4_sap_height_mm,
                          k.l3l4_foramen_width_mm, shape=k)
        v_s1.extras.append(fj5["sap"])
        v_l5.extras += [fj5["iap"], fj4["sap"]]
        v_l4.extras += [fj4["iap"], fj3["sap"]]
        joints[f"facet_capsule_l5s1_{sname}"] = fj5
        joints[f"facet_capsule_l4l5_{sname}"] = fj4
        lm[f"s1_sap_tip_{sname}"] = fj5["sap_tip"]
        lm[f"l5s1_facet_centre_{sname}"] = fj5["joint_centre"]
        lm[f"l4l5_facet_centre_{sname}"] = fj4["joint_centre"]
    capsules = [Part(name, (lambda f: lambda x, y, z: {"d": f(x, y, z)})(fj["capsule"]),
                     box_of_points([fj["joint_centre"]], k.box_margin_mm), [Layer("ligament")])
                for name, fj in joints.items()]
    return Facets(joints=joints, capsules=capsules, landmarks=lm)
