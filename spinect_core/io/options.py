"""Options of the CT loaders (keyword-only, immutable)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """How :func:`spinect_core.io.load_ct` reads and checks a CT.

    Parameters
    ----------
    series_uid : str or None
        SeriesInstanceUID to load from a DICOM folder holding several series. ``None`` picks the
        CT series with the largest extent along the slice normal (then the most slices).
    max_gap_ratio : float
        Largest gap between neighbouring slices, as a multiple of the median slice spacing, that
        is still filled by linear interpolation (with a warning). Larger gaps raise
        :class:`~spinect_core.errors.MissingSlicesError`.
    correct_gantry_tilt : bool
        Resample a gantry-tilted (sheared) DICOM stack onto an orthogonal grid with a warning.
        ``False`` raises :class:`~spinect_core.errors.GantryTiltError` instead.
    resample_irregular : bool
        Resample irregularly spaced slices onto a uniform grid. ``False`` raises
        :class:`~spinect_core.errors.MissingSlicesError` on any irregular spacing.
    check_hounsfield : bool
        Refuse intensities that do not look like Hounsfield units
        (:class:`~spinect_core.errors.NotHounsfieldError`); see :mod:`spinect_core.io.hounsfield`.
    skip_corrupt_files : bool
        Skip unreadable files of the chosen series with a warning (the remaining geometry is then
        checked as usual). ``False`` raises :class:`~spinect_core.errors.InconsistentSeriesError`.
    fill_value_hu : float
        Value written where a resampled grid lies outside the acquired data (air).
    min_voxels_per_axis : int
        Fewest voxels accepted along each axis (0 disables); a smaller volume raises
        :class:`~spinect_core.errors.VolumeTooSmallError` before the Hounsfield check.
    min_extent_mm : float
        Smallest field of view (voxels x spacing) accepted along each axis, mm (0 disables).
        The defaults refuse crops and thumbnails (e.g. 5 x 5 x 5 voxels) yet keep thin test slabs;
        the planner asks for much more (L4 to the sacrum) and says so itself.
    """

    series_uid: str | None = None
    max_gap_ratio: float = 2.5
    correct_gantry_tilt: bool = True
    resample_irregular: bool = True
    check_hounsfield: bool = True
    skip_corrupt_files: bool = True
    fill_value_hu: float = -1024.0
    min_voxels_per_axis: int = 8
    min_extent_mm: float = 20.0
