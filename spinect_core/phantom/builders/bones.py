"""Bones builder: the L4 and L5 vertebrae, the sacrum (S1-S3 bodies, alae, lateral masses,
dorsal wall) and both ilia as cortical shells around cancellous bone, with the canal and the
roots' fat sleeves carved out of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.ilium import Ilium
from spinect_core.phantom.builders.pedicles import Vertebrae
from spinect_core.phantom.builders.record import SIDES, FieldFn, Layer, Part, local_box
from spinect_core.phantom.builders.vertebra import Vertebra, sd_body
from spinect_core.phantom.params import PhantomParams


@dataclass(frozen=True, kw_only=True)
class SacrumShape:
    """Fixed shape of the sacrum below and beside S1 (mm, deg), in S1's frame.

    Boxes are given by their centre and half sizes; angles tilt them about the x axis (negative:
    the sacral kyphosis, the lower part leaning back) or, for the ala, about y (sloping down
    laterally).
    """

    #: S2 and S3 bodies: tilt, centre (y, z below S1's inferior endplate), width and depth as
    #: fractions of S1's, height.
    s2_tilt_deg: float = -12.0
    s2_centre_mm: tuple[float, float] = (3.0, 11.5)
    s2_size: tuple[float, float, float] = (0.82, 0.82, 24.0)
    s3_tilt_deg: float = -25.0
    s3_centre_mm: tuple[float, float] = (9.0, 33.0)
    s3_size: tuple[float, float, float] = (0.62, 0.65, 20.0)
    #: Ala: reaches the SI joint (less a quarter of the wing's thickness, plus this overlap),
    #: starts this far inside the body's side, slopes down laterally; it spans y from this far
    #: behind the body's front to this far behind its back, z from this far below S1's
    #: inferior endplate to this far under its superior endplate; rounding.
    ala_si_overlap_mm: float = 2.5
    ala_inside_body_mm: float = 8.0
    ala_slope_deg: float = 14.0
    ala_front_mm: float = 6.0
    ala_back_mm: float = 4.0
    ala_below_mm: float = 20.0
    ala_under_top_mm: float = 3.0
    #: The ala box's depth is the body's depth less this, its height the body's plus this.
    ala_depth_less_mm: float = 2.0
    ala_height_more_mm: float = 17.0
    ala_rounding_mm: float = 5.0
    #: Lateral mass (S1 foramina to S2): tilt, x beyond the canal's edge (added to half the
    #: ala's width plus 4 mm), y, z below S1's inferior endplate, half sizes (x: half the ala's
    #: width + 8 mm, y: half the depth + 4 mm, z), rounding.
    mass_tilt_deg: float = -18.0
    mass_extra_width_mm: float = 4.0
    mass_y_mm: float = 10.0
    mass_below_mm: float = 22.0
    mass_half_extra_mm: tuple[float, float, float] = (8.0, 4.0, 20.0)
    mass_rounding_mm: float = 5.0
    #: Dorsal wall of the sacral canal (fused laminae): behind the canal by this much, tilt,
    #: centre z, half sizes (beyond the canal's half width, thickness, beyond half S1's height),
    #: rounding.
    roof_behind_canal_mm: float = 3.0
    roof_tilt_deg: float = -15.0
    roof_z_mm: float = -19.0
    roof_half_extra_mm: tuple[float, float, float] = (12.0, 4.0, 21.0)
    roof_rounding_mm: float = 3.0
    #: Median sacral crest: behind the roof, centre z, half sizes (x, y, beyond half S1's
    #: height), rounding.
    crest_behind_roof_mm: float = 7.0
    crest_z_mm: float = -6.0
    crest_half_mm: tuple[float, float, float] = (3.5, 6.0, 6.0)
    crest_rounding_mm: float = 2.5
    #: Blending of the bodies with each other and of everything together.
    blend_mm: float = 3.0
    #: Box (S1 frame): beyond the SI joints, in front of the body, below its inferior endplate,
    #: behind the canal, above the superior endplate.
    box_mm: tuple[float, float, float, float, float] = (12.0, 8.0, 60.0, 30.0, 28.0)


#: Default sacrum shape.
SACRUM = SacrumShape()

#: Clearances (mm) bone keeps from what is carved out of it: ``(distance, extra for the
#: cancellous surface)`` from the roots' fat sleeves and, for the ilia, from the sacrum (the SI
#: joint space).
ROOT_CLEARANCE = (1.0, 1.0)
SI_JOINT_CLEARANCE = (2.0, 2.0)
#: Blending of a lumbar vertebra's body with its posterior elements and articular processes.
VERTEBRA_BLEND_MM = 2.0


def bone_layers(inst: str) -> list[Layer]:
    """Cortical (key ``outer``) and cancellous (key ``inner``) layers of bone instance ``inst``."""
    return [Layer("cortical", key="outer", label="bone", instance=inst),
            Layer("cancellous", key="inner", label="bone", instance=inst)]


def vertebra_fields(v: Vertebra) -> FieldFn:
    """``{"outer", "inner"}`` of a lumbar vertebra: body and posterior elements (with its
    ``extras``: articular processes) blended, the inner surface one cortex thickness inside."""
    def fields(x, y, z):
        xl, yl, zl = v.frame.to_local(x, y, z)
        body, post = v.local_parts(xl, yl, zl)
        extras = [f(x, y, z) for f in v.extras]
        post = S.union([post] + extras, VERTEBRA_BLEND_MM)
        return {"outer": S.smin(body, post, VERTEBRA_BLEND_MM),
                "inner": S.smin(body + v.cort, post + v.post_cort, VERTEBRA_BLEND_MM)}
    return fields


def sacrum_field_function(v: Vertebra, *, x_si: float, t_wing: float, ala_w: float,
                          shape: SacrumShape = SACRUM) -> FieldFn:
    """``{"outer", "inner"}`` of the sacrum built on S1 ``v``: S1-S3 bodies along the sacral
    kyphosis, alae and lateral masses out to the SI joint at |x| = ``x_si``, and the dorsal wall
    of the sacral canal with the median crest."""
    W1, D1, H1, cw1 = v.W, v.D, v.H, v.canal_w
    k = shape
    bl = k.blend_mm

    def sacrum_fields(x, y, z):
        xl, yl, zl = v.frame.to_local(x, y, z)
        body, post = v.local_parts(xl, yl, zl)
        # S2 and S3 bodies below S1, following the sacral kyphosis (posterior curve).
        bodies = [body]
        for tilt, (cy, cz), (fw, fd, h) in ((k.s2_tilt_deg, k.s2_centre_mm, k.s2_size),
                                            (k.s3_tilt_deg, k.s3_centre_mm, k.s3_size)):
            f = S.Frame(S.rot_x(tilt), np.array([0.0, cy, -0.5 * H1 - cz]))
            bodies.append(sd_body(*f.to_local(xl, yl, zl), fw * W1, fd * D1, h, 0.0, 0.0))
        bodies = S.union(bodies, bl)
        pieces = [post]
        for side, _sn, s in SIDES:
            # Ala and lateral mass, top sloping down laterally, reaching the SI joint.
            xs = x_si - 0.5 * t_wing * 0.5 + k.ala_si_overlap_mm
            x_in = 0.5 * W1 - k.ala_inside_body_mm
            cx = 0.5 * (x_in + xs)
            # Ala: z from below S2 up to 3 mm under the endplate, y from near the body's front
            # to just behind its posterior wall (the SAP and the roof of the canal lie behind).
            fa = S.Frame(S.rot_y(s * k.ala_slope_deg), np.array([
                s * cx, 0.5 * (-0.5 * D1 + k.ala_front_mm + 0.5 * D1 + k.ala_back_mm),
                0.5 * (-0.5 * H1 - k.ala_below_mm + 0.5 * H1 - k.ala_under_top_mm)]))
            half = (0.5 * (xs - x_in), 0.5 * (D1 - k.ala_depth_less_mm), 0.5 * (H1 + k.ala_height_more_mm))
            pieces.append(S.sd_round_box(*fa.to_local(xl, yl, zl), half, k.ala_rounding_mm))
            mx, my, mz = k.mass_half_extra_mm
            fm = S.Frame(S.rot_x(k.mass_tilt_deg), np.array([
                s * (0.5 * cw1 + 0.5 * (ala_w + k.mass_extra_width_mm)), k.mass_y_mm,
                -0.5 * H1 - k.mass_below_mm]))
            pieces.append(S.sd_round_box(*fm.to_local(xl, yl, zl),
                                         (0.5 * (ala_w + mx), 0.5 * D1 + my, mz), k.mass_rounding_mm))
        # Dorsal wall of the sacral canal (fused laminae) with the median crest.
        yb = 0.5 * D1 + v.canal_d + k.roof_behind_canal_mm
        rx, ry, rz = k.roof_half_extra_mm
        fr = S.Frame(S.rot_x(k.roof_tilt_deg), np.array([0.0, yb, k.roof_z_mm]))
        pieces.append(S.sd_round_box(*fr.to_local(xl, yl, zl), (0.5 * cw1 + rx, ry, 0.5 * H1 + rz),
                                     k.roof_rounding_mm))
        cx_, cy_, cz_ = k.crest_half_mm
        fc = S.Frame(S.rot_x(k.roof_tilt_deg), np.array([0.0, yb + k.crest_behind_roof_mm, k.crest_z_mm]))
        pieces.append(S.sd_round_box(*fc.to_local(xl, yl, zl), (cx_, cy_, 0.5 * H1 + cz_),
                                     k.crest_rounding_mm))
        extras = [f(x, y, z) for f in v.extras]
        post_all = S.union(pieces + extras, bl)
        return {"outer": S.smin(bodies, post_all, bl),
                "inner": S.smin(bodies + v.cort, post_all + v.post_cort, bl)}
    return sacrum_fields


@dataclass(frozen=True, kw_only=True)
class Bones:
    """Bone parts in paint order (L4, L5, S1, ilium left, ilium right) and the sacrum's fields."""

    parts: list[Part]
    sacrum_fields: FieldFn


def build_bones(p: PhantomParams, vertebrae: Vertebrae, ilium: Ilium,
                root_names: list[str], sacrum: SacrumShape = SACRUM) -> Bones:
    """Bone parts; the canal (``"canal"``) and the roots' fat sleeves (``root_names``, 1 mm
    clearance) are carved out of the vertebrae, the sacrum (2 mm) and the roots out of the ilia."""
    root_carve = [(name, *ROOT_CLEARANCE) for name in root_names]
    parts: list[Part] = []
    for v in (vertebrae.l4, vertebrae.l5):
        parts.append(Part(v.name, vertebra_fields(v), local_box(v.frame, *v.bbox_local()),
                          bone_layers(v.name), carve=root_carve + [("canal", 0.0, 0.0)]))
    v_s1 = vertebrae.s1
    D1, H1 = v_s1.D, v_s1.H
    x_si, canal_d = ilium.x_si, vertebrae.canal_depth_mm
    sacrum_fields = sacrum_field_function(v_s1, x_si=x_si, t_wing=ilium.wing_thickness_mm,
                                          ala_w=p.sacral_ala_width_mm, shape=sacrum)
    lat, front, below, back, above = sacrum.box_mm
    s1_lo = np.array([-(x_si + lat), -0.5 * D1 - front, -0.5 * H1 - below])
    s1_hi = np.array([x_si + lat, 0.5 * D1 + canal_d + back, 0.5 * H1 + above])
    parts.append(Part("S1", sacrum_fields, local_box(v_s1.frame, s1_lo, s1_hi), bone_layers("S1"),
                      cache=True, carve=root_carve + [("canal", 0.0, 0.0)]))
    for _side, sname, _s in SIDES:
        inst = f"ilium_{sname}"
        parts.append(Part(inst, ilium.fields[sname], ilium.bbox[sname], bone_layers(inst),
                          carve=[("S1", *SI_JOINT_CLEARANCE)] + root_carve))
    return Bones(parts=parts, sacrum_fields=sacrum_fields)
