"""The planning session file: the operator's corrections of a plan, saved beside its exports.

``planning_session.json`` holds what the operator changed (the edited roots as control points
with a radius each, LPS mm; needle targets when the caller has them) and the CT grid it was made
on, so that reopening the case reproduces the corrected plan: build the engine on the same CT
with the same options, then :func:`apply_session` (one undoable step of a
:class:`~spinect_core.planning.root_edit.RootEditor`). Nothing in it identifies the patient: no
names, identifiers or dates of the study, only geometry.

Document (schema :data:`SESSION_SCHEMA_VERSION`)::

    {"format": "spinect-planning-session", "schema_version": "1.0",
     "coordinate_system": "LPS", "units": {"length": "mm"}, "created": "...",
     "software": {...}, "ct": <Volume.geometry_dict()>,
     "plan_options": {"roots": "fused" | "ct" | "network" | null, "variant": ..., "sides": [...]},
     "roots": [{"side": "left", "name": "exiting_l5", "source": "operator",
                "original_source": "ct", "control_points_lps_mm": [[x, y, z], ...],
                "radius_mm": [...]}, ...],
     "needle_targets": {"left": {"target_lps_mm": [x, y, z], "entry_lps_mm": [x, y, z]}} | {},
     "notes": ["exiting L5 root on the left: corrected by the operator", ...]}

The file is written atomically and never replaces an existing one unless asked.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spinect_core import __version__
from spinect_core.anatomy.root_tracing import ROOT_NAMES
from spinect_core.errors import InputError
from spinect_core.io.atomic import write_text_atomic
from spinect_core.planning.root_edit import RootEditor, RootEditOptions, RootEditState
from spinect_core.progress import ProgressCallback
from spinect_core.vocabulary import SIDES

SESSION_FORMAT = "spinect-planning-session"
SESSION_SCHEMA_VERSION = "1.0"
#: The session file's name beside the exports.
SESSION_FILE_NAME = "planning_session.json"
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
    """

    roots: tuple[SessionRoot, ...]
    needle_targets: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    ct: dict[str, Any] = field(default_factory=dict)
    plan_options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def session_document(editor: RootEditor, *,
                     needle_targets: dict[str, dict[str, Sequence[float]]] | None = None
                     ) -> dict[str, Any]:
    """The session file's JSON document for the editor's current state."""
    eng = editor.engine
    roots = []
    for r in editor.state.edited:
        pts, rad = r.controls()
        roots.append({"side": r.side, "name": r.name, "source": "operator",
                      "original_source": r.original.source,
                      "control_points_lps_mm": [[round(float(v), 4) for v in p] for p in pts],
                      "radius_mm": [round(float(v), 4) for v in rad]})
    o = eng.options
    return {
        "format": SESSION_FORMAT, "schema_version": SESSION_SCHEMA_VERSION,
        "coordinate_system": "LPS", "units": {"length": "mm"},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": {"name": "spinect", "version": __version__},
        "ct": eng.ct.geometry_dict(),
        "plan_options": {"roots": o.roots, "variant": o.variant, "sides": list(o.sides)},
        "roots": roots,
        "needle_targets": _targets(needle_targets or {}),
        "notes": editor.state.notes(),
    }


def save_session(path: str | Path, editor: RootEditor, *,
                 needle_targets: dict[str, dict[str, Sequence[float]]] | None = None,
                 overwrite: bool = False) -> Path:
    """Write the session file (atomic; an existing file is refused unless ``overwrite``).

    Parameters
    ----------
    path : path
        Usually ``<export folder>/planning_session.json`` (:data:`SESSION_FILE_NAME`).
    editor : RootEditor
    needle_targets : dict, optional
        ``side -> {"target_lps_mm": (3,), "entry_lps_mm": (3,)}``, LPS mm.
    overwrite : bool
    """
    doc = session_document(editor, needle_targets=needle_targets)
    return write_text_atomic(path, json.dumps(doc, indent=1) + "\n", overwrite=overwrite)


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
                           notes=tuple(str(n) for n in doc.get("notes") or []))


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
    now = engine.ct.geometry_dict()
    same = session.ct.get("size") == now["size"]
    for key in ("spacing_mm", "origin_lps_mm", "direction"):
        a = np.asarray(session.ct.get(key, []), float)
        b = np.asarray(now[key], float)
        same = same and a.shape == b.shape and bool(np.all(np.abs(a - b) <= _GRID_TOLERANCE_MM))
    if not same:
        raise InputError("the planning session was saved for a CT of another size or position: "
                         "open it with the CT it was made on")


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
