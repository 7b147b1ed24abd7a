"""2D slices of a volume for display: which index planes, orientation, window/level, overlay.

Pure numpy (no Qt), so the display logic is tested without a GUI.

The views show the volume's *array index planes*; they are not resampled. For each view we pick
the index axis closest to the anatomical normal (S for axial, L for sagittal, P for coronal) and
flip rows/columns so the display follows the radiological convention (axial: anterior up,
patient's right on the viewer's left; sagittal: superior up, anterior left; coronal: superior
up, patient's right on the left). An oblique grid is shown as it is and the view title says so.

A slice is named by its position in LPS millimetres (``S 12.5 mm``: the LPS coordinate of the
slice's centre along the view's anatomical axis, with the letter of the side it lies on), as
radiology viewers do, not by its array index. Display pixels map back to continuous voxel
indices (:func:`display_to_index`) and back (:func:`index_to_display`: where a point of the
volume, a root or a crosshair, is drawn), so the HU readout, the crosshair and the ruler work in LPS
millimetres whatever the spacing (anisotropic voxels) and the grid's orientation.

Window/level presets are 3D Slicer's CT presets; a CT read from DICOM adds its own window
(WindowCenter/WindowWidth of the series) as the first preset (:func:`presets_for`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.volume import Volume

__all__ = ["WindowLevel", "PRESETS", "DICOM_PRESET", "WL_HU_PER_PIXEL", "MIN_WIDTH_HU",
           "dicom_window", "presets_for", "drag_window", "PlaneSpec", "plane_specs",
           "extract_slice", "slice_position_mm", "position_text", "display_to_index",
           "index_to_display", "value_at", "lps_text", "distance_mm", "window_to_uint8", "overlay_labels",
           "label_lut"]


@dataclass(frozen=True)
class WindowLevel:
    """Display window (width) and level (centre), HU."""

    name: str
    width: float
    level: float


#: 3D Slicer's CT window/level presets (Volumes module), in its order. The keys "bone" and
#: "soft" are what the app's View menu asks for; "soft" is Slicer's CT-abdomen window.
PRESETS: dict[str, WindowLevel] = {
    "bone": WindowLevel("CT-bone", 1000.0, 400.0),
    "soft": WindowLevel("CT-abdomen", 350.0, 40.0),
    "brain": WindowLevel("CT-brain", 100.0, 50.0),
    "air": WindowLevel("CT-air", 1000.0, -426.0),
    "lung": WindowLevel("CT-lung", 1400.0, -500.0),
}
#: Key of the series' own window in :func:`presets_for`.
DICOM_PRESET = "dicom"
#: HU the window width (horizontal) and level (vertical) change per pixel of a window drag.
WL_HU_PER_PIXEL = 4.0
#: Narrowest window a drag can reach (a zero width would divide by zero).
MIN_WIDTH_HU = 1.0


def _first_number(value) -> float | None:
    """First value of a DICOM DS / multi-valued DS element as a float (None if absent/bad)."""
    if value is None:
        return None
    if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def dicom_window(volume: Volume | None) -> WindowLevel | None:
    """The series' own window (WindowCenter / WindowWidth), HU, or None.

    Read from the header of the middle slice in ``volume.metadata.source_headers`` (kept by the
    DICOM loader); the first value when the header offers several. For CT the VOI window
    applies to the rescaled values, i.e. HU. Its name carries the header's explanation (e.g.
    "DICOM: BONE"), which describes the window, never the patient.
    """
    headers = getattr(getattr(volume, "metadata", None), "source_headers", ()) or ()
    if not headers:
        return None
    header = headers[len(headers) // 2]
    if header is None:
        return None
    centre = _first_number(getattr(header, "WindowCenter", None))
    width = _first_number(getattr(header, "WindowWidth", None))
    if centre is None or width is None or width <= 0:
        return None
    explanation = getattr(header, "WindowCenterWidthExplanation", None)
    if explanation is not None and not isinstance(explanation, str):
        explanation = explanation[0] if len(explanation) else None
    label = f"DICOM: {str(explanation).strip()}" if explanation and str(explanation).strip() \
        else "DICOM window"
    return WindowLevel(label, float(width), float(centre))


def presets_for(volume: Volume | None) -> dict[str, WindowLevel]:
    """The presets offered for ``volume``: its DICOM window first (when it has one), then
    :data:`PRESETS`."""
    own = dicom_window(volume)
    return ({DICOM_PRESET: own} if own is not None else {}) | dict(PRESETS)


def drag_window(window: WindowLevel, dx_px: float, dy_px: float, *,
                hu_per_pixel: float = WL_HU_PER_PIXEL) -> WindowLevel:
    """The window after a drag of ``dx_px``, ``dy_px`` screen pixels (right, down positive).

    Dragging right widens the window (less contrast), left narrows it; dragging down raises the
    level (darker image), up lowers it (brighter), each by ``hu_per_pixel`` HU per pixel. The
    width never falls below :data:`MIN_WIDTH_HU`.
    """
    width = max(MIN_WIDTH_HU, window.width + dx_px * hu_per_pixel)
    return WindowLevel("Custom", float(width), float(window.level + dy_px * hu_per_pixel))


_LPS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) end of x, y, z


@dataclass(frozen=True)
class PlaneSpec:
    """How one view cuts and orients the volume.

    Attributes
    ----------
    name : str
        "Axial", "Sagittal" or "Coronal".
    axis : int
        Numpy axis (0 = z, 1 = y, 2 = x of the array) that the slider moves along.
    row_axis, col_axis : int
        Numpy axes of the displayed rows and columns.
    flip_rows, flip_cols : bool
        Flip for display (see the module docstring).
    row_spacing_mm, col_spacing_mm : float
        Physical size of one displayed pixel step.
    edges : dict
        Orientation letters at the ``top``, ``bottom``, ``left``, ``right`` edges.
    obliquity_deg : float
        Angle between the slice normal and the anatomical normal of the view.
    normal_lps : int
        The view's anatomical axis (0 L, 1 P, 2 S) that names the slice position.
    positive_step : int
        +1 or -1: the index step that moves the slice toward the positive end of
        :attr:`normal_lps` (S, L or P); the wheel and arrow keys step in anatomical terms.
    """

    name: str
    axis: int
    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool
    row_spacing_mm: float
    col_spacing_mm: float
    edges: dict
    obliquity_deg: float
    normal_lps: int = 2
    positive_step: int = 1

    def size(self, shape_zyx: tuple[int, int, int]) -> int:
        """Number of slices along :attr:`axis`."""
        return int(shape_zyx[self.axis])

    def title(self, index: int, shape_zyx: tuple[int, int, int], position: str = "") -> str:
        """"Axial · S 12.5 mm · slice 31/60", with the grid's obliquity when >= 1 degree.

        ``position`` is the slice's LPS position (:func:`position_text`); the slice count is
        secondary information for the operator who thinks in slices.
        """
        oblique = f", grid {self.obliquity_deg:.0f}° oblique" if self.obliquity_deg >= 1.0 else ""
        where = f" · {position}" if position else ""
        return f"{self.name}{where} · slice {index + 1}/{self.size(shape_zyx)}{oblique}"


def _assign_axes(direction: np.ndarray) -> dict[int, int]:
    """LPS axis (0 L, 1 P, 2 S) -> index axis (0 x, 1 y, 2 z) by largest absolute cosine."""
    cos = np.abs(np.asarray(direction, float))  # rows LPS, columns index axes
    assignment: dict[int, int] = {}
    free_lps, free_idx = {0, 1, 2}, {0, 1, 2}
    # Greedy on the largest cosine first: a unique, stable permutation for any rotation.
    for flat in np.argsort(-cos, axis=None):
        lps, idx = divmod(int(flat), 3)
        if lps in free_lps and idx in free_idx:
            assignment[lps] = idx
            free_lps.discard(lps)
            free_idx.discard(idx)
    return assignment


def plane_specs(volume: Volume) -> list[PlaneSpec]:
    """Axial, sagittal and coronal :class:`PlaneSpec` for ``volume``'s grid."""
    d = np.asarray(volume.direction, float)
    lps_to_idx = _assign_axes(d)
    spacing = volume.spacing_mm  # x, y, z

    def np_axis(idx_axis: int) -> int:  # index axis (x=0, y=1, z=2) -> numpy axis
        return 2 - idx_axis

    def sign(lps: int) -> float:  # +1 when the index axis points to the positive LPS end
        return float(np.sign(d[lps, lps_to_idx[lps]]) or 1.0)

    specs = []
    # (name, normal LPS axis, row LPS axis, want rows increasing toward, col LPS axis, cols toward)
    layout = (("Axial", 2, 1, +1, 0, +1),      # rows A->P (anterior up), cols R->L
              ("Sagittal", 0, 2, -1, 1, +1),   # rows S->I (superior up), cols A->P
              ("Coronal", 1, 2, -1, 0, +1))    # rows S->I, cols R->L
    for name, normal, row_lps, row_dir, col_lps, col_dir in layout:
        idx = lps_to_idx[normal]
        ridx, cidx = lps_to_idx[row_lps], lps_to_idx[col_lps]
        flip_rows = sign(row_lps) != row_dir
        flip_cols = sign(col_lps) != col_dir
        neg_r, pos_r = _LPS_LETTERS[row_lps]
        neg_c, pos_c = _LPS_LETTERS[col_lps]
        top, bottom = (neg_r, pos_r) if row_dir > 0 else (pos_r, neg_r)
        left, right = (neg_c, pos_c) if col_dir > 0 else (pos_c, neg_c)
        cosine = abs(d[normal, idx])
        specs.append(PlaneSpec(
            name=name, axis=np_axis(idx), row_axis=np_axis(ridx), col_axis=np_axis(cidx),
            flip_rows=flip_rows, flip_cols=flip_cols,
            row_spacing_mm=float(spacing[ridx]), col_spacing_mm=float(spacing[cidx]),
            edges={"top": top, "bottom": bottom, "left": left, "right": right},
            obliquity_deg=float(np.degrees(np.arccos(min(1.0, cosine)))),
            normal_lps=normal, positive_step=int(sign(normal))))
    return specs


def extract_slice(array: np.ndarray, spec: PlaneSpec, index: int) -> np.ndarray:
    """The 2D slice ``index`` along ``spec.axis``, as (rows, cols) in display orientation."""
    index = int(np.clip(index, 0, array.shape[spec.axis] - 1))
    plane = np.take(array, index, axis=spec.axis)
    # Remaining axes keep their order: map row/col numpy axes into the 2D plane's axes.
    remaining = [a for a in range(3) if a != spec.axis]
    if remaining.index(spec.row_axis) != 0:
        plane = plane.T
    if spec.flip_rows:
        plane = plane[::-1, :]
    if spec.flip_cols:
        plane = plane[:, ::-1]
    return np.ascontiguousarray(plane)


def slice_position_mm(volume: Volume, spec: PlaneSpec, index: int) -> float:
    """LPS coordinate (mm) along ``spec.normal_lps`` of the centre of slice ``index``.

    On an oblique grid the slice is not at one anatomical position; its centre names it.
    """
    centre = (np.asarray(volume.array.shape, float) - 1.0) / 2.0  # z, y, x
    centre[spec.axis] = float(index)
    return float(volume.index_to_lps(centre[::-1])[spec.normal_lps])


def position_text(spec: PlaneSpec, position_mm: float) -> str:
    """"S 12.5 mm" / "I 3.0 mm": the side's letter and the distance from the LPS origin."""
    negative, positive = _LPS_LETTERS[spec.normal_lps]
    value = round(float(position_mm), 1)
    return f"{positive if value >= 0 else negative} {abs(value):.1f} mm"


def display_to_index(spec: PlaneSpec, shape_zyx: tuple[int, int, int], index: int,
                     row: float, col: float) -> np.ndarray:
    """Continuous voxel index (x, y, z) of display pixel (``row``, ``col``) of slice ``index``.

    ``row``, ``col`` are continuous display coordinates with pixel centres at integers (the
    slice as :func:`extract_slice` returns it), so the result feeds ``Volume.index_to_lps``.
    """
    zyx = np.zeros(3)
    zyx[spec.axis] = float(index)
    n_rows, n_cols = shape_zyx[spec.row_axis], shape_zyx[spec.col_axis]
    zyx[spec.row_axis] = (n_rows - 1 - row) if spec.flip_rows else row
    zyx[spec.col_axis] = (n_cols - 1 - col) if spec.flip_cols else col
    return zyx[::-1].copy()


def index_to_display(spec: PlaneSpec, shape_zyx: tuple[int, int, int], index_xyz: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where continuous voxel indices (x, y, z) are shown: the inverse of
    :func:`display_to_index`.

    Parameters
    ----------
    spec : PlaneSpec
    shape_zyx : (3,) int
        The volume's array shape.
    index_xyz : np.ndarray, shape (..., 3)
        Continuous voxel indices in (x, y, z) order (``Volume.lps_to_index`` of LPS points).

    Returns
    -------
    index, row, col : np.ndarray, shape ``index_xyz.shape[:-1]``
        The continuous slice coordinate along ``spec.axis`` (round it for the slice a point is
        on) and the display row and column, pixel centres at integers (the slice as
        :func:`extract_slice` returns it; display fractions are ``(row + 0.5) / n_rows``).
    """
    zyx = np.asarray(index_xyz, float)[..., ::-1]
    row, col = zyx[..., spec.row_axis], zyx[..., spec.col_axis]
    if spec.flip_rows:
        row = shape_zyx[spec.row_axis] - 1 - row
    if spec.flip_cols:
        col = shape_zyx[spec.col_axis] - 1 - col
    return zyx[..., spec.axis], row, col


def value_at(array: np.ndarray, index_xyz: np.ndarray) -> float | None:
    """The voxel value nearest to continuous index (x, y, z), or None outside the array."""
    zyx = np.rint(np.asarray(index_xyz, float)[::-1]).astype(int)
    if np.any(zyx < 0) or np.any(zyx >= np.asarray(array.shape)):
        return None
    return float(array[tuple(zyx)])


def lps_text(point_lps_mm: np.ndarray) -> str:
    """"LPS (12.3, -4.5, 30.0) mm": a point with its coordinate system named."""
    x, y, z = (float(v) for v in np.asarray(point_lps_mm, float).reshape(3))
    return f"LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm"


def distance_mm(volume: Volume, a_xyz: np.ndarray, b_xyz: np.ndarray) -> float:
    """Distance in mm between two continuous voxel indices (x, y, z) of ``volume``.

    Through LPS, so anisotropic spacing and any grid orientation are accounted for.
    """
    a, b = volume.index_to_lps(np.stack([np.asarray(a_xyz, float), np.asarray(b_xyz, float)]))
    return float(np.linalg.norm(b - a))


def window_to_uint8(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """Map HU to 0-255 grey: ``level - width/2`` -> 0, ``level + width/2`` -> 255."""
    lo = level - width / 2.0
    scaled = (np.asarray(values, np.float32) - lo) * (255.0 / max(width, 1e-6))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def label_lut(table_names: dict[int, str], color_of) -> np.ndarray:
    """(max_id + 1, 3) uint8 colours per id; background black."""
    lut = np.zeros((max(table_names) + 1, 3), np.uint8)
    for i, name in table_names.items():
        if i:
            lut[i] = color_of(name)
    return lut


def overlay_labels(grey: np.ndarray, labels: np.ndarray | None, lut: np.ndarray | None, *,
                   alpha: float = 0.45, visible: np.ndarray | None = None) -> np.ndarray:
    """RGB (rows, cols, 3) uint8: ``grey`` with labelled pixels blended with their colour.

    Parameters
    ----------
    grey : (rows, cols) uint8
    labels : (rows, cols) int or None
    lut : (n, 3) uint8 or None
        Colour per id (from :func:`label_lut`).
    alpha : float
        Opacity of the label colour.
    visible : (n,) bool, optional
        Ids to draw (structure toggles); all non-zero ids when omitted.
    """
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if labels is None or lut is None or alpha <= 0:
        return rgb
    ids = np.clip(labels.astype(np.int64), 0, len(lut) - 1)
    mask = ids > 0
    if visible is not None:
        mask &= np.asarray(visible, bool)[ids]
    if not mask.any():
        return rgb
    colour = lut[ids[mask]].astype(np.float32)
    rgb[mask] = np.clip((1 - alpha) * rgb[mask] + alpha * colour, 0, 255).astype(np.uint8)
    return rgb
