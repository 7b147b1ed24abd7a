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


def foramen_span(up: VertebraGeometry, low: VertebraGeometry, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(top, bottom) of a foramen, patient mm: the middle of the upper pedicle's lower margin
    and of the lower pedicle's upper margin, 3 mm behind the posterior body walls."""
    s = SIDES[side][2]
    top = up.frame.point([s * (0.5 * up.canal_width_mm + 0.5 * up.pedicle_width_mm[side]),
                          0.5 * up.body_depth_mm + 3.0, up.pedicle_bottom_mm[side]])
    bot = low.frame.point([s * (0.5 * low.canal_width_mm + 0.5 * low.pedicle_width_mm[side]),
                           0.5 * low.body_depth_mm + 3.0,
                           low.pedicle_bottom_mm[side] + low.pedicle_height_mm[side]])
    return top, bot


@dataclass(frozen=True, kw_only=True)
class ForaminalFat:
    """Fat ellipsoids filling the foramina and the foramen centres (patient mm)."""

    parts: list[Part]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)


def build_foraminal_fat(spine: Spine) -> ForaminalFat:
    """An ellipsoid of fat (13 mm lateral, 9 mm AP) spanning each foramen plus 3 mm each end."""
    parts: list[Part] = []
    lm: dict[str, np.ndarray] = {}
    for up_name, low_name, lname in FORAMINA:
        up, low = spine[up_name], spine[low_name]
        for side, sname, _s in SIDES:
            top, bot = foramen_span(up, low, side)
            c = 0.5 * (top + bot)
            lm[f"{lname}_foramen_centre_{sname}"] = c
            half_h = 0.5 * np.linalg.norm(top - bot) + 3.0
            f_f = axis_frame(c, [0.0, 1.0, 0.0], up=(top - bot))
            parts.append(Part(f"foramen_fat_{lname}_{sname}",
                              (lambda f, hh: lambda x, y, z: {"d": S.sd_ellipsoid(
                                  *f.to_local(x, y, z), (13.0, 9.0, hh))})(f_f, half_h),
                              box_of_points([c], half_h + 14.0), [Layer("fat")]))
    return ForaminalFat(parts=parts, landmarks=lm)
