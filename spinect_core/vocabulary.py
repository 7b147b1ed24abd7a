"""The structure vocabulary: class names, their aliases and colours, sides, window kinds, variants.

One table, used by every package (bottom layer, no imports from the project): the app's 3D view
and slice overlays, the report's screenshots, the oblique-plane pictures and the 3D Slicer
segmentations all colour a structure with :func:`colour_of`, so what the operator sees on the
screen and in the exported pictures is the same colour. The values are the app's (they were
chosen for the 3D view's lighting; the screenshot renderers used a paler ivory, a different
green and blue).

Names are matched case-insensitively. A *class* is one of :data:`CLASSES` (the label tables'
generic classes, :data:`spinect_core.labels.DEFAULT_LABELS`) or ``ilium``; per-level and
per-side names (``L5``, ``S1``, ``root_L5_left``, ``disc_L5S1``, ``ilium_left``,
TotalSegmentator's ``vertebrae_L5``) fall into their tissue's class by :func:`class_of_name`.
"""

from __future__ import annotations

import zlib
from typing import Literal

__all__ = [
    "SIDES", "Side", "WINDOW_KINDS", "WindowKind", "WINDOW_NAMES", "WINDOW_LONG_NAMES",
    "TRAJECTORY_WINDOWS", "VARIANTS", "Variant",
    "CLASSES", "CLASS_ALIASES", "STRUCTURE_COLOURS", "LEVEL_HIGHLIGHT_COLOUR", "WINDOW_COLOURS",
    "NEEDLE_COLOUR", "class_of_name", "colour_of", "colour_of_float",
]

Side = Literal["left", "right"]
#: The operated sides, in the order plans and reports list them.
SIDES: tuple[Side, ...] = ("left", "right")

WindowKind = Literal["kambin", "safe"]
#: The two windows at L5/S1: Kambin's triangle and the safe (subpedicular) triangle.
WINDOW_KINDS: tuple[WindowKind, ...] = ("kambin", "safe")
#: The windows' names in text: short (captions, titles) and long (the first mention in a legend
#: and the SR's "... triangle").
WINDOW_NAMES: dict[str, str] = {"kambin": "Kambin", "safe": "safe"}
WINDOW_LONG_NAMES: dict[str, str] = {"kambin": "Kambin", "safe": "safe (subpedicular)"}
#: The needle's window choices: a kind, or ``auto`` (the larger usable area).
TRAJECTORY_WINDOWS: tuple[str, ...] = ("auto", *WINDOW_KINDS)

Variant = Literal["feasible", "bony", "neural"]
#: Blocker variants: feasible (everything blocks, ilium included), bony (traversing root and
#: dura transparent), neural (S1 superior articular process transparent).
VARIANTS: tuple[Variant, ...] = ("feasible", "bony", "neural")

#: The label tables' generic classes (besides background).
CLASSES: tuple[str, ...] = ("bone", "nerve", "disc", "dura")

#: Names (lower case) meaning one of the generic classes in a label-map table.
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "bone": ("bone",),
    "nerve": ("nerve", "nerves", "root", "roots"),
    "disc": ("disc", "discs", "intervertebral_disc"),
    "dura": ("dura", "dural_sac", "thecal_sac"),
}

#: RGB 0-255 of each class: bone ivory, nerve yellow, disc green, dura blue, ilium a darker
#: ivory (so the pelvis reads apart from the spine in the 3D view).
STRUCTURE_COLOURS: dict[str, tuple[int, int, int]] = {
    "bone": (238, 226, 196),
    "nerve": (255, 214, 0),
    "disc": (70, 180, 100),
    "dura": (70, 130, 230),
    "ilium": (214, 200, 170),
}
#: L5 and S1 where a picture highlights the level: a warmer ivory than :data:`STRUCTURE_COLOURS`
#: ``bone``, so the planned level stands out among the other vertebrae.
LEVEL_HIGHLIGHT_COLOUR: tuple[int, int, int] = (238, 212, 160)
#: Outline colours of the two windows (red Kambin, cyan safe): apart from every structure.
WINDOW_COLOURS: dict[str, tuple[int, int, int]] = {"kambin": (235, 50, 50), "safe": (0, 220, 235)}
#: The planned needle: orange, apart from the yellow nerves, the red Kambin outline and grey
#: fluoroscopy; the same in the 3D view, the needle planes, the DRRs and the report's pictures.
NEEDLE_COLOUR: tuple[int, int, int] = (255, 140, 0)

# Name fragments and the class they mean, checked in this order (the first match wins).
_FRAGMENTS = (("dura", "dura"), ("thecal", "dura"), ("csf", "dura"), ("disc", "disc"),
              ("root", "nerve"), ("nerve", "nerve"), ("ilium", "ilium"), ("sacrum", "bone"),
              ("vertebra", "bone"), ("bone", "bone"))
# Stable colours of names no class claims (a crc32 of the name picks one).
_PALETTE = ((220, 120, 90), (160, 110, 200), (90, 190, 200), (200, 90, 140), (150, 170, 80))


def class_of_name(name: str) -> str | None:
    """The class (a key of :data:`STRUCTURE_COLOURS`) a label or part name belongs to.

    Exact class names first, then name fragments (``root_L5_left`` -> nerve, ``disc_L5S1`` ->
    disc, ``thecal_sac`` -> dura, ``ilium_left`` -> ilium, ``vertebrae_L5`` -> bone), then
    vertebra names (``L4``, ``S1``, ``T12`` -> bone). None for anything else.
    """
    key = name.lower()
    if key in STRUCTURE_COLOURS:
        return key
    for fragment, cls in _FRAGMENTS:
        if fragment in key:
            return cls
    if key[:1] in ("c", "t", "l", "s") and key[1:].isdigit():
        return "bone"
    return None


def colour_of(name: str) -> tuple[int, int, int]:
    """RGB (0-255) of a label or part name: its class's colour, or a stable palette colour for a
    name no class claims (the same name always gets the same colour)."""
    cls = class_of_name(name)
    if cls is not None:
        return STRUCTURE_COLOURS[cls]
    return _PALETTE[zlib.crc32(name.lower().encode()) % len(_PALETTE)]


def colour_of_float(name: str) -> tuple[float, float, float]:
    """:func:`colour_of` as RGB in [0, 1] (VTK, 3D Slicer)."""
    r, g, b = colour_of(name)
    return (r / 255.0, g / 255.0, b / 255.0)
