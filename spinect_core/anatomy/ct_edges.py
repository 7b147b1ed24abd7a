"""Sub-voxel bone edges on the CT, to place the foraminal landmarks independently of the labels.

The landmarks that bound the foraminal zone (the pedicle's lower margin, the body's lateral
border and its posterior wall) are extreme points of a bone label: a label a voxel thicker or
thinner (a network's segmentation against a reference) moves them by a whole voxel, and the safe
window, 3-5 mm tall, by 20-30 % of its area. The CT itself does not change with the segmentation:
moving each landmark to the bone edge on the CT (the half-maximum crossing of the intensity profile
across the edge, the usual sub-voxel edge of a blurred step) makes the zone the same for any label
map that puts the landmark within a couple of millimetres of the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spinect_core.volume import Volume


def soft_tissue_hu(hu: np.ndarray, bone: np.ndarray) -> float | None:
    """Soft tissue's level on the CT around ``bone``: the median HU of the voxels outside it
    between -200 and 200 HU (not air, fat-free lung or bone); None when there are none.

    Parameters
    ----------
    hu : np.ndarray, shape (z, y, x)
        CT, HU.
    bone : np.ndarray, bool, same shape
    """
    h = np.asarray(hu)
    sel = ~bone & (h > -200.0) & (h < 200.0)
    return float(np.median(h[sel])) if sel.any() else None


@dataclass(frozen=True, kw_only=True)
class EdgeOptions:
    """How a bone edge is searched on the CT.

    Attributes
    ----------
    search_mm : float
        Half-length of the profile, centred on the label's estimate (mm).
    step_mm : float
        Sample spacing along the profile (mm).
    spread_mm : float
        Parallel profiles are averaged over a square of this half-width across the edge (mm), so
        noise and one voxel's partial volume do not decide.
    min_contrast_hu : float
        The profile's peak must exceed its outside level by this much (HU), or no edge is found.
    """

    search_mm: float = 2.5
    step_mm: float = 0.1
    spread_mm: float = 0.75
    min_contrast_hu: float = 150.0


def bone_edge(ct: Volume, point_lps: np.ndarray, outward_lps: np.ndarray, *,
              options: EdgeOptions | None = None) -> np.ndarray | None:
    """The bone edge nearest ``point_lps`` along ``outward_lps``, or None when there is none.

    Parameters
    ----------
    ct : Volume
        HU, (z, y, x).
    point_lps : np.ndarray, shape (3,)
        The label's estimate of the edge (LPS mm).
    outward_lps : np.ndarray, shape (3,)
        Direction from the bone into the tissue outside it (LPS; normalised here).
    options : EdgeOptions, optional

    Returns
    -------
    np.ndarray, shape (3,), or None
        The point on the line through ``point_lps`` along ``outward_lps`` where the mean profile
        crosses halfway between its peak (within 2 mm inside the steepest fall within
        ``search_mm``) and the outside level (the median 1-2 mm beyond that fall). None when the
        contrast is below ``min_contrast_hu``.
    """
    o = options or EdgeOptions()
    n = np.asarray(outward_lps, float)
    n = n / np.linalg.norm(n)
    a = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(n, a)
    t = np.arange(-o.search_mm - 2.0, o.search_mm + 2.0 + 0.5 * o.step_mm, o.step_mm)  # (T,)
    offsets = np.linspace(-o.spread_mm, o.spread_mm, 3)
    lines = [np.asarray(point_lps, float) + u * a + v * b for u in offsets for v in offsets]
    points = np.stack([p + t[:, None] * n for p in lines])  # (L, T, 3)
    index = ct.lps_to_index(points.reshape(-1, 3))  # (L*T, 3) x, y, z
    values = ndimage.map_coordinates(np.asarray(ct.array, np.float32), index[:, ::-1].T, order=1,
                                     mode="nearest").reshape(len(lines), len(t))
    profile = values.mean(axis=0)
    # The edge is the steepest fall going outwards (bone -> soft tissue; the cortex -> cancellous
    # step inside the bone is a rise in this direction).
    slope = np.gradient(profile, t)
    searched = np.abs(t) <= o.search_mm
    fall = int(np.argmin(np.where(searched, slope, np.inf)))
    tf = t[fall]
    inside = (t >= tf - 2.0) & (t <= tf)
    peak_at = int(np.argmax(np.where(inside, profile, -np.inf)))
    peak = float(profile[peak_at])
    outside = float(np.median(profile[(t >= tf + 1.0) & (t <= tf + 2.0)]))
    if peak - outside < o.min_contrast_hu:
        return None
    level = 0.5 * (peak + outside)
    below = np.nonzero(profile[peak_at:] < level)[0]
    if len(below) == 0:
        return None
    k = peak_at + int(below[0])  # first sample below the level; the one before is above it
    f = (profile[k - 1] - level) / (profile[k - 1] - profile[k])
    edge_t = float(t[k - 1] + f * (t[k] - t[k - 1]))
    return np.asarray(point_lps, float) + edge_t * n
