"""Exports of a session: label map + sidecar, meshes, 3D screenshot, and the L5/S1 plan.

The plan outputs come from the core's single export path,
:func:`spinect_core.report.exports.write_plan_outputs`: ``plan.json``, the needles as 3D Slicer
markups (``needle_<side>.mrk.json``), the oblique planes along each needle (NIfTI + labels and
PNG in ``planes_<side>/``), screenshots and area maps per window, ``report.html`` and
``report.pdf``, and optionally the DICOM objects for the PACS in ``dicom/`` (the planes as derived
CT series, the screenshots as secondary captures, the segmentation as a DICOM SEG, the plan as a
structured report and the PDF report encapsulated), which "Send to PACS" stores. The plan written
is the one the operator sees: a re-planned or nudged needle has replaced the optimiser's in
``session.plan``.

File names never contain patient identifiers: they are fixed (``segmentation.nii.gz``,
``view3d.png``, ``plan.json``) or made of class and side names (``bone_lps.stl``,
``needle_left.mrk.json``). Every target is listed first; existing files are replaced only when the
caller passes ``overwrite=True`` after asking the user (the core's atomic writers refuse
otherwise).
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from spinect_core.io import save_label_map
from spinect_core.io.atomic import write_bytes_atomic
from spinect_core.io.labelmap import sidecar_path
from spinect_core.io.mesh_export import export_meshes, mesh_filename

from spinect_core.progress import ProgressCallback, report, sub_progress

from app.state import Session

__all__ = ["ExportRequest", "planned_files", "plan_files", "existing_targets", "run_export",
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
    plan : bool
        The L5/S1 plan (see the module docstring); needs a plan in the session.
    plan_dicom : bool
        With the plan, also write its DICOM objects for the PACS into ``dicom/`` (oblique planes,
        screenshots, SEG, structured report, encapsulated PDF report:
        :attr:`spinect_core.report.exports.ExportOptions.dicom`).
    send_to : str
        Name of a configured PACS node to store the written DICOM objects on ("" = none).
    send_client : object, optional
        The PACS client of ``send_to`` (set by the main window); :func:`run_export` stores every
        ``*.dcm`` it wrote with it after writing.
    """

    folder: Path
    label_map: bool = True
    mesh_formats: list[str] = field(default_factory=lambda: ["stl"])
    coordinate_system: str = "LPS"
    screenshot: bool = True
    plan: bool = False
    plan_dicom: bool = True
    send_to: str = ""
    send_client: Any = None


def plan_files(request: ExportRequest, session: Session) -> list[Path]:
    """The files :func:`write_plan_outputs` may write for the session's plan (a superset)."""
    from spinect_core.report.exports import plan_output_paths

    plan = session.plan
    if not request.plan or plan is None:
        return []
    # The plan export is written without meshes (the surfaces have their own export option).
    return plan_output_paths(plan, request.folder, session.table, meshes=False,
                             dicom=request.plan_dicom)


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
    return out + plan_files(request, session)


def existing_targets(request: ExportRequest, session: Session) -> list[Path]:
    return [p for p in planned_files(request, session) if p.exists()]


def run_export(request: ExportRequest, session: Session, *,
               screenshot_png: bytes | Callable[[], bytes] | None = None,
               overwrite: bool = False, engine_lock: threading.Lock | None = None,
               progress: ProgressCallback | None = None) -> list[Path]:
    """Write the requested files; returns the paths written.

    May run on a worker thread when ``screenshot_png`` is given as bytes (the 3D view is
    rendered on the GUI thread beforehand).

    Parameters
    ----------
    request : ExportRequest
    session : Session
        Read only.
    screenshot_png : bytes or callable, optional
        The PNG of the 3D view, or a function returning it (call only on the GUI thread).
    overwrite : bool
        Replace existing files (only after the user agreed).
    engine_lock : threading.Lock, optional
        Held while the plan outputs read the planning engine (the live windows use it too).
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Raises
    ------
    FileExistsRefusedError
        A target exists and ``overwrite`` is False (checked before anything is written).
    """
    from spinect_core.io.atomic import check_writable

    sending = request.send_client is not None
    outer, progress = progress, (sub_progress(progress, 0.0, 0.85) if sending else progress)
    targets = planned_files(request, session)
    for p in targets:
        check_writable(p, overwrite=overwrite)
    if request.plan and not session.has_plan:
        raise ValueError("there is no plan to export: plan L5/S1 first")
    folder = Path(request.folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    report(progress, 0.0, "label map")
    if request.label_map and session.has_labels:
        image = save_label_map(session.labels, session.table, folder / LABEL_MAP_NAME,
                               overwrite=overwrite)
        written += [image, sidecar_path(image)]
    if request.mesh_formats and session.meshes:
        written += export_meshes(session.meshes, folder, formats=request.mesh_formats,
                                 coordinate_system=request.coordinate_system,
                                 overwrite=overwrite)
    if request.screenshot and screenshot_png is not None:
        png = screenshot_png() if callable(screenshot_png) else screenshot_png
        written.append(write_bytes_atomic(folder / SCREENSHOT_NAME, png, overwrite=overwrite))
    if request.plan:
        from spinect_core.report.exports import ExportOptions, write_plan_outputs

        report(progress, 0.1, "plan outputs")
        with engine_lock if engine_lock is not None else nullcontext():
            files = write_plan_outputs(
                # CT, labels and table from the engine: the label map the plan was measured
                # on (with the chosen and corrected roots drawn in), not the session's.
                session.plan, session.engine, folder, meshes=False, overwrite=overwrite,
                options=ExportOptions(dicom=request.plan_dicom),
                progress=sub_progress(progress, 0.1, 1.0, "plan: "))
        # Every file of the plan, the DICOM objects included: Send to PACS stores the *.dcm
        # listed here.
        for key in ("markups", "planes", "screenshots", "area_maps", "meshes", "report_html",
                    "report_pdf", "dicom", "plan_json"):
            written += files.get(key, [])
    report(progress, 1.0, "export written")
    if sending:
        _send(request, written, sub_progress(outer, 0.85, 1.0, "sending: "))
    return written


def _send(request: ExportRequest, written: list[Path],
          progress: ProgressCallback | None) -> int:
    """Store the written DICOM objects on the request's PACS node."""
    from spinect_core.pacs import PacsError

    from app.pacs_nodes import send_files

    try:
        return send_files(request.send_client, written, progress=progress)
    except PacsError as exc:
        raise type(exc)(f"{exc} (the export itself is written in {request.folder})") from None
