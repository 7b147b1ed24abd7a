"""Ilium builder: each iliac wing as a thick curved sheet swept along an axial control polygon
from the SI joint forwards and outwards, its crest rising to a sampled height relative to the
L4/L5 disc, with the iliacus/gluteal muscle around it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import SIDES, FieldFn, Layer, Part, Spine
from spinect_core.phantom.params import PhantomParams


@dataclass(frozen=True, kw_only=True)
class IliumShape:
    """Fixed shape of the iliac wings (mm); ala width, wing thickness, crest height and gap are
    sampled.

    The wing is a sheet swept along an axial polyline of five points ``(x, y)``: two at the SI
    joint (x from the joint, y behind S1's posterior wall), one at the front of the joint (x from
    the joint, y from S1's body centre), two on the wing (x from the wing's inner line ``x_w``,
    y from S1's body centre).
    """

    #: The wing leans outwards going up (coronal obliquity of the SI joint and the iliac fossa):
    #: lateral shift per mm above the S1 body centre.
    shear_per_mm: float = 0.25
    #: The wing's inner line lies at least this far lateral of the SI joint, and this far beyond
    #: the sampled gap plus half the wing from L5's transverse tip.
    wing_beyond_si_mm: float = 22.0
    wing_tip_clearance_mm: float = 6.0
    si_points: tuple[tuple[float, float], tuple[float, float]] = ((-10.0, 34.0), (1.0, 8.0))
    si_front_point: tuple[float, float] = (5.0, -8.0)
    wing_points: tuple[tuple[float, float], tuple[float, float]] = ((0.0, -26.0), (22.0, -52.0))
    #: Thickness at the first three points (PSIS, SI joint, front of the joint); the wing's own
    #: thickness is sampled.
    thickness_mm: tuple[float, float, float] = (17.0, 20.0, 12.0)
    #: Arc parameter of the five points (0 at the PSIS, 1 at the ASIS end of the polyline).
    arc: tuple[float, float, float, float, float] = (0.0, 0.2, 0.4, 0.75, 1.0)
    #: Crest height: rises from the PSIS (``psis[0]`` x the crest height + ``psis[1]`` mm) to the
    #: crest top at arc ``crest_top_arc`` (smoothstep), then stays at the crest's height.
    psis: tuple[float, float] = (0.3, -2.0)
    crest_top_arc: float = 0.65
    #: The crest is thicker (iliac lip): extra thickness decaying below the crest.
    crest_lip_mm: float = 5.0
    crest_lip_decay_mm: float = 7.0
    #: Cortex thickness, muscle (iliacus, glutei) around the wing and above the crest, rounding.
    cortex_mm: float = 1.5
    muscle_mm: float = 14.0
    muscle_above_crest_mm: float = 2.0
    rounding_mm: float = 4.0
    #: Box margins: around the polyline (plus the shear) and above the crest.
    box_margin_mm: float = 25.0
    box_above_crest_mm: float = 8.0


#: Default ilium shape.
ILIUM = IliumShape()


@dataclass(frozen=True, kw_only=True)
class Ilium:
    """Both ilia (patient frame, mm).

    Attributes
    ----------
    fields : dict of str to callable
        Per side name: ``fields(x, y, z) -> {"outer", "inner", "muscle"}`` (cortex surface,
        cancellous surface, muscle envelope).
    bbox : dict of str to (ndarray (3,), ndarray (3,))
    geometry : dict of str to tuple
        Per side ``(control polygon (5, 2) x/y, thickness per control point (5,), lateral shear
        per mm above ``z_ref``, z_ref)``.
    x_si : float
        |x| of the SI joint (sacral body half width + ala width).
    wing_thickness_mm : float
    muscle_parts : list of Part
    landmarks : dict
        ``l5_transverse_tip_<side>`` and ``iliac_crest_top_<side>``.
    """

    fields: dict[str, FieldFn]
    bbox: dict[str, tuple[np.ndarray, np.ndarray]]
    geometry: dict[str, tuple]
    x_si: float
    wing_thickness_mm: float
    muscle_parts: list[Part]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)


def build_ilium(spine: Spine, p: PhantomParams, z_bottom: float, shape: IliumShape = ILIUM) -> Ilium:
    """Ilia placed from S1's frame and size, L5's transverse tips and the L4/L5 disc height.

    The wing's inner face keeps ``iliac_crest_gap_mm`` lateral to L5's transverse tip; the
    crest top lies ``iliac_crest_height_mm`` above the L4/L5 disc centre. ``z_bottom`` is the
    lowest z the parts must reach (the bottom of the filled box).
    """
    k = shape
    v_s1, v_l5, v_l4 = spine["S1"], spine["L5"], spine["L4"]
    f_s1, f_l5, f_l4 = v_s1.frame, v_l5.frame, v_l4.frame
    W1, D1, H5, H4 = v_s1.body_width_mm, v_s1.body_depth_mm, v_l5.body_height_mm, v_l4.body_height_mm
    y_c1 = f_s1.t[1]
    post1 = f_s1.point([0.0, 0.5 * D1, 0.0])[1]
    x_si = 0.5 * W1 + p.sacral_ala_width_mm
    l45_centre = 0.5 * (f_l5.point([0, 0, 0.5 * H5]) + f_l4.point([0, 0, -0.5 * H4]))
    t_wing = p.ilium_wing_thickness_mm
    lm: dict[str, np.ndarray] = {}
    fields, boxes, geometry, muscle = {}, {}, {}, []
    for side, sname, s in SIDES:
        tp5 = f_l5.point(v_l5.transverse_tip[side])
        lm[f"l5_transverse_tip_{sname}"] = tp5
        # The wing leans outwards going up (coronal obliquity of the SI joint and the iliac
        # fossa): lateral shear of ``shear`` mm per mm above the S1 body centre.
        shear, z_ref = k.shear_per_mm, float(f_s1.t[2])
        x_w = max(x_si + k.wing_beyond_si_mm, abs(tp5[0]) + p.iliac_crest_gap_mm[side] + 0.5 * t_wing
                  + k.wing_tip_clearance_mm - shear * (tp5[2] - z_ref))
        (xa, ya), (xb, yb) = k.si_points
        xc, yc = k.si_front_point
        (xd, yd), (xe, ye) = k.wing_points
        ctrl = np.array([[s * (x_si + xa), post1 + ya],
                         [s * (x_si + xb), post1 + yb],
                         [s * (x_si + xc), y_c1 + yc],
                         [s * (x_w + xd), y_c1 + yd],
                         [s * (x_w + xe), y_c1 + ye]])
        thick = np.array([*k.thickness_mm, t_wing, t_wing])
        u_ctrl = np.array(k.arc)
        z_crest = float(l45_centre[2] + p.iliac_crest_height_mm[side])
        z_psis = float(p.iliac_crest_height_mm[side] * k.psis[0] + k.psis[1])

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
            w = np.clip(u_best / k.crest_top_arc, 0.0, 1.0)
            z_top = z_psis + (z_crest - z_psis) * (3 * w * w - 2 * w ** 3)
            th = np.interp(u_best, u_ctrl, thick) + k.crest_lip_mm * np.exp(
                -np.clip(z_top - z, 0, None) / k.crest_lip_decay_mm)
            d = best - 0.5 * th
            c, m, r = k.cortex_mm, k.muscle_mm, k.rounding_mm
            return {"outer": S.smax(d, z - z_top, r), "inner": S.smax(d + c, z - z_top + c, r),
                    "muscle": S.smax(d - m, z - z_top - k.muscle_above_crest_mm, r)}

        sh = shear * max(abs(z_crest - z_ref), abs(z_bottom - z_ref)) + k.box_margin_mm
        lo = np.array([ctrl[:, 0].min() - sh, ctrl[:, 1].min() - k.box_margin_mm, z_bottom])
        hi = np.array([ctrl[:, 0].max() + sh, ctrl[:, 1].max() + k.box_margin_mm,
                       z_crest + k.box_above_crest_mm])
        fields[sname] = ilium_fields
        boxes[sname] = (lo, hi)
        geometry[sname] = (ctrl, thick, shear, z_ref)
        lm[f"iliac_crest_top_{sname}"] = np.array([ctrl[3, 0] + s * shear * (z_crest - z_ref),
                                                    ctrl[3, 1], z_crest])
        muscle.append(Part(f"ilium_muscle_{sname}", ilium_fields, (lo, hi),
                           [Layer("muscle", key="muscle")]))
    return Ilium(fields=fields, bbox=boxes, geometry=geometry, x_si=x_si, wing_thickness_mm=t_wing,
                 muscle_parts=muscle, landmarks=lm)
