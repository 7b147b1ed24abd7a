"""Write every output of a plan into one folder: the single export path of the CLI, the demo and the app.

:func:`write_plan_outputs` writes, into ``out_dir``:

==================================================  =====================================================
``plan.json``                                        :meth:`Plan.to_dict` (schema ``PLAN_SCHEMA_VERSION``, LPS)
``report.html``                                      one-page report (images beside it, relative links)
``needle_<side>.mrk.json``                           the trajectory as a 3D Slicer markups line (LPS)
``screenshot_<side>_<kind>.png``                     the 3D scene from the window's best view, with the
                                                     window outlines, the needle and a legend
``area_map_<side>_<kind>.png``                       window area over the (alpha, beta) view grid
``planes_<side>/<needle|companion>_plane.nii.gz``    oblique CT planes through the needle (3D affine),
``..._plane_labels.nii.gz`` (+ ``.labels.json``),    their labels, a PNG with overlay and a derived DICOM
``..._plane.png``, ``..._plane_dicom/IM00001.dcm``   series in the CT's frame of reference
``meshes/<class>_lps.stl`` (``_ras`` with ``ras``)   surfaces of the label classes (bone, nerve, disc, dura)
==================================================  =====================================================

``<kind>`` is ``kambin`` or ``safe``. Nothing is overwritten silently: unless ``overwrite`` is
set, a folder that already holds a plan (``plan.json``, ``report.html`` or any other file or
folder of the table above) is refused before the first byte is written.

The set appears whole or not at all: every file is written into a hidden temporary folder beside
``out_dir`` (``.<name>.spinect-new-<hex>``), which is then put in place. When ``out_dir`` holds
nothing but an earlier plan, it is replaced whole (moved aside, the new folder renamed into its
place, the old one deleted), so no file of the earlier plan survives (e.g. the right needle of a
both-sides plan re-planned with ``--side left``). When it also holds other files (the app writes
its label map and surfaces beside the plan; a user's own files), only the earlier plan's entries
are moved aside and deleted and the new ones moved in; the other files stay. A failure or an
interrupt (``KeyboardInterrupt``, cancel through ``progress``) before that removes the temporary
folder and leaves ``out_dir`` as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.atomic import (FileExistsRefusedError, check_output_location, check_writable,
                                   signals_deferred, write_text_atomic)
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.report.render import (CLASS_COLOURS, NEEDLE_COLOUR, WINDOW_COLOURS, Overlay,
                                        SceneRenderOptions, draw_overlays, render_view)
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from spinect_core.planning.plan import Plan, PlanEngine, SidePlan, WindowPlan

__all__ = [
    "PLAN_JSON", "REPORT_HTML", "ExportOptions", "check_output_dir", "plan_document",
    "plan_output_paths", "render_screenshot", "validate_plan_document", "write_plan_outputs",
]

log = logging.getLogger(__name__)

PLAN_JSON = "plan.json"
REPORT_HTML = "report.html"
KINDS = ("kambin", "safe")
PLANE_KINDS = ("needle", "companion")
#: Rough size of a plan's outputs (planes as NIfTI, PNG and DICOM, screenshots, meshes), bytes:
#: the free space asked for before planning.
PLAN_OUTPUT_BYTES = 200_000_000
#: Entries of an output folder that belong to a plan (the table of the module docstring).
_PLAN_ENTRY = re.compile(
    r"(plan\.json|report\.html|needle_(left|right)\.mrk\.json"
    r"|(screenshot|area_map)_(left|right)_(kambin|safe)\.png|planes_(left|right)|meshes)")


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """Details of :func:`write_plan_outputs`.

    Attributes
    ----------
    dicom : bool
        Also write the oblique planes as DICOM series.
    plane_pixel_mm : float
        Pixel size of the oblique planes, mm.
    plane_size_mm : (float, float)
        Minimum extent of the planes along and across the needle, mm.
    screenshot : SceneRenderOptions
        Field of view and ray spacing of the 3D screenshots.
    screenshot_scale : int
        Integer magnification of the screenshots (crisp overlays and text).
    outline_pixel_mm : float
        Ray spacing of the window outlines recomputed at the best views for the screenshots
        (0.5 mm is finer than the pictures' pixels; the reported numbers use the plan's own).
    """

    dicom: bool = True
    plane_pixel_mm: float = 0.35
    plane_size_mm: tuple[float, float] = (120.0, 80.0)
    screenshot: SceneRenderOptions = field(default_factory=SceneRenderOptions)
    screenshot_scale: int = 2
    outline_pixel_mm: float = 0.5


# --- plan.json -----------------------------------------------------------------------------------
def plan_document(plan: "Plan") -> dict[str, Any]:
    """``plan.to_dict()`` with every non-finite float replaced by ``None`` (strict JSON)."""
    return _finite(plan.to_dict())


def _finite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


_VIEW_KEYS = ("alpha_deg", "beta_deg", "area_mm2")
_WINDOW_KEYS = ("found", "reason", "best_view", "plateau_view", "inscribed_diameter_mm",
                "triangle_area_mm2")
_TRAJECTORY_KEYS = ("entry_lps_mm", "target_lps_mm", "length_mm", "angle_to_axial_deg",
                    "angle_to_sagittal_deg", "min_nerve_clearance_mm", "carm")


def validate_plan_document(doc: Mapping[str, Any]) -> None:
    """Check a ``plan.json`` document against the schema this version reads.

    Checks ``format``, the ``schema_version`` (same major version as
    :data:`~spinect_core.planning.plan.PLAN_SCHEMA_VERSION`), the coordinate system and the
    required keys of every side (``kambin`` / ``safe``: ``found``, ``reason``, ``best_view`` and
    ``plateau_view`` with ``alpha_deg``, ``beta_deg``, ``area_mm2`` when found,
    ``inscribed_diameter_mm``, ``triangle_area_mm2``; ``trajectory``: null or with entry,
    target, length, angles, clearance and C-arm angles).

    Raises
    ------
    InputError
        Listing every problem found.
    """
    from spinect_core.planning.plan import PLAN_SCHEMA_VERSION

    problems: list[str] = []
    if not isinstance(doc, Mapping):
        raise InputError("a plan document must be a JSON object")
    if doc.get("format") != "spinect-plan":
        problems.append(f"format is {doc.get('format')!r}, expected 'spinect-plan'")
    version = str(doc.get("schema_version", ""))
    if version.split(".")[0] != PLAN_SCHEMA_VERSION.split(".")[0]:
        problems.append(f"schema_version {version!r} is not readable (this version reads "
                        f"{PLAN_SCHEMA_VERSION.split('.')[0]}.x)")
    if doc.get("coordinate_system") != "LPS":
        problems.append(f"coordinate_system is {doc.get('coordinate_system')!r}, expected 'LPS'")
    sides = doc.get("sides")
    if not isinstance(sides, Mapping) or not sides:
        problems.append("no sides")
        sides = {}
    for side, sp in sides.items():
        if side not in ("left", "right"):
            problems.append(f"unknown side {side!r}")
        for kind in KINDS:
            w = sp.get(kind) if isinstance(sp, Mapping) else None
            if not isinstance(w, Mapping):
                problems.append(f"sides.{side}.{kind} is missing")
                continue
            problems += [f"sides.{side}.{kind}.{k} is missing" for k in _WINDOW_KEYS if k not in w]
            for view in ("best_view", "plateau_view"):
                v = w.get(view)
                if w.get("found") and not (isinstance(v, Mapping) and all(k in v for k in _VIEW_KEYS)):
                    problems.append(f"sides.{side}.{kind}.{view} needs {', '.join(_VIEW_KEYS)}")
        if isinstance(sp, Mapping):
            if "trajectory" not in sp:
                problems.append(f"sides.{side}.trajectory is missing")
            elif sp["trajectory"] is not None:
                problems += [f"sides.{side}.trajectory.{k} is missing" for k in _TRAJECTORY_KEYS
                             if k not in sp["trajectory"]]
    if problems:
        raise InputError("invalid plan document: " + "; ".join(problems))


# --- the output set --------------------------------------------------------------------------------
def check_output_dir(out_dir: str | Path, *, overwrite: bool = False,
                     need_bytes: int = PLAN_OUTPUT_BYTES) -> Path:
    """Refuse a folder that already holds a plan unless ``overwrite``, and a location that
    cannot be written or lacks ``need_bytes`` of free space; cheap, so callers run it before
    minutes of work.

    Raises
    ------
    FileExistsRefusedError
        ``out_dir`` holds files or folders of a plan (``plan.json``, ``report.html``, needles,
        screenshots, planes, meshes) and ``overwrite`` is False.
    InputError
        ``out_dir`` exists and is not a folder.
    OutputError
        The location cannot be written (read-only, a file on the path) or lacks space.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if not overwrite and out.is_dir():
        for name in (PLAN_JSON, REPORT_HTML):
            if (out / name).exists():
                raise FileExistsRefusedError(
                    f"{out} already holds a plan ({name}); choose another folder or pass "
                    "overwrite (--force) to replace it")
        earlier = sorted(e.name for e in out.iterdir() if _PLAN_ENTRY.fullmatch(e.name))
        if earlier:
            shown = ", ".join(earlier[:4]) + (f" and {len(earlier) - 4} more" if len(earlier) > 4
                                              else "")
            raise FileExistsRefusedError(
                f"{out} already holds files of a plan ({shown}); choose another folder or pass "
                "overwrite (--force) to replace them")
    check_output_location(out, need_bytes=need_bytes, what="the plan")
    return out


def plan_output_paths(plan: "Plan", out_dir: str | Path, table: LabelTable, *,
                      meshes: bool = True, ras: bool = False, dicom: bool = True) -> list[Path]:
    """Every file :func:`write_plan_outputs` may write for ``plan`` into ``out_dir``.

    A superset (e.g. meshes of classes without voxels, screenshots of windows not found), for
    callers that check or list the targets before writing.
    """
    from spinect_core.io.labelmap import sidecar_path
    from spinect_core.io.mesh_export import mesh_filename

    out = Path(out_dir)
    paths = [out / PLAN_JSON, out / REPORT_HTML]
    for side, sp in plan.sides.items():
        if sp.trajectory is not None:
            paths.append(out / f"needle_{side}.mrk.json")
            for kind in PLANE_KINDS:
                stem = out / f"planes_{side}" / f"{kind}_plane"
                labels = stem.with_name(stem.name + "_labels.nii.gz")
                paths += [stem.with_name(stem.name + ".nii.gz"), labels, sidecar_path(labels),
                          stem.with_name(stem.name + ".png")]
                if dicom:
                    paths.append(stem.with_name(stem.name + "_dicom") / "IM00001.dcm")
        for kind in KINDS:
            paths += [out / f"screenshot_{side}_{kind}.png", out / f"area_map_{side}_{kind}.png"]
    if meshes:
        for cs in ("LPS", "RAS") if ras else ("LPS",):
            paths += [out / "meshes" / mesh_filename(name, cs, "stl")
                      for name in table.foreground().values()]
    return paths


def write_plan_outputs(plan: "Plan", engine: "PlanEngine", out_dir: str | Path, *, ct: Volume,
                       labels: Volume, table: LabelTable, meshes: bool = True, ras: bool = False,
                       overwrite: bool = False, options: ExportOptions | None = None,
                       progress: ProgressCallback | None = None) -> dict[str, list[Path]]:
    """Write the plan's files (see the module docstring for the layout).

    Parameters
    ----------
    plan : Plan
        From :meth:`PlanEngine.plan` (or :func:`build_plan`).
    engine : PlanEngine
        The engine that made ``plan``: its anatomy (parts map, S1 endplate normal, foramina)
        and per-side scenes (the windows at the best views, for the screenshots).
    out_dir : path-like
        Created if needed.
    ct : Volume
        The CT (HU, (z, y, x)); its metadata gives the DICOM frame of reference.
    labels : Volume
        The label map the plan used, ids of ``table``.
    table : LabelTable
    meshes : bool
        Write one STL surface per label class (LPS).
    ras : bool
        Also write the surfaces in RAS (``*_ras.stl``) for tools that ignore the STL header.
    overwrite : bool
        Replace an earlier plan in ``out_dir`` whole (no file of it survives); otherwise a
        folder holding a plan's files raises
        :class:`~spinect_core.io.atomic.FileExistsRefusedError` before anything is written.
    options : ExportOptions, optional
    progress : callable, optional
        ``(fraction, message)``; returning False cancels (nothing is left behind: the
        temporary folder is removed and ``out_dir`` is as it was).

    Returns
    -------
    dict of str to list of Path
        ``plan_json``, ``report_html``, ``markups``, ``planes``, ``screenshots``, ``area_maps``,
        ``meshes`` -> files written.
    """
    opts = options or ExportOptions()
    out = check_output_dir(out_dir, overwrite=overwrite, need_bytes=0)
    doc = plan_document(plan)
    validate_plan_document(doc)
    if not overwrite:
        for p in plan_output_paths(plan, out, table, meshes=meshes, ras=ras, dicom=opts.dicom):
            check_writable(p)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.spinect-new-{secrets.token_hex(4)}"
    stage.mkdir()
    try:
        written = _write_all(plan, engine, stage, doc, ct=ct, labels=labels, table=table,
                             meshes=meshes, ras=ras, options=opts, progress=progress)
        _install(stage, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    report(progress, 1.0, "outputs written")
    return {k: [out / p.relative_to(stage) for p in v] for k, v in written.items()}


def _write_all(plan: "Plan", engine: "PlanEngine", out: Path, doc: dict[str, Any], *, ct: Volume,
               labels: Volume, table: LabelTable, meshes: bool, ras: bool,
               options: ExportOptions, progress: ProgressCallback | None) -> dict[str, list[Path]]:
    """Every file of the plan into the new, empty folder ``out``."""
    opts, overwrite = options, False
    written: dict[str, list[Path]] = {k: [] for k in (
        "plan_json", "report_html", "markups", "planes", "screenshots", "area_maps", "meshes")}
    images: dict[str, list[tuple[str, str]]] = {side: [] for side in plan.sides}

    report(progress, 0.0, "writing the needle markups")
    written["markups"] = _write_markups(plan, out, overwrite)

    planes_p = sub_progress(progress, 0.02, 0.2, "oblique planes: ")
    written["planes"], plane_images = _write_planes(plan, engine, out, ct=ct, labels=labels,
                                                    table=table, options=opts, overwrite=overwrite,
                                                    progress=planes_p)

    shots_p = sub_progress(progress, 0.2, 0.6, "screenshots: ")
    written["screenshots"], shot_images = _write_screenshots(plan, engine, out, options=opts,
                                                             overwrite=overwrite, progress=shots_p)

    report(progress, 0.6, "area maps")
    written["area_maps"], map_images = _write_area_maps(plan, out, overwrite)
    for side in plan.sides:
        images[side] = shot_images.get(side, []) + map_images.get(side, []) + plane_images.get(side, [])

    if meshes:
        written["meshes"] = _write_meshes(labels, table, out, ras=ras, overwrite=overwrite,
                                          progress=sub_progress(progress, 0.62, 0.97, "meshes: "))

    report(progress, 0.97, "writing the report")
    from spinect_core.report.html import plan_report_html

    listed = [p.relative_to(out).as_posix() for key in ("markups", "planes", "meshes")
              for p in written[key]] + [PLAN_JSON]
    page = plan_report_html(doc, images=images, files=listed)
    written["report_html"] = [write_text_atomic(out / REPORT_HTML, page, overwrite=overwrite)]
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    written["plan_json"] = [write_text_atomic(out / PLAN_JSON, text, overwrite=overwrite)]
    return written


def _install(stage: Path, out: Path, *, overwrite: bool) -> None:
    """Put the finished plan folder ``stage`` in place of ``out`` (see the module docstring)."""
    token = secrets.token_hex(4)
    if not out.exists() and not out.is_symlink():
        with signals_deferred():
            os.rename(stage, out)
        return
    entries = list(out.iterdir())
    if not entries and not out.is_symlink():
        out.rmdir()
        with signals_deferred():
            os.rename(stage, out)
        return
    earlier = [e for e in entries if _PLAN_ENTRY.fullmatch(e.name)]
    if earlier and not overwrite:  # appeared while we were planning
        raise FileExistsRefusedError(f"{out} received files of another plan while this one was "
                                     "written; nothing was replaced")
    aside = out.parent / f".{out.name}.spinect-old-{token}"
    if len(earlier) == len(entries) and not out.is_symlink():
        # Only an earlier plan: replace the folder whole.
        with signals_deferred():
            os.rename(out, aside)
            try:
                os.rename(stage, out)
            except BaseException:
                os.rename(aside, out)
                raise
        shutil.rmtree(aside, ignore_errors=True)
        return
    # Other files too: swap the plan's entries only, keep the rest.
    aside.mkdir()
    moved_out: list[Path] = []
    moved_in: list[Path] = []
    try:
        with signals_deferred():
            for e in earlier:
                os.rename(e, aside / e.name)
                moved_out.append(e)
            for e in list(stage.iterdir()):
                if (out / e.name).exists():
                    raise FileExistsRefusedError(f"{out / e.name} appeared while the plan was "
                                                 "written; nothing was replaced")
                os.rename(e, out / e.name)
                moved_in.append(out / e.name)
    except BaseException:
        for p in moved_in:  # undo: the folder as it was
            with contextlib.suppress(OSError):
                os.rename(p, stage / p.name)
        for e in moved_out:
            with contextlib.suppress(OSError):
                os.rename(aside / e.name, e)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    stage.rmdir()


# --- the parts ---------------------------------------------------------------------------------------
def _write_markups(plan: "Plan", out: Path, overwrite: bool) -> list[Path]:
    from spinect_core.io.markups import write_markups_line

    files = []
    for side, sp in plan.sides.items():
        t = sp.trajectory
        if t is None:
            continue
        files.append(write_markups_line(
            out / f"needle_{side}.mrk.json", t.entry_lps_mm, t.target_lps_mm,
            name=f"tESI needle L5/S1 {side}",
            description=f"through the {sp.trajectory_window} window, {t.length_mm:.1f} mm",
            overwrite=overwrite))
    return files


def _shared_metadata(ct: Volume) -> Any:
    """The CT's metadata with study and frame-of-reference UIDs filled in once, so that the
    planes of both sides land in one study and one frame of reference even when the CT had none."""
    from pydicom.uid import generate_uid

    meta = ct.metadata
    return dataclasses.replace(meta, study_instance_uid=meta.study_instance_uid or str(generate_uid()),
                               frame_of_reference_uid=(meta.frame_of_reference_uid
                                                       or str(generate_uid())))


def _write_planes(plan: "Plan", engine: "PlanEngine", out: Path, *, ct: Volume, labels: Volume,
                  table: LabelTable, options: ExportOptions, overwrite: bool,
                  progress: ProgressCallback | None
                  ) -> tuple[list[Path], dict[str, list[tuple[str, str]]]]:
    from spinect_core.reslice import export_planes, oblique_planes

    meta = _shared_metadata(ct)
    files: list[Path] = []
    images: dict[str, list[tuple[str, str]]] = {}
    sides = [s for s, sp in plan.sides.items() if sp.trajectory is not None]
    for i, side in enumerate(sides):
        sp = plan.sides[side]
        part = sub_progress(progress, i / max(len(sides), 1), (i + 1) / max(len(sides), 1), f"{side}: ")
        try:
            planes = oblique_planes(ct, labels, sp.trajectory,
                                    endplate_normal_lps=engine.anatomy.s1_endplate_normal_lps,
                                    table=table, pixel_mm=options.plane_pixel_mm,
                                    size_mm=options.plane_size_mm, progress=sub_progress(part, 0, 0.6))
        except ValueError as exc:  # the needle runs along the endplate normal: no needle plane
            log.warning("no oblique planes for the %s side: %s", side, exc)
            continue
        written = export_planes(planes, out / f"planes_{side}", source_metadata=meta,
                                dicom=options.dicom, overwrite=overwrite)
        for kind, paths in written.items():
            for p in paths:
                # The DICOM writer returns the file; the label map's sidecar is written beside it.
                files.append(p)
                if p.name.endswith("_labels.nii.gz"):
                    from spinect_core.io.labelmap import sidecar_path

                    if sidecar_path(p).exists():
                        files.append(sidecar_path(p))
                if p.suffix == ".png":
                    what = ("needle plane: the needle and the endplate normal, cranial up"
                            if kind == "needle" else "companion plane: across the needle plane")
                    images[side] = images.get(side, []) + [
                        (p.relative_to(out).as_posix(), f"{side.capitalize()} {what}")]
        report(part, 1.0, "planes written")
    return files, images


def _outlines(windows: Any) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    outlines = []
    for kind in KINDS:
        w = windows.window(kind) if windows is not None else None
        if w is not None:
            outlines += [(np.asarray(p, float), WINDOW_COLOURS[kind]) for p in w.polygons_lps]
    return outlines


def _legend(side: str, kind: str, wp: "WindowPlan", sp: "SidePlan") -> list[str]:
    b, p = wp.best_view, wp.plateau_view
    name = {"kambin": "Kambin", "safe": "safe (subpedicular)"}[kind]
    lines = [f"{side.capitalize()} L5/S1, {name} window, best view (looking along the needle "
             f"direction; outlines: Kambin red, safe cyan)",
             f"local view alpha {b.alpha_deg:.1f} deg, beta {b.beta_deg:.1f} deg: area "
             f"{b.area_mm2:.1f} mm^2 (plateau view alpha {p.alpha_deg:.1f}, beta "
             f"{p.beta_deg:.1f} deg: {p.area_mm2:.1f} mm^2)",
             f"C-arm (prone, from straight PA): {b.carm.get('description', '')}"]
    t = sp.trajectory
    if t is not None:
        verdict = "clear of nerves" if t.safe else f"NOT safe: {t.reason}"
        lines.append(f"needle (magenta) via the {sp.trajectory_window} window: {t.length_mm:.1f} mm, "
                     f"min nerve clearance {t.min_nerve_clearance_mm:.1f} mm, {verdict}")
    else:
        lines.append(f"no needle: {sp.trajectory_reason}")
    lines.append("LPS coordinates. Research and planning support; not a certified medical device.")
    return lines


_KEY = [("bone", CLASS_COLOURS["bone"]), ("L5 / S1", CLASS_COLOURS["bone_highlight"]),
        ("nerve", CLASS_COLOURS["nerve"]), ("disc", CLASS_COLOURS["disc"]),
        ("dura", CLASS_COLOURS["dura"]), ("Kambin", WINDOW_COLOURS["kambin"]),
        ("safe", WINDOW_COLOURS["safe"]), ("needle", NEEDLE_COLOUR)]


def render_screenshot(plan: "Plan", engine: "PlanEngine", side: str, kind: str, *,
                      options: ExportOptions | None = None,
                      progress: ProgressCallback | None = None) -> np.ndarray:
    """The 3D scene of ``side`` seen from the best view of its ``kind`` window, as a picture.

    The anatomy parts map is ray-cast along the best view (:func:`render_view`), the Kambin
    (red) and safe (cyan) outlines at that view and the side's needle (magenta) are drawn on
    it, and a legend panel (side, window, local angles, C-arm terms, areas, needle) goes below.

    Returns
    -------
    np.ndarray, shape (H, W, 3), uint8
        The square scene on top (W x W), the legend panel below.

    Raises
    ------
    ValueError
        The window was not found (it has no best view).
    """
    opts = options or ExportOptions()
    anatomy = engine.anatomy
    sp = plan.sides[side]
    wp = sp.window(kind)
    if not wp.found or wp.best_view is None:
        raise ValueError(f"the {side} {kind} window was not found; there is no best view to show")
    scene = engine.scenes.get(side)
    # The plan keeps the windows at the plateau view; recompute them at the best view so that
    # the outlines match the picture.
    windows = (scene.windows_at(wp.best_view.alpha_deg, wp.best_view.beta_deg,
                                pixel_mm=opts.outline_pixel_mm, polygons=True)
               if scene is not None else None)
    up = scene.frame.z_lps if scene is not None else anatomy.s1_endplate_normal_lps
    view = render_view(anatomy.parts, anatomy.parts_table, wp.best_view.view_direction_lps,
                       centre_lps=anatomy.sides[side].foramen_centre_lps, up_lps=up,
                       options=opts.screenshot, progress=progress)
    needle = (None if sp.trajectory is None
              else (sp.trajectory.entry_lps_mm, sp.trajectory.target_lps_mm))
    return draw_overlays(view, Overlay(outlines=_outlines(windows), needle_lps=needle,
                                       legend=_legend(side, kind, wp, sp), key=_KEY,
                                       scale=opts.screenshot_scale))


def _write_screenshots(plan: "Plan", engine: "PlanEngine", out: Path, *, options: ExportOptions,
                       overwrite: bool, progress: ProgressCallback | None
                       ) -> tuple[list[Path], dict[str, list[tuple[str, str]]]]:
    from PIL import Image

    from spinect_core.io.atomic import atomic_path

    jobs = [(side, kind) for side, sp in plan.sides.items() for kind in KINDS
            if sp.window(kind).found and sp.window(kind).best_view is not None]
    files: list[Path] = []
    images: dict[str, list[tuple[str, str]]] = {}
    for i, (side, kind) in enumerate(jobs):
        part = sub_progress(progress, i / len(jobs), (i + 1) / len(jobs), f"{side} {kind}: ")
        rgb = render_screenshot(plan, engine, side, kind, options=options,
                                progress=sub_progress(part, 0.0, 0.9))
        target = out / f"screenshot_{side}_{kind}.png"
        with atomic_path(target, overwrite=overwrite) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
        files.append(target)
        best = plan.sides[side].window(kind).best_view
        images.setdefault(side, []).append(
            (target.name, f"{side.capitalize()} {kind} window from its best view "
                          f"({best.carm.get('description', '')})"))
        report(part, 1.0, "written")
    return files, images


def _write_area_maps(plan: "Plan", out: Path, overwrite: bool
                     ) -> tuple[list[Path], dict[str, list[tuple[str, str]]]]:
    from PIL import Image

    from spinect_core.io.atomic import atomic_path
    from spinect_core.report.maps import render_area_map

    files: list[Path] = []
    images: dict[str, list[tuple[str, str]]] = {}
    for side, sp in plan.sides.items():
        for kind in KINDS:
            wp = sp.window(kind)
            o = wp.optimum
            if o is None:
                continue
            best = (None if wp.best_view is None else
                    (wp.best_view.alpha_deg, wp.best_view.beta_deg, wp.best_view.area_mm2))
            plateau = (None if wp.plateau_view is None else
                       (wp.plateau_view.alpha_deg, wp.plateau_view.beta_deg, wp.plateau_view.area_mm2))
            name = {"kambin": "Kambin", "safe": "safe"}[kind]
            rgb = render_area_map(o.alphas_deg, o.betas_deg, o.values, side=side,
                                  title=f"{side.capitalize()} {name} window: area (mm^2) vs view",
                                  best=best, plateau=plateau,
                                  plateau_mask=o.plateau_mask if wp.found else None)
            target = out / f"area_map_{side}_{kind}.png"
            with atomic_path(target, overwrite=overwrite) as tmp:
                Image.fromarray(rgb).save(tmp, format="PNG")
            files.append(target)
            images.setdefault(side, []).append(
                (target.name, f"{side.capitalize()} {name} window area over the views "
                              "(x best, o plateau centre, white outline: plateau)"))
    return files, images


def _write_meshes(labels: Volume, table: LabelTable, out: Path, *, ras: bool, overwrite: bool,
                  progress: ProgressCallback | None) -> list[Path]:
    from spinect_core.io.mesh_export import export_meshes
    from spinect_core.planning.meshes import meshes_from_labels

    surfaces = meshes_from_labels(labels, table, progress=sub_progress(progress, 0.0, 0.9))
    files = export_meshes(surfaces, out / "meshes", coordinate_system="LPS", overwrite=overwrite)
    if ras:
        files += export_meshes(surfaces, out / "meshes", coordinate_system="RAS",
                               overwrite=overwrite)
    report(progress, 1.0, "meshes written")
    return files
