"""Fat builder: the foraminal fat between the pedicles of two vertebrae, and the order of the
fat and ligament parts (epidural fat of the canal, facet capsules, foraminal fat, root sleeves)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import (
    SIDES, Layer, Part, Spine, VertebraGeometry, axis_frame, box_of_points,
)

#: (upper vertebra, lower vertebra, foramen name) of the modelled foramina, in paint order.
FORAMINA = (("L5", "S1", "l5s1"), ("L4", "L5", "l4l5"))


@dataclass(frozen=True, kw_only=True)
class ForaminalFatShape:
    """Fixed shape of the foraminal fat (mm)."""

    #: The foramen's axis runs this far behind the posterior body walls (its middle, AP).
    behind_wall_mm: float = 3.0
    #: Ellipsoid semi-axes across the foramen: lateral (out along the root) and AP.
    lateral_mm: float = 13.0
    ap_mm: float = 9.0
    #: Extra length beyond each pedicle margin (fat reaches into the recesses).
    beyond_pedicles_mm: float = 3.0
    #: Box margin beyond the vertical semi-axis (covers the lateral semi-axis).
    box_margin_mm: float = 14.0


#: Default foraminal fat shape.
FORAMINAL_FAT = ForaminalFatShape()


def foramen_span(up: VertebraGeometry, low: VertebraGeometry, side: int,
                 behind_wall_mm: float = FORAMINAL_FAT.behind_wall_mm) -> tuple[np.ndarray, np.ndarray]:
    """(top, bottom) of a foramen, patient mm: the middle of the upper pedicle's lower margin
    and of the lower pedicle's upper margin, ``behind_wall_mm`` behind the posterior body walls."""
    s = SIDES[side][2]
    top = up.frame.point([s * (0.5 * up.canal_width_mm + 0.5 * up.pedicle_width_mm[side]),
                          0.5 * up.body_depth_mm + behind_wall_mm, up.pedicle_bottom_mm[side]])
    bot = low.frame.point([s * (0.5 * low.canal_width_mm + 0.5 * low.pedicle_width_mm[side]),
                           0.5 * low.body_depth_mm + behind_wall_mm,
                           low.pedicle_bottom_mm[side] + low.pedicle_height_mm[side]])
    return top, bot


@dataclass(frozen=True, kw_only=True)
class ForaminalFat:
    """Fat ellipsoids filling the foramina and the foramen centres (patient mm)."""

    parts: list[Part]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)


def build_foraminal_fat(spine: Spine, shape: ForaminalFatShape = FORAMINAL_FAT) -> ForaminalFat:
    """An ellipsoid of fat spanning each foramen from pedicle to pedicle (plus a margin)."""
    k = shape
    parts: list[Part] = []
    lm: dict[str, np.ndarray] = {}
    for up_name, low_name, lname in FORAMINA:
        up, low = spine[up_name], spine[low_name]
        for side, sname, _s in SIDES:
            top, bot = foramen_span(up, low, side, k.behind_wall_mm)
            c = 0.5 * (top + bot)
            lm[f"{lname}_foramen_centre_{sname}"] = c
            half_h = 0.5 * np.linalg.norm(top - bot) + k.beyond_pedicles_mm
            f_f = axis_frame(c, [0.0, 1.0, 0.0], up=(top - bot))
            parts.append(Part(f"foramen_fat_{lname}_{sname}",
                              (lambda f, hh: lambda x, y, z: {"d": S.sd_ellipsoid(
                                  *f.to_local(x, y, z), (k.lateral_mm, k.ap_mm, hh))})(f_f, half_h),
                              box_of_points([c], half_h + k.box_margin_mm), [Layer("fat")]))
    return ForaminalFat(parts=parts, landmarks=lm)
