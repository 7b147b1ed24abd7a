"""The workflow: open -> (series) -> load -> segment -> surfaces -> plan, on a :class:`Session`.

:class:`SessionController` owns the session and the job runner. It starts each step as a background
job, stores the result in the session on the GUI thread and announces it with a signal; the main
window binds widgets to those signals. It has no widgets itself: questions (which series?) go
through the ``dialogs`` object, errors are emitted as :class:`~app.errors.ErrorReport`.

A failed or cancelled step keeps everything computed before it (a failed segmentation keeps the
loaded CT; a failed new load keeps the previous case; a failed plan keeps the surfaces).

Two interactive computations run beside the step runner on their own "latest request wins"
workers (:class:`~app.workers.LatestWorker`): the window areas of the current view while the
operator rotates, and needle re-plans while they choose another window or nudge the target.
"""

from __future__ import annotations

from pathlib import Path
import threading
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QEventLoop, QObject, Signal

from spinect_core.io import SeriesInfo

from app import pipeline
from app import planning
from app.errors import ErrorReport, describe_error
from app.inputs import TempFolders
from app.state import SettingsValues
from app.state import SegmentationSource, Session
from app.workers import Job, JobRunner, LatestWorker

__all__ = ["SessionController", "STEPS"]

#: Steps shown in the left panel, in order: key -> label.
STEPS = {"load": "Load CT", "segment": "Segment bone & nerves", "surfaces": "Build 3D surfaces",
         "plan": "Plan L5/S1 approach"}


class SessionController(QObject):
    """Runs the steps of a session in the background and keeps :attr:`session` up to date.

    Parameters
    ----------
    settings : callable
        Returns the current :class:`SettingsValues` (read when a step starts).
    dialogs : object
        :class:`app.dialogs.Dialogs` or a double; only ``choose_series`` is used here.
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

    def __init__(self, settings: Callable[[], SettingsValues], dialogs: Any,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.dialogs = dialogs
        self.session = Session()
        self.runner = JobRunner(self)
        self.runner.idle.connect(self._emit_busy)
        self.temp = TempFolders()
        self.last_error: ErrorReport | None = None
        self._pending_path: Path | None = None
        # The live windows and an export may read the engine's scenes from two threads.
        self.engine_lock = threading.Lock()
        self.live = LatestWorker(self._compute_live, self)
        self.live.finished.connect(self._on_live)
        self.live.failed.connect(self._on_live_failed)
        self.needle = LatestWorker(self._compute_replan, self)
        self.needle.finished.connect(self._on_replanned)
        self.needle.failed.connect(self._on_replan_failed)
        self.pending_targets: dict[str, np.ndarray] = {}
        self.replans: dict[str, planning.ReplanResult] = {}

    # --- state -----------------------------------------------------------------------------------
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
        self.runner.wait(timeout_ms)
        self.live.wait(timeout_ms)
        self.needle.wait(timeout_ms)
        self.temp.cleanup()

    def _emit_busy(self) -> None:
        self.busy_changed.emit(self.runner.busy)

    def _run(self, stage: str, step: str, fn: Callable, on_success: Callable[[Any], None]) -> None:
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
        self.last_error = report
        if step == "plan":
            # A refusal (L5/S1 not established) says where the scan ends; no plan title shows.
            self.session.plan_refusal = planning.refusal_level(exc)
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
            raise RuntimeError(f"busy: {self.runner.current.stage}")
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
        self._pending_path = p
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

    def _on_scanned(self, result: pipeline.ScanResult) -> None:
        series = result.series
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
        input_path = result.input_path
        self._run("Loading CT", "load",
                  lambda progress: pipeline.load_volume(input_path, uid, progress=progress),
                  lambda ct: self._on_loaded(ct, result, uid))

    def _on_loaded(self, ct: Any, scan: pipeline.ScanResult, uid: str | None) -> None:
        # A new case replaces the old one only now that it loaded.
        self._forget_plan()
        self.session = Session(source_path=self._pending_path, input_path=scan.input_path,
                               series=list(scan.series), series_uid=uid, ct=ct,
                               notes=list(ct.warnings), settings=self.settings())
        self.step_changed.emit("load", "done")
        for step in ("segment", "surfaces", "plan"):
            self.step_changed.emit(step, "pending")
        self.ct_changed.emit()
        self.labels_changed.emit()
        self.meshes_changed.emit()
        self.notes_changed.emit()
        if self.session.settings.auto_segment:
            self.segment()
        else:
            self.pipeline_finished.emit(True, "CT loaded")

    # --- segmentation ----------------------------------------------------------------------------
    def segment(self) -> bool:
        """Segment the loaded CT with the network in the settings; ``False`` if not possible."""
        if self.busy or self.session.ct is None:
            return False
        ct = self.session.ct
        settings = self.settings()
        self.session.settings = settings
        self._run("Segmenting", "segment",
                  lambda progress: pipeline.segment_volume(ct, settings, progress=progress),
                  self._on_segmented)
        return True

    def _on_segmented(self, seg: Any) -> None:
        weights = Path(self.session.settings.weights_path).name or "bundled weights"
        bone = {"network": "network bone", "ct": "CT bone model",
                "fused": "bone fused with the CT bone model"}.get(seg.bone_source, seg.bone_source)
        source = SegmentationSource(
            kind="network",
            description=f"{weights} on {seg.device_used} ({seg.precision_used}), {bone}",
            bone_source=seg.bone_source)
        self.set_segmentation(seg.labels, seg.table, source=source, notes=seg.notes,
                              probabilities=seg.probabilities,
                              bone_check=getattr(seg, "bone_check", None))

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

    def set_segmentation(self, labels: Any, table: Any, *, source: SegmentationSource,
                         notes: list[str] | None = None, probabilities: Any = None,
                         bone_check: Any = None, build_surfaces: bool = True) -> None:
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
        self.session.clear_segmentation()
        self.session.labels = labels
        self.session.table = table
        self.session.segmentation_source = source
        self.session.probabilities = probabilities
        self.session.bone_check = bone_check
        notes = list(bone_check.warnings if bone_check is not None else []) + list(notes or [])
        if notes:
            self.session.notes.extend(notes)
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
        if self.busy or not self.session.has_labels:
            return False
        labels, table = self.session.labels, self.session.table
        self._run("Building 3D surfaces", "surfaces",
                  lambda progress: pipeline.build_meshes(labels, table, progress=progress),
                  self._on_meshes)
        return True

    def _on_meshes(self, meshes: dict) -> None:
        self.session.meshes = meshes
        self.step_changed.emit("surfaces", "done")
        self.meshes_changed.emit()
        if self.settings().auto_plan and self.plan():
            return
        names = ", ".join(meshes) or "none"
        self.pipeline_finished.emit(True, f"surfaces ready: {names}")

    # --- planning --------------------------------------------------------------------------------
    def plan(self) -> bool:
        """Plan the L5/S1 approach on the current labels; ``False`` if not possible now.

        Runs :func:`app.planning.run_plan` in the background (progress + Cancel). A failure
        (no L5/S1 in the field of view, ...) is reported and keeps the CT, labels and surfaces.
        """
        if self.busy or not self.session.has_labels or self.session.ct is None:
            return False
        session = self.session
        settings = self.settings()
        session.settings = settings
        options = planning.plan_options(settings)
        ct, labels, table = session.ct, session.labels, session.table
        source = session.segmentation_source
        source_text = (f"{source.kind}: {source.description}" if source is not None else "")
        bone_source = source.bone_source if source is not None else None
        check = session.bone_check
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
        session = self.session
        self._forget_plan()
        session.plan = result.plan
        session.engine = result.engine
        session.body_mask = result.body_mask
        session.planes = dict(result.planes)
        # The segmentation check's warnings are in the notes since the segmentation step.
        new = [n for n in result.notes + list(result.plan.warnings) if n not in session.notes]
        if new:
            session.notes.extend(new)
            self.notes_changed.emit()
        self.step_changed.emit("plan", "done")
        self.plan_changed.emit()
        found = [f"{side} {kind}" for side, sp in result.plan.sides.items()
                 for kind in planning.KINDS if sp.window(kind).found]
        level = planning.plan_level(result.plan)
        self.pipeline_finished.emit(True, f"plan ready{level.qualifier()}: windows "
                                    + (", ".join(found) or "none"))

    def _forget_plan(self) -> None:
        self.live.clear()
        self.needle.clear()
        self.pending_targets.clear()
        self.replans.clear()
        had_plan = self.session.plan is not None
        self.session.clear_plan()
        if had_plan:
            self.plan_changed.emit()

    # --- live windows ----------------------------------------------------------------------------
    def request_live_windows(self, direction_lps: np.ndarray,
                             pixel_mm: float = planning.LIVE_PIXEL_MM) -> bool:
        """Measure the windows for this exact view in the background (latest request wins)."""
        engine = self.session.engine
        if engine is None:
            return False
        self.live.request((np.asarray(direction_lps, float).copy(), float(pixel_mm)), engine,
                          np.asarray(direction_lps, float).copy(), float(pixel_mm))
        return True

    def _compute_live(self, engine: Any, direction: np.ndarray, pixel_mm: float) -> Any:
        with self.engine_lock:  # worker thread
            return planning.live_windows(engine, direction, pixel_mm=pixel_mm)

    def _on_live(self, _tag: Any, result: planning.LiveWindows) -> None:
        self.live_windows_ready.emit(result)

    def _on_live_failed(self, _tag: Any, exc: BaseException) -> None:
        self.live_windows_failed.emit(describe_error(exc, action="Measuring the windows"))

    # --- needle re-plans -------------------------------------------------------------------------
    def needle_window(self, side: str) -> str | None:
        """The window (``kambin`` / ``safe``) that ``side``'s needle goes through."""
        plan = self.session.plan
        if plan is None or side not in plan.sides:
            return None
        return plan.sides[side].trajectory_window

    def choose_needle_window(self, side: str, kind: str) -> bool:
        """Plan ``side``'s needle through the ``kind`` window (its deepest point)."""
        plan = self.session.plan
        if plan is None or side not in plan.sides or not plan.sides[side].window(kind).found:
            return False
        self.pending_targets.pop(side, None)
        self.needle.request(("window", side, kind), self.session.engine, plan, side, kind, None,
                            None, self.session.body_mask)
        return True

    def current_target(self, side: str) -> np.ndarray | None:
        """The needle tip the operator asked for last (pending nudges included)."""
        if side in self.pending_targets:
            return self.pending_targets[side]
        plan = self.session.plan
        traj = plan.sides[side].trajectory if plan is not None and side in plan.sides else None
        return None if traj is None else np.asarray(traj.target_lps_mm, float)

    def nudge_target(self, side: str, right_mm: float, up_mm: float) -> bool:
        """Move ``side``'s needle tip in the plane perpendicular to the needle and re-plan.

        ``right`` and ``up`` are as seen looking along the needle with cranial up (the best
        view); the entry direction stays. Repeated nudges add up even while a re-plan runs.
        """
        plan = self.session.plan
        traj = plan.sides[side].trajectory if plan is not None and side in plan.sides else None
        if traj is None:
            return False
        target = planning.nudged_target(self.current_target(side), traj.entry_direction_lps,
                                        right_mm, up_mm)
        return self.set_target(side, target)

    def set_target(self, side: str, target_lps: np.ndarray) -> bool:
        """Aim ``side``'s needle at ``target_lps`` (same entry direction) and re-plan."""
        plan = self.session.plan
        sp = plan.sides.get(side) if plan is not None else None
        if sp is None or sp.trajectory is None or sp.trajectory_window is None:
            return False
        target = np.asarray(target_lps, float).reshape(3).copy()
        self.pending_targets[side] = target
        self.needle.request(("target", side, sp.trajectory_window), self.session.engine, plan,
                            side, sp.trajectory_window, target,
                            np.asarray(sp.trajectory.entry_direction_lps, float),
                            self.session.body_mask)
        return True

    def _compute_replan(self, engine: Any, plan: Any, side: str, kind: str, target: Any,
                        entry_direction: Any, body_mask: Any) -> planning.ReplanResult:
        return planning.replan_needle(engine, plan, side, kind, target_lps=target,
                                      entry_direction_lps=entry_direction, body_mask=body_mask)

    def _on_replanned(self, tag: Any, result: planning.ReplanResult) -> None:
        plan = self.session.plan
        if plan is None or result.side not in plan.sides:
            return
        sp = plan.sides[result.side]
        sp.trajectory = result.trajectory
        sp.trajectory_window = result.kind
        sp.trajectory_reason = result.trajectory.reason
        if result.planes is not None:
            self.session.planes[result.side] = result.planes
        self.replans[result.side] = result
        if tag[0] == "window" or self._target_reached(result.side, result.trajectory):
            self.pending_targets.pop(result.side, None)
        self.trajectory_changed.emit(result.side)

    def _target_reached(self, side: str, trajectory: Any) -> bool:
        pending = self.pending_targets.get(side)
        return pending is None or bool(np.allclose(pending, trajectory.target_lps_mm, atol=1e-6))

    def _on_replan_failed(self, tag: Any, exc: BaseException) -> None:
        if isinstance(tag, tuple) and len(tag) > 1:
            self.pending_targets.pop(tag[1], None)
        report = describe_error(exc, action="Planning the needle")
        self.last_error = report
        self.error.emit(report)

    # --- settings --------------------------------------------------------------------------------
    def refresh_settings(self) -> None:
        """Copy the current settings into the session (planning inputs changed)."""
        self.session.settings = self.settings()


def _format_of(path: Path) -> str:
    """A label map's description for plans and exports: its format, never its name."""
    name = path.name.lower()
    for ext in (".nii.gz", ".seg.nrrd", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(ext):
            return f"label map file ({ext.lstrip('.')})"
    return "label map file"
