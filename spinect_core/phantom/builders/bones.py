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


def _bone_layers(inst: str) -> list[Layer]:
    return [Layer("cortical", key="outer", label="bone", instance=inst),
            Layer("cancellous", key="inner", label="bone", instance=inst)]


def vertebra_fields(v: Vertebra) -> FieldFn:
    """``{"outer", "inner"}`` of a lumbar vertebra: body and posterior elements (with its
    ``extras``: articular processes) blended, the inner surface one cortex thickness inside."""
    def fields(x, y, z):
        xl, yl, zl = v.frame.to_local(x, y, z)
        body, post = v.local_parts(xl, yl, zl)
        extras = [f(x, y, z) for f in v.extras]
        post = S.union([post] + extras, 2.0)
        return {"outer": S.smin(body, post, 2.0),
                "inner": S.smin(body + v.cort, post + v.post_cort, 2.0)}
    return fields


def sacrum_field_function(v: Vertebra, *, x_si: float, t_wing: float, ala_w: float) -> FieldFn:
    """``{"outer", "inner"}`` of the sacrum built on S1 ``v``: S1-S3 bodies along the sacral
    kyphosis, alae and lateral masses out to the SI joint at |x| = ``x_si``, and the dorsal wall
    of the sacral canal with the median crest."""
    W1, D1, H1, cw1 = v.W, v.D, v.H, v.canal_w

    def sacrum_fields(x, y, z):
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
    return sacrum_fields


@dataclass(frozen=True, kw_only=True)
class Bones:
    """Bone parts in paint order (L4, L5, S1, ilium left, ilium right) and the sacrum's fields."""

    parts: list[Part]
    sacrum_fields: FieldFn


def build_bones(p: PhantomParams, vertebrae: Vertebrae, ilium: Ilium,
                root_names: list[str]) -> Bones:
    """Bone parts; the canal (``"canal"``) and the roots' fat sleeves (``root_names``, 1 mm
    clearance) are carved out of the vertebrae, the sacrum (2 mm) and the roots out of the ilia."""
    root_carve = [(name, 1.0, 1.0) for name in root_names]
    parts: list[Part] = []
    for v in (vertebrae.l4, vertebrae.l5):
        parts.append(Part(v.name, vertebra_fields(v), local_box(v.frame, *v.bbox_local()),
                          _bone_layers(v.name), carve=root_carve + [("canal", 0.0, 0.0)]))
    v_s1 = vertebrae.s1
    D1, H1 = v_s1.D, v_s1.H
    x_si, canal_d = ilium.x_si, vertebrae.canal_depth_mm
    sacrum_fields = sacrum_field_function(v_s1, x_si=x_si, t_wing=ilium.wing_thickness_mm,
                                          ala_w=p.sacral_ala_width_mm)
    s1_lo = np.array([-(x_si + 12.0), -0.5 * D1 - 8.0, -0.5 * H1 - 60.0])
    s1_hi = np.array([x_si + 12.0, 0.5 * D1 + canal_d + 30.0, 0.5 * H1 + 28.0])
    parts.append(Part("S1", sacrum_fields, local_box(v_s1.frame, s1_lo, s1_hi), _bone_layers("S1"),
                      cache=True, carve=root_carve + [("canal", 0.0, 0.0)]))
    for _side, sname, _s in SIDES:
        inst = f"ilium_{sname}"
        parts.append(Part(inst, ilium.fields[sname], ilium.bbox[sname], _bone_layers(inst),
                          carve=[("S1", 2.0, 2.0)] + root_carve))
    return Bones(parts=parts, sacrum_fields=sacrum_fields)
