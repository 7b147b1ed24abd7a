"""Soft-tissue builder: body outline (skin, subcutaneous fat, fat), field of view, bowel with gas,
paraspinal, psoas and quadratus muscles, and the common iliac vessels, placed from the spine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import (
    SIDES, Layer, Part, Spine, box_of_points, ellipsoid,
)
from spinect_core.phantom.params import PhantomParams


Point = tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class SoftTissueShape:
    """Fixed shape of the soft tissue (mm); body size, skin depth and fat are sampled.

    Muscle and vessel points are ``(lateral, y, z)`` in a vertebra's frame: ``lateral`` is the
    distance from the midline (or from the body's side, or from the transverse tip, as named),
    mirrored per side.
    """

    #: Posterior skin follows the lumbar lordosis: ``(c, z0, s)``, it moves forwards by
    #: ``c * (z - z0)^2 / s`` mm (5 mm at 50 mm from ``z0``, which is 30 mm above the S1
    #: endplate, about the L4/L5 level).
    lordosis_curve: tuple[float, float, float] = (0.02, 30.0, 10.0)
    #: Superellipse exponent of the axial body outline (2 = ellipse; larger is boxier).
    outline_exponent: float = 2.6
    #: Midline groove between the paraspinal muscles: depth and Gaussian half width.
    groove_mm: tuple[float, float] = (4.0, 12.0)
    #: Parts that fill the field of view reach this far beyond it.
    fov_margin_mm: float = 5.0
    #: Bowel: its back lies this far in front of L5's anterior wall, bending back by
    #: ``curvature * x^2`` at the sides.
    bowel_gap_mm: float = 14.0
    bowel_curvature_per_mm: float = 0.01
    #: Gas pockets: count, |x| range, how far they may lie in front of the field of view and must
    #: lie in front of the bowel's back, semi-axis range, and how far inside the bowel's back.
    gas_count: int = 6
    gas_x_mm: float = 70.0
    gas_y_mm: tuple[float, float] = (20.0, 15.0)
    gas_radius_mm: tuple[float, float] = (4.0, 11.0)
    gas_inside_mm: float = 4.0
    #: Paraspinal muscles: centre |x|, half width, superellipse exponent; they fill from 6 mm
    #: behind the laminae (less an overlap of 12 mm) to 2 mm in front of the fascia; the
    #: midline septum is 2.5 mm wide each side (rounded 2 mm).
    paraspinal_x_mm: float = 32.0
    paraspinal_half_width_mm: float = 30.0
    paraspinal_exponent: float = 2.4
    lamina_back_mm: float = 6.0
    paraspinal_overlap_mm: float = 12.0
    fascia_gap_mm: float = 2.0
    septum_mm: float = 2.5
    septum_rounding_mm: float = 2.0
    #: Psoas centreline (lateral of each body's side) at L4, L5, S1 and below S1, and radii.
    psoas_l4: Point = (9.0, -3.0, 8.0)
    psoas_l5: Point = (13.0, -6.0, 0.0)
    psoas_s1: Point = (22.0, -6.0, -5.0)     # y: in front of S1's anterior wall (-D/2)
    psoas_low: Point = (30.0, -14.0, -45.0)  # y: in front of S1's anterior wall (-D/2)
    psoas_radii_mm: tuple[float, float, float, float] = (13.0, 16.0, 19.0, 20.0)
    psoas_box_mm: float = 24.0
    #: Quadratus lumborum: capsule from lateral of L4's to lateral of L5's transverse tips.
    quadratus_l4: Point = (6.0, 20.0, 20.0)
    quadratus_l5: Point = (12.0, 18.0, -5.0)
    quadratus_radius_mm: float = 9.0
    #: Common iliac artery and vein: from in front of L4 (y from L4's anterior wall) to in
    #: front of S1 (y from S1's anterior wall), radii (non-contrast blood).
    artery_l4: Point = (6.0, -9.0, 0.0)
    artery_s1: Point = (30.0, -18.0, -30.0)
    vein_l4: Point = (8.0, -5.0, -10.0)
    vein_s1: Point = (24.0, -9.0, -30.0)
    artery_radius_mm: float = 5.0
    vein_radius_mm: float = 6.5
    vessel_box_mm: float = 3.0


#: Default soft-tissue shape.
SOFT_TISSUE = SoftTissueShape()


@dataclass(frozen=True, kw_only=True)
class Body:
    """The body's outline and the field of view (patient frame, mm).

    Attributes
    ----------
    y_skin : float
        Posterior skin y (at L5).
    centre : ndarray (3,)
        Body outline centre (x = 0, z = 0).
    half_width, half_depth : float
        Outline half sizes.
    skin_mm, subcutaneous_fat_mm : float
        Skin and subcutaneous fat thickness.
    fov_lo, fov_hi : ndarray (3,)
        Field of view box.
    big : (ndarray (3,), ndarray (3,))
        The field of view grown by 5 mm: the box of parts that fill it (body, bowel, muscles).
    l5_front_y : float
        y of L5's anterior body wall.
    part : Part
        Skin, subcutaneous fat and inner fat painted from the outline.
    """

    y_skin: float
    centre: np.ndarray
    half_width: float
    half_depth: float
    skin_mm: float
    subcutaneous_fat_mm: float
    fov_lo: np.ndarray
    fov_hi: np.ndarray
    big: tuple[np.ndarray, np.ndarray]
    l5_front_y: float
    part: Part

    def fields(self, x, y, z) -> dict:
        return self.part.fields(x, y, z)


def build_body(spine: Spine, p: PhantomParams, shape: SoftTissueShape = SOFT_TISSUE) -> Body:
    """Body outline behind L5 at the sampled skin depth and the field of view around L4-S2."""
    k = shape
    v_l5, v_l4 = spine["L5"], spine["L4"]
    f_l5, f_l4, D5, H4 = v_l5.frame, v_l4.frame, v_l5.body_depth_mm, v_l4.body_height_mm
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
    BIG = (fov_lo - k.fov_margin_mm, fov_hi + k.fov_margin_mm)
    skin_t, fat_t = p.skin_thickness_mm, p.subcutaneous_fat_mm
    curve, z0, scale = k.lordosis_curve
    g_depth, g_width = k.groove_mm

    def body_fields(x, y, z):
        # Posterior skin follows the lumbar lordosis a little (deeper groove at L4/L5).
        yy = y - body_c[1] + curve * (z - z0) ** 2 / scale
        d = S.sd_superellipse2(x, yy, bw, bd, k.outline_exponent)
        # Midline groove between the paraspinal muscles.
        groove = g_depth * np.exp(-(x / g_width) ** 2) * np.clip((yy / bd), 0, 1) ** 4
        return {"d": d + groove}

    part = Part("body", body_fields, BIG, [
        Layer("skin"), Layer("subcutaneous_fat", offset_mm=skin_t),
        Layer("fat", offset_mm=skin_t + fat_t)])
    return Body(y_skin=y_skin, centre=body_c, half_width=bw, half_depth=bd, skin_mm=skin_t,
                subcutaneous_fat_mm=fat_t, fov_lo=fov_lo, fov_hi=fov_hi, big=BIG,
                l5_front_y=l5_front_y, part=part)


def build_bowel(body: Body, p: PhantomParams, shape: SoftTissueShape = SOFT_TISSUE) -> list[Part]:
    """Bowel in front of the spine and gas pockets (own random stream seeded from ``p``)."""
    k = shape
    rng_soft = np.random.Generator(np.random.PCG64(
        int(1e6 * (p.body_half_width_mm + p.skin_depth_mm)) % (2 ** 32)))
    bowel_y = body.l5_front_y - k.bowel_gap_mm
    BIG, fov_lo, fov_hi = body.big, body.fov_lo, body.fov_hi
    skin_t, fat_t = body.skin_mm, body.subcutaneous_fat_mm
    body_fields = body.fields

    def bowel_fields(x, y, z):
        d = np.maximum(y - bowel_y + k.bowel_curvature_per_mm * x * x,
                       body_fields(x, y, z)["d"] + skin_t + fat_t)
        return {"d": d}

    parts = [Part("bowel", bowel_fields, (np.array([BIG[0][0], BIG[0][1], BIG[0][2]]),
                                          np.array([BIG[1][0], bowel_y + 5.0, BIG[1][2]])),
                  [Layer("bowel")])]
    gas = []
    gy_front, gy_back = k.gas_y_mm
    for _ in range(k.gas_count):
        c = np.array([rng_soft.uniform(-k.gas_x_mm, k.gas_x_mm),
                      rng_soft.uniform(fov_lo[1] - gy_front, bowel_y - gy_back),
                      rng_soft.uniform(fov_lo[2], fov_hi[2])])
        rad = rng_soft.uniform(*k.gas_radius_mm, size=3)
        gas.append((c, rad))
    for i, (c, rad) in enumerate(gas):
        f_g = S.Frame(np.eye(3), c)
        parts.append(Part(f"bowel_gas_{i}", (lambda f, rr: lambda x, y, z: {
            "d": np.maximum(ellipsoid(f, rr)(x, y, z), y - bowel_y + k.gas_inside_mm)})(f_g, rad),
            box_of_points([c - rad, c + rad], 2.0), [Layer("air")]))
    return parts


def build_muscles(spine: Spine, body: Body, shape: SoftTissueShape = SOFT_TISSUE) -> list[Part]:
    """Paraspinal (erector spinae + multifidus), psoas and quadratus lumborum, per side."""
    k = shape
    v_l4, v_l5, v_s1 = spine["L4"], spine["L5"], spine["S1"]
    f_l4, f_l5, f_s1 = v_l4.frame, v_l5.frame, v_s1.frame
    W4, W5, W1, D1 = v_l4.body_width_mm, v_l5.body_width_mm, v_s1.body_width_mm, v_s1.body_depth_mm
    BIG = body.big
    lam_back = f_l5.point([0.0, 0.5 * v_l5.body_depth_mm + v_l5.canal_depth_mm + k.lamina_back_mm,
                           0.0])[1]
    fascia_y = body.y_skin - body.skin_mm - body.subcutaneous_fat_mm - k.fascia_gap_mm
    ov, hwp, sep = k.paraspinal_overlap_mm, k.paraspinal_half_width_mm, k.septum_mm
    parts: list[Part] = []
    for side, sname, s in SIDES:
        cx = s * k.paraspinal_x_mm
        cy = 0.5 * (lam_back - ov + fascia_y)
        hy = max(0.5 * (fascia_y - lam_back + ov), ov)

        def para(x, y, z, cx=cx, cy=cy, hy=hy, s=s):
            d = S.sd_superellipse2(x - cx, y - cy, hwp, hy, k.paraspinal_exponent)
            return {"d": S.smax(d, sep - s * x, k.septum_rounding_mm)}   # midline septum

        # Box: the outline's half width plus 2 mm (the septum keeps it on its side).
        bx = k.paraspinal_x_mm
        parts.append(Part(f"paraspinal_{sname}", para,
                          (np.array([min(cx - bx, 0), cy - hy - 2, BIG[0][2]]),
                           np.array([max(cx + bx, 0), cy + hy + 2, BIG[1][2]])), [Layer("muscle")]))
        (a4, b4, c4), (a5, b5, c5) = k.psoas_l4, k.psoas_l5
        (a1, b1, c1), (a0, b0, c0) = k.psoas_s1, k.psoas_low
        ps_ctrl = np.array([f_l4.point([s * (0.5 * W4 + a4), b4, c4]),
                            f_l5.point([s * (0.5 * W5 + a5), b5, c5]),
                            f_s1.point([s * (0.5 * W1 + a1), -0.5 * D1 + b1, c1]),
                            f_s1.point([s * (0.5 * W1 + a0), -0.5 * D1 + b0, c0])])
        ps_r = np.array(k.psoas_radii_mm)
        ps_line = S.catmull_rom(ps_ctrl, 6)
        ps_rr = S.resample_values(ps_ctrl, ps_r, ps_line)
        parts.append(Part(f"psoas_{sname}", (lambda L, R: lambda x, y, z: {
            "d": S.sd_tube(x, y, z, L, R)})(ps_line, ps_rr), box_of_points(ps_line, k.psoas_box_mm),
            [Layer("muscle")]))
        # Transverse tips as distances from the midline (local x of the tip times the side sign).
        tip4 = s * v_l4.transverse_tip[side][0]
        tip5 = s * v_l5.transverse_tip[side][0]
        (qa, qb, qc), (qd, qe, qf) = k.quadratus_l4, k.quadratus_l5
        ql_a = f_l4.point([s * (tip4 + qa), qb, qc])
        ql_b = f_l5.point([s * (tip5 + qd), qe, qf])
        qr = k.quadratus_radius_mm
        parts.append(Part(f"quadratus_{sname}", (lambda a, b: lambda x, y, z: {
            "d": S.sd_capsule(x, y, z, a, b, qr)})(ql_a, ql_b), box_of_points([ql_a, ql_b], qr + 3.0),
            [Layer("muscle")]))
    return parts


def build_vessels(spine: Spine, shape: SoftTissueShape = SOFT_TISSUE) -> list[Part]:
    """Common iliac arteries and veins (non-contrast blood) in front of L4-S1, per side."""
    k = shape
    v_l4, v_s1 = spine["L4"], spine["S1"]
    f_l4, f_s1, D4, D1 = v_l4.frame, v_s1.frame, v_l4.body_depth_mm, v_s1.body_depth_mm
    parts: list[Part] = []
    for side, sname, s in SIDES:
        ends = []
        for p4, p1 in ((k.artery_l4, k.artery_s1), (k.vein_l4, k.vein_s1)):
            # y of a point is its distance in front of (negative) the body's anterior wall.
            ends.append((f_l4.point([s * p4[0], -0.5 * D4 + p4[1], p4[2]]),
                         f_s1.point([s * p1[0], -0.5 * D1 + p1[1], p1[2]])))
        (a0, a1), (v0, v1) = ends
        for nm, a, b, rr in (("artery", a0, a1, k.artery_radius_mm), ("vein", v0, v1, k.vein_radius_mm)):
            parts.append(Part(f"iliac_{nm}_{sname}", (lambda a, b, rr: lambda x, y, z: {
                "d": S.sd_capsule(x, y, z, a, b, rr)})(a, b, rr), box_of_points([a, b], rr + k.vessel_box_mm),
                [Layer("vessel")]))
    return parts


@dataclass(frozen=True, kw_only=True)
class SoftTissue:
    """Body outline and every soft-tissue part in paint order (body, bowel, muscles, vessels)."""

    body: Body
    parts: list[Part]


def build_soft_tissue(spine: Spine, p: PhantomParams, shape: SoftTissueShape = SOFT_TISSUE) -> SoftTissue:
    """Body, bowel, muscles and vessels."""
    body = build_body(spine, p, shape)
    parts = ([body.part] + build_bowel(body, p, shape) + build_muscles(spine, body, shape)
             + build_vessels(spine, shape))
    return SoftTissue(body=body, parts=parts)
