"""Display colours of structures, shared by the 3D view, the 2D overlays and the legend.

Colours are looked up by class name (never by id). Per-level names (``L5``, ``S1``,
``root_L5_left``) map to their tissue's colour family; anything unknown gets a stable colour
from a small palette.
"""

from __future__ import annotations

import zlib

__all__ = ["STRUCTURE_COLORS", "color_of", "color_of_float", "default_opacity"]

#: RGB 0-255 of the default classes: bone ivory, nerve yellow, disc green, dura blue.
STRUCTURE_COLORS: dict[str, tuple[int, int, int]] = {
    "bone": (238, 226, 196),
    "nerve": (255, 214, 0),
    "disc": (70, 180, 100),
    "dura": (70, 130, 230),
    "ilium": (214, 200, 170),
}

_FAMILIES = (("root", "nerve"), ("nerve", "nerve"), ("disc", "disc"), ("dura", "dura"),
             ("csf", "dura"), ("ilium", "ilium"), ("sacrum", "bone"))
_PALETTE = ((220, 120, 90), (160, 110, 200), (90, 190, 200), (200, 90, 140), (150, 170, 80))


def color_of(name: str) -> tuple[int, int, int]:
    """RGB (0-255) for a class name."""
    key = name.lower()
    if key in STRUCTURE_COLORS:
        return STRUCTURE_COLORS[key]
    for fragment, family in _FAMILIES:
        if fragment in key:
            return STRUCTURE_COLORS[family]
    if key[:1] in ("l", "s", "t") and key[1:].isdigit():  # vertebrae L4, L5, S1
        return STRUCTURE_COLORS["bone"]
    return _PALETTE[zlib.crc32(key.encode()) % len(_PALETTE)]


def color_of_float(name: str) -> tuple[float, float, float]:
    """RGB in [0, 1] for VTK."""
    r, g, b = color_of(name)
    return (r / 255.0, g / 255.0, b / 255.0)


def default_opacity(name: str) -> float:
    """Bone slightly transparent so nerves behind it stay visible; the rest opaque."""
    key = name.lower()
    if key == "bone" or color_of(key) == STRUCTURE_COLORS["bone"]:
        return 0.85
    if "dura" in key:
        return 0.6
    return 1.0
