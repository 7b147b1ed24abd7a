"""2D slices of a volume for display: which index planes, orientation, window/level, overlay.

Pure numpy (no Qt), so the display logic is tested without a GUI.

The views show the volume's *array index planes*; they are not resampled. For each view we pick
the index axis closest to the anatomical normal (S for axial, L for sagittal, P for coronal) and
flip rows/columns so the display follows the radiological convention (axial: anterior up,
patient's right on the viewer's left; sagittal: superior up, anterior left; coronal: superior
up, patient's right on the left). An oblique grid is shown as it is and the view title says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.volume import Volume

__all__ = ["WindowLevel", "PRESETS", "PlaneSpec", "plane_specs", "extract_slice",
           "window_to_uint8", "overlay_labels", "label_lut"]


@dataclass(frozen=True)
class WindowLevel:
    """Display window (width) and level (centre), HU."""

    name: str
    width: float
    level: float


PRESETS: dict[str, WindowLevel] = {
    "bone": WindowLevel("Bone", 2000.0, 400.0),
    "soft": WindowLevel("Soft tissue", 400.0, 40.0),
}

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

    def size(self, shape_zyx: tuple[int, int, int]) -> int:
        """Number of slices along :attr:`axis`."""
        return int(shape_zyx[self.axis])

    def title(self, index: int, shape_zyx: tuple[int, int, int]) -> str:
        oblique = f", grid {self.obliquity_deg:.0f}° oblique" if self.obliquity_deg >= 1.0 else ""
        axis = "kji"[self.axis]
        return (f"{self.name} · index plane {axis}={index + 1}/{self.size(shape_zyx)}"
                f"{oblique}")


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
            obliquity_deg=float(np.degrees(np.arccos(min(1.0, cosine))))))
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
