"""Display colours of structures, windows and the needle, shared by the 3D view, the 2D
overlays and the legend.

Colours are looked up by class name (never by id) in the one table of
:mod:`spinect_core.vocabulary`, which the report's screenshots, the oblique-plane pictures and the
exported segmentations use too, so the app and its exports show a structure in the same colour.
Per-level names (``L5``, ``S1``, ``root_L5_left``) map to their tissue's colour; anything unknown
gets a stable colour from a small palette.
"""

from __future__ import annotations

from spinect_core.vocabulary import NEEDLE_COLOUR, STRUCTURE_COLOURS, WINDOW_COLOURS, class_of_name
from spinect_core.vocabulary import colour_of as color_of
from spinect_core.vocabulary import colour_of_float as color_of_float

__all__ = ["STRUCTURE_COLORS", "WINDOW_COLORS", "NEEDLE_COLOR", "color_of", "color_of_float",
           "default_opacity"]

#: RGB 0-255 of the classes (:data:`spinect_core.vocabulary.STRUCTURE_COLOURS`).
STRUCTURE_COLORS: dict[str, tuple[int, int, int]] = STRUCTURE_COLOURS
#: RGB 0-255 of the window outlines, Kambin red and safe cyan (the report's too).
WINDOW_COLORS: dict[str, tuple[int, int, int]] = WINDOW_COLOURS
#: RGB 0-255 of the planned needle, orange (:data:`spinect_core.vocabulary.NEEDLE_COLOUR`: the
#: report's pictures and DRRs draw it in the same colour).
NEEDLE_COLOR: tuple[int, int, int] = NEEDLE_COLOUR


def default_opacity(name: str) -> float:
    """Bone slightly transparent so nerves behind it stay visible; the rest opaque."""
    key = name.lower()
    if key == "bone" or class_of_name(key) == "bone":
        return 0.85
    if "dura" in key:
        return 0.6
    return 1.0
