"""The workflow: open -> (choose series) -> load -> segment -> surfaces, on a :class:`Session`.

:class:`SessionController` owns the session and the job runner. It starts each step as a background
job, stores the result in the session on the GUI thread and announces it with a signal; the main
window binds widgets to those signals. It has no widgets itself: questions (which series?) go
through the ``dialogs`` object, errors are emitted as :class:`~app.errors.ErrorReport`.

A failed or cancelled step keeps everything computed before it (a failed segmentation keeps the
loaded CT; a failed new load keeps the previous case).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from spinect_core.io import SeriesInfo

from app import pipeline
from app.errors import ErrorReport, describe_error
from app.inputs import TempFolders
from app.state import SettingsValues
from app.state import SegmentationSource, Session
from app.workers import Job, JobRunner

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

    # --- state -----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner.busy

    def cancel(self) -> None:
        """Ask the running step to stop (it keeps what earlier steps computed)."""
        self.runner.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel, wait for the worker, remove temporary folders (application exit)."""
        self.runner.cancel()
        self.runner.wait(timeout_ms)
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
        self.step_changed.emit(step, "cancelled" if report.cancelled else "failed")
        self.error.emit(report)
        self.pipeline_finished.emit(False, report.text())

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
        self.session = Session(source_path=self._pending_path, input_path=scan.input_path,
                               series=list(scan.series), series_uid=uid, ct=ct,
                               notes=list(ct.warnings), settings=self.settings())
        self.step_changed.emit("load", "done")
        for step in ("segment", "surfaces"):
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
        source = SegmentationSource(
            kind="network",
            description=f"{weights} on {seg.device_used} ({seg.precision_used})")
        self.set_segmentation(seg.labels, seg.table, source=source, notes=seg.notes,
                              probabilities=seg.probabilities)

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
                      source=SegmentationSource(kind="file", description=p.name)))
        return True

    def set_segmentation(self, labels: Any, table: Any, *, source: SegmentationSource,
                         notes: list[str] | None = None, probabilities: Any = None,
                         build_surfaces: bool = True) -> None:
        """Store a label map on the CT's grid (from the network, a file or a test) and mesh it."""
        if self.session.ct is None:
            raise ValueError("load a CT before setting a segmentation")
        if labels.array.shape != self.session.ct.array.shape:
            raise ValueError(f"label map shape {labels.array.shape} differs from the CT "
                             f"{self.session.ct.array.shape}")
        self.session.clear_segmentation()
        self.session.labels = labels
        self.session.table = table
        self.session.segmentation_source = source
        self.session.probabilities = probabilities
        if notes:
            self.session.notes.extend(notes)
            self.notes_changed.emit()
        self.step_changed.emit("segment", "done")
        self.step_changed.emit("surfaces", "pending")
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
        names = ", ".join(meshes) or "none"
        self.pipeline_finished.emit(True, f"surfaces ready: {names}")

    # --- settings --------------------------------------------------------------------------------
    def refresh_settings(self) -> None:
        """Copy the current settings into the session (planning inputs changed)."""
        self.session.settings = self.settings()
