"""The volume object every part of the core exchanges: voxels plus LPS geometry.

Conventions (see ``docs/ARCHITECTURE.md`` section 3):

* ``array`` is indexed ``(z, y, x)`` (slowest to fastest), as SimpleITK's ``GetArrayFromImage``.
* Geometry follows ITK and is given for the index axes in ``(x, y, z)`` order:
  ``spacing_mm`` (3,), ``origin_lps_mm`` (3,) = LPS position of the centre of voxel (0, 0, 0),
  ``direction`` (3, 3) whose *columns* are the LPS unit vectors of the x, y and z index axes.
* The world position of the voxel at index ``(i, j, k)`` = ``(x, y, z)`` is
  ``origin + direction @ (spacing * [i, j, k])``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class CTMetadata:
    """Non-identifying description of where a volume came from.

    Never holds patient name, ID, birth date, accession number or institution.
    """

    modality: str = "CT"
    series_description: str = ""
    convolution_kernel: str = ""
    slice_thickness_mm: float | None = None
    manufacturer: str = ""
    source_format: str = ""  # "dicom", "nifti", "nrrd", "mha", "synthetic"
    series_instance_uid: str = ""  # a UID, not an identifier of the patient
    frame_of_reference_uid: str = ""
    study_instance_uid: str = ""
    #: Headers of the source DICOM instances (pydicom Datasets read without pixel data), one
    #: per instance in the order of the volume's slices; empty for other formats. They hold the
    #: patient and study modules that derived DICOM objects (SEG, SR, reformats) must carry, so
    #: they live in memory only: :meth:`to_dict` leaves them out and nothing writes them.
    source_headers: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The non-identifying fields (everything but :attr:`source_headers`), JSON-ready."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "source_headers"}


class LPSGeometry:
    """Index <-> LPS maths shared by :class:`Volume` and the voxel-less ``preprocess.Grid``.

    Subclasses provide ``spacing_mm`` (3,), ``origin_lps_mm`` (3,), ``direction`` (3, 3) and
    ``shape_zyx`` (the array shape, z, y, x).
    """

    # Annotations only: a property here would shadow Grid's dataclass field of the same name.
    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray
    direction: np.ndarray
    shape_zyx: tuple[int, int, int]

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Number of voxels along x, y, z (ITK order)."""
        nz, ny, nx = self.shape_zyx
        return (nx, ny, nz)

    @property
    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous index ``(x, y, z, 1)`` to LPS millimetres."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing_mm[None, :]
        a[:3, 3] = self.origin_lps_mm
        return a

    @property
    def cranio_caudal_axis_zyx(self) -> int:
        """The array axis (0, 1, 2 of (z, y, x)) that runs most cranio-caudally: slices across
        it are axial (``direction``'s columns are the LPS directions of index x, y, z)."""
        cols = np.asarray(self.direction, float)
        return int(np.argmax([abs(cols[2, 2 - a]) for a in range(3)]))

    @property
    def anterior_step_zyx(self) -> tuple[int, int]:
        """The array axis (of (z, y, x)) that runs most antero-posteriorly, and the index step
        (+1 or -1) that moves anteriorly (LPS +y is posterior)."""
        cols = np.asarray(self.direction, float)
        a = int(np.argmax([abs(cols[1, 2 - k]) for k in range(3)]))
        return a, (-1 if cols[1, 2 - a] > 0 else 1)

    def index_to_lps(self, index_xyz: np.ndarray) -> np.ndarray:
        """LPS millimetres of continuous indices ``(..., 3)`` given in (x, y, z) order."""
        idx = np.asarray(index_xyz, dtype=np.float64)
        return idx @ (self.direction * self.spacing_mm[None, :]).T + self.origin_lps_mm

    def lps_to_index(self, points_lps_mm: np.ndarray) -> np.ndarray:
        """Continuous (x, y, z) indices of LPS points ``(..., 3)``."""
        p = np.asarray(points_lps_mm, dtype=np.float64) - self.origin_lps_mm
        m = self.direction * self.spacing_mm[None, :]
        return p @ np.linalg.inv(m).T

    def geometry_dict(self) -> dict[str, Any]:
        """JSON-ready geometry: ``size`` [x, y, z], ``spacing_mm``, ``origin_lps_mm``, ``direction``."""
        return {
            "coordinate_system": "LPS",
            "size": [int(n) for n in self.size_xyz],
            "spacing_mm": [float(s) for s in self.spacing_mm],
            "origin_lps_mm": [float(o) for o in self.origin_lps_mm],
            "direction": [float(d) for d in self.direction.reshape(-1)],
        }


@dataclass(kw_only=True)
class Volume(LPSGeometry):
    """A 3D image with LPS geometry.

    Attributes
    ----------
    array : np.ndarray, shape (nz, ny, nx)
        Voxel values; HU for CT (float32 or int16), integer ids for label maps.
    spacing_mm : np.ndarray, shape (3,)
        Voxel size along the x, y, z index axes, millimetres.
    origin_lps_mm : np.ndarray, shape (3,)
        LPS position of the centre of voxel (0, 0, 0), millimetres.
    direction : np.ndarray, shape (3, 3)
        Columns are the LPS unit vectors of the x, y, z index axes (orthonormal).
    metadata : CTMetadata
        Non-identifying acquisition description.
    warnings : list of str
        Things the loader corrected or noticed (resampled tilt, skipped files, ...).
    """

    array: np.ndarray
    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: CTMetadata = field(default_factory=CTMetadata)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spacing_mm = np.asarray(self.spacing_mm, dtype=np.float64).reshape(3)
        self.origin_lps_mm = np.asarray(self.origin_lps_mm, dtype=np.float64).reshape(3)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D (z, y, x), got shape {self.array.shape}")
        if np.any(self.spacing_mm <= 0):
            raise ValueError(f"spacing must be positive, got {self.spacing_mm}")

    # --- geometry ---------------------------------------------------------------------------
    @property
    # LPSGeometry only annotates shape_zyx (Grid stores it as a field); here it is the array's.
    def shape_zyx(self) -> tuple[int, int, int]:  # type: ignore[override]
        """Array shape (z, y, x)."""
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    def same_grid(self, other: "Volume", *, atol: float = 1e-4) -> bool:
        """True when ``other`` has the same size, spacing, origin and direction."""
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=atol)
            and np.allclose(self.origin_lps_mm, other.origin_lps_mm, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def with_array(self, array: np.ndarray) -> "Volume":
        """A volume on the same grid with other voxel values (e.g. a label map)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the grid {self.array.shape}")
        return dataclasses.replace(self, array=array, warnings=list(self.warnings))

    # --- SimpleITK bridge -------------------------------------------------------------------
    def to_sitk(self) -> "Any":
        """A SimpleITK image with the same voxels and geometry."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        img.SetSpacing([float(s) for s in self.spacing_mm])
        img.SetOrigin([float(o) for o in self.origin_lps_mm])
        img.SetDirection([float(d) for d in self.direction.reshape(-1)])
        return img

    @classmethod
    def from_sitk(cls, image: "Any", *, metadata: CTMetadata | None = None,
                  warnings: list[str] | None = None) -> "Volume":
        """Build a volume from a 3D SimpleITK image (geometry copied, voxels copied)."""
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
        return cls(
            array=sitk.GetArrayFromImage(image),
            spacing_mm=np.array(image.GetSpacing()),
            origin_lps_mm=np.array(image.GetOrigin()),
            direction=np.array(image.GetDirection()).reshape(3, 3),
            metadata=metadata or CTMetadata(),
            warnings=list(warnings or []),
        )
