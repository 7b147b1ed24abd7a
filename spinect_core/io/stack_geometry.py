"""Geometry of a stack of parallel 2D slices (a DICOM series) and its regularisation.

A DICOM series gives, per slice, the LPS position of its first pixel (ImagePositionPatient) and,
shared by all slices, the row and column directions and the pixel spacing. The stack is a
regular 3D grid only when the positions lie on a line along the slice normal ``n = row x col``
at equal steps. Two things break that and are handled here:

* **Irregular spacing / missing slices** (documented policy): let ``g`` be the gaps between
  neighbouring slices along ``n`` and ``m`` their median. When every slice lies within 5 % of
  ``m`` of a uniform grid the stack is used as is. Otherwise, when ``max(g) <= max_gap_ratio * m``
  (2.5 by default) the stack is resampled onto a uniform grid of spacing ``m`` along ``n`` by
  linear interpolation between the two neighbouring slices, with a warning; beyond that
  :class:`~spinect_core.errors.MissingSlicesError` is raised (too much would be invented).
* **Gantry tilt**: the positions step obliquely to ``n`` (the raw geometry is a sheared affine
  whose third column is the step between successive positions). As dcm2niix does, each slice is
  translated within its own plane onto a common in-plane grid (directions row, col) that covers
  all slices, and the volume is then interpolated along ``n``; the result has the orthogonal
  directions row, col, row x col. Voxels outside the acquired data get ``fill_value`` (air,
  -1024 HU). The tilt in degrees is named in a warning. Because slices keep their own plane, this
  is exact up to the linear interpolation and never shears anatomy.

Both corrections are one operation: per-slice in-plane translation (zero without tilt) followed
by linear interpolation along ``n`` (identity when regular).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spinect_core.errors import GantryTiltError, InconsistentSeriesError, MissingSlicesError
from spinect_core.progress import ProgressCallback, report
from spinect_core.vectors import unit

#: A stack is regular when every slice lies within this fraction of the spacing of a uniform grid.
REGULAR_TOLERANCE = 0.05
#: In-plane offsets below this fraction of a pixel are rounding noise, not tilt.
TILT_TOLERANCE_PX = 0.05


@dataclass(frozen=True, kw_only=True)
class StackPlan:
    """How to turn a sorted slice stack into a regular, orthogonal grid.

    Attributes
    ----------
    order : np.ndarray, shape (n,)
        Indices of the input slices sorted by position along the slice normal.
    normal_mm : np.ndarray, shape (n,)
        Sorted slice positions along the normal, millimetres (``position . n``).
    shift_px : np.ndarray, shape (n, 2)
        In-plane offset (x, y) of each sorted slice on the output grid, in pixels.
    out_shape : tuple of int
        Output array shape (nz, ny, nx).
    spacing_mm, origin_lps_mm : np.ndarray, shape (3,)
        Output grid in ITK (x, y, z) order.
    direction : np.ndarray, shape (3, 3)
        Output directions as columns: row, col, row x col.
    tilt_deg : float
        Angle between the slice-to-slice step and the slice normal (0 without gantry tilt).
    irregular : bool
        The slice spacing along the normal is not uniform (slices are interpolated).
    needs_resampling : bool
        False when the sorted slices can simply be stacked.
    warnings : list of str
        What will be corrected.
    """

    order: np.ndarray
    normal_mm: np.ndarray
    shift_px: np.ndarray
    out_shape: tuple[int, int, int]
    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray
    direction: np.ndarray
    tilt_deg: float
    irregular: bool
    needs_resampling: bool
    warnings: list[str] = field(default_factory=list)


def plan_stack(
    positions_lps_mm: np.ndarray,
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    pixel_spacing_xy_mm: tuple[float, float],
    shape_yx: tuple[int, int],
    *,
    max_gap_ratio: float = 2.5,
    allow_tilt: bool = True,
    allow_irregular: bool = True,
) -> StackPlan:
    """Analyse slice positions and plan the regular grid (see the module docstring for policy).

    Parameters
    ----------
    positions_lps_mm : np.ndarray, shape (n, 3)
        ImagePositionPatient of each slice (any order), LPS mm.
    row_dir, col_dir : np.ndarray, shape (3,)
        Unit LPS directions of increasing column index (x) and row index (y).
    pixel_spacing_xy_mm : (float, float)
        Pixel size along x (between columns) and y (between rows), mm.
    shape_yx : (int, int)
        Rows, columns of every slice.
    max_gap_ratio : float
        Largest gap / median spacing that is still interpolated.
    allow_tilt, allow_irregular : bool
        When False the corresponding correction raises instead.

    Raises
    ------
    MissingSlicesError
        Gaps beyond ``max_gap_ratio`` (or any irregularity when ``allow_irregular`` is False).
    GantryTiltError
        A tilted stack when ``allow_tilt`` is False.
    InconsistentSeriesError
        Two slices at the same position, or fewer than two slices.
    """
    pos = np.asarray(positions_lps_mm, dtype=np.float64).reshape(-1, 3)
    r = _unit(row_dir)
    c = _unit(col_dir)
    if abs(float(r @ c)) > 1e-3:
        raise InconsistentSeriesError(
            f"row and column directions are not perpendicular (cosine {r @ c:.4f}); "
            "the ImageOrientationPatient of this series is invalid")
    c = _unit(c - (r @ c) * r)  # remove rounding so the output direction is orthonormal
    n = np.cross(r, c)
    if len(pos) < 2:
        raise InconsistentSeriesError("a stack needs at least two slices")
    s = pos @ n
    order = np.argsort(s, kind="stable")
    s = s[order]
    pos = pos[order]
    gaps = np.diff(s)
    median = float(np.median(gaps))
    if median <= 1e-3 or float(gaps.min()) < max(1e-3, 0.01 * median):
        k = int(np.argmin(gaps))
        raise InconsistentSeriesError(
            f"two slices lie at the same position ({s[k]:.2f} mm along the slice normal); the "
            "series mixes several acquisitions - export them as separate series or pick one")
    dx, dy = (float(v) for v in pixel_spacing_xy_mm)
    ny, nx = (int(v) for v in shape_yx)
    warnings: list[str] = []

    # --- along the normal: regular, interpolable, or refused --------------------------------
    mean_step = (s[-1] - s[0]) / (len(s) - 1)
    residual = np.abs(s - (s[0] + mean_step * np.arange(len(s))))
    irregular = bool(residual.max() > REGULAR_TOLERANCE * mean_step)
    if irregular:
        largest = float(gaps.max())
        ratio = largest / median
        where = int(np.argmax(gaps))
        if ratio > max_gap_ratio:
            raise MissingSlicesError(
                f"slices are missing: a gap of {largest:.2f} mm (between {s[where]:.1f} and "
                f"{s[where + 1]:.1f} mm along the slice normal) is {ratio:.1f}x the median "
                f"spacing {median:.2f} mm, more than the {max_gap_ratio:g}x that may be "
                "interpolated; export the complete series")
        if not allow_irregular:
            raise MissingSlicesError(
                f"slice spacing is irregular ({gaps.min():.2f} to {largest:.2f} mm, median "
                f"{median:.2f} mm) and resampling was disabled; export a regular series")
        step = median
        nz = int(math.floor((s[-1] - s[0]) / step + 1e-3)) + 1
        warnings.append(
            f"slice spacing is irregular ({gaps.min():.2f} to {largest:.2f} mm, largest gap "
            f"{ratio:.1f}x the median): resampled to a uniform {step:.3f} mm along the slice "
            "normal by linear interpolation")
    else:
        step = float(mean_step)
        nz = len(s)

    # --- in plane: offsets of each slice from the first (gantry tilt) -----------------------
    d = pos - pos[0]
    off_x = (d @ r) / dx
    off_y = (d @ c) / dy
    tilted = bool(max(np.abs(off_x).max(), np.abs(off_y).max()) > TILT_TOLERANCE_PX)
    inplane = np.hypot(d @ r, d @ c)
    tilt_deg = float(math.degrees(math.atan2(inplane[-1], s[-1] - s[0]))) if tilted else 0.0
    if tilted:
        if not allow_tilt:
            raise GantryTiltError(
                f"gantry tilt of {tilt_deg:.1f} degrees and tilt correction was disabled; enable "
                "it or export a series reconstructed without tilt")
        # Output lattice: integer pixel offsets from the first slice, covering every slice.
        x0 = math.floor(off_x.min() + 1e-6)
        y0 = math.floor(off_y.min() + 1e-6)
        x1 = math.ceil(off_x.max() - 1e-6) + nx - 1
        y1 = math.ceil(off_y.max() - 1e-6) + ny - 1
        shift = np.stack([off_x - x0, off_y - y0], axis=1)
        out_nx, out_ny = x1 - x0 + 1, y1 - y0 + 1
        origin = pos[0] + x0 * dx * r + y0 * dy * c
        warnings.append(
            f"gantry tilt of {tilt_deg:.1f} degrees corrected: resampled onto an orthogonal grid "
            f"({out_nx}x{out_ny} pixels in plane, linear interpolation, "
            "-1024 HU outside the acquired data)")
    else:
        shift = np.zeros((len(s), 2))
        out_nx, out_ny = nx, ny
        origin = pos[0]
    return StackPlan(
        order=order, normal_mm=s, shift_px=shift, out_shape=(nz, out_ny, out_nx),
        spacing_mm=np.array([dx, dy, step]), origin_lps_mm=origin,
        direction=np.stack([r, c, n], axis=1), tilt_deg=tilt_deg, irregular=irregular,
        needs_resampling=irregular or tilted, warnings=warnings)


def resample_stack(
    slices: np.ndarray,
    plan: StackPlan,
    *,
    fill_value: float = -1024.0,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Apply a :class:`StackPlan` to slices already sorted by ``plan.order``.

    Parameters
    ----------
    slices : np.ndarray, shape (n, ny, nx)
        Sorted input slices (HU).
    plan : StackPlan
        From :func:`plan_stack` for the same slices.
    fill_value : float
        Value outside the acquired data.
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    np.ndarray, shape ``plan.out_shape``, float32
        The regular, orthogonal volume; the input itself when no resampling is needed.
    """
    if not plan.needs_resampling:
        return slices
    nz, ny, nx = plan.out_shape
    out = np.empty(plan.out_shape, dtype=np.float32)
    s = plan.normal_mm
    cache: dict[int, np.ndarray] = {}

    def placed(k: int) -> np.ndarray:
        # Each source slice is translated once; targets visit slices in order so two suffice.
        if k not in cache:
            if len(cache) >= 2:
                cache.pop(min(cache))
            cache[k] = _place(slices[k], plan.shift_px[k], (ny, nx), fill_value)
        return cache[k]

    for kz in range(nz):
        target = s[0] + kz * plan.spacing_mm[2]
        a = int(np.clip(np.searchsorted(s, target, side="right") - 1, 0, len(s) - 2))
        w = float(np.clip((target - s[a]) / (s[a + 1] - s[a]), 0.0, 1.0))
        if w < 1e-6:
            out[kz] = placed(a)
        elif w > 1 - 1e-6:
            out[kz] = placed(a + 1)
        else:
            out[kz] = (1.0 - w) * placed(a) + w * placed(a + 1)
        if kz % 16 == 0:
            report(progress, kz / nz, "resampling slices")
    return out


def _place(src: np.ndarray, shift_xy: np.ndarray, out_shape: tuple[int, int],
           fill_value: float) -> np.ndarray:
    """Put a 2D slice at pixel offset ``shift_xy`` on an output grid (linear interpolation)."""
    ny, nx = out_shape
    sx, sy = float(shift_xy[0]), float(shift_xy[1])
    ix, iy = round(sx), round(sy)
    if abs(sx - ix) < 1e-3 and abs(sy - iy) < 1e-3:
        # Integer offset: copy exactly (no interpolation blur without tilt).
        out = np.full(out_shape, fill_value, dtype=np.float32)
        h, w = src.shape
        out[iy:iy + h, ix:ix + w] = src[: ny - iy, : nx - ix]
        return out
    from scipy import ndimage

    return ndimage.affine_transform(
        src.astype(np.float32, copy=False), matrix=np.ones(2), offset=(-sy, -sx),
        output_shape=out_shape, order=1, mode="constant", cval=fill_value, output=np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    # A zero (or shorter than 1e-6) orientation vector means a broken series, not a bug.
    return unit(v, "ImageOrientationPatient's row or column direction (the series is invalid)",
                error=InconsistentSeriesError, min_norm=1e-6)
