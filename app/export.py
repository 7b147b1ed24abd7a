"""Exports of a session: label map + sidecar, meshes, 3D screenshot (stage 1 of the export dialog).

File names never contain patient identifiers: they are fixed (``segmentation.nii.gz``,
``view3d.png``) or made of class names (``bone_lps.stl``). Every target is listed first; existing
files are replaced only when the caller passes ``overwrite=True`` after asking the user (the core's
atomic writers refuse otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from spinect_core.io import save_label_map
from spinect_core.io.atomic import write_bytes_atomic
from spinect_core.io.labelmap import sidecar_path
from spinect_core.io.mesh_export import export_meshes, mesh_filename

from app.state import Session

__all__ = ["ExportRequest", "planned_files", "existing_targets", "run_export",
           "LABEL_MAP_NAME", "SCREENSHOT_NAME", "MESH_EXPORT_FORMATS"]

LABEL_MAP_NAME = "segmentation.nii.gz"
SCREENSHOT_NAME = "view3d.png"
#: Formats offered in the dialog (the core also writes glTF).
MESH_EXPORT_FORMATS = ("stl", "ply", "obj")


@dataclass(kw_only=True)
class ExportRequest:
    """What to export and where.

    Attributes
    ----------
    folder : Path
    label_map : bool
        ``segmentation.nii.gz`` + ``segmentation.labels.json``.
    mesh_formats : list of str
        Any of :data:`MESH_EXPORT_FORMATS`; empty for none.
    coordinate_system : {"LPS", "RAS"}
        Frame of the mesh coordinates (stated in the file names and headers).
    screenshot : bool
        PNG of the current 3D view.
    """

    folder: Path
    label_map: bool = True
    mesh_formats: list[str] = field(default_factory=lambda: ["stl"])
    coordinate_system: str = "LPS"
    screenshot: bool = True


def planned_files(request: ExportRequest, session: Session) -> list[Path]:
    """Every file the export would write, in order."""
    out: list[Path] = []
    folder = Path(request.folder)
    if request.label_map and session.has_labels:
        out += [folder / LABEL_MAP_NAME, sidecar_path(folder / LABEL_MAP_NAME)]
    for name, mesh in session.meshes.items():
        if mesh.is_empty:
            continue
        out += [folder / mesh_filename(name, request.coordinate_system, fmt)
                for fmt in request.mesh_formats]
    if request.screenshot:
        out.append(folder / SCREENSHOT_NAME)
    return out


def existing_targets(request: ExportRequest, session: Session) -> list[Path]:
    return [p for p in planned_files(request, session) if p.exists()]


def run_export(request: ExportRequest, session: Session, *,
               screenshot_png: Callable[[], bytes] | None = None,
               overwrite: bool = False) -> list[Path]:
    """Write the requested files; returns the paths written.

    Parameters
    ----------
    request : ExportRequest
    session : Session
        Read only.
    screenshot_png : callable, optional
        Returns the PNG bytes of the 3D view; called on the GUI thread (rendering stays there).
    overwrite : bool
        Replace existing files (only after the user agreed).

    Raises
    ------
    FileExistsRefusedError
        A target exists and ``overwrite`` is False (checked before anything is written).
    """
    from spinect_core.io.atomic import check_writable

    targets = planned_files(request, session)
    for p in targets:
        check_writable(p, overwrite=overwrite)
    folder = Path(request.folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if request.label_map and session.has_labels:
        image = save_label_map(session.labels, session.table, folder / LABEL_MAP_NAME,
                               overwrite=overwrite)
        written += [image, sidecar_path(image)]
    if request.mesh_formats and session.meshes:
        written += export_meshes(session.meshes, folder, formats=request.mesh_formats,
                                 coordinate_system=request.coordinate_system,
                                 overwrite=overwrite)
    if request.screenshot and screenshot_png is not None:
        written.append(write_bytes_atomic(folder / SCREENSHOT_NAME, screenshot_png(),
                                          overwrite=overwrite))
    return written
