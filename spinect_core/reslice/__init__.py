"""Oblique CT planes along a planned needle: resampling, rendering and export.

``oblique_planes`` resamples the needle plane and its companion; ``render_plane`` draws one with
the label overlay and the needle; ``export_*`` write NIfTI and PNG
(the planes as DICOM: :mod:`spinect_core.io.dicom_derived`, through the plan exports).
"""

from spinect_core.reslice.export import export_plane_nifti, export_plane_png, export_planes
from spinect_core.reslice.plane import ObliquePlane, oblique_planes, plane_axes, resample_plane
from spinect_core.reslice.render import LABEL_COLOURS, RenderOptions, orientation_letters, render_plane

__all__ = [
    "ObliquePlane", "oblique_planes", "plane_axes", "resample_plane",
    "LABEL_COLOURS", "RenderOptions", "orientation_letters", "render_plane",
    "export_plane_nifti", "export_plane_png", "export_planes",
]
