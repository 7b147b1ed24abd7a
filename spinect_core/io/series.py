"""Non-identifying summary of a series found at a path (for ``list_series`` and ``spinect info``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class SeriesInfo:
    """One series (or one image file) found at a path. No patient identifiers.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID ("" when the files carry none, or for NIfTI/NRRD/MHA files).
    description : str
        SeriesDescription.
    modality : str
        DICOM Modality ("CT", "MR", ...); "" when unknown (image files).
    number_of_slices : int
        Slices (frames) in the series, before any resampling.
    size : tuple of int
        Voxels along x, y, z (columns, rows, slices).
    spacing_mm : tuple of float
        Pixel spacing x, y and the median slice spacing along the slice normal, mm.
    extent_mm : float
        Distance between the first and last slice along the slice normal, mm.
    convolution_kernel : str
        Reconstruction kernel.
    source_format : str
        "dicom", "nifti", "nrrd", "mha".
    problem : str
        Why the series cannot be loaded as one volume ("" when it looks loadable).
    """

    uid: str
    description: str = ""
    modality: str = ""
    number_of_slices: int = 0
    size: tuple[int, int, int] = (0, 0, 0)
    spacing_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    extent_mm: float = 0.0
    convolution_kernel: str = ""
    source_format: str = "dicom"
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = [int(v) for v in self.size]
        d["spacing_mm"] = [float(v) for v in self.spacing_mm]
        return d

    def summary(self, *, descriptions: bool = False) -> str:
        """One line for humans: modality, slices, size, spacing, UID (and the description only
        when asked: SeriesDescription is free text and sometimes holds the patient's name)."""
        sx, sy, sz = self.spacing_mm
        desc = f" '{self.description}'" if descriptions and self.description else ""
        text = (f"{self.modality or '?'} {self.size[0]}x{self.size[1]}x{self.size[2]} "
                f"({self.number_of_slices} slices, {sx:.3g}x{sy:.3g}x{sz:.3g} mm, "
                f"extent {self.extent_mm:.1f} mm){desc} uid={self.uid or '-'}")
        return text + (f" [not loadable: {self.problem}]" if self.problem else "")
