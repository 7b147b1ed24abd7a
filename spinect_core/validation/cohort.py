"""A validation cohort: cases with manual labels, each segmented and planned twice.

Layout of a cohort folder (``spinect validate COHORT``), one sub-folder per case, the folder's
name being the case's name in every table, plot and file written::

    COHORT/case01/ct.nii.gz          the CT (or image.*, ct_*.*; NIfTI, NRRD or MHA)
    COHORT/case01/labels.nii.gz      the manual labels (+ labels.labels.json, the label table),
                                     or a 3D Slicer segmentation *.seg.nrrd read by segment name
    COHORT/case02/dicom/...          a DICOM series instead of the CT file (folder "dicom", or
    COHORT/case02/Segmentation.seg.nrrd   DICOM files in the case folder itself)

This is what ``spinect phantom OUT/caseNN`` writes (its ``instances.nii.gz`` and the other files
are not used: the manual labels stand alone, as a site's would), and the training layouts of
:func:`spinect_core.training.cases.discover_cases` (``imagesTr``/``labelsTr``, flat
``<id>_ct.*`` + ``<id>_labels.*``) are accepted too. **Case names are the folder (or file stem)
names as given**: they appear in the output tables and HTML page, so name the folders with
non-identifying codes (not the patient's name or ID).

Per case (:func:`run_case`): load the CT and the manual labels (resampled onto the CT's grid by
nearest neighbour when Slicer cropped them), segment the CT (the bundled weights unless told
otherwise), compare the automatic labels with the manual ones per class (Dice, IoU, pixel
accuracy, HD95, surface Dice: :func:`spinect_core.metrics.compare_label_maps`), plan both label
maps with :class:`~spinect_core.planning.plan.PlanEngine` and measure, per side and window, the
area on **both** label maps at the **same** view: the manual plan's best view (the reference; the
automatic plan's best view when the manual plan found no such window), plus each plan's own best
view and the angle between the two best views. The result is one JSON-ready record, cached by
:func:`run_cohort` in ``OUT/cases/<case>.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from spinect_core import __version__
from spinect_core.errors import InputError, SpinectError
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.validation.statistics import angle_between_deg, finite_or_none
from spinect_core.volume import Volume
from spinect_core.vocabulary import WINDOW_KINDS

__all__ = ["CohortCase", "CohortRun", "ValidationOptions", "SegmentFunction", "discover_cohort",
           "load_manual_labels", "run_case", "run_cohort", "network_segment_function",
           "CASE_FORMAT", "CASES_DIR"]

#: ``format`` of a per-case record.
CASE_FORMAT = "spinect-validation-case"
#: Sub-folder of the output folder holding the per-case records (the resume cache).
CASES_DIR = "cases"
#: Window kinds and sides, in table order.
KINDS = WINDOW_KINDS

#: A segmentation function: ``(ct, progress) -> (labels on ct's grid, table, info)``; ``info`` is
#: JSON-ready (source name, bone source, notes).
SegmentFunction = Callable[[Volume, "ProgressCallback | None"],
                           "tuple[Volume, LabelTable, dict[str, Any]]"]


@dataclass(frozen=True, kw_only=True)
class CohortCase:
    """One case of a cohort.

    Attributes
    ----------
    case_id : str
        The folder's (or file stem's) name, as given.
    ct : Path
        CT image file or DICOM folder.
    labels : Path
        Manual label map (with its ``.labels.json`` sidecar) or 3D Slicer ``.seg.nrrd``.
    """

    case_id: str
    ct: Path
    labels: Path


@dataclass(frozen=True, kw_only=True)
class ValidationOptions:
    """Options of a validation run.

    Attributes
    ----------
    plan : PlanOptions, optional
        Options of both plans (default :class:`~spinect_core.planning.plan.PlanOptions()`).
    planning : bool
        Plan both label maps and compare the windows (False: segmentation metrics only).
    classes : tuple of str, optional
        Classes of Table 2 (default: every class of the manual and automatic tables in common).
    alpha : float
        Level of the Shapiro-Wilk test that chooses the paired test.
    """

    plan: Any = None
    planning: bool = True
    classes: tuple[str, ...] | None = None
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")

    def plan_options(self) -> Any:
        from spinect_core.planning.plan import PlanOptions

        return self.plan if self.plan is not None else PlanOptions()

    def fingerprint(self) -> dict[str, Any]:
        """What a cached case result depends on, JSON-ready (compared on resume)."""
        return {"planning": self.planning,
                "plan": _jsonable(dataclasses.asdict(self.plan_options())) if self.planning
                else None,
                "classes": None if self.classes is None else list(self.classes)}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- discovery ------------------------------------------------------------------------------------
def _is_dicom_folder(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    for p in folder.iterdir():
        if p.is_file() and not p.name.startswith("."):
            if p.suffix.lower() in (".dcm", ".ima") or p.suffix == "":
                return True
    return any(_is_dicom_folder(q) for q in folder.iterdir()
               if q.is_dir() and not q.name.startswith("."))


def _dicom_case(folder: Path) -> CohortCase | None:
    """A case folder holding a DICOM series (``dicom/`` or the folder's own files) and one
    label file."""
    from spinect_core.training.cases import _LABEL_STEMS, _images_in

    images = _images_in(folder)
    labels = [p for p, stem in images if p.name.lower().endswith(".seg.nrrd") or any(
        stem.lower() == s or stem.lower().startswith(s + "_") for s in _LABEL_STEMS)]
    if len(labels) != 1:
        return None
    dicom = folder / "dicom"
    if _is_dicom_folder(dicom):
        return CohortCase(case_id=folder.name, ct=dicom, labels=labels[0])
    if any(p.is_file() and p.suffix.lower() in (".dcm", ".ima") for p in folder.iterdir()):
        return CohortCase(case_id=folder.name, ct=folder, labels=labels[0])
    return None


def discover_cohort(root: str | os.PathLike) -> list[CohortCase]:
    """The cases of a cohort folder (layouts in the module docstring), sorted by name.

    Raises
    ------
    InputError
        The folder does not exist or holds no recognisable case.
    """
    from spinect_core.training.cases import discover_cases

    folder = Path(root)
    if not folder.is_dir():
        raise InputError(f"cohort folder {folder} does not exist")
    cases: dict[str, CohortCase] = {}
    try:
        for f in discover_cases(folder):
            cases[f.case_id] = CohortCase(case_id=f.case_id, ct=f.image, labels=f.labels)
    except InputError:
        pass  # perhaps DICOM cases only
    for sub in sorted(q for q in folder.iterdir() if q.is_dir() and not q.name.startswith(".")):
        if sub.name not in cases:
            case = _dicom_case(sub)
            if case is not None:
                cases[case.case_id] = case
    if not cases:
        raise InputError(
            f"no cases found in {folder}: expected one folder per case with ct.nii.gz (or a "
            "dicom/ series) and labels.nii.gz (or a 3D Slicer .seg.nrrd), as 'spinect phantom' "
            "writes")
    return [cases[k] for k in sorted(cases)]


def load_manual_labels(case: CohortCase, ct: Volume) -> tuple[Volume, LabelTable]:
    """The case's manual labels on the CT's grid (nearest neighbour when they are on another
    grid, e.g. a Slicer segmentation cropped to its segments) and their table."""
    from spinect_core.io.labelmap import labels_on_ct_grid, load_label_map

    labels, table = load_label_map(case.labels, default_table=DEFAULT_LABELS)
    labels, _ = labels_on_ct_grid(labels, ct, atol=1e-3, check_overlap=False)
    dtype = np.uint8 if max(table.ids) < 256 else np.uint16
    return dataclasses.replace(ct.with_array(np.asarray(labels.array).astype(dtype)),
                               warnings=[]), table


def network_segment_function(weights: str | os.PathLike | None = None, *,
                             bone: str | None = None) -> tuple[SegmentFunction, dict[str, Any]]:
    """A :data:`SegmentFunction` over :class:`~spinect_core.segment.Segmenter` (weights loaded
    once) and its fingerprint (weights name, version, checksum, bone source)."""
    from spinect_core.segment import DEFAULT_BONE_MODE, SegmentOptions, Segmenter

    segmenter = Segmenter.from_weights(weights,
                                       options=SegmentOptions(bone=bone or DEFAULT_BONE_MODE))
    card = segmenter.card
    source = f"{card.name} {card.version}"

    def segment(ct: Volume, progress: ProgressCallback | None
                ) -> tuple[Volume, LabelTable, dict[str, Any]]:
        result = segmenter.segment(ct, progress=progress)
        return result.labels, result.table, {"source": source, "bone_source": result.bone_source,
                                             "notes": list(result.notes)}

    return segment, {"weights": source, "weights_sha256": card.tensors_sha256,
                     "bone": segmenter.options.bone}


# --- one case -------------------------------------------------------------------------------------
def _view_record(view: Any) -> dict[str, Any] | None:
    if view is None:
        return None
    return {"oblique_deg": round(view.oblique_deg, 3), "tilt_deg": round(view.tilt_deg, 3),
            "area_mm2": finite_or_none(float(view.area_mm2)),
            "view_direction_lps": [float(v) for v in view.view_direction_lps]}


def _plan(ct: Volume, labels: Volume, table: LabelTable, options: Any, source: str,
          progress: ProgressCallback | None) -> tuple[Any, Any, str]:
    """(engine, plan, error): the plan of one label map; a failure (anatomy not found) is the
    error's text, not an exception, so the other label map's plan and the metrics still count."""
    from spinect_core.planning.plan import PlanEngine

    try:
        engine = PlanEngine(ct, labels, table, options=options, segmentation_source=source,
                            progress=sub_progress(progress, 0.0, 0.1))
        plan = engine.plan(progress=sub_progress(progress, 0.1, 1.0))
    except SpinectError as exc:
        return None, None, " ".join(str(exc).split())
    return engine, plan, ""


def _area_at(engine: Any, side: str, kind: str, view_direction: Sequence[float],
             pixel_mm: float) -> float:
    """Area (mm^2) of ``kind`` on ``side`` seen along ``view_direction`` (NaN without a plan)."""
    if engine is None or side not in engine.scenes:
        return float("nan")
    windows = engine.scenes[side].windows(np.asarray(view_direction, float), pixel_mm=pixel_mm)
    return float(windows.area(kind))


def compare_windows(manual: tuple[Any, Any], automatic: tuple[Any, Any], *,
                    pixel_mm: float) -> dict[str, dict[str, dict[str, Any]]]:
    """Per side and window: areas on both label maps at the same view, both best views, and the
    angle between them.

    Parameters
    ----------
    manual, automatic : (PlanEngine or None, Plan or None)
        The two plans (``None`` where planning failed).
    pixel_mm : float
        Ray spacing of the same-view measurements (the plans' ``report_pixel_mm``).

    Returns
    -------
    dict
        ``{side: {kind: record}}``; ``record`` holds ``reference_view`` (``"manual best"``,
        ``"automatic best"`` or ``None``), ``view`` (C-arm angles and LPS direction),
        ``manual_area_mm2`` and ``automatic_area_mm2`` at that view (``None`` when not
        measurable), ``manual_best`` / ``automatic_best`` (each plan's own best view and area)
        and ``best_view_angle_deg``.
    """
    (m_engine, m_plan), (a_engine, a_plan) = manual, automatic
    sides = list(dict.fromkeys((list(m_plan.sides) if m_plan else [])
                               + (list(a_plan.sides) if a_plan else [])))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for side in sides:
        out[side] = {}
        for kind in KINDS:
            m_win = m_plan.sides[side].window(kind) if m_plan and side in m_plan.sides else None
            a_win = a_plan.sides[side].window(kind) if a_plan and side in a_plan.sides else None
            m_best = m_win.best_view if m_win is not None and m_win.found else None
            a_best = a_win.best_view if a_win is not None and a_win.found else None
            if m_best is not None:
                reference, view = "manual best", m_best
            elif a_best is not None:
                reference, view = "automatic best", a_best
            else:
                reference, view = None, None
            if view is None:
                # No window in any view searched on either label map: both areas are zero where
                # both plans ran (nothing to compare at a view), unknown where one failed.
                m_area = 0.0 if m_plan is not None else float("nan")
                a_area = 0.0 if a_plan is not None else float("nan")
            else:
                d = view.view_direction_lps
                m_area = (float(m_best.area_mm2) if reference == "manual best"
                          else _area_at(m_engine, side, kind, d, pixel_mm))
                a_area = (float(a_best.area_mm2) if a_best is not None
                          and reference == "automatic best"
                          else _area_at(a_engine, side, kind, d, pixel_mm))
            out[side][kind] = {
                "reference_view": reference, "view": _view_record(view),
                "manual_area_mm2": finite_or_none(m_area),
                "automatic_area_mm2": finite_or_none(a_area),
                "manual_found": None if m_plan is None else m_best is not None,
                "automatic_found": None if a_plan is None else a_best is not None,
                "manual_best": _view_record(m_best), "automatic_best": _view_record(a_best),
                "best_view_angle_deg": finite_or_none(angle_between_deg(
                    None if m_best is None else m_best.view_direction_lps,
                    None if a_best is None else a_best.view_direction_lps)),
            }
    return out


def run_case(case: CohortCase, segment: SegmentFunction, *,
             options: ValidationOptions | None = None,
             progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Segment, compare and plan one case; the JSON-ready record (see the module docstring).

    Parameters
    ----------
    case : CohortCase
    segment : SegmentFunction
        E.g. :func:`network_segment_function`'s.
    options : ValidationOptions, optional
    progress : callable, optional

    Returns
    -------
    dict
        ``format``, ``case_id``, ``status`` (``"done"``), ``ct`` (size and spacing),
        ``segmentation`` (source, notes), ``metrics`` (per class), ``metric_notes``, ``plans``
        (per label map: ``ok``, ``error``, ``warnings``), ``windows``
        (:func:`compare_windows`) and ``timings_s``. Paths are not recorded (folders are often
        named after the patient); the case name is.

    Raises
    ------
    InputError
        The CT or the manual labels cannot be read.
    """
    from spinect_core.io import load_ct
    from spinect_core.metrics import compare_label_maps

    options = options or ValidationOptions()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    report(progress, 0.0, f"{case.case_id}: loading")
    ct = load_ct(case.ct)
    manual, manual_table = load_manual_labels(case, ct)
    t1 = time.perf_counter()
    timings["load"] = t1 - t0
    f_seg, f_metrics = (0.45, 0.55) if options.planning else (0.8, 1.0)
    auto, auto_table, seg_info = segment(ct, sub_progress(progress, 0.02, f_seg,
                                                          f"{case.case_id}: segmenting: "))
    t2 = time.perf_counter()
    timings["segment"] = t2 - t1
    report(progress, f_seg, f"{case.case_id}: comparing the labels")
    metrics = compare_label_maps(auto, auto_table, manual, manual_table,
                                 classes=options.classes)
    t3 = time.perf_counter()
    timings["metrics"] = t3 - t2
    record: dict[str, Any] = {
        "format": CASE_FORMAT, "version": 1, "case_id": case.case_id, "status": "done",
        "software": {"name": "spinect", "version": __version__},
        "coordinate_system": "LPS",
        "ct": {"size_xyz": [int(v) for v in ct.array.shape[::-1]],
               "spacing_mm": [float(v) for v in ct.spacing_mm],
               "source_format": ct.metadata.source_format},
        "manual_labels": {"format": _label_format(case.labels),
                          "classes": list(manual_table.names.values())},
        "segmentation": _jsonable(seg_info),
        "metrics": {name: m.to_dict() for name, m in metrics.items()},
        "metric_notes": list(metrics.notes),
    }
    if options.planning:
        plan_options = options.plan_options()
        mid = f_metrics + (1.0 - f_metrics) / 2
        m_engine, m_plan, m_error = _plan(ct, manual, manual_table, plan_options,
                                          "manual labels", sub_progress(
                                              progress, f_metrics, mid,
                                              f"{case.case_id}: planning on the manual labels: "))
        a_engine, a_plan, a_error = _plan(ct, auto, auto_table, plan_options,
                                          str(seg_info.get("source", "automatic labels")),
                                          sub_progress(progress, mid, 0.98,
                                                       f"{case.case_id}: planning on the "
                                                       "automatic labels: "))
        t4 = time.perf_counter()
        timings["plans"] = t4 - t3
        record["plans"] = {
            "manual": {"ok": m_plan is not None, "error": m_error,
                       "warnings": [] if m_plan is None else list(m_plan.warnings)},
            "automatic": {"ok": a_plan is not None, "error": a_error,
                          "warnings": [] if a_plan is None else list(a_plan.warnings)}}
        record["windows"] = compare_windows((m_engine, m_plan), (a_engine, a_plan),
                                            pixel_mm=plan_options.report_pixel_mm)
        timings["same_view"] = time.perf_counter() - t4
    timings["total"] = time.perf_counter() - t0
    record["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    report(progress, 1.0, f"{case.case_id}: done")
    return record


def _label_format(path: Path) -> str:
    from spinect_core.io.labelmap import IMAGE_SUFFIXES

    name = path.name.lower()
    return next((s.lstrip(".") for s in IMAGE_SUFFIXES if name.endswith(s)), "image")


# --- the cohort -----------------------------------------------------------------------------------
@dataclass(kw_only=True)
class CohortRun:
    """What :func:`run_cohort` did.

    Attributes
    ----------
    records : list of dict
        One record per case (done or failed), in case order.
    computed, reused : list of str
        Case names computed now, and read back from the cache.
    failed : list of str
        Cases whose CT or labels could not be read (their record says why).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def case_record_path(out_dir: str | os.PathLike, case_id: str) -> Path:
    """Where the cached record of ``case_id`` lives in the output folder."""
    return Path(out_dir) / CASES_DIR / f"{case_id}.json"


def _read_cached(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The cached record at ``path`` when it is a finished case of the same settings; ``None``
    when there is none (or it failed: failures are retried). A record of other settings is an
    error: mixing them would make the tables meaningless."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # unreadable (e.g. an older crash): recompute
    if not isinstance(record, dict) or record.get("format") != CASE_FORMAT:
        return None
    if record.get("fingerprint") != fingerprint:
        changed = ", ".join(_differences(record.get("fingerprint"), fingerprint)[:6])
        raise InputError(
            f"the output folder holds results of case {record.get('case_id')} made with other "
            f"settings (differing: {changed or 'unknown'}; weights, bone source, plan options, "
            "or options a newer spinect added); choose another output folder, or pass --force "
            "to recompute every case")
    return record if record.get("status") == "done" else None


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Dotted names of the settings that differ between two fingerprints."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(dict.fromkeys([*old, *new])):
            out += _differences(old.get(key), new.get(key), f"{where}.{key}" if where else key)
        return out
    return [] if old == new else [where or "settings"]


def run_cohort(cases: Sequence[CohortCase], out_dir: str | os.PathLike,
               segment: SegmentFunction, *, options: ValidationOptions | None = None,
               segment_fingerprint: dict[str, Any] | None = None, force: bool = False,
               progress: ProgressCallback | None = None) -> CohortRun:
    """Run every case not done yet, caching each record in ``out_dir/cases/<case>.json``.

    Resumable: a case whose record exists with the same settings (``options.fingerprint()`` and
    ``segment_fingerprint``) is read back, not recomputed; a case that failed before is tried
    again. Each record is written atomically as soon as its case is done, so an interrupted run
    loses at most the case in progress.

    Parameters
    ----------
    cases : sequence of CohortCase
    out_dir : path-like
    segment : SegmentFunction
    options : ValidationOptions, optional
    segment_fingerprint : dict, optional
        What the segmentation depends on (weights, bone source), compared on resume.
    force : bool
        Recompute every case, replacing the cached records.
    progress : callable, optional

    Returns
    -------
    CohortRun
    """
    from spinect_core.io.atomic import write_text_atomic

    options = options or ValidationOptions()
    names = [c.case_id for c in cases]
    if len(set(names)) != len(names):
        raise InputError("two cases share a name; case names must be unique")
    fingerprint = {**options.fingerprint(), "segmentation": _jsonable(segment_fingerprint or {})}
    run = CohortRun()
    n = max(len(cases), 1)
    for i, case in enumerate(cases):
        path = case_record_path(out_dir, case.case_id)
        cached = None if force else _read_cached(path, fingerprint)
        if cached is not None:
            run.records.append(cached)
            run.reused.append(case.case_id)
            report(progress, (i + 1) / n, f"{case.case_id}: done before, reused")
            continue
        part = sub_progress(progress, i / n, (i + 1) / n)
        try:
            record = run_case(case, segment, options=options, progress=part)
        except InputError as exc:
            # An unreadable case must not stop a night's run; it is reported and retried next
            # time (the user may fix the file).
            record = {"format": CASE_FORMAT, "version": 1, "case_id": case.case_id,
                      "status": "failed", "error": " ".join(str(exc).split())}
            run.failed.append(case.case_id)
        record["fingerprint"] = fingerprint
        write_text_atomic(path, json.dumps(record, indent=1, allow_nan=False) + "\n",
                          overwrite=True)
        run.records.append(record)
        run.computed.append(case.case_id)
    report(progress, 1.0, f"{len(cases)} cases")
    return run
