"""Write every output of a plan into one folder: the single export path of the CLI, the demo and the app.

:func:`write_plan_outputs` writes, into ``out_dir``:

==================================================  =====================================================
``plan.json``                                        :meth:`Plan.to_dict` (schema ``PLAN_SCHEMA_VERSION``, LPS;
                                                     ``plan.schema.json``), with the source's and the
                                                     derived objects' DICOM UIDs
``report.html``                                      one-page report, images embedded (portable alone)
``report.pdf``                                       the same report as a PDF (figures and text)
``needle_<side>.mrk.json``                           the trajectory as a 3D Slicer markups line (LPS)
``screenshot_<side>_<kind>.png``                     the 3D scene from the window's best view, with the
                                                     window outlines, the needle and a legend
``area_map_<side>_<kind>.png``                       window area over the C-arm view grid
``drr_<side>_<kind>.png`` (+ ``.json``)              simulated fluoroscopy (DRR) at the window's best view,
                                                     window outlines, needle and target projected; the
                                                     ``.json`` gives the C-arm geometry (LPS)
``planes_<side>/<needle|companion>_plane.nii.gz``    oblique CT planes through the needle (3D affine),
``..._plane_labels.nii.gz`` (+ ``.labels.json``),    their labels and a PNG with overlay
``..._plane.png``
``dicom/planes_<side>_<needle|companion>/IM00001.dcm``  the planes as derived CT series (DICOM, below)
``dicom/sc_<side>_<kind>.dcm``                       the screenshots as Secondary Captures
``dicom/drr_<side>_<kind>.dcm``                      the DRRs as Secondary Captures (PatientOrientation)
``dicom/seg.dcm``                                    the label map as a binary DICOM SEG
``dicom/sr.dcm``                                     the plan as a Comprehensive 3D SR (SCOORD3D, areas)
``dicom/report_pdf.dcm``                             ``report.pdf`` as an Encapsulated PDF
``meshes/<class>_lps.stl`` (``_ras`` with ``ras``)   surfaces of the label classes (bone, nerve, disc, dura)
==================================================  =====================================================

When the anatomy refuses the scan after the CT was segmented, :func:`write_refusal_outputs`
writes ``refusal.json`` (the reason, the level evidence in LPS mm, the segmentation's source and
warnings) and ``refused_segmentation.nii.gz`` (+ ``.labels.json``), the label map the refusal
was made on, for review and correction (plan again with it as ``--segmentation``); they count
as a plan's entries (never overwritten silently, replaced whole by a later plan with
``overwrite``).

``<kind>`` is ``kambin`` or ``safe``. The DICOM objects (``ExportOptions.dicom``) carry the
source CT's Patient and Study modules and frame of reference and reference its instances, so a
PACS files them with the CT (see :mod:`spinect_core.io.dicom_derived`); a CT read from another
format gets a generated study, and ``plan.json`` (``dicom.source``) says which. Nothing is
overwritten silently: unless ``overwrite`` is
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
import json
import logging
import math
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.atomic import (FileExistsRefusedError, check_output_location, check_writable,
                                   signals_deferred, write_bytes_atomic, write_text_atomic)
from spinect_core.labels import LabelTable
from spinect_core.planning.carm import carm_text
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.reslice.drr import DRROptions
from spinect_core.report.render import (CLASS_COLOURS, NEEDLE_COLOUR, WINDOW_COLOURS, Overlay,
                                        PreparedLabels, SceneRenderOptions, draw_overlays,
                                        prepare_render, render_view)
from spinect_core.vocabulary import WINDOW_KINDS, WINDOW_LONG_NAMES, WINDOW_NAMES
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from spinect_core.planning.plan import Plan, PlanEngine, SidePlan, WindowPlan

__all__ = [
    "PLAN_JSON", "REPORT_HTML", "REPORT_PDF", "ExportOptions", "check_output_dir", "plan_document",
    "plan_output_paths", "plan_schema", "render_screenshot", "source_section",
    "validate_plan_document", "write_plan_outputs",
]

log = logging.getLogger(__name__)

PLAN_JSON = "plan.json"
#: What a refused plan leaves (:func:`write_refusal_outputs`).
REFUSAL_JSON = "refusal.json"
REFUSAL_SEGMENTATION = "refused_segmentation.nii.gz"
REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
DICOM_DIR = "dicom"
#: Series numbers of the derived DICOM series (planes count up from 901, screenshots from 951,
#: simulated fluoroscopy from 961).
SERIES_PLANES, SERIES_SCREENSHOTS, SERIES_SEG, SERIES_SR, SERIES_PDF = 901, 951, 990, 991, 992
SERIES_DRRS = 961
KINDS = WINDOW_KINDS
PLANE_KINDS = ("needle", "companion")
#: Rough size of a plan's outputs (planes as NIfTI, PNG and DICOM, screenshots, meshes), bytes:
#: the free space asked for before planning.
PLAN_OUTPUT_BYTES = 200_000_000
#: Entries of an output folder that belong to a plan (the table of the module docstring).
_PLAN_ENTRY = re.compile(
    r"(plan\.json|report\.html|report\.pdf|dicom|needle_(left|right)\.mrk\.json"
    r"|(screenshot|area_map)_(left|right)_(kambin|safe)\.png|drr_(left|right)_(kambin|safe)\.(png|json)"
    r"|planes_(left|right)|meshes|refusal\.json"
    r"|refused_segmentation\.(nii\.gz|labels\.json))")
#: What a plan writes into ``dicom/``: a ``dicom`` folder holding anything else (the phantom's
#: or a user's CT series) is not a plan's and is never replaced or counted as one.
_DICOM_ENTRY = re.compile(r"planes_(left|right)_(needle|companion)|(sc|drr)_(left|right)_(kambin|safe)"
                          r"\.dcm|seg\.dcm|sr\.dcm|report_pdf\.dcm")


def _is_plan_entry(entry: Path) -> bool:
    """Whether ``entry`` (a file or folder in an output folder) was written by a plan."""
    if not _PLAN_ENTRY.fullmatch(entry.name):
        return False
    if entry.name == DICOM_DIR:
        return (entry.is_dir() and not entry.is_symlink()
                and all(_DICOM_ENTRY.fullmatch(e.name) for e in entry.iterdir()))
    return True


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """Details of :func:`write_plan_outputs`.

    Attributes
    ----------
    dicom : bool
        Also write the DICOM objects (planes, screenshots, SEG, SR, encapsulated PDF) into
        ``dicom/``.
    pdf : bool
        Also write ``report.pdf``.
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
    drr : bool
        Also write the simulated fluoroscopy ``drr_<side>_<kind>.png`` (+ ``.json`` geometry) at
        each found window's best view.
    drr_options : DRROptions
        C-arm geometry and sampling of those DRRs (SDD 1000 mm, SID 600 mm, 300 mm detector).
    """

    dicom: bool = True
    pdf: bool = True
    plane_pixel_mm: float = 0.35
    plane_size_mm: tuple[float, float] = (120.0, 80.0)
    screenshot: SceneRenderOptions = field(default_factory=SceneRenderOptions)
    screenshot_scale: int = 2
    outline_pixel_mm: float = 0.5
    drr: bool = True
    # 384 px over 300 mm (0.78 mm pixels): sharp enough for the foramen, a few seconds on a CPU.
    drr_options: DRROptions = field(default_factory=lambda: DRROptions(
        detector_pixels=(384, 384), step_mm=1.0))


# --- plan.json -----------------------------------------------------------------------------------
def plan_document(plan: "Plan", *, ct: Volume | None = None) -> dict[str, Any]:
    """``plan.to_dict()`` with every non-finite float replaced by ``None`` (strict JSON).

    With ``ct``, ``source`` names the CT's format and its Study, Series and FrameOfReference
    UIDs (``null`` where it has none), so the plan can be linked to its CT.
    :func:`write_plan_outputs` adds ``dicom``: the derived objects and their UIDs.
    """
    doc = _finite(plan.to_dict())
    if ct is not None:
        doc["source"] = source_section(ct)
    return doc


def source_section(ct: Volume) -> dict[str, Any]:
    """``plan.json``'s ``source``: the CT's format and DICOM UIDs (UIDs only, no identifiers)."""
    m = ct.metadata
    return {"format": m.source_format or "unknown",
            "study_instance_uid": m.study_instance_uid or None,
            "series_instance_uid": m.series_instance_uid or None,
            "frame_of_reference_uid": m.frame_of_reference_uid or None}


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


#: The published JSON Schema of ``plan.json`` (package data beside this module).
PLAN_SCHEMA_FILE = "plan.schema.json"


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of ``plan.json`` (``spinect_core/report/plan.schema.json``)."""
    from importlib.resources import files

    return json.loads((files("spinect_core.report") / PLAN_SCHEMA_FILE).read_text(encoding="utf-8"))


def validate_plan_document(doc: Mapping[str, Any]) -> None:
    """Check a ``plan.json`` document against the published schema (:func:`plan_schema`).

    ``format``, ``schema_version`` (same major version as
    :data:`~spinect_core.planning.plan.PLAN_SCHEMA_VERSION`), the coordinate system, and per
    side (``left`` / ``right``) the windows (``kambin`` / ``safe``: ``found``, ``reason``,
    ``best_view`` and ``plateau_view`` with ``alpha_deg``, ``beta_deg``, ``area_mm2`` when
    found, ``inscribed_diameter_mm``, ``triangle_area_mm2``) and ``trajectory`` (null or with
    entry, target, length, angles, clearance and C-arm angles); ``source`` and ``dicom`` UIDs
    when present. The schema's keywords are checked by a small validator here (the subset the
    schema uses; no ``jsonschema`` dependency).

    Raises
    ------
    InputError
        Listing every problem found, by its path (``sides.left.safe.plateau_view is missing``).
    """
    from spinect_core.planning.plan import PLAN_SCHEMA_VERSION

    if not isinstance(doc, Mapping):
        raise InputError("a plan document must be a JSON object")
    problems: list[str] = []
    major = PLAN_SCHEMA_VERSION.split(".")[0]
    version = str(doc.get("schema_version", ""))
    if version.split(".")[0] != major:
        problems.append(f"schema_version {version!r} is not readable (this version reads "
                        f"{major}.x)")
    schema = plan_schema()
    found = _schema_problems(doc, schema, "", schema)
    if problems:  # the version message above says it better
        found = [p for p in found if not p.startswith("schema_version")]
    problems += found
    if problems:
        raise InputError("invalid plan document: " + "; ".join(problems))


_JSON_TYPES: dict[str, Any] = {
    "object": Mapping, "array": (list, tuple), "string": str, "boolean": bool,
    "null": type(None), "number": (int, float), "integer": int,
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[name])


def _schema_problems(value: Any, schema: Mapping[str, Any], path: str,
                     root: Mapping[str, Any]) -> list[str]:
    """Problems of ``value`` against ``schema`` (the keywords the plan schema uses)."""
    import re as _re

    where = path or "the document"
    if "$ref" in schema:
        ref = str(schema["$ref"])
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref}")
        schema = {**root["$defs"][ref[len("#/$defs/"):]],
                  **{k: v for k, v in schema.items() if k != "$ref"}}
    out: list[str] = []
    if "const" in schema and value != schema["const"]:
        return [f"{where} is {value!r}, expected {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where} is {value!r}, expected one of {', '.join(map(repr, schema['enum']))}"]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return [f"{where} should be {' or '.join(types)}, not {type(value).__name__}"]
    if isinstance(value, str) and "pattern" in schema and not _re.search(schema["pattern"], value):
        out.append(f"{where} ({value!r}) does not match {schema['pattern']}")
    if isinstance(value, Mapping):
        prefix = f"{path}." if path else ""
        out += [f"{prefix}{k} is missing" for k in schema.get("required", []) if k not in value]
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{where} is empty" if not value else f"{where} has too few entries")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            if names is not None:
                out += [p.replace(f"{prefix}{key} is", f"{prefix}{key}: the key is", 1)
                        for p in _schema_problems(key, names, f"{prefix}{key}", root)]
            if key in props:
                out += _schema_problems(item, props[key], f"{prefix}{key}", root)
            elif extra is False:
                out.append(f"{prefix}{key} is not allowed")
            elif isinstance(extra, Mapping):
                out += _schema_problems(item, extra, f"{prefix}{key}", root)
        if "if" in schema and not _schema_problems(value, schema["if"], path, root):
            out += _schema_problems(value, schema.get("then", {}), path, root)
    if isinstance(value, (list, tuple)):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where} has {len(value)} items, at least {schema['minItems']} needed")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where} has {len(value)} items, at most {schema['maxItems']} allowed")
        if "items" in schema:
            for i, item in enumerate(value):
                out += _schema_problems(item, schema["items"], f"{path}[{i}]", root)
    return out


# --- the output set --------------------------------------------------------------------------------
def check_output_dir(out_dir: str | Path, *, overwrite: bool = False,
                     need_bytes: int = PLAN_OUTPUT_BYTES, dicom: bool = True) -> Path:
    """Refuse a folder that already holds a plan unless ``overwrite``, and a location that
    cannot be written or lacks ``need_bytes`` of free space; cheap, so callers run it before
    minutes of work.

    Raises
    ------
    FileExistsRefusedError
        ``out_dir`` holds files or folders of a plan (``plan.json``, ``report.html``, needles,
        screenshots, planes, meshes) and ``overwrite`` is False.
    InputError
        ``out_dir`` exists and is not a folder, or (with ``dicom``) holds a ``dicom`` entry
        that is not a plan's (e.g. the phantom's CT series), which the plan's ``dicom/`` folder
        would have to replace.
    OutputError
        The location cannot be written (read-only, a file on the path) or lacks space.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    foreign = out / DICOM_DIR
    if dicom and (foreign.exists() or foreign.is_symlink()) and not _is_plan_entry(foreign):
        raise InputError(f"{out} holds a '{DICOM_DIR}' folder that is not a plan's (a CT series?); "
                         "the plan writes its DICOM objects there - choose another output folder")
    if not overwrite and out.is_dir():
        for name in (PLAN_JSON, REPORT_HTML):
            if (out / name).exists():
                raise FileExistsRefusedError(
                    f"{out} already holds a plan ({name}); choose another folder or pass "
                    "overwrite (--force) to replace it")
        earlier = sorted(e.name for e in out.iterdir() if _is_plan_entry(e))
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
    paths = [out / PLAN_JSON, out / REPORT_HTML, out / REPORT_PDF]
    if dicom:
        paths += [out / DICOM_DIR / "seg.dcm", out / DICOM_DIR / "sr.dcm",
                  out / DICOM_DIR / "report_pdf.dcm"]
    for side, sp in plan.sides.items():
        if sp.trajectory is not None:
            paths.append(out / f"needle_{side}.mrk.json")
            for kind in PLANE_KINDS:
                stem = out / f"planes_{side}" / f"{kind}_plane"
                labels = stem.with_name(stem.name + "_labels.nii.gz")
                paths += [stem.with_name(stem.name + ".nii.gz"), labels, sidecar_path(labels),
                          stem.with_name(stem.name + ".png")]
                if dicom:
                    paths.append(out / DICOM_DIR / f"planes_{side}_{kind}" / "IM00001.dcm")
        for kind in KINDS:
            paths += [out / f"screenshot_{side}_{kind}.png", out / f"area_map_{side}_{kind}.png",
                      out / f"drr_{side}_{kind}.png", out / f"drr_{side}_{kind}.json"]
            if dicom:
                paths.append(out / DICOM_DIR / f"sc_{side}_{kind}.dcm")
                paths.append(out / DICOM_DIR / f"drr_{side}_{kind}.dcm")
    if meshes:
        for cs in ("LPS", "RAS") if ras else ("LPS",):
            paths += [out / "meshes" / mesh_filename(name, cs, "stl")
                      for name in table.foreground().values()]
    return paths


def write_plan_outputs(plan: "Plan", engine: "PlanEngine", out_dir: str | Path, *,
                       ct: Volume | None = None, labels: Volume | None = None,
                       table: LabelTable | None = None, meshes: bool = True, ras: bool = False,
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
    ct : Volume, optional
        The CT (HU, (z, y, x)); its metadata gives the DICOM frame of reference. Default: the
        engine's (the one the plan was made on); give it only to write the same CT loaded with
        other metadata (e.g. its DICOM series).
    labels : Volume, optional
        The label map, ids of ``table``. Default: the engine's (on the CT grid, with the roots
        the plan chose drawn in), i.e. what the windows were measured against.
    table : LabelTable, optional
        Default: the engine's.
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
        ``plan_json``, ``report_html``, ``report_pdf``, ``markups``, ``planes``,
        ``screenshots``, ``drrs``, ``area_maps``, ``meshes``, ``dicom`` -> files written.
    """
    opts = options or ExportOptions()
    # The engine holds what the plan was made on; a caller passes these only to override.
    ct = engine.ct if ct is None else ct
    labels = engine.labels if labels is None else labels
    table = engine.table if table is None else table
    out = check_output_dir(out_dir, overwrite=overwrite, need_bytes=0, dicom=opts.dicom)
    doc = plan_document(plan, ct=ct)
    validate_plan_document(doc)
    if not overwrite:
        for p in plan_output_paths(plan, out, table, meshes=meshes, ras=ras, dicom=opts.dicom):
            check_writable(p)
    with _staged(out, overwrite=overwrite) as stage:
        written = _write_all(plan, engine, stage, doc, ct=ct, labels=labels, table=table,
                             meshes=meshes, ras=ras, options=opts, progress=progress)
    report(progress, 1.0, "outputs written")
    return {k: [out / p.relative_to(stage) for p in v] for k, v in written.items()}


def write_refusal_outputs(out_dir: str | Path, *, reason: str, labels: Volume, table: LabelTable,
                          level_evidence: Mapping[str, Any] | None = None,
                          segmentation: Mapping[str, Any] | None = None,
                          warnings: list[str] | None = None, overwrite: bool = False
                          ) -> list[Path]:
    """Write what a refused plan found, so that nothing of the segmentation is lost.

    Parameters
    ----------
    out_dir : path-like
        The plan's output folder (checked as for a plan: an earlier plan or refusal there is
        refused unless ``overwrite``, and then replaced whole).
    reason : str
        The refusal, in words.
    labels : Volume
        The label map the refusal was made on (ids of ``table``, (z, y, x), on the CT's grid).
    table : LabelTable
    level_evidence : mapping, optional
        :meth:`~spinect_core.anatomy.counting.LevelEvidence.to_dict` of what the level count
        found (LPS mm), when the refusal carries it.
    segmentation : mapping, optional
        Where the labels came from (``source``, ``bone_source``).
    warnings : list of str, optional
        The segmentation check's warnings.
    overwrite : bool

    Returns
    -------
    list of Path
        ``refusal.json``, ``refused_segmentation.nii.gz`` and its ``.labels.json``, in
        ``out_dir``.
        Written into a temporary folder and put in place together, as a plan is.
    """
    from spinect_core.io.labelmap import save_label_map, sidecar_path

    out = check_output_dir(out_dir, overwrite=overwrite, need_bytes=0, dicom=False)
    doc = {"refused": True, "reason": reason, "coordinate_system": "LPS", "units": "mm",
           "level_evidence": None if level_evidence is None else dict(level_evidence),
           "segmentation": {**dict(segmentation or {}), "file": REFUSAL_SEGMENTATION},
           "warnings": list(warnings or []),
           "next_step": "review the segmentation (3D Slicer or the app's label editing); where "
                        "the refusal comes from it (vertebral bodies missed or merged), correct "
                        f"it and plan again with --segmentation {REFUSAL_SEGMENTATION}"}
    with _staged(out, overwrite=overwrite) as stage:
        save_label_map(labels, table, stage / REFUSAL_SEGMENTATION)
        (stage / REFUSAL_JSON).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return [out / REFUSAL_JSON, out / REFUSAL_SEGMENTATION,
            out / sidecar_path(REFUSAL_SEGMENTATION).name]


def _write_all(plan: "Plan", engine: "PlanEngine", out: Path, doc: dict[str, Any], *, ct: Volume,
               labels: Volume, table: LabelTable, meshes: bool, ras: bool,
               options: ExportOptions, progress: ProgressCallback | None) -> dict[str, list[Path]]:
    """Every file of the plan into the new, empty folder ``out``."""
    opts, overwrite = options, False
    written: dict[str, list[Path]] = {k: [] for k in (
        "plan_json", "report_html", "report_pdf", "markups", "planes", "screenshots", "drrs",
        "area_maps", "meshes", "dicom")}
    images: dict[str, list[tuple[str, str]]] = {side: [] for side in plan.sides}
    dicom = _DicomWriter(ct, out) if opts.dicom else None

    report(progress, 0.0, "writing the needle markups")
    written["markups"] = _write_markups(plan, out, overwrite)

    planes_p = sub_progress(progress, 0.02, 0.2, "oblique planes: ")
    written["planes"], plane_images = _write_planes(plan, engine, out, ct=ct, labels=labels,
                                                    table=table, options=opts, overwrite=overwrite,
                                                    progress=planes_p, dicom=dicom)

    shots_p = sub_progress(progress, 0.2, 0.5, "screenshots: ")
    written["screenshots"], shot_images = _write_screenshots(plan, engine, out, options=opts,
                                                             overwrite=overwrite, progress=shots_p,
                                                             dicom=dicom)
    drr_images: dict[str, list[tuple[str, str]]] = {}
    if opts.drr:
        written["drrs"], drr_images = _write_drrs(plan, engine, out, ct=ct, options=opts,
                                                  overwrite=overwrite, dicom=dicom,
                                                  progress=sub_progress(progress, 0.5, 0.6,
                                                                        "simulated fluoroscopy: "))

    report(progress, 0.6, "area maps")
    written["area_maps"], map_images = _write_area_maps(plan, out, overwrite)
    for side in plan.sides:
        images[side] = (shot_images.get(side, []) + drr_images.get(side, [])
                        + map_images.get(side, []) + plane_images.get(side, []))

    if meshes:
        written["meshes"] = _write_meshes(labels, table, out, ras=ras, overwrite=overwrite,
                                          progress=sub_progress(progress, 0.62, 0.9, "meshes: "))

    if dicom is not None:
        report(progress, 0.9, "DICOM segmentation and structured report")
        dicom.write_seg(labels, table, source_name=str(doc.get("segmentation_source") or ""))
        dicom.write_sr(doc)

    report(progress, 0.95, "writing the report")
    from spinect_core.report.html import plan_report_html

    listed = [p.relative_to(out).as_posix() for key in ("markups", "planes", "drrs", "meshes")
              for p in written[key]]
    listed += [o["path"] for o in dicom.objects] if dicom is not None else []
    listed += ([REPORT_PDF] if opts.pdf else []) + [PLAN_JSON]
    if opts.pdf:
        from spinect_core.report.pdf import plan_report_pdf

        pdf = plan_report_pdf(doc, images=images, image_root=out)
        written["report_pdf"] = [write_bytes_atomic(out / REPORT_PDF, pdf, overwrite=overwrite)]
        if dicom is not None:
            dicom.write_pdf(pdf)
    if dicom is not None:
        doc["dicom"] = dicom.section()
        written["dicom"] = [out / o["path"] for o in dicom.objects]
        validate_plan_document(doc)
    page = plan_report_html(doc, images=images, files=listed, embed_from=out)
    written["report_html"] = [write_text_atomic(out / REPORT_HTML, page, overwrite=overwrite)]
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    written["plan_json"] = [write_text_atomic(out / PLAN_JSON, text, overwrite=overwrite)]
    return written


class _DicomWriter:
    """The DICOM objects of one plan, written into ``out/dicom`` and listed for ``plan.json``."""

    def __init__(self, ct: Volume, out: Path) -> None:
        from spinect_core.io.dicom_derived import dicom_source

        self.ct = ct
        self.out = out
        self.source = dicom_source(ct)
        self.objects: list[dict[str, str]] = []
        self.notes: list[str] = []
        self._planes = SERIES_PLANES
        self._shots = SERIES_SCREENSHOTS
        self._drrs = SERIES_DRRS

    def _write(self, ds: Any, relative: str, kind: str) -> Path:
        from spinect_core.io.dicom_derived import write_dataset

        path = write_dataset(ds, self.out / relative)
        self.objects.append({"kind": kind, "path": relative,
                             "sop_class_uid": str(ds.SOPClassUID),
                             "series_instance_uid": str(ds.SeriesInstanceUID),
                             "sop_instance_uid": str(ds.SOPInstanceUID)})
        return path

    def write_plane(self, plane: Any, side: str) -> Path:
        from spinect_core.io.dicom_derived import plane_dataset

        ds = plane_dataset(plane, self.source, ct=self.ct, series_number=self._planes,
                           series_description=f"SPINECT {side} {plane.kind} plane")
        self._planes += 1
        return self._write(ds, f"{DICOM_DIR}/planes_{side}_{plane.kind}/IM00001.dcm", "plane")

    def write_screenshot(self, rgb: np.ndarray, side: str, kind: str) -> Path:
        from spinect_core.io.dicom_derived import secondary_capture_dataset

        name = WINDOW_NAMES[kind]
        ds = secondary_capture_dataset(
            rgb, self.source, series_description=f"SPINECT {side} {name} window 3D view",
            series_number=self._shots,
            derivation_description=(f"3D rendering of the segmentation from the best view of the "
                                    f"{side} {name} window, with the window outlines and the "
                                    "planned needle, SPINECT planner"))
        self._shots += 1
        return self._write(ds, f"{DICOM_DIR}/sc_{side}_{kind}.dcm", "secondary_capture")

    def write_drr(self, rgb: np.ndarray, geometry: Any, side: str, kind: str, carm: Any) -> Path:
        """The simulated fluoroscopy as a Secondary Capture; its rows and columns have a patient
        direction (PatientOrientation from the detector axes)."""
        from spinect_core.io.dicom_derived import patient_orientation, secondary_capture_dataset

        name = WINDOW_NAMES[kind]
        g = geometry
        ds = secondary_capture_dataset(
            rgb, self.source, series_description=f"SPINECT {side} {name} window DRR",
            series_number=self._drrs,
            derivation_description=(
                f"Simulated fluoroscopy (DRR) of the CT at the best view of the {side} {name} "
                f"window, {carm_text(carm, degree_sign=False)} (prone; tube {g.tube} the table, "
                f"SDD {g.sdd_mm:.0f} mm, SID {g.sid_mm:.0f} mm), window outlines and planned "
                "needle drawn, SPINECT planner")[:1024],
            orientation=patient_orientation(g.row_axis_lps, g.col_axis_lps),
            burned_in_annotation=False)
        self._drrs += 1
        return self._write(ds, f"{DICOM_DIR}/drr_{side}_{kind}.dcm", "secondary_capture")

    def write_seg(self, labels: Volume, table: LabelTable, *, source_name: str) -> Path | None:
        from spinect_core.io.dicom_seg import segmentation_dataset

        if not labels.same_grid(self.ct):
            from spinect_core.preprocess.resample import resample_to_grid

            labels = resample_to_grid(labels, self.ct, interpolation="nearest")
            self.notes.append("the label map was resampled (nearest neighbour) onto the CT's grid "
                              "for the SEG")
        try:
            ds, _ = segmentation_dataset(labels, table, self.source, series_number=SERIES_SEG,
                                         algorithm_name=source_name or "SPINECT")
        except ValueError as exc:  # an empty label map: nothing to segment
            log.warning("no DICOM SEG: %s", exc)
            self.notes.append(f"no SEG: {exc}")
            return None
        return self._write(ds, f"{DICOM_DIR}/seg.dcm", "segmentation")

    def write_sr(self, doc: Mapping[str, Any]) -> Path | None:
        from spinect_core.io.dicom_sr import plan_sr_dataset

        try:
            ds = plan_sr_dataset(doc, self.source, series_number=SERIES_SR, notes=self.notes)
        except ValueError as exc:  # nothing to report: a note, not a stack trace
            log.warning("no DICOM SR: %s", exc)
            self.notes.append(f"no SR: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - the SR comes last: never fail a finished plan
            log.warning("no DICOM SR: %s", exc, exc_info=True)
            self.notes.append(f"no SR: {type(exc).__name__}: {exc}")
            return None
        return self._write(ds, f"{DICOM_DIR}/sr.dcm", "structured_report")

    def write_pdf(self, pdf: bytes) -> Path:
        from spinect_core.io.dicom_derived import encapsulated_pdf_dataset

        ds = encapsulated_pdf_dataset(pdf, self.source, series_number=SERIES_PDF,
                                      title="SPINECT L5/S1 transforaminal plan report")
        return self._write(ds, f"{DICOM_DIR}/report_pdf.dcm", "encapsulated_pdf")

    def section(self) -> dict[str, Any]:
        """``plan.json``'s ``dicom``: the study the objects belong to and every object's UIDs."""
        out: dict[str, Any] = dict(self.source.to_dict())
        if self.source.generated:
            self.notes.insert(0, "the CT was not read from DICOM: the objects carry a generated "
                                 "study (PatientName empty, PatientID "
                                 f"{_generated_id()}) and reference generated CT "
                                 "instances that were not written")
        out["note"] = "; ".join(self.notes)
        out["objects"] = list(self.objects)
        return out


def _generated_id() -> str:
    from spinect_core.io.dicom_derived import GENERATED_PATIENT_ID

    return GENERATED_PATIENT_ID


@contextlib.contextmanager
def _staged(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """A new hidden folder beside ``out`` to write into; put in place of ``out`` when the block
    ends (:func:`_install`), removed with nothing of it left when the block raises or is
    interrupted (see the module docstring)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.spinect-new-{secrets.token_hex(4)}"
    stage.mkdir()
    try:
        yield stage
        _install(stage, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


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
    earlier = [e for e in entries if _is_plan_entry(e)]
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


def _write_planes(plan: "Plan", engine: "PlanEngine", out: Path, *, ct: Volume, labels: Volume,
                  table: LabelTable, options: ExportOptions, overwrite: bool,
                  progress: ProgressCallback | None, dicom: "_DicomWriter | None" = None
                  ) -> tuple[list[Path], dict[str, list[tuple[str, str]]]]:
    from spinect_core.reslice import export_planes, oblique_planes

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
        # The DICOM planes go to dicom/ with the source's patient and study (below).
        written = export_planes(planes, out / f"planes_{side}", overwrite=overwrite)
        if dicom is not None:
            for plane in planes:
                dicom.write_plane(plane, side)
        for kind, paths in written.items():
            for p in paths:
                # export_planes lists the label map but not its sidecar, written beside it.
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


def _window_polygons(windows: Any) -> list[tuple[str, np.ndarray]]:
    """(kind, (N, 3) LPS polygon) of every window outline of ``windows``."""
    polygons = []
    for kind in KINDS:
        w = windows.window(kind) if windows is not None else None
        if w is not None:
            polygons += [(kind, np.asarray(p, float)) for p in w.polygons_lps]
    return polygons


def _outlines(windows: Any) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    return [(p, WINDOW_COLOURS[kind]) for kind, p in _window_polygons(windows)]


def _legend(side: str, kind: str, wp: "WindowPlan", sp: "SidePlan") -> list[str]:
    b, p = wp.best_view, wp.plateau_view
    name = WINDOW_LONG_NAMES[kind]
    lines = [f"{side.capitalize()} L5/S1, {name} window, best view (looking along the needle "
             f"direction; outlines: Kambin red, safe cyan)",
             f"local view alpha {b.alpha_deg:.1f} deg, beta {b.beta_deg:.1f} deg: area "
             f"{b.area_mm2:.1f} mm^2 (plateau view alpha {p.alpha_deg:.1f}, beta "
             f"{p.beta_deg:.1f} deg: {p.area_mm2:.1f} mm^2)",
             f"C-arm (prone, from straight PA): {carm_text(b.carm, degree_sign=False)}"]
    t = sp.trajectory
    if t is not None:
        verdict = "clear of nerves" if t.safe else f"NOT safe: {t.reason}"
        lines.append(f"needle (orange) via the {sp.trajectory_window} window: {t.length_mm:.1f} mm, "
                     f"min nerve clearance {t.min_nerve_clearance_mm:.1f} mm, {verdict}")
    else:
        lines.append(f"no needle: {sp.trajectory_reason}")
    lines.append("LPS coordinates. Research and planning support; not a certified medical device.")
    return lines


_KEY = [("bone", CLASS_COLOURS["bone"]), ("L5 / S1", CLASS_COLOURS["bone_highlight"]),
        ("nerve", CLASS_COLOURS["nerve"]), ("disc", CLASS_COLOURS["disc"]),
        ("dura", CLASS_COLOURS["dura"]), ("Kambin", WINDOW_COLOURS["kambin"]),
        ("safe", WINDOW_COLOURS["safe"]), ("needle", NEEDLE_COLOUR)]


def _best_view_scene(plan: "Plan", engine: "PlanEngine", side: str, kind: str,
                     opts: ExportOptions) -> tuple[Any, Any, np.ndarray, Any]:
    """What a picture of ``side`` from the best view of its ``kind`` window needs: the side's and
    the window's plans, the picture's up vector (LPS) and the windows recomputed at that view
    (the plan keeps them at the plateau view; ``None`` without a scene).

    Raises
    ------
    ValueError
        The window was not found (it has no best view).
    """
    sp = plan.sides[side]
    wp = sp.window(kind)
    if not wp.found or wp.best_view is None:
        raise ValueError(f"the {side} {kind} window was not found; there is no best view to show")
    scene = engine.scenes.get(side)
    up = scene.frame.z_lps if scene is not None else engine.anatomy.s1_endplate_normal_lps
    windows = (scene.windows_at(wp.best_view.alpha_deg, wp.best_view.beta_deg,
                                pixel_mm=opts.outline_pixel_mm, polygons=True)
               if scene is not None else None)
    return sp, wp, up, windows


def _found_windows(plan: "Plan") -> list[tuple[str, str]]:
    """(side, kind) of every window that was found and has a best view, in plan order."""
    return [(side, kind) for side, sp in plan.sides.items() for kind in KINDS
            if sp.window(kind).found and sp.window(kind).best_view is not None]


def render_screenshot(plan: "Plan", engine: "PlanEngine", side: str, kind: str, *,
                      options: ExportOptions | None = None,
                      prepared: PreparedLabels | None = None,
                      progress: ProgressCallback | None = None) -> np.ndarray:
    """The 3D scene of ``side`` seen from the best view of its ``kind`` window, as a picture.

    The anatomy parts map is ray-cast along the best view (:func:`render_view`), the Kambin
    (red) and safe (cyan) outlines at that view and the side's needle (orange) are drawn on
    it, and a legend panel (side, window, local angles, C-arm terms, areas, needle) goes below.

    Parameters
    ----------
    prepared : PreparedLabels, optional
        ``prepare_render(engine.anatomy.parts, options=options.screenshot)``, made once for
        several screenshots of the same engine; ``None``: prepared here.

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
    sp, wp, up, windows = _best_view_scene(plan, engine, side, kind, opts)
    view = render_view(anatomy.parts, anatomy.parts_table, wp.best_view.view_direction_lps,
                       centre_lps=anatomy.sides[side].foramen_centre_lps, up_lps=up,
                       options=opts.screenshot, prepared=prepared, progress=progress)
    needle = (None if sp.trajectory is None
              else (sp.trajectory.entry_lps_mm, sp.trajectory.target_lps_mm))
    return draw_overlays(view, Overlay(outlines=_outlines(windows), needle_lps=needle,
                                       legend=_legend(side, kind, wp, sp), key=_KEY,
                                       scale=opts.screenshot_scale))


def _write_screenshots(plan: "Plan", engine: "PlanEngine", out: Path, *, options: ExportOptions,
                       overwrite: bool, progress: ProgressCallback | None,
                       dicom: "_DicomWriter | None" = None
                       ) -> tuple[list[Path], dict[str, list[tuple[str, str]]]]:
    from PIL import Image

    from spinect_core.io.atomic import atomic_path

    jobs = _found_windows(plan)
    files: list[Path] = []
    images: dict[str, list[tuple[str, str]]] = {}
    # Every screenshot shows the same parts map: crop it, smooth it and map its empty space once.
    prepared = (prepare_render(engine.anatomy.parts, options=options.screenshot) if jobs
                else None)
    for i, (side, kind) in enumerate(jobs):
        part = sub_progress(progress, i / len(jobs), (i + 1) / len(jobs), f"{side} {kind}: ")
        rgb = render_screenshot(plan, engine, side, kind, options=options, prepared=prepared,
                                progress=sub_progress(part, 0.0, 0.9))
        target = out / f"screenshot_{side}_{kind}.png"
        with atomic_path(target, overwrite=overwrite) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
        files.append(target)
        if dicom is not None:
            dicom.write_screenshot(rgb, side, kind)
        best = plan.sides[side].window(kind).best_view
        images.setdefault(side, []).append(
            (target.name, f"{side.capitalize()} {kind} window from its best view "
                          f"({carm_text(best.carm)})"))
        report(part, 1.0, "written")
    return files, images


def render_plan_drr(plan: "Plan", engine: "PlanEngine", ct: Volume, side: str, kind: str, *,
                    options: ExportOptions | None = None,
                    progress: ProgressCallback | None = None) -> tuple[np.ndarray, Any]:
    """Simulated fluoroscopy of ``side`` at the best view of its ``kind`` window.

    Seen along the best view's direction (as the screenshot looks; the X-rays travel from the
    tube under the table, ``ExportOptions.drr_options.tube``), the central ray through the
    side's foramen centre (the isocentre); image up is the S1 endplate frame's cranial axis, as
    in the screenshot. The Kambin (red) and safe (cyan) outlines at that view,
    the needle (orange) and a ring at its target are projected onto it.

    Returns
    -------
    rgb : np.ndarray, shape (H, W, 3), uint8
    result : DRRResult
        The line integrals and the detector geometry (LPS).

    Raises
    ------
    ValueError
        The window was not found (it has no best view).
    """
    import dataclasses

    from spinect_core.reslice.drr import compute_drr, render_plan_drr

    opts = options or ExportOptions()
    sp, wp, up, windows = _best_view_scene(plan, engine, side, kind, opts)
    drr_opts = dataclasses.replace(opts.drr_options, up_lps=tuple(float(v) for v in up))
    result = compute_drr(ct, wp.best_view.view_direction_lps,
                         engine.anatomy.sides[side].foramen_centre_lps, options=drr_opts,
                         progress=sub_progress(progress, 0.0, 0.9))
    # The app's simulated fluoroscopy draws with the same function, in the same colours.
    needles = ([] if sp.trajectory is None
               else [(sp.trajectory.entry_lps_mm, sp.trajectory.target_lps_mm)])
    rgb = render_plan_drr(result, outlines=_window_polygons(windows), needles=needles,
                          scale=opts.screenshot_scale)
    report(progress, 1.0, "DRR drawn")
    return rgb, result


def _write_drrs(plan: "Plan", engine: "PlanEngine", out: Path, *, ct: Volume,
                options: ExportOptions, overwrite: bool, progress: ProgressCallback | None,
                dicom: "_DicomWriter | None" = None
                ) -> tuple[list[Path], dict[str, list[tuple[str, str]]]]:
    from spinect_core.reslice.drr import write_drr_png

    jobs = _found_windows(plan)
    files: list[Path] = []
    images: dict[str, list[tuple[str, str]]] = {}
    for i, (side, kind) in enumerate(jobs):
        part = sub_progress(progress, i / len(jobs), (i + 1) / len(jobs), f"{side} {kind}: ")
        rgb, result = render_plan_drr(plan, engine, ct, side, kind, options=options,
                                      progress=part)
        target = write_drr_png(rgb, out / f"drr_{side}_{kind}.png", overwrite=overwrite)
        best = plan.sides[side].window(kind).best_view
        if dicom is not None:
            dicom.write_drr(rgb, result.geometry, side, kind, best.carm)
        o = options.drr_options
        sidecar = {"coordinate_system": "LPS", "image": target.name, "side": side, "window": kind,
                   "carm": best.carm, "carm_words": carm_text(best.carm, degree_sign=False),
                   "display": ("seen along view_direction_lps (looking down at the prone "
                               "patient's back), image up = -row_axis_lps; the X-rays travel "
                               "along direction_lps (tube "
                               f"{result.geometry.tube} the table)"),
                   "geometry": result.geometry.to_dict(),
                   "step_mm": o.step_mm, "mu_water_per_mm": o.mu_water_per_mm,
                   "pixel_value": "grey = windowed line integral of mu (dense dark)"}
        files += [target, write_text_atomic(out / f"drr_{side}_{kind}.json",
                                            json.dumps(_finite(sidecar), indent=2) + "\n",
                                            overwrite=overwrite)]
        images.setdefault(side, []).append(
            (target.name, f"{side.capitalize()} {kind} window: simulated fluoroscopy at its best "
                          f"view ({carm_text(best.carm)}; tube {o.tube} the table, SDD "
                          f"{o.sdd_mm:.0f} mm, SID {o.sid_mm:.0f} mm; seen from the back, head "
                          "up; outlines Kambin red, safe cyan, needle orange)"))
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
                    (wp.best_view.oblique_deg, wp.best_view.tilt_deg, wp.best_view.area_mm2))
            plateau = (None if wp.plateau_view is None else
                       (wp.plateau_view.oblique_deg, wp.plateau_view.tilt_deg,
                        wp.plateau_view.area_mm2))
            name = WINDOW_NAMES[kind]
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
    from spinect_core.surfaces import meshes_from_labels

    surfaces = meshes_from_labels(labels, table, progress=sub_progress(progress, 0.0, 0.9))
    files = export_meshes(surfaces, out / "meshes", coordinate_system="LPS", overwrite=overwrite)
    if ras:
        files += export_meshes(surfaces, out / "meshes", coordinate_system="RAS",
                               overwrite=overwrite)
    report(progress, 1.0, "meshes written")
    return files
