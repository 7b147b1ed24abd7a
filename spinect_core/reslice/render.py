"""Render an oblique plane as an RGB picture: grey CT, label overlay, the needle, orientation.

Pure numpy + Pillow (already installed with scikit-image), no display and no matplotlib. The
picture never shows patient identifiers: only orientation letters and a 10 mm scale bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spinect_core.reslice.plane import ObliquePlane
from spinect_core.vocabulary import NEEDLE_COLOUR, STRUCTURE_COLOURS, colour_of

__all__ = ["LABEL_COLOURS", "RenderOptions", "orientation_letters", "render_plane"]

#: Overlay colour (RGB 0-255) by class name: the one table of :mod:`spinect_core.vocabulary`
#: (other names get its stable palette colours, :func:`spinect_core.vocabulary.colour_of`).
LABEL_COLOURS: dict[str, tuple[int, int, int]] = STRUCTURE_COLOURS

#: LPS letters of the +/- directions of x, y, z.
_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))


@dataclass(frozen=True, kw_only=True)
class RenderOptions:
    """How a plane is drawn.

    Attributes
    ----------
    window_width_hu, window_level_hu : float
        Grey window (bone window W 2000 / L 400 by default), HU.
    overlay_alpha : float
        Opacity of the label colours (0: no overlay).
    scale : int
        Integer magnification of the picture (nearest neighbour), >= 1.
    draw_needle : bool
        Draw the needle (line entry -> target) and a ring at the target.
    needle_colour : (int, int, int)
        RGB of the needle: :data:`~spinect_core.vocabulary.NEEDLE_COLOUR` (the app's orange,
        the report's pictures and DRRs too) by default.
    needle_width_px : int
        Line width in output pixels.
    letters : bool
        Orientation letters at the four edges and a 10 mm scale bar.
    """

    window_width_hu: float = 2000.0
    window_level_hu: float = 400.0
    overlay_alpha: float = 0.35
    scale: int = 2
    draw_needle: bool = True
    needle_colour: tuple[int, int, int] = NEEDLE_COLOUR
    needle_width_px: int = 2
    letters: bool = True

    def __post_init__(self) -> None:
        if self.window_width_hu <= 0:
            raise ValueError("window_width_hu must be positive")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ValueError("overlay_alpha must be in [0, 1]")
        if int(self.scale) < 1:
            raise ValueError("scale must be >= 1")


def orientation_letters(vector_lps: Sequence[float], *, max_letters: int = 2,
                        min_share: float = 0.3) -> str:
    """Letters (L/R, P/A, S/I) of an LPS direction, largest component first.

    A component is named when its absolute value is at least ``min_share`` of the vector's
    length; e.g. (0.8, 0.6, 0) -> "LP", (0, -1, 0.1) -> "A".
    """
    v = np.asarray(vector_lps, dtype=np.float64).reshape(3)
    v = v / max(float(np.linalg.norm(v)), 1e-12)
    order = np.argsort(-np.abs(v))
    out = [(_LETTERS[a][0] if v[a] > 0 else _LETTERS[a][1]) for a in order if abs(v[a]) >= min_share]
    return "".join(out[:max_letters]) or _LETTERS[order[0]][0 if v[order[0]] > 0 else 1]


def render_plane(plane: ObliquePlane, *, options: RenderOptions | None = None) -> np.ndarray:
    """Draw ``plane`` as an RGB picture.

    Parameters
    ----------
    plane : ObliquePlane
    options : RenderOptions, optional

    Returns
    -------
    np.ndarray, shape (H * scale, W * scale, 3), uint8
        Rows and columns as in the plane (row 0 at the top). Pixels outside the CT are black.
    """
    from PIL import Image, ImageDraw, ImageFont

    opts = options or RenderOptions()
    lo = opts.window_level_hu - 0.5 * opts.window_width_hu
    grey = np.clip((plane.image.astype(np.float32) - lo) / opts.window_width_hu, 0.0, 1.0) * 255.0
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if plane.labels is not None and plane.table is not None and opts.overlay_alpha > 0:
        for label_id, name in plane.table.foreground().items():
            sel = plane.labels == label_id
            if sel.any():
                colour = np.asarray(colour_of(name), dtype=np.float32)
                rgb[sel] = (1.0 - opts.overlay_alpha) * rgb[sel] + opts.overlay_alpha * colour
    rgb[~plane.inside] = 0.0
    s = int(opts.scale)
    img = Image.fromarray(np.rint(rgb).astype(np.uint8))  # (H, W, 3) uint8 -> RGB
    if s > 1:
        img = img.resize((img.width * s, img.height * s), Image.NEAREST)
    draw = ImageDraw.Draw(img)

    def xy(rc: np.ndarray) -> tuple[float, float]:  # pixel (row, col) centre -> picture (x, y)
        return ((float(rc[1]) + 0.5) * s - 0.5, (float(rc[0]) + 0.5) * s - 0.5)

    if opts.draw_needle:
        entry, target = xy(plane.entry_pixel), xy(plane.target_pixel)
        draw.line([entry, target], fill=opts.needle_colour, width=int(opts.needle_width_px))
        ring = 3.0 * s + opts.needle_width_px
        draw.ellipse([target[0] - ring, target[1] - ring, target[0] + ring, target[1] + ring],
                     outline=opts.needle_colour, width=max(1, int(opts.needle_width_px) // 2 + 1))
    if opts.letters:
        font = ImageFont.load_default(size=max(10, 7 * s))
        w, h = img.size
        pad = 4
        labels = {
            "right": orientation_letters(plane.col_axis_lps),
            "left": orientation_letters(-plane.col_axis_lps),
            "bottom": orientation_letters(plane.row_axis_lps),
            "top": orientation_letters(-plane.row_axis_lps),
        }
        for where, text in labels.items():
            x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
            tw, th = x1 - x0, y1 - y0
            pos = {"right": (w - tw - pad, (h - th) / 2), "left": (pad, (h - th) / 2),
                   "top": ((w - tw) / 2, pad), "bottom": ((w - tw) / 2, h - th - pad - y0)}[where]
            draw.text((pos[0] - x0, pos[1] - y0), text, fill=(255, 255, 255), font=font,
                      stroke_width=1, stroke_fill=(0, 0, 0))
        # 10 mm scale bar, bottom left.
        bar = 10.0 / plane.pixel_mm * s
        ybar = h - pad - 2
        draw.line([(pad, ybar), (pad + bar, ybar)], fill=(255, 255, 255), width=2)
        draw.text((pad, ybar - 4), "10 mm", fill=(255, 255, 255), font=font, anchor="lb",
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(img, dtype=np.uint8)
