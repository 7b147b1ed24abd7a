"""The planning session file: the operator's corrections of a plan, saved beside its exports.

``planning_session.json`` holds what the operator changed (the edited roots as control points
with a radius each, LPS mm; needle targets when the caller has them; the label map touched up
with the brush and eraser) and the CT grid it was made on, so that reopening the case reproduces
the corrected plan: build the engine on the same CT with the same options, then
:func:`apply_session` (one undoable step of a
:class:`~spinect_core.planning.root_edit.RootEditor`), and for the label edits
:func:`load_label_edits` (the edited map, to plan on or to put into a
:class:`~spinect_core.planning.label_edit.LabelEditor`). Nothing in it identifies the patient:
no names, identifiers or dates of the study, only geometry.

The edited label map is a file beside the session file, :data:`LABEL_EDITS_FILE_NAME`
(``labels_edited.nii.gz``, class ids on the CT's grid, its label table in the
``labels_edited.labels.json`` sidecar, LPS), written by :func:`save_label_edits`; the session
file names it (a bare file name: the pair moves together) with its SHA-256, and says what
changed per class.

Document (schema :data:`SESSION_SCHEMA_VERSION`; 1.0 files, without ``label_edits``, are read
as having none)::

    {"format": "spinect-planning-session", "schema_version": "1.1",
     "coordinate_system": "LPS", "units": {"length": "mm"}, "created": "...",
     "software": {...}, "ct": <Volume.geometry_dict()>,
     "plan_options": {"roots": "fused" | "ct" | "network" | null, "variant": ..., "sides": [...]},
     "roots": [{"side": "left", "name": "exiting_l5", "source": "operator",
                "original_source": "ct", "control_points_lps_mm": [[x, y, z], ...],
                "radius_mm": [...]}, ...],
     "needle_targets": {"left": {"target_lps_mm": [x, y, z], "entry_lps_mm": [x, y, z]}} | {},
     "label_edits": null | {"file": "labels_edited.nii.gz", "sha256": "...",
                            "coordinate_system": "LPS", "labels": [{"id": 0, "name": ...}],
                            "summary": <LabelEditSummary.to_dict()>},
     "notes": ["exiting L5 root on the left: corrected by the operator",
               "bone edited by the operator: 120 voxels (0.12 ml; ...) around LPS (...) mm"]}

The file is written atomically and never replaces an existing one unless asked.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from spinect_core import __version__
from spinect_core.anatomy.root_tracing import ROOT_NAMES
from spinect_core.errors import InputError
from spinect_core.io.atomic import write_text_atomic
from spinect_core.labels import LabelTable
from spinect_core.planning.label_edit import LabelEditSummary, summary_from_dict
from spinect_core.planning.root_edit import RootEditor, RootEditOptions, RootEditState
from spinect_core.progress import ProgressCallback
from spinect_core.vocabulary import SIDES

if TYPE_CHECKING:
    from spinect_core.planning.label_edit import LabelEditor
    from spinect_core.volume import Volume

SESSION_FORMAT = "spinect-planning-session"
#: 1.1 added ``label_edits`` (1.0 files are read as having none).
SESSION_SCHEMA_VERSION = "1.1"
#: The session file's name beside the exports.
SESSION_FILE_NAME = "planning_session.json"
#: The edited label map's name beside the session file.
LABEL_EDITS_FILE_NAME = "labels_edited.nii.gz"
#: Largest difference (mm) between the saved and the current CT grid's origin and spacing.
_GRID_TOLERANCE_MM = 1e-3


@dataclass(frozen=True, kw_only=True)
class SessionRoot:
    """One edited root as saved (LPS mm)."""

    side: str
    name: str
    control_points_lps_mm: tuple[tuple[float, float, float], ...]
    radius_mm: tuple[float, ...]
    original_source: str = ""


@dataclass(frozen=True, kw_only=True)
class LabelEditsRecord:
    """The session's label edits: where the edited map is and what changed.

    Attributes
    ----------
    file : str
        The edited label map's file name, beside the session file.
    sha256 : str
        Of that file ("" when not known): a replaced file is refused on reopening.
    table : LabelTable
        The names of its ids.
    summary : LabelEditSummary
        Voxels (and ml) added and removed per class, and where (LPS mm).
    """

    file: str = LABEL_EDITS_FILE_NAME
    sha256: str = ""
    table: LabelTable
    summary: LabelEditSummary

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "coordinate_system": "LPS",
                **self.table.to_json(), "summary": self.summary.to_dict()}


@dataclass(frozen=True, kw_only=True)
class PlanningSession:
    """A planning session file, read.

    Attributes
    ----------
    roots : tuple of SessionRoot
        The roots the operator edited.
    needle_targets : dict
        ``side -> {"target_lps_mm": (3,), "entry_lps_mm": (3,)}`` (either may be missing).
    ct : dict
        The CT grid (:meth:`Volume.geometry_dict`) the session was made on.
    plan_options : dict
        ``roots``, ``variant``, ``sides`` of the plan it corrected.
    notes : tuple of str
    label_edits : LabelEditsRecord or None
        The label map touched up with the brush and eraser (None: not edited, or a 1.0 file).
    """

    roots: tuple[SessionRoot, ...]
    needle_targets: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    ct: dict[str, Any] = field(default_factory=dict)
    plan_options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    label_edits: LabelEditsRecord | None = None


def session_document(editor: RootEditor | None, *,
                     needle_targets: dict[str, dict[str, Sequence[float]]] | None = None,
                     label_edits: LabelEditsRecord | None = None,
                     ct: Volume | None = None,
                     plan_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The session file's JSON document for the editor's current state.

    ``editor`` is None for a session of label edits only; ``ct`` (the CT's grid) is then
    needed, and ``plan_options`` are recorded when given (else null).
    """
    roots = []
    notes: list[str] = []
    if editor is not None:
        for r in editor.state.edited:
            pts, rad = r.controls()
            roots.append({"side": r.side, "name": r.name, "source": "operator",
                          "original_source": r.original.source,
                          "control_points_lps_mm": [[round(float(v), 4) for v in p]
                                                    for p in pts],
                          "radius_mm": [round(float(v), 4) for v in rad]})
        notes = list(editor.state.notes())
        o = editor.engine.options
        plan_options = {"roots": o.roots, "variant": o.variant, "sides": list(o.sides)}
        grid = editor.engine.ct.geometry_dict()
    elif ct is None:
        raise InputError("a planning session without root edits needs the CT it was made on")
    else:
        grid = ct.geometry_dict()
    if label_edits is not None:
        notes += label_edits.summary.lines()
    return {
        "format": SESSION_FORMAT, "schema_version": SESSION_SCHEMA_VERSION,
        "coordinate_system": "LPS", "units": {"length": "mm"},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": {"name": "spinect", "version": __version__},
        "ct": grid,
        "plan_options": dict(plan_options) if plan_options is not None else None,
        "roots": roots,
        "needle_targets": _targets(needle_targets or {}),
        "label_edits": None if label_edits is None else label_edits.to_dict(),
        "notes": notes,
    }


def save_session(path: str | Path, editor: RootEditor | None, *,
                 needle_targets: dict[str, dict[str, Sequence[float]]] | None = None,
                 overwrite: bool = False, label_edits: LabelEditsRecord | None = None,
                 ct: Volume | None = None, plan_options: dict[str, Any] | None = None) -> Path:
    """Write the session file (atomic; an existing file is refused unless ``overwrite``).

    Parameters
    ----------
    path : path
        Usually ``<export folder>/planning_session.json`` (:data:`SESSION_FILE_NAME`).
    editor : RootEditor or None
        The root corrections (None: none; then ``ct`` is needed).
    needle_targets : dict, optional
        ``side -> {"target_lps_mm": (3,), "entry_lps_mm": (3,)}``, LPS mm.
    overwrite : bool
    label_edits : LabelEditsRecord, optional
        From :func:`save_label_edits` (the edited map written beside ``path`` first).
    ct : Volume, optional
        The CT's grid, when there is no ``editor``.
    plan_options : dict, optional
        ``roots``, ``variant``, ``sides``, when there is no ``editor``.
    """
    doc = session_document(editor, needle_targets=needle_targets, label_edits=label_edits,
                           ct=ct, plan_options=plan_options)
    return write_text_atomic(path, json.dumps(doc, indent=1) + "\n", overwrite=overwrite)


def save_label_edits(folder: str | Path, editor: LabelEditor, *,
                     overwrite: bool = False) -> LabelEditsRecord:
    """Write the editor's label map as :data:`LABEL_EDITS_FILE_NAME` (and its label-table
    sidecar) into ``folder``, atomically; returns the record for the session file.

    Raises
    ------
    InputError
        Nothing was edited.
    FileExistsRefusedError
        The file exists and ``overwrite`` is False.
    """
    from spinect_core.io.labelmap import save_label_map

    summary = editor.summary()
    if not summary:
        raise InputError("the label map was not edited: there are no label edits to save")
    path = save_label_map(editor.to_volume(), editor.table, Path(folder) / LABEL_EDITS_FILE_NAME,
                          overwrite=overwrite)
    return LabelEditsRecord(file=path.name, sha256=_sha256(path), table=editor.table,
                            summary=summary)


def add_label_edits(path: str | Path, label_edits: LabelEditsRecord) -> Path:
    """Put ``label_edits`` into the session file at ``path`` (written just before, e.g. with the
    root corrections): its notes gain the edits' lines; rewritten atomically. The file must be a
    session file (checked), as it is replaced."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p} is not a readable planning session file: {exc}") from None
    parse_session(doc, where=str(p))
    old = summary_from_dict(doc["label_edits"]["summary"]).lines() if doc.get(
        "label_edits") else []
    doc["schema_version"] = SESSION_SCHEMA_VERSION
    doc["label_edits"] = label_edits.to_dict()
    doc["notes"] = [n for n in doc.get("notes") or [] if n not in old] + \
        label_edits.summary.lines()
    return write_text_atomic(p, json.dumps(doc, indent=1) + "\n", overwrite=True)


def load_label_edits(session: PlanningSession, folder: str | Path) -> tuple[Volume, LabelTable]:
    """The edited label map of ``session`` (read from ``folder``, the session file's) and its
    table, checked: the file the session names, unchanged (SHA-256), on the session's CT grid.

    Raises
    ------
    InputError
        The session has no label edits, or the file is missing, changed or on another grid.
    """
    from spinect_core.io.labelmap import load_label_map

    record = session.label_edits
    if record is None:
        raise InputError("the planning session has no label edits")
    path = Path(folder) / record.file
    if not path.is_file():
        raise InputError(f"the edited label map {record.file} is not beside the planning "
                         f"session in {folder}")
    if record.sha256 and _sha256(path) != record.sha256:
        raise InputError(f"{record.file} was changed after the planning session was saved; "
                         "it is not the operator's edited label map")
    volume, _ = load_label_map(path, default_table=record.table)
    if session.ct and not _same_grid(session.ct, volume.geometry_dict()):
        raise InputError(f"{record.file} is not on the CT grid of the planning session")
    return volume, record.table


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_session(path: str | Path) -> PlanningSession:
    """Read and check a session file; raises InputError with what is wrong."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no planning session file at {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p} is not a readable planning session file: {exc}") from None
    return parse_session(doc, where=str(p))


def parse_session(doc: Any, *, where: str = "the session") -> PlanningSession:
    """A :class:`PlanningSession` from its JSON document (see the module docstring)."""
    if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT:
        raise InputError(f"{where} is not a SPINECT planning session file")
    version = str(doc.get("schema_version", ""))
    if version.split(".")[0] != SESSION_SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"{where} has session schema {version!r}; this version reads "
                         f"{SESSION_SCHEMA_VERSION}")
    if doc.get("coordinate_system") != "LPS":
        raise InputError(f"{where}: coordinates must be LPS, got {doc.get('coordinate_system')!r}")
    roots = []
    for i, r in enumerate(doc.get("roots") or []):
        try:
            side, name = str(r["side"]), str(r["name"])
            pts = np.asarray(r["control_points_lps_mm"], float)
            rad = np.asarray(r["radius_mm"], float)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: root {i} is incomplete (side, name, "
                             "control_points_lps_mm, radius_mm)") from None
        if side not in SIDES or name not in ROOT_NAMES:
            raise InputError(f"{where}: root {i} names an unknown root {side!r} {name!r}")
        if (pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2 or rad.shape != (len(pts),)
                or not np.all(np.isfinite(pts)) or not np.all(np.isfinite(rad))
                or np.any(rad <= 0)):
            raise InputError(f"{where}: the {name} root on the {side} needs at least two finite "
                             "control points (x, y, z) and one positive radius per point")
        roots.append(SessionRoot(side=side, name=name,
                                 control_points_lps_mm=tuple((float(p[0]), float(p[1]),
                                                              float(p[2])) for p in pts),
                                 radius_mm=tuple(float(v) for v in rad),
                                 original_source=str(r.get("original_source", ""))))
    return PlanningSession(roots=tuple(roots), needle_targets=_targets(doc.get("needle_targets")
                                                                        or {}, where=where),
                           ct=dict(doc.get("ct") or {}),
                           plan_options=dict(doc.get("plan_options") or {}),
                           notes=tuple(str(n) for n in doc.get("notes") or []),
                           label_edits=_label_edits(doc.get("label_edits"), where=where))


def _label_edits(raw: Any, *, where: str) -> LabelEditsRecord | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InputError(f"{where}: label_edits must be a mapping or null")
    name = str(raw.get("file") or "")
    # A bare file name beside the session: never a path that leaves its folder.
    if not name or Path(name).name != name or name in (".", ".."):
        raise InputError(f"{where}: label_edits names no file beside the session ({name!r})")
    if raw.get("coordinate_system", "LPS") != "LPS":
        raise InputError(f"{where}: the label edits must be LPS")
    try:
        table = LabelTable.from_json(raw)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{where}: label_edits has no valid label table") from None
    if not isinstance(raw.get("summary"), dict):
        raise InputError(f"{where}: label_edits has no summary")
    summary = summary_from_dict(raw["summary"])
    return LabelEditsRecord(file=name, sha256=str(raw.get("sha256") or ""), table=table,
                            summary=summary)


def _targets(raw: Any, *, where: str = "the needle targets") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: needle_targets must be a mapping side -> points")
    out: dict[str, Any] = {}
    for side, pts in raw.items():
        if side not in SIDES or not isinstance(pts, dict):
            raise InputError(f"{where}: needle target of an unknown side {side!r}")
        entry = {}
        for key in ("target_lps_mm", "entry_lps_mm"):
            if pts.get(key) is None:
                continue
            v = np.asarray(pts[key], float).reshape(-1)
            if v.shape != (3,) or not np.all(np.isfinite(v)):
                raise InputError(f"{where}: {side} {key} must be three finite numbers (LPS mm)")
            entry[key] = [float(x) for x in v]
        out[str(side)] = entry
    return out


def check_grid(session: PlanningSession, engine: Any) -> None:
    """Refuse a session made on another CT grid (its points would land elsewhere)."""
    if not session.ct:
        return
    if not _same_grid(session.ct, engine.ct.geometry_dict()):
        raise InputError("the planning session was saved for a CT of another size or position: "
                         "open it with the CT it was made on")


def check_ct(session: PlanningSession, ct: Volume) -> None:
    """Refuse a session made on another CT grid than ``ct`` (as :func:`check_grid`)."""
    if session.ct and not _same_grid(session.ct, ct.geometry_dict()):
        raise InputError("the planning session was saved for a CT of another size or position: "
                         "open it with the CT it was made on")


def _same_grid(saved: dict[str, Any], now: dict[str, Any]) -> bool:
    same = saved.get("size") == now["size"]
    for key in ("spacing_mm", "origin_lps_mm", "direction"):
        try:
            a = np.asarray(saved.get(key, []), float)
        except (TypeError, ValueError):
            return False
        b = np.asarray(now[key], float)
        same = same and a.shape == b.shape and bool(np.all(np.abs(a - b) <= _GRID_TOLERANCE_MM))
    return bool(same)


def apply_session(engine: Any, session: PlanningSession, *,
                  options: RootEditOptions | None = None,
                  view_direction_lps: Sequence[float] | None = None, pixel_mm: float = 0.5,
                  progress: ProgressCallback | None = None) -> RootEditor:
    """Reproduce the corrected plan: an editor on ``engine`` with the session's roots applied.

    ``engine`` must be built on the CT the session was made on (checked) with the same plan
    options (``session.plan_options``); the edits are one undoable step. Afterwards
    ``engine.plan()`` is the corrected plan (its warnings say which roots the operator
    corrected).
    """
    editor = RootEditor(engine, options=options, view_direction_lps=view_direction_lps,
                        pixel_mm=pixel_mm)
    state = session_state(engine, editor.state, session)
    if state != editor.state:
        editor.apply(state, progress=progress)
    return editor


def session_state(engine: Any, state: RootEditState, session: PlanningSession) -> RootEditState:
    """``state`` with the session's roots as the operator left them (the CT grid checked;
    InputError when the plan has no such root)."""
    check_grid(session, engine)
    for r in session.roots:
        current = state.get(r.side, r.name)
        state = state.with_root(replace(current, control_lps_mm=r.control_points_lps_mm,
                                        radius_mm=r.radius_mm, edited=True))
    return state
