"""Oblique CT planes that contain the planned needle (docs/ARCHITECTURE.md, section 4.3).

Two planes through the target, both containing the needle axis ``u`` (target -> skin):

* **needle plane** (main): spanned by ``u`` and ``a2`` = the endplate normal made orthogonal to
  ``u``; it shows the exiting root above the needle and the endplate below it.
* **companion plane**: spanned by ``u`` and ``u x a2``, perpendicular to the needle plane along
  the needle.

Image layout (both planes): columns run along ``u`` (the target on the left, the entry to the
right of it), so the needle is a horizontal line through the middle row. Rows of the needle
plane run along ``-a2`` (cranial side up, like a sagittal image); rows of the companion plane
along ``a2 x u`` (so ``col x row = a2``: it is seen from the caudal side, like an axial image).
The pixel ``(row, col)`` lies at ``origin + col * pixel_mm * col_axis + row * pixel_mm * row_axis``
(LPS mm); the target falls exactly on a pixel centre.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import CTMetadata, Volume
from spinect_core.vectors import unit as _unit

if TYPE_CHECKING:
    from spinect_core.planning.trajectory import Trajectory

__all__ = ["ObliquePlane", "plane_axes", "oblique_planes", "resample_plane"]

#: HU given to plane pixels outside the CT's field of view.
OUTSIDE_HU = -1024.0


@dataclass(kw_only=True)
class ObliquePlane:
    """One resampled oblique plane with its 3D geometry.

    Attributes
    ----------
    image : np.ndarray, shape (H, W), float32
        HU, trilinear; :data:`OUTSIDE_HU` outside the CT.
    labels : np.ndarray, shape (H, W), uint8, or None
        Class ids (nearest neighbour), 0 outside the label map.
    table : LabelTable or None
        Names of ``labels``' ids.
    inside : np.ndarray, shape (H, W), bool
        Pixels within the CT's field of view.
    origin_lps_mm : np.ndarray, shape (3,)
        LPS mm of the centre of pixel (row 0, col 0).
    col_axis_lps, row_axis_lps : np.ndarray, shape (3,)
        Unit LPS vectors along increasing column / row index (orthogonal).
    pixel_mm : float
        Square pixel size, mm.
    needle_pixels : np.ndarray, shape (2, 2)
        ``[[entry_row, entry_col], [target_row, target_col]]`` (continuous pixel coordinates).
    kind : str
        ``"needle"`` (main) or ``"companion"``.
    description : str
        Human-readable name (used as series description).
    source_metadata : CTMetadata
        The CT's non-identifying metadata (frame of reference for DICOM export).
    """

    image: np.ndarray
    labels: np.ndarray | None
    table: LabelTable | None
    inside: np.ndarray
    origin_lps_mm: np.ndarray
    col_axis_lps: np.ndarray
    row_axis_lps: np.ndarray
    pixel_mm: float
    needle_pixels: np.ndarray
    kind: str = "needle"
    description: str = "SPINECT oblique plane (needle)"
    source_metadata: CTMetadata = field(default_factory=CTMetadata)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return tuple(self.image.shape)  # type: ignore[return-value]

    @property
    def normal_lps(self) -> np.ndarray:
        """``col_axis x row_axis``: the plane normal (the direction a viewer of the image faces)."""
        return np.cross(self.col_axis_lps, self.row_axis_lps)

    @property
    def entry_pixel(self) -> np.ndarray:
        """(row, col) of the entry."""
        return self.needle_pixels[0]

    @property
    def target_pixel(self) -> np.ndarray:
        """(row, col) of the target."""
        return self.needle_pixels[1]

    def pixel_to_lps(self, rows: Any, cols: Any) -> np.ndarray:
        """LPS mm (..., 3) of continuous pixel coordinates ``rows``, ``cols`` (broadcast)."""
        r = np.asarray(rows, dtype=np.float64)[..., None]
        c = np.asarray(cols, dtype=np.float64)[..., None]
        return self.origin_lps_mm + self.pixel_mm * (c * self.col_axis_lps + r * self.row_axis_lps)

    def lps_to_pixel(self, points_lps: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Continuous ``(rows, cols, offset_mm)`` of LPS points (..., 3).

        ``offset_mm`` is the signed distance from the plane along :attr:`normal_lps`.
        """
        p = np.asarray(points_lps, dtype=np.float64) - self.origin_lps_mm
        return (p @ self.row_axis_lps / self.pixel_mm, p @ self.col_axis_lps / self.pixel_mm,
                p @ self.normal_lps)

    def to_volume(self, what: str = "ct") -> Volume:
        """A one-slice volume with the plane's 3D geometry (for NIfTI / NRRD export).

        Parameters
        ----------
        what : {"ct", "labels"}
            ``"ct"``: float32 HU; ``"labels"``: uint8 ids.

        Returns
        -------
        Volume
            ``array`` (1, H, W); ``direction`` columns = col axis, row axis, normal (x, y, z
            index axes); spacing (pixel, pixel, pixel); origin = pixel (0, 0). The index
            ``(x=col, y=row, z=0)`` maps to :meth:`pixel_to_lps` ``(row, col)``.
        """
        if what == "ct":
            array = self.image.astype(np.float32, copy=False)
            meta = dataclasses.replace(self.source_metadata, series_description=self.description,
                                       source_format="reslice", series_instance_uid="")
        elif what == "labels":
            if self.labels is None:
                raise ValueError("this plane has no labels")
            array = self.labels
            meta = CTMetadata(modality="SEG", source_format="reslice",
                              frame_of_reference_uid=self.source_metadata.frame_of_reference_uid)
        else:
            raise ValueError(f"what must be 'ct' or 'labels', got {what!r}")
        direction = np.column_stack([self.col_axis_lps, self.row_axis_lps, self.normal_lps])
        return Volume(array=np.ascontiguousarray(array)[None], spacing_mm=(self.pixel_mm,) * 3,
                      origin_lps_mm=self.origin_lps_mm, direction=direction, metadata=meta)


def plane_axes(entry_direction_lps: Sequence[float], endplate_normal_lps: Sequence[float]
               ) -> dict[str, np.ndarray]:
    """Axes of the needle and companion planes.

    Parameters
    ----------
    entry_direction_lps : (3,)
        ``u``, target -> skin.
    endplate_normal_lps : (3,)
        S1 superior endplate normal (cranial).

    Returns
    -------
    dict
        ``u``; ``axis2`` = the endplate normal made orthogonal to ``u`` (unit);
        ``companion_axis2`` = ``u x axis2``; and the image axes ``needle_col``, ``needle_row``
        (= -axis2), ``companion_col``, ``companion_row`` (= -companion_axis2 = axis2 x u).

    Raises
    ------
    ValueError
        The endplate normal is (within 3 degrees) parallel to the needle.
    """
    u = _unit(entry_direction_lps, "entry_direction_lps")
    n = _unit(endplate_normal_lps, "endplate_normal_lps")
    a2 = n - (n @ u) * u
    if np.linalg.norm(a2) < np.sin(np.radians(3.0)):
        raise ValueError("the endplate normal is parallel to the needle; the needle plane is undefined")
    a2 /= np.linalg.norm(a2)
    a3 = np.cross(u, a2)
    return {"u": u, "axis2": a2, "companion_axis2": a3, "needle_col": u, "needle_row": -a2,
            "companion_col": u, "companion_row": -a3}


def resample_plane(ct: Volume, labels: Volume | None, origin_lps: np.ndarray, col_axis: np.ndarray,
                   row_axis: np.ndarray, shape: tuple[int, int], pixel_mm: float
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Sample CT (trilinear) and labels (nearest) on a planar grid.

    Returns
    -------
    image : (H, W) float32 HU, :data:`OUTSIDE_HU` outside the CT
    labels : (H, W) uint8 or None, 0 outside the label map
    inside : (H, W) bool, within the CT's field of view (outer voxel faces)
    """
    from scipy import ndimage

    h, w = shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = origin_lps + pixel_mm * (cc[..., None] * col_axis + rr[..., None] * row_axis)

    def indices(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
        zyx = volume.lps_to_index(pts.reshape(-1, 3))[:, ::-1].T
        n = np.array(volume.array.shape)[:, None]
        ok = np.all((zyx >= -0.5) & (zyx <= n - 0.5), axis=0)
        return zyx, ok

    zyx, inside = indices(ct)
    image = ndimage.map_coordinates(ct.array, zyx, order=1, mode="nearest", output=np.float32)
    image[~inside] = OUTSIDE_HU
    out_labels = None
    if labels is not None:
        lz, lok = indices(labels)
        n = np.array(labels.array.shape)[:, None]
        near = np.clip(np.rint(lz).astype(int), 0, n - 1)
        out_labels = np.where(lok, labels.array[near[0], near[1], near[2]], 0).astype(np.uint8)
        out_labels = out_labels.reshape(h, w)
    return image.reshape(h, w), out_labels, inside.reshape(h, w)


def oblique_planes(
    ct: Volume,
    labels: Volume | None,
    trajectory: "Trajectory",
    *,
    endplate_normal_lps: Sequence[float],
    table: LabelTable | None = None,
    pixel_mm: float = 0.35,
    size_mm: tuple[float, float] = (120.0, 80.0),
    padding_mm: float = 10.0,
    progress: ProgressCallback | None = None,
) -> tuple[ObliquePlane, ObliquePlane]:
    """Resample the needle plane and its companion through a planned trajectory.

    Parameters
    ----------
    ct : Volume
        HU (z, y, x).
    labels : Volume or None
        Class ids (z, y, x), any grid; resampled with nearest neighbour for the overlay.
    trajectory : Trajectory
        Uses ``entry_lps_mm``, ``target_lps_mm``, ``length_mm`` and ``direction_lps``.
    endplate_normal_lps : (3,)
        S1 superior endplate normal (cranial), LPS.
    table : LabelTable, optional
        Names of ``labels``' ids (default :data:`~spinect_core.labels.DEFAULT_LABELS`).
    pixel_mm : float
        Pixel size, mm (0.25-0.5 recommended; must be in (0, 5]).
    size_mm : (float, float)
        Minimum extent along the needle (columns) and across it (rows), mm. The extent along
        the needle grows to hold the whole needle plus ``padding_mm`` at both ends; the needle
        is centred along the columns and runs along the middle row.
    padding_mm : float
        Margin beyond the target and the entry along the needle, mm.
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    (ObliquePlane, ObliquePlane)
        The needle plane (kind ``"needle"``) and the companion plane (kind ``"companion"``).
    """
    if not 0.0 < float(pixel_mm) <= 5.0:
        raise ValueError(f"pixel_mm must be in (0, 5], got {pixel_mm}")
    if min(size_mm) <= 0 or padding_mm < 0:
        raise ValueError(f"size_mm must be positive and padding_mm >= 0, got {size_mm}, {padding_mm}")
    pix = float(pixel_mm)
    axes = plane_axes(-np.asarray(trajectory.direction_lps, float), endplate_normal_lps)
    target = np.asarray(trajectory.target_lps_mm, dtype=np.float64).reshape(3)
    length = float(trajectory.length_mm)
    along = max(float(size_mm[0]), length + 2.0 * padding_mm)
    w = int(np.ceil(along / pix)) + 1
    h = int(np.ceil(float(size_mm[1]) / pix)) + 1
    h += 1 - h % 2  # odd, so the needle runs along the middle row
    c_t = int(round((w - 1) / 2.0 - length / (2.0 * pix)))
    r_t = (h - 1) // 2
    needle_px = np.array([[r_t, c_t + length / pix], [r_t, c_t]], dtype=np.float64)
    table = table or (DEFAULT_LABELS if labels is not None else None)
    planes = []
    specs = (("needle", "needle_col", "needle_row", "SPINECT oblique plane (needle)"),
             ("companion", "companion_col", "companion_row", "SPINECT oblique plane (companion)"))
    for i, (kind, col_key, row_key, description) in enumerate(specs):
        report(progress, i / 2.0, f"resampling the {kind} plane")
        col, row = axes[col_key], axes[row_key]
        origin = target - pix * (c_t * col + r_t * row)
        image, lab, inside = resample_plane(ct, labels, origin, col, row, (h, w), pix)
        planes.append(ObliquePlane(
            image=image, labels=lab, table=table, inside=inside, origin_lps_mm=origin,
            col_axis_lps=col, row_axis_lps=row, pixel_mm=pix, needle_pixels=needle_px.copy(),
            kind=kind, description=description, source_metadata=ct.metadata))
    report(progress, 1.0, "oblique planes ready")
    return planes[0], planes[1]
