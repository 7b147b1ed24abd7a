"""Area-vs-view heat maps: window area over the view grid of the optimiser, as a picture.

The plan's grid is over C-arm angles in the one C-arm language of
:mod:`spinect_core.planning.carm` (patient prone, from straight PA; oblique + = ipsilateral,
the detector towards the operated side; tilt + = cranial, the detector towards the head): below,
"alpha" is the oblique along x and "beta" the tilt along y, both in C-arm degrees. The
literature's 25-30 degree oblique band (:data:`~spinect_core.planning.carm.LITERATURE_OBLIQUE_BAND_DEG`,
where the published safe-triangle area at L5 peaks) is shaded lighter and labelled.

Pillow only (no matplotlib in the core). The map shows the optimiser's coarse grid
(:class:`~spinect_core.planning.optimise.ViewOptimum` ``values[i, j]`` at ``alphas_deg[i]``,
``betas_deg[j]``) as cells, alpha along x (0 = straight PA, increasing towards the operated
side) and beta along y (positive up = cranial detector tilt: the needle points caudally), with a viridis-like colour scale,
the plateau (views reaching the plateau fraction of the maximum) outlined in white, the best view
as a white cross and the plateau centroid as a white ring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.planning.carm import LITERATURE_OBLIQUE_BAND_DEG, carm_words
from spinect_core.vocabulary import SIDES

__all__ = ["AreaMapOptions", "colormap", "map_x", "render_area_map"]

#: Left margin of the map area, pixels (the tilt axis label and ticks).
_LEFT_PX = 64

# Anchor colours of matplotlib's viridis at 0, 1/8, ..., 1 (perceptually uniform, colour-blind safe).
_VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                     (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """Viridis-like RGB (..., 3) uint8 of values in [0, 1] (clipped); NaN -> grey."""
    v = np.asarray(values, dtype=np.float64)
    nan = ~np.isfinite(v)
    x = np.clip(np.nan_to_num(v), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    i = np.minimum(np.floor(x).astype(int), len(_VIRIDIS) - 2)
    f = (x - i)[..., None]
    rgb = (1.0 - f) * _VIRIDIS[i] + f * _VIRIDIS[i + 1]
    rgb[nan] = (128, 128, 128)
    return np.rint(rgb).astype(np.uint8)


@dataclass(frozen=True, kw_only=True)
class AreaMapOptions:
    """Layout of :func:`render_area_map` (pixels).

    Attributes
    ----------
    plot_size_px : (int, int)
        Width and height of the map area.
    font_px : int
        Text size.
    oblique_band_deg : (float, float) or None
        C-arm oblique range shaded lighter and labelled "literature" (default 25-30 deg);
        None: no band.
    """

    plot_size_px: tuple[int, int] = (480, 420)
    font_px: int = 14
    oblique_band_deg: tuple[float, float] | None = LITERATURE_OBLIQUE_BAND_DEG


def map_x(alphas_deg: np.ndarray, oblique_deg: float, options: AreaMapOptions | None = None
          ) -> float:
    """Horizontal pixel of a C-arm oblique on a map of :func:`render_area_map` (cell centres at
    the grid's obliques, linear between and beyond them)."""
    opts = options or AreaMapOptions()
    alphas = np.asarray(alphas_deg, float).reshape(-1)
    cw = opts.plot_size_px[0] / len(alphas)
    return _LEFT_PX + (_fractional_index(alphas, float(oblique_deg)) + 0.5) * cw


def render_area_map(alphas_deg: np.ndarray, betas_deg: np.ndarray, values_mm2: np.ndarray, *,
                    title: str = "", side: str = "",
                    best: tuple[float, float, float] | None = None,
                    plateau: tuple[float, float, float] | None = None,
                    plateau_mask: np.ndarray | None = None,
                    options: AreaMapOptions | None = None) -> np.ndarray:
    """Heat map of a window's area over the view grid.

    Parameters
    ----------
    alphas_deg : (A,)
        Oblique angles of the grid (increasing), degrees; every grid view is drawn as an
        equally sized cell.
    betas_deg : (B,)
        Tilt angles of the grid (increasing), degrees.
    values_mm2 : (A, B)
        ``values_mm2[i, j]`` = area (mm^2) at ``alphas_deg[i]``, ``betas_deg[j]``; NaN = not
        evaluated (grey).
    title : str
        Printed above the map.
    side : str
        Operated side, used in the axis label ("oblique towards the left").
    best, plateau : (alpha_deg, beta_deg, area_mm2), optional
        Best view (white cross) and plateau centroid (white ring); anywhere in the grid's range.
    plateau_mask : (A, B) bool, optional
        Grid views in the plateau (outlined).
    options : AreaMapOptions, optional

    Returns
    -------
    np.ndarray, shape (H, W, 3), uint8
    """
    from PIL import Image, ImageDraw, ImageFont

    opts = options or AreaMapOptions()
    alphas = np.asarray(alphas_deg, float).reshape(-1)
    betas = np.asarray(betas_deg, float).reshape(-1)
    values = np.asarray(values_mm2, float).reshape(len(alphas), len(betas))
    font = ImageFont.load_default(size=opts.font_px)
    small = ImageFont.load_default(size=max(9, opts.font_px - 2))
    pw, ph = opts.plot_size_px
    left, top, right, bottom = _LEFT_PX, 34 + opts.font_px, 110, 64 + 2 * opts.font_px
    img = Image.new("RGB", (left + pw + right, top + ph + bottom), (255, 255, 255))
    draw = ImageDraw.Draw(img)

    finite = values[np.isfinite(values)]
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    # Image rows: beta from the largest (top) to the smallest; columns: alpha increasing.
    cells = colormap(values.T[::-1] / vmax)  # (B, A, 3)
    heat = Image.fromarray(cells).resize((pw, ph), Image.NEAREST)
    img.paste(heat, (left, top))

    cw, ch = pw / len(alphas), ph / len(betas)

    band = opts.oblique_band_deg
    if band is not None:
        # The literature's obliques: lighter cells (the colours stay readable) and dashed edges,
        # clipped to the map.
        x0, x1 = (min(max(map_x(alphas, b, opts), left), left + pw) for b in sorted(band))
        if x1 - x0 >= 1:
            x0i, x1i = int(round(x0)), int(round(x1))
            box = (x0i, top, x1i, top + ph)
            region = np.asarray(img.crop(box), np.float32)
            img.paste(Image.fromarray(np.rint(0.6 * region + 0.4 * 255).astype(np.uint8)), box[:2])
            for x in (x0i, x1i - 1):
                for y in range(top, top + ph, 8):
                    draw.line([(x, y), (x, min(y + 4, top + ph - 1))], fill=(255, 255, 255))
            draw.text(((x0 + x1) / 2, top - 3), f"{band[0]:g}-{band[1]:g} literature",
                      fill=(90, 90, 90), font=small, anchor="mb")

    def xy(alpha: float, beta: float) -> tuple[float, float]:
        # Cells are drawn equally wide, but the grid may be uneven (the last step of an axis is
        # shortened to end on the range): place points by interpolating between cell centres.
        i, j = _fractional_index(alphas, alpha), _fractional_index(betas, beta)
        return left + (i + 0.5) * cw, top + (len(betas) - 1 - j + 0.5) * ch

    if plateau_mask is not None:
        m = np.asarray(plateau_mask, bool).reshape(values.shape)
        for i in range(len(alphas)):
            for j in range(len(betas)):
                if not m[i, j]:
                    continue
                x0, y0 = left + i * cw, top + (len(betas) - 1 - j) * ch
                x1, y1 = x0 + cw, y0 + ch
                # Draw only the cell edges on the region's border.
                if i == 0 or not m[i - 1, j]:
                    draw.line([(x0, y0), (x0, y1)], fill=(255, 255, 255), width=2)
                if i == len(alphas) - 1 or not m[i + 1, j]:
                    draw.line([(x1, y0), (x1, y1)], fill=(255, 255, 255), width=2)
                if j == len(betas) - 1 or not m[i, j + 1]:
                    draw.line([(x0, y0), (x1, y0)], fill=(255, 255, 255), width=2)
                if j == 0 or not m[i, j - 1]:
                    draw.line([(x0, y1), (x1, y1)], fill=(255, 255, 255), width=2)
    if best is not None:
        x, y = xy(best[0], best[1])
        r = 8
        for width, colour in ((5, (0, 0, 0)), (2, (255, 255, 255))):
            draw.line([(x - r, y - r), (x + r, y + r)], fill=colour, width=width)
            draw.line([(x - r, y + r), (x + r, y - r)], fill=colour, width=width)
    if plateau is not None:
        x, y = xy(plateau[0], plateau[1])
        r = 8
        draw.ellipse([x - r - 1, y - r - 1, x + r + 1, y + r + 1], outline=(0, 0, 0), width=4)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 255, 255), width=2)

    # Axes: ticks at every grid value (thinned to at most ~8 labels).
    draw.rectangle([left - 1, top - 1, left + pw, top + ph], outline=(0, 0, 0))
    for i in range(0, len(alphas), max(1, int(np.ceil(len(alphas) / 8)))):
        x, _ = xy(alphas[i], betas[0])
        draw.line([(x, top + ph), (x, top + ph + 4)], fill=(0, 0, 0))
        draw.text((x, top + ph + 6), f"{alphas[i]:g}", fill=(0, 0, 0), font=small, anchor="mt")
    for j in range(0, len(betas), max(1, int(np.ceil(len(betas) / 8)))):
        _, y = xy(alphas[0], betas[j])
        draw.line([(left - 4, y), (left, y)], fill=(0, 0, 0))
        draw.text((left - 6, y), f"{betas[j]:g}", fill=(0, 0, 0), font=small, anchor="rm")
    towards = f" ({side})" if side else ""
    draw.text((left + pw / 2, top + ph + 10 + opts.font_px),
              f"C-arm oblique (deg): + = ipsilateral{towards}, 0 = straight PA (prone)",
              fill=(0, 0, 0), font=font, anchor="mt")
    ylabel = Image.new("RGB", (ph, opts.font_px + 6), (255, 255, 255))
    ImageDraw.Draw(ylabel).text((ph / 2, 1), "C-arm tilt (deg): + = cranial, - = caudal",
                                fill=(0, 0, 0), font=font, anchor="mt")
    img.paste(ylabel.rotate(90, expand=True), (4, top))
    if title:
        draw.text((left + pw / 2, 8), title, fill=(0, 0, 0), font=font, anchor="mt")

    # Colour bar.
    bx, bw = left + pw + 18, 16
    ramp = colormap(np.linspace(1.0, 0.0, ph))[:, None, :].repeat(bw, axis=1)
    img.paste(Image.fromarray(ramp), (bx, top))
    draw.rectangle([bx - 1, top - 1, bx + bw, top + ph], outline=(0, 0, 0))
    for frac in (0.0, 0.5, 1.0):
        y = top + (1.0 - frac) * (ph - 1)
        draw.text((bx + bw + 4, y), f"{frac * vmax:.1f}", fill=(0, 0, 0), font=small, anchor="lm")
    draw.text((bx + bw / 2, top - 6), "mm^2", fill=(0, 0, 0), font=small, anchor="mb")

    def words(view: tuple[float, float, float]) -> str:
        # The same words as the report and the app when the side is known.
        if side in SIDES:
            return carm_words(view[0], view[1], side, with_side=False)
        return f"oblique {view[0]:.1f}, tilt {view[1]:.1f} deg"

    notes = []
    if best is not None:
        notes.append(f"x best: {words(best)}, {best[2]:.1f} mm^2")
    if plateau is not None:
        notes.append(f"o plateau centre: {words(plateau)}, {plateau[2]:.1f} mm^2")
    y = top + ph + 16 + 2 * opts.font_px
    for k, note in enumerate(notes):
        draw.text((left, y + k * (opts.font_px + 2)), note, fill=(0, 0, 0), font=small)
    return np.asarray(img, dtype=np.uint8)


def _fractional_index(axis: np.ndarray, value: float) -> float:
    """Continuous index of ``value`` on an increasing ``axis`` (linear between and beyond the
    grid values)."""
    if len(axis) == 1:
        return 0.0
    if value <= axis[0]:
        return float((value - axis[0]) / (axis[1] - axis[0]))
    if value >= axis[-1]:
        return float(len(axis) - 1 + (value - axis[-1]) / (axis[-1] - axis[-2]))
    return float(np.interp(value, axis, np.arange(len(axis))))
