"""The workflow: open -> (series) -> load -> segment -> surfaces -> plan, on the app's state.

:class:`SessionController` owns the state store (:class:`~app.store.StateStore`) and the job
runner. It starts each step as a background job and, on the GUI thread, replaces the state with
the step's result (never editing it in place) and announces it with a signal; the main window
binds widgets to those signals. It has no widgets itself: questions (which series?) go through
the ``dialogs`` object, errors are emitted as :class:`~app.errors.ErrorReport`.

A failed or cancelled step keeps everything computed before it (a failed segmentation keeps the
loaded CT; a failed new load keeps the previous case; a failed plan keeps the surfaces).

Two interactive computations run beside the step runner on their own "latest request wins"
workers (:class:`~app.workers.LatestWorker`): the window areas of the current view while the
operator rotates, and needle re-plans while they choose another window or nudge the target.
What the controller keeps beside the state is not state: the workers, the temporary folders and
the loaded network (:class:`~app.pipeline.SegmenterCache`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PySide6.QtCore import QEventLoop, QObject, Signal

from spinect_core.io import SeriesInfo

from app import pipeline
from app import planning
from app.errors import ErrorReport, describe_error
from app.inputs import TempFolders
from app.state import AppState, SegmentationSource, Session, frozen_map
from app.store import StateStore
from app.workers import Job, JobRunner, LatestWorker

if TYPE_CHECKING:
    from spinect_core.bone.agreement import BoneAgreement
    from spinect_core.labels import LabelTable
    from spinect_core.planning.plan import Plan, PlanEngine
    from spinect_core.planning.trajectory import Trajectory
    from spinect_core.progress import ProgressCallback
    from spinect_core.segment import Segmentation
    from spinect_core.volume import Volume

    from app.dialogs import Dialogs
    from app.settings import AppSettings

__all__ = ["SessionController", "STEPS"]

#: Steps shown in the left panel, in order: key -> label.
STEPS = {"load": "Load CT", "segment": "Segment bone & nerves", "surfaces": "Build 3D surfaces",
         "plan": "Plan L5/S1 approach"}


class SessionController(QObject):
    """Runs the steps of a session in the background and keeps :attr:`store` up to date.

    Parameters
    ----------
    settings : AppSettings
        The one settings source; its :meth:`~app.settings.AppSettings.snapshot` is read when a
        step starts.
    dialogs : Dialogs
        Only ``choose_series`` is used here.
    """

    ct_changed = Signal()          # new case loaded (session.ct)
    labels_changed = Signal()      # session.labels / table (or cleared)
    meshes_changed = Signal()      # session.meshes
    notes_changed = Signal()
    step_changed = Signal(str, str)        # step key, status: pending|running|done|failed|skipped
    busy_changed = Signal(bool)
    error = Signal(object)                 # ErrorReport (cancellations included, cancelled=True)
    pipeline_finished = Signal(bool, str)  # ok, message: the chain of steps stopped
    plan_changed = Signal()                # session.plan (None: cleared)
    trajectory_changed = Signal(str)       # side whose needle was planned again
    live_windows_ready = Signal(object)    # planning.LiveWindows of the latest view
    live_windows_failed = Signal(object)   # ErrorReport
    roots_changed = Signal()               # the plan's roots were edited (or undone / redone)

    def __init__(self, settings: AppSettings, dialogs: Dialogs,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.dialogs = dialogs
        self.store = StateStore(parent=self)
        self.runner = JobRunner(self)
        self.runner.idle.connect(self._emit_busy)
        self.temp = TempFolders()
        self.segmenters = pipeline.SegmenterCache()
        # The live windows and an export may read the engine's scenes from two threads.
        self.engine_lock = threading.Lock()
        self.live = LatestWorker(self._compute_live, self)
        self.live.finished.connect(self._on_live)
        self.live.failed.connect(self._on_live_failed)
        self.needle = LatestWorker(self._compute_replan, self)
        self.needle.finished.connect(self._on_replanned)
        self.needle.failed.connect(self._on_replan_failed)
        # Root edits (issue 13): the editor changes the engine in place under engine_lock on its
        # own worker; the GUI keeps the state it asked for last (latest request wins: the state
        # asked for holds every edit before it, so a dropped request loses nothing).
        from spinect_core.planning.root_edit import RootEditOptions

        self.root_edit_options = RootEditOptions()
        self._root_editor: Any = None
        # The root corrections the current plan's best views and needles were computed with
        # (None: the plan came from the plan step, before any correction).
        self._plan_root_state: Any = None
        self._root_state: Any = None
        self._live_direction: np.ndarray | None = None
        self._live_pixel_mm = planning.LIVE_PIXEL_MM
        self.root_edits = LatestWorker(self._compute_root_edit, self)
        self.root_edits.finished.connect(self._on_root_edit)
        self.root_edits.failed.connect(self._on_root_edit_failed)

    # --- state -----------------------------------------------------------------------------------
    @property
    def state(self) -> AppState:
        return self.store.state

    @property
    def session(self) -> Session:
        """The current case (a frozen value: hold it and it never changes)."""
        return self.store.session

    @property
    def last_error(self) -> ErrorReport | None:
        return self.store.state.last_error

    @property
    def pending_targets(self) -> Mapping[str, np.ndarray]:
        """Needle tips asked for whose re-plan has not arrived yet, per side."""
        return self.store.session.pending_targets

    @property
    def replans(self) -> Mapping[str, planning.ReplanResult]:
        """The last needle re-plan per side."""
        return self.store.session.replans

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def cancel(self) -> None:
        """Ask the running step to stop (it keeps what earlier steps computed)."""
        self.runner.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel, wait for the workers, remove temporary folders (application exit)."""
        self.runner.cancel()
        self.live.clear()
        self.needle.clear()
        self.root_edits.clear()
        self.runner.wait(timeout_ms)
        self.live.wait(timeout_ms)
        self.needle.wait(timeout_ms)
        self.root_edits.wait(timeout_ms)
        self.temp.cleanup()
        self.segmenters.clear()

    def _emit_busy(self) -> None:
        self.busy_changed.emit(self.runner.busy)

    def _run(self, stage: str, step: str, fn: Callable,
             on_success: Callable[[Any], object]) -> None:
        job = Job(stage, fn)
        self.step_changed.emit(step, "running")

        def failed(exc: BaseException) -> None:
            self._fail(step, exc, stage)

        def cancelled() -> None:
            self._fail(step, None, stage)

        self.runner.start(job, on_success=on_success, on_failure=failed, on_cancel=cancelled)
        self.busy_changed.emit(True)

    def _fail(self, step: str, exc: BaseException | None, stage: str) -> None:
        from spinect_core.errors import Cancelled

        report = describe_error(exc if exc is not None else Cancelled(f"{stage} cancelled"),
                                action=stage)
        session = self.session
        if step == "plan":
            # A refusal (L5/S1 not established) says where the scan ends; no plan title shows.
            session = dataclasses.replace(
                session, plan_refusal=tuple(planning.refusal_level(exc)))
        self.store.replace(session=session, last_error=report)
        self.step_changed.emit(step, "cancelled" if report.cancelled else "failed")
        self.error.emit(report)
        self.pipeline_finished.emit(False, report.text())

    def run_and_wait(self, stage: str, fn: Callable) -> Any:
        """Run ``fn(progress)`` as a step (progress bar, Cancel) and wait for its result.

        The GUI stays responsive (a local event loop runs) while actions are disabled as for any
        step. Used for exports, which return the files written.

        Raises
        ------
        RuntimeError
            Another step is running.
        Exception
            Whatever ``fn`` raised (``Cancelled`` when the user cancelled).
        """
        from spinect_core.errors import Cancelled

        if self.busy:
            current = self.runner.current
            raise RuntimeError(f"busy: {current.stage if current is not None else ''}")
        loop = QEventLoop()
        outcome: dict[str, Any] = {}

        def finish(key: str, value: Any) -> None:
            outcome[key] = value
            loop.quit()

        self.runner.start(Job(stage, fn),
                          on_success=lambda result: finish("result", result),
                          on_failure=lambda exc: finish("error", exc),
                          on_cancel=lambda: finish("error", Cancelled(f"{stage} cancelled")))
        self.busy_changed.emit(True)
        if not outcome:
            loop.exec()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    # --- open and load ---------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open a DICOM folder, zip or image file; ``False`` if busy (nothing started)."""
        if self.busy:
            return False
        p = Path(path)
        temp = self.temp
        self.store.replace(opening=p)
        self._run("Reading the folder", "load",
                  lambda progress: pipeline.scan_input(p, temp, progress=progress),
                  self._on_scanned)
        return True

    def open_from_pacs(self, client: Any, study_uid: str, series_uid: str | None, *,
                       move: bool = False) -> bool:
        """Retrieve a series (or study) from a PACS into a session temporary folder (progress,
        Cancel; whole or nothing), then open it as a dropped folder; ``False`` if busy."""
        if self.busy:
            return False
        from app.pacs_nodes import retrieve_series

        folder = self.temp.new("spinect-pacs-") / "retrieved"
        self._run("Retrieving from the PACS", "load",
                  lambda progress: retrieve_series(client, study_uid, series_uid, folder,
                                                   move=move, progress=progress),
                  self.open_path)
        return True

    def _on_scanned(self, result: pipeline.OpenedInput) -> None:
        series = result.scan.series
        chosen: SeriesInfo | None = None
        loadable = [s for s in series if not s.problem]
        if len(series) > 1:
            chosen = self.dialogs.choose_series(series)
            if chosen is None:
                self._fail("load", None, "Choosing a series")
                return
        elif len(loadable) == 1:
            chosen = loadable[0]
        uid = chosen.uid if chosen is not None and chosen.uid else None
        input_path, scan = result.input_path, result.scan
        # The series are loaded from this scan: no header is read twice.
        self._run("Loading CT", "load",
                  lambda progress: pipeline.load_volume(input_path, uid, scan=scan,
                                                        progress=progress),
                  lambda ct: self._on_loaded(ct, result, uid))

    def _on_loaded(self, ct: Volume, opened: pipeline.OpenedInput, uid: str | None) -> None:
        # A new case replaces the old one only now that it loaded.
        self._forget_plan()
        session = Session(source_path=self.state.opening, input_path=opened.input_path,
                          series=tuple(opened.scan.series), scan=opened.scan, series_uid=uid,
                          ct=ct, notes=tuple(ct.warnings), settings=self.settings.snapshot())
        self.store.replace(session=session, opening=None)
        self.step_changed.emit("load", "done")
        for step in ("segment", "surfaces", "plan"):
            self.step_changed.emit(step, "pending")
        self.ct_changed.emit()
        self.labels_changed.emit()
        self.meshes_changed.emit()
        self.notes_changed.emit()
        if session.settings.auto_segment:
            self.segment()
        else:
            self.pipeline_finished.emit(True, "CT loaded")

    # --- segmentation ----------------------------------------------------------------------------
    def segment(self) -> bool:
        """Segment the loaded CT with the network in the settings; ``False`` if not possible."""
        if self.busy or self.session.ct is None:
            return False
        ct = self.session.ct
        settings = self.settings.snapshot()
        self.store.replace_session(settings=settings)
        segmenters = self.segmenters
        self._run("Segmenting", "segment",
                  lambda progress: pipeline.segment_volume(ct, settings, progress=progress,
                                                           segmenters=segmenters),
                  self._on_segmented)
        return True

    def _on_segmented(self, seg: Segmentation) -> None:
        weights = Path(self.session.settings.weights_path).name or "bundled weights"
        bone = {"network": "network bone", "ct": "CT bone model",
                "fused": "bone fused with the CT bone model"}.get(seg.bone_source, seg.bone_source)
        source = SegmentationSource(
            kind="network",
            description=f"{weights} on {seg.device_used} ({seg.precision_used}), {bone}",
            bone_source=seg.bone_source)
        self.set_segmentation(seg.labels, seg.table, source=source, notes=seg.notes,
                              probabilities=seg.probabilities, bone_check=seg.bone_check)

    def open_segmentation(self, path: str | Path) -> bool:
        """Read a label map onto the loaded CT's grid, then build surfaces."""
        if self.busy or self.session.ct is None:
            return False
        p = Path(path)
        ct = self.session.ct
        self._run("Reading the segmentation", "segment",
                  lambda progress: pipeline.load_segmentation_file(p, ct, progress=progress),
                  lambda loaded: self.set_segmentation(
                      loaded.labels, loaded.table, notes=loaded.notes,
                      # The file's format only: its name may name the patient.
                      source=SegmentationSource(kind="file", description=_format_of(p))))
        return True

    def set_segmentation(self, labels: Volume, table: LabelTable, *,
                         source: SegmentationSource, notes: list[str] | None = None,
                         probabilities: np.ndarray | None = None,
                         bone_check: BoneAgreement | None = None,
                         build_surfaces: bool = True) -> None:
        """Store a label map on the CT's grid (from the network, a file or a test) and mesh it.

        ``bone_check`` is the network's bone against the CT's own
        (:class:`~spinect_core.bone.agreement.BoneAgreement`): its warnings head the new notes
        and the plan carries it.
        """
        if self.session.ct is None:
            raise ValueError("load a CT before setting a segmentation")
        if labels.array.shape != self.session.ct.array.shape:
            raise ValueError(f"label map shape {labels.array.shape} differs from the CT "
                             f"{self.session.ct.array.shape}")
        self._forget_plan()
        notes = list(bone_check.warnings if bone_check is not None else []) + list(notes or [])
        old = self.session
        self.store.replace_session(
            old.without_segmentation(), labels=labels, table=table, segmentation_source=source,
            probabilities=probabilities, bone_check=bone_check, notes=old.notes + tuple(notes))
        if notes:
            self.notes_changed.emit()
        self.step_changed.emit("segment", "done")
        self.step_changed.emit("surfaces", "pending")
        self.step_changed.emit("plan", "pending")
        self.labels_changed.emit()
        self.meshes_changed.emit()
        if build_surfaces:
            self.build_surfaces()

    # --- surfaces --------------------------------------------------------------------------------
    def build_surfaces(self) -> bool:
        session = self.session
        if self.busy or session.labels is None or session.table is None:
            return False
        labels, table = session.labels, session.table
        self._run("Building 3D surfaces", "surfaces",
                  lambda progress: pipeline.build_meshes(labels, table, progress=progress),
                  self._on_meshes)
        return True

    def _on_meshes(self, meshes: dict) -> None:
        self.store.replace_session(meshes=frozen_map(meshes))
        self.step_changed.emit("surfaces", "done")
        self.meshes_changed.emit()
        if self.settings.snapshot().auto_plan and self.plan():
            return
        names = ", ".join(meshes) or "none"
        self.pipeline_finished.emit(True, f"surfaces ready: {names}")

    # --- planning --------------------------------------------------------------------------------
    def plan(self) -> bool:
        """Plan the L5/S1 approach on the current labels; ``False`` if not possible now.

        Runs :func:`app.planning.run_plan` in the background (progress + Cancel). A failure
        (no L5/S1 in the field of view, ...) is reported and keeps the CT, labels and surfaces.
        """
        session = self.session
        if self.busy or session.labels is None or session.table is None or session.ct is None:
            return False
        settings = self.settings.snapshot()
        options = planning.plan_options(settings)
        ct, labels, table = session.ct, session.labels, session.table
        source = session.segmentation_source
        source_text = (f"{source.kind}: {source.description}" if source is not None else "")
        bone_source = source.bone_source if source is not None else None
        check = session.bone_check
        self.store.replace_session(settings=settings)
        self._forget_plan()
        self._run("Planning L5/S1", "plan",
                  lambda progress: planning.run_plan(ct, labels, table, options=options,
                                                     segmentation_source=source_text,
                                                     bone_source=bone_source,
                                                     segmentation_check=check,
                                                     progress=progress),
                  self.set_plan_result)
        return True

    def set_plan_result(self, result: planning.PlanningResult) -> None:
        """Store a plan (from the plan step, or a test / script that planned elsewhere)."""
        self._forget_plan()
        session = self.session
        # The segmentation check's warnings are in the notes since the segmentation step.
        new = [n for n in result.notes + list(result.plan.warnings) if n not in session.notes]
        meshes = session.meshes
        if result.bone_mesh is not None:
            # The plan was made on the CT bone model's bone: the surfaces show that bone.
            meshes = frozen_map(meshes, bone=result.bone_mesh)
            note = ("the 3D view shows the CT bone model's bone, on which the plan counted the "
                    "levels (the segmentation's own bone could not be counted)")
            new += [note] if note not in session.notes else []
        self.store.replace_session(
            session.without_plan(), plan=result.plan, engine=result.engine,
            body_mask=result.body_mask, planes=frozen_map(result.planes),
            notes=session.notes + tuple(new), meshes=meshes)
        if new:
            self.notes_changed.emit()
        if result.bone_mesh is not None:
            self.meshes_changed.emit()
        self.step_changed.emit("plan", "done")
        self.plan_changed.emit()
        found = [f"{side} {kind}" for side, sp in result.plan.sides.items()
                 for kind in planning.KINDS if sp.window(kind).found]
        level = planning.plan_level(result.plan)
        qualifier = level.qualifier() if level is not None else ""
        self.pipeline_finished.emit(True, f"plan ready{qualifier}: windows "
                                    + (", ".join(found) or "none"))

    def _forget_plan(self) -> None:
        self.live.clear()
        self.needle.clear()
        self.root_edits.clear()
        self._root_editor = None
        self._root_state = None
        self._plan_root_state = None
        session = self.session
        had_plan = session.plan is not None
        # Session.without_plan is the one list of what a plan brings; the store is replaced
        # (and its listeners told) only when the session held any of it.
        stripped = session.without_plan()
        if any(_holds(getattr(session, f.name), getattr(stripped, f.name))
               for f in dataclasses.fields(session)):
            self.store.replace_session(stripped)
        if had_plan:
            self.plan_changed.emit()

    # --- live windows ----------------------------------------------------------------------------
    def request_live_windows(self, direction_lps: np.ndarray,
                             pixel_mm: float = planning.LIVE_PIXEL_MM) -> bool:
        """Measure the windows for this exact view in the background (latest request wins)."""
        engine = self.session.engine
        if engine is None:
            return False
        # Kept for the re-plan after a root edit (the windows of the view being looked at).
        self._live_direction = np.asarray(direction_lps, float).copy()
        self._live_pixel_mm = float(pixel_mm)
        self.live.request((np.asarray(direction_lps, float).copy(), float(pixel_mm)), engine,
                          np.asarray(direction_lps, float).copy(), float(pixel_mm))
        return True

    def _compute_live(self, engine: PlanEngine, direction: np.ndarray,
                      pixel_mm: float) -> planning.LiveWindows:
        with self.engine_lock:  # worker thread
            return planning.live_windows(engine, direction, pixel_mm=pixel_mm)

    def _on_live(self, _tag: Any, result: planning.LiveWindows) -> None:
        self.live_windows_ready.emit(result)

    def _on_live_failed(self, _tag: Any, exc: BaseException) -> None:
        self.live_windows_failed.emit(describe_error(exc, action="Measuring the windows"))

    # --- root edits ------------------------------------------------------------------------------
    def root_state(self) -> Any:
        """The roots as the operator asked for them last
        (:class:`~spinect_core.planning.root_edit.RootEditState`), None without an engine."""
        engine = self.session.engine
        if engine is None:
            return None
        if self._root_state is None:
            from spinect_core.planning.root_edit import initial_state

            with self.engine_lock:
                self._root_state = initial_state(engine, self.root_edit_options)
        return self._root_state

    def move_root_point(self, side: str, name: str, index: int, point_lps: Any) -> bool:
        """Move a root's control point (LPS mm) and re-plan the windows in the background."""
        from spinect_core.planning.root_edit import drag_point

        return self._edit_root("Moving the root", lambda state, o: drag_point(
            state, side, name, int(index), point_lps, o))

    def insert_root_point(self, side: str, name: str, point_lps: Any) -> bool:
        """Add a control point to a root where the LPS point (3,) mm projects onto it (the core's
        :func:`~spinect_core.planning.root_edit.insert_point` decides its place along the root)
        and re-plan. A point too far from the root is refused (error signal, False)."""
        from spinect_core.planning.root_edit import insert_point

        return self._edit_root("Adding a root point", lambda state, o: insert_point(
            state, side, name, point_lps, o)[0])

    def delete_root_point(self, side: str, name: str, index: int) -> bool:
        """Delete a root's control point and re-plan; a root keeps at least two points (refused
        with the reason on the error signal, False)."""
        from spinect_core.planning.root_edit import delete_point

        return self._edit_root("Deleting a root point", lambda state, o: delete_point(
            state, side, name, int(index), o))

    def set_root_radius(self, side: str, name: str, radius_mm: float,
                        index: int | None = None) -> bool:
        """Set the radius (mm) of one control point (``index``) or of the whole root (None) and
        re-plan; a radius outside the options' range is refused (error signal, False)."""
        from spinect_core.planning.root_edit import set_radius

        return self._edit_root("Setting the root's radius", lambda state, o: set_radius(
            state, side, name, float(radius_mm), o,
            index=None if index is None else int(index)))

    def _edit_root(self, action: str, edit: Callable[[Any, Any], Any]) -> bool:
        """Apply ``edit(state, options) -> new state`` to the roots asked for last and re-plan
        in the background (one undo step; latest request wins). A refusal of the core
        (InputError: too far, too few points, radius out of range) goes to the error signal."""
        from spinect_core.errors import SpinectError

        state = self.root_state()
        if state is None:
            return False
        try:
            new = edit(state, self.root_edit_options)
        except SpinectError as exc:
            self.error.emit(describe_error(exc, action=action))
            return False
        self._root_state = new
        # Shown at once (the handles where the operator put them); the windows follow.
        self.roots_changed.emit()
        self.root_edits.request(("apply",), self.session.engine, "apply", new,
                                self._live_direction, self._live_pixel_mm)
        return True

    def undo_root_edit(self) -> bool:
        """Undo the last root edit (the engine restored exactly) and re-plan."""
        if self.session.engine is None:
            return False
        self.root_edits.request(("undo",), self.session.engine, "undo", None,
                                self._live_direction, self._live_pixel_mm)
        return True

    def redo_root_edit(self) -> bool:
        if self.session.engine is None:
            return False
        self.root_edits.request(("redo",), self.session.engine, "redo", None,
                                self._live_direction, self._live_pixel_mm)
        return True

    @property
    def has_root_corrections(self) -> bool:
        """The operator corrected a root of the current plan's engine."""
        editor = self._root_editor
        return bool(editor is not None and editor.engine is self.session.engine
                    and editor.state.edited)

    @property
    def plan_outdated_by_root_edits(self) -> bool:
        """The roots were corrected after the plan's best views and needles were computed: the
        live windows follow the corrections, the plan does not until :meth:`replan_roots`."""
        if not self.has_root_corrections or self.session.plan is None:
            return False
        return self._root_editor.state != self._plan_root_state

    def replan_roots(self, progress: ProgressCallback | None = None) -> tuple[Any, Any]:
        """Re-optimise the plan on the engine that holds the root corrections (worker thread):
        best views, plateaus and needles then follow the corrected roots. Returns
        ``(plan, root state)`` for :meth:`set_replanned_roots`."""
        engine = self.session.engine
        with self.engine_lock:
            return engine.plan(progress=progress), self._root_editor.state

    def set_replanned_roots(self, result: tuple[Any, Any]) -> None:
        """Store the plan re-optimised after root corrections (GUI thread). The needle planes
        shown belonged to the old needles: they are dropped until the next plan step."""
        plan, state = result
        self._plan_root_state = state
        self.store.replace_session(plan=plan, planes=frozen_map({}))
        self.plan_changed.emit()

    def save_root_session(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the planning session file (the operator's root corrections and the needles'
        targets, LPS mm; :mod:`spinect_core.planning.session_file`) beside the exports.

        Raises InputError when no root was corrected; an existing file is refused unless
        ``overwrite``.
        """
        from spinect_core.errors import InputError
        from spinect_core.planning.session_file import save_session

        if not self.has_root_corrections:
            raise InputError("no root was corrected: there is no planning session to save")
        plan = self.session.plan
        targets = {}
        for side, sp in (plan.sides.items() if plan is not None else ()):
            if sp.trajectory is not None:
                targets[side] = {"target_lps_mm": list(sp.trajectory.target_lps_mm),
                                 "entry_lps_mm": list(sp.trajectory.entry_lps_mm)}
        with self.engine_lock:
            return save_session(path, self._root_editor, needle_targets=targets,
                                overwrite=overwrite)

    def open_root_session(self, path: str | Path) -> bool:
        """Apply a saved planning session's root corrections to the current plan (in the
        background, one undoable step). A file made on another CT is refused (error signal)."""
        from spinect_core.errors import SpinectError
        from spinect_core.planning.session_file import load_session

        engine = self.session.engine
        if engine is None:
            return False
        try:
            saved = load_session(path)
        except SpinectError as exc:
            self.error.emit(describe_error(exc, action="Opening the planning session"))
            return False
        self.root_edits.request(("session",), engine, "session", saved, self._live_direction,
                                self._live_pixel_mm)
        return True

    def _compute_root_edit(self, engine: PlanEngine, op: str, state: Any,
                           direction: np.ndarray | None, pixel_mm: float) -> tuple[Any, Any]:
        from spinect_core.planning.root_edit import RootEditor

        with self.engine_lock:  # worker thread
            if self._root_editor is None or self._root_editor.engine is not engine:
                self._root_editor = RootEditor(engine, options=self.root_edit_options)
            editor = self._root_editor
            if op == "apply" and state != editor.state:
                editor.apply(state)
            elif op == "undo" and editor.can_undo:
                editor.undo()
            elif op == "redo" and editor.can_redo:
                editor.redo()
            elif op == "session":
                from spinect_core.planning.session_file import session_state

                new = session_state(engine, editor.state, state)
                if new != editor.state:
                    editor.apply(new)
            live = (None if direction is None
                    else planning.live_windows(engine, direction, pixel_mm=pixel_mm))
            return editor.state, live

    def _on_root_edit(self, tag: Any, result: tuple[Any, Any]) -> None:
        state, live = result
        if tag[0] != "apply" or self._root_state is None:
            self._root_state = state
        self.roots_changed.emit()
        if live is not None:
            self.live_windows_ready.emit(live)

    def _on_root_edit_failed(self, _tag: Any, exc: BaseException) -> None:
        # The engine holds the last state that applied; show that one.
        if self._root_editor is not None:
            self._root_state = self._root_editor.state
        self.roots_changed.emit()
        self.error.emit(describe_error(exc, action="Re-planning after the root edit"))

    # --- needle re-plans -------------------------------------------------------------------------
    def needle_window(self, side: str) -> str | None:
        """The window (``kambin`` / ``safe``) that ``side``'s needle goes through."""
        plan = self.session.plan
        if plan is None or side not in plan.sides:
            return None
        return plan.sides[side].trajectory_window

    def choose_needle_window(self, side: str, kind: str) -> bool:
        """Plan ``side``'s needle through the ``kind`` window (its deepest point)."""
        session = self.session
        plan = session.plan
        if plan is None or side not in plan.sides or not plan.sides[side].window(kind).found:
            return False
        self.store.replace_session(pending_targets=_without(session.pending_targets, side))
        self.needle.request(("window", side, kind), session.engine, plan, side, kind, None,
                            None)
        return True

    def current_target(self, side: str) -> np.ndarray | None:
        """The needle tip the operator asked for last (pending nudges included)."""
        session = self.session
        if side in session.pending_targets:
            return session.pending_targets[side]
        plan = session.plan
        traj = plan.sides[side].trajectory if plan is not None and side in plan.sides else None
        return None if traj is None else np.asarray(traj.target_lps_mm, float)

    def nudge_target(self, side: str, right_mm: float, up_mm: float) -> bool:
        """Move ``side``'s needle tip in the plane perpendicular to the needle and re-plan.

        ``right`` and ``up`` are as seen looking along the needle with cranial up (the best
        view); the entry direction stays. Repeated nudges add up even while a re-plan runs.
        """
        plan = self.session.plan
        traj = plan.sides[side].trajectory if plan is not None and side in plan.sides else None
        current = self.current_target(side)
        if traj is None or current is None:
            return False
        target = planning.nudged_target(current, traj.entry_direction_lps, right_mm, up_mm)
        return self.set_target(side, target)

    def set_target(self, side: str, target_lps: np.ndarray) -> bool:
        """Aim ``side``'s needle at ``target_lps`` (same entry direction) and re-plan."""
        session = self.session
        plan = session.plan
        sp = plan.sides.get(side) if plan is not None else None
        if sp is None or sp.trajectory is None or sp.trajectory_window is None:
            return False
        target = np.asarray(target_lps, float).reshape(3).copy()
        target.setflags(write=False)  # part of the state: nobody edits it
        self.store.replace_session(
            pending_targets=frozen_map(session.pending_targets, **{side: target}))
        self.needle.request(("target", side, sp.trajectory_window), session.engine, plan,
                            side, sp.trajectory_window, target,
                            np.asarray(sp.trajectory.entry_direction_lps, float))
        return True

    def _compute_replan(self, engine: PlanEngine, plan: Plan, side: str, kind: str,
                        target: np.ndarray | None, entry_direction: np.ndarray | None
                        ) -> planning.ReplanResult:
        return planning.replan_needle(engine, plan, side, kind, target_lps=target,
                                      entry_direction_lps=entry_direction)

    def _on_replanned(self, tag: Any, result: planning.ReplanResult) -> None:
        session = self.session
        plan = session.plan
        if plan is None or result.side not in plan.sides:
            return
        side = result.side
        # A new plan with this side's needle replaced: the plan shown before stays as it was.
        sp = dataclasses.replace(plan.sides[side], trajectory=result.trajectory,
                                 trajectory_window=result.kind,
                                 trajectory_reason=result.trajectory.reason)
        new_plan = dataclasses.replace(plan, sides={**plan.sides, side: sp})
        planes = (frozen_map(session.planes, **{side: result.planes})
                  if result.planes is not None else session.planes)
        pending = session.pending_targets
        if tag[0] == "window" or self._target_reached(side, result.trajectory):
            pending = _without(pending, side)
        self.store.replace_session(plan=new_plan, planes=planes, pending_targets=pending,
                                   replans=frozen_map(session.replans, **{side: result}))
        self.trajectory_changed.emit(side)

    def _target_reached(self, side: str, trajectory: Trajectory) -> bool:
        pending = self.session.pending_targets.get(side)
        return pending is None or bool(np.allclose(pending, trajectory.target_lps_mm, atol=1e-6))

    def _on_replan_failed(self, tag: Any, exc: BaseException) -> None:
        session = self.session
        if isinstance(tag, tuple) and len(tag) > 1:
            session = dataclasses.replace(
                session, pending_targets=_without(session.pending_targets, tag[1]))
        report = describe_error(exc, action="Planning the needle")
        self.store.replace(session=session, last_error=report)
        self.error.emit(report)

    # --- settings --------------------------------------------------------------------------------
    def refresh_settings(self) -> None:
        """Copy the current settings into the session (planning inputs changed)."""
        self.store.replace_session(settings=self.settings.snapshot())


def _holds(value: Any, cleared: Any) -> bool:
    """``value`` differs from what :meth:`Session.without_plan` left in its place (the fields it
    does not clear are the same objects; cleared ones are None or empty)."""
    if value is cleared:
        return False
    if isinstance(value, (Mapping, tuple)) and isinstance(cleared, (Mapping, tuple)):
        return len(value) > 0 or len(cleared) > 0
    return True


def _without(items: Mapping, key: str) -> Mapping:
    """``items`` without ``key`` (the same object when it has no such key)."""
    if key not in items:
        return items
    return frozen_map({k: v for k, v in items.items() if k != key})


def _format_of(path: Path) -> str:
    """A label map's description for plans and exports: its format, never its name."""
    name = path.name.lower()
    for ext in (".nii.gz", ".seg.nrrd", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(ext):
            return f"label map file ({ext.lstrip('.')})"
    return "label map file"
