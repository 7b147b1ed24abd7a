"""Discs builder: each intervertebral disc fills the space between the lower body's superior
endplate and the upper body's inferior endplate, inside the bodies' mean outline grown by the
bulge; the nucleus is a smaller copy inside it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.record import FieldFn, Layer, Part, Spine, VertebraGeometry, box_of_points

#: (disc name, lower vertebra, upper vertebra) of the modelled discs, in paint order.
DISCS = (("L5S1", "S1", "L5"), ("L4L5", "L5", "L4"))


@dataclass(frozen=True, kw_only=True)
class DiscShape:
    """Fixed shape of a disc (mm); its outline, height and bulge come from the spine."""

    #: The disc reaches this far into each endplate, so no air is left at a voxel's edge.
    endplate_overlap_mm: float = 0.3
    #: Nucleus: this far inside the annulus's outline and (from each endplate) its height.
    nucleus_inset_mm: float = 8.0
    nucleus_endplate_inset_mm: float = 2.5
    #: Rounding of the annulus's rim (smooth maximum radius).
    rim_rounding_mm: float = 1.0
    #: Box margin beyond the half width of the L5/S1 pair's widest body.
    box_margin_mm: float = 10.0


#: Default disc shape.
DISC = DiscShape()


def disc_fields(low: VertebraGeometry, up: VertebraGeometry, bulge: float,
                shape: DiscShape = DISC) -> FieldFn:
    """Signed-distance fields (mm, patient frame) of the disc between two vertebral bodies:
    ``"outer"`` (annulus surface: the bodies' mean outline grown by ``bulge``, between the
    lower body's top and the upper body's bottom) and ``"inner"`` (nucleus)."""
    k = shape

    def fields(x, y, z):
        xl, yl, zl = low.frame.to_local(x, y, z)
        xu, yu, zu = up.frame.to_local(x, y, z)
        W = 0.5 * (low.body_width_mm + up.body_width_mm) + 2 * bulge
        D = 0.5 * (low.body_depth_mm + up.body_depth_mm) + 2 * bulge
        prism = low.outline(xl, yl, W, D)
        lower = low.superior_endplate(xl, yl) - k.endplate_overlap_mm - zl
        upper = zu - up.inferior_endplate(xu, yu) - k.endplate_overlap_mm
        d = S.smax(prism, np.maximum(lower, upper), k.rim_rounding_mm)
        nuc = S.smax(prism + k.nucleus_inset_mm, np.maximum(lower, upper) + k.nucleus_endplate_inset_mm,
                     k.rim_rounding_mm)
        return {"outer": d, "inner": nuc}
    return fields


def disc_centre(low: VertebraGeometry, up: VertebraGeometry) -> np.ndarray:
    """Midpoint (patient mm) of the lower body's superior and the upper body's inferior endplate centre."""
    return 0.5 * (low.frame.point([0, 0, 0.5 * low.body_height_mm])
                  + up.frame.point([0, 0, -0.5 * up.body_height_mm]))


@dataclass(frozen=True, kw_only=True)
class Discs:
    """Disc parts (instances ``disc_L5S1``, ``disc_L4L5``) and their centres (patient mm)."""

    parts: list[Part]
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)


def build_discs(spine: Spine, shape: DiscShape = DISC) -> Discs:
    """The L5/S1 and L4/L5 discs (annulus and nucleus) of ``spine``."""
    parts: list[Part] = []
    lm: dict[str, np.ndarray] = {}
    # One box size for both discs, from the L5/S1 pair (with margin, conservative for L4/L5 too).
    half = 0.5 * max(spine["L5"].body_width_mm, spine["S1"].body_width_mm) + shape.box_margin_mm
    for lname, low_name, up_name in DISCS:
        low, up = spine[low_name], spine[up_name]
        inst = f"disc_{lname}"
        c = disc_centre(low, up)
        parts.append(Part(inst, disc_fields(low, up, spine.disc_bulge_mm, shape), box_of_points([c], half), [
            Layer("disc", key="outer", label="disc", instance=inst),
            Layer("disc_nucleus", key="inner", label="disc", instance=inst)]))
        lm[f"{lname.lower()}_disc_centre"] = c
    return Discs(parts=parts, landmarks=lm)
