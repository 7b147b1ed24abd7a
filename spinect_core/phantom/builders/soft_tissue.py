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


def build_body(spine: Spine, p: PhantomParams) -> Body:
    """Body outline behind L5 at the sampled skin depth and the field of view around L4-S2."""
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
    BIG = (fov_lo - 5.0, fov_hi + 5.0)
    skin_t, fat_t = p.skin_thickness_mm, p.subcutaneous_fat_mm

    def body_fields(x, y, z):
        # Posterior skin follows the lumbar lordosis a little (deeper groove at L4/L5).
        yy = y - body_c[1] + 0.02 * (z - 30.0) ** 2 / 10.0
        d = S.sd_superellipse2(x, yy, bw, bd, 2.6)
        # Midline groove between the paraspinal muscles.
        groove = 4.0 * np.exp(-(x / 12.0) ** 2) * np.clip((yy / bd), 0, 1) ** 4
        return {"d": d + groove}

    part = Part("body", body_fields, BIG, [
        Layer("skin"), Layer("subcutaneous_fat", offset_mm=skin_t),
        Layer("fat", offset_mm=skin_t + fat_t)])
    return Body(y_skin=y_skin, centre=body_c, half_width=bw, half_depth=bd, skin_mm=skin_t,
                subcutaneous_fat_mm=fat_t, fov_lo=fov_lo, fov_hi=fov_hi, big=BIG,
                l5_front_y=l5_front_y, part=part)


def build_bowel(body: Body, p: PhantomParams) -> list[Part]:
    """Bowel in front of the spine and six gas pockets (own random stream seeded from ``p``)."""
    rng_soft = np.random.Generator(np.random.PCG64(
        int(1e6 * (p.body_half_width_mm + p.skin_depth_mm)) % (2 ** 32)))
    bowel_y = body.l5_front_y - 14.0
    BIG, fov_lo, fov_hi = body.big, body.fov_lo, body.fov_hi
    skin_t, fat_t = body.skin_mm, body.subcutaneous_fat_mm
    body_fields = body.fields

    def bowel_fields(x, y, z):
        d = np.maximum(y - bowel_y + 0.01 * x * x, body_fields(x, y, z)["d"] + skin_t + fat_t)
        return {"d": d}

    parts = [Part("bowel", bowel_fields, (np.array([BIG[0][0], BIG[0][1], BIG[0][2]]),
                                          np.array([BIG[1][0], bowel_y + 5.0, BIG[1][2]])),
                  [Layer("bowel")])]
    gas = []
    for _ in range(6):
        c = np.array([rng_soft.uniform(-70, 70), rng_soft.uniform(fov_lo[1] - 20, bowel_y - 15),
                      rng_soft.uniform(fov_lo[2], fov_hi[2])])
        rad = rng_soft.uniform(4.0, 11.0, size=3)
        gas.append((c, rad))
    for i, (c, rad) in enumerate(gas):
        f_g = S.Frame(np.eye(3), c)
        parts.append(Part(f"bowel_gas_{i}", (lambda f, rr: lambda x, y, z: {
            "d": np.maximum(ellipsoid(f, rr)(x, y, z), y - bowel_y + 4.0)})(f_g, rad),
            box_of_points([c - rad, c + rad], 2.0), [Layer("air")]))
    return parts


def build_muscles(spine: Spine, body: Body) -> list[Part]:
    """Paraspinal (erector spinae + multifidus), psoas and quadratus lumborum, per side."""
    v_l4, v_l5, v_s1 = spine["L4"], spine["L5"], spine["S1"]
    f_l4, f_l5, f_s1 = v_l4.frame, v_l5.frame, v_s1.frame
    W4, W5, W1, D1 = v_l4.body_width_mm, v_l5.body_width_mm, v_s1.body_width_mm, v_s1.body_depth_mm
    BIG = body.big
    lam_back = f_l5.point([0.0, 0.5 * v_l5.body_depth_mm + v_l5.canal_depth_mm + 6.0, 0.0])[1]
    fascia_y = body.y_skin - body.skin_mm - body.subcutaneous_fat_mm - 2.0
    parts: list[Part] = []
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
            "d": S.sd_tube(x, y, z, L, R)})(ps_line, ps_rr), box_of_points(ps_line, 24.0),
            [Layer("muscle")]))
        # Transverse tips as distances from the midline (local x of the tip times the side sign).
        tip4 = s * v_l4.transverse_tip[side][0]
        tip5 = s * v_l5.transverse_tip[side][0]
        ql_a = f_l4.point([s * (tip4 + 6.0), 20.0, 20.0])
        ql_b = f_l5.point([s * (tip5 + 12.0), 18.0, -5.0])
        parts.append(Part(f"quadratus_{sname}", (lambda a, b: lambda x, y, z: {
            "d": S.sd_capsule(x, y, z, a, b, 9.0)})(ql_a, ql_b), box_of_points([ql_a, ql_b], 12.0),
            [Layer("muscle")]))
    return parts


def build_vessels(spine: Spine) -> list[Part]:
    """Common iliac arteries and veins (non-contrast blood) in front of L4-S1, per side."""
    v_l4, v_s1 = spine["L4"], spine["S1"]
    f_l4, f_s1, D4, D1 = v_l4.frame, v_s1.frame, v_l4.body_depth_mm, v_s1.body_depth_mm
    parts: list[Part] = []
    for side, sname, s in SIDES:
        a0 = f_l4.point([s * 6.0, -0.5 * D4 - 9.0, 0.0])
        a1 = f_s1.point([s * 30.0, -0.5 * D1 - 18.0, -30.0])
        v0 = f_l4.point([-s * 2.0 + s * 10.0, -0.5 * D4 - 5.0, -10.0])
        v1 = f_s1.point([s * 24.0, -0.5 * D1 - 9.0, -30.0])
        for nm, a, b, rr in (("artery", a0, a1, 5.0), ("vein", v0, v1, 6.5)):
            parts.append(Part(f"iliac_{nm}_{sname}", (lambda a, b, rr: lambda x, y, z: {
                "d": S.sd_capsule(x, y, z, a, b, rr)})(a, b, rr), box_of_points([a, b], rr + 3.0),
                [Layer("vessel")]))
    return parts


@dataclass(frozen=True, kw_only=True)
class SoftTissue:
    """Body outline and every soft-tissue part in paint order (body, bowel, muscles, vessels)."""

    body: Body
    parts: list[Part]


def build_soft_tissue(spine: Spine, p: PhantomParams) -> SoftTissue:
    """Body, bowel, muscles and vessels."""
    body = build_body(spine, p)
    parts = [body.part] + build_bowel(body, p) + build_muscles(spine, body) + build_vessels(spine)
    return SoftTissue(body=body, parts=parts)
