"""Background jobs with progress and cancel: the only place the app starts threads.

A :class:`Job` wraps a function ``fn(progress) -> result`` (``progress`` is the core's
``(fraction, message) -> bool`` callback). It runs on a :class:`QThreadPool`; its signals are
delivered to the GUI thread (queued connections), so slots may touch widgets. Functions run in
jobs must only compute and return data (arrays, meshes), never create or render Qt/VTK objects.

Cancel sets a flag that the progress callback returns as ``False``; the core then raises
:class:`~spinect_core.errors.Cancelled` at its next progress report.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from spinect_core.errors import Cancelled
from spinect_core.progress import ProgressCallback

__all__ = ["Job", "JobSignals", "JobRunner", "LatestWorker"]

#: Progress reports closer together than this are merged (the GUI need not repaint per window).
_MIN_INTERVAL_S = 0.05


class JobSignals(QObject):
    """Signals of one job. Created on the GUI thread, emitted from the worker thread."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)      # the exception; its traceback is in ``exc.__traceback__``
    cancelled = Signal()


class Job(QRunnable):
    """One background computation.

    Parameters
    ----------
    stage : str
        What the user sees while it runs ("Loading CT", "Segmenting").
    fn : callable
        ``fn(progress) -> result``; runs on a worker thread.
    """

    def __init__(self, stage: str, fn: Callable[[ProgressCallback], Any]) -> None:
        super().__init__()
        # The runner keeps the Python object alive; Qt must not delete it behind our back.
        self.setAutoDelete(False)
        self.stage = stage
        self.fn = fn
        self.signals = JobSignals()
        self._cancel = threading.Event()
        self._last_emit = 0.0
        self.traceback_text = ""

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _progress(self, fraction: float, message: str) -> bool:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_emit >= _MIN_INTERVAL_S:
            self._last_emit = now
            self.signals.progress.emit(float(fraction), str(message))
        return not self._cancel.is_set()

    def run(self) -> None:  # worker thread
        try:
            result = self.fn(self._progress)
        except Cancelled:
            self.signals.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI
            self.traceback_text = traceback.format_exc()
            self.signals.failed.emit(exc)
        else:
            if self._cancel.is_set():
                # Finished after Cancel was pressed, without a progress report in between:
                # the user asked for nothing, so the result is dropped.
                self.signals.cancelled.emit()
            else:
                self.signals.succeeded.emit(result)


class JobRunner(QObject):
    """Runs one job at a time on a private thread pool and reports it.

    Signals
    -------
    started(str)
        A job with this stage name started.
    progress(float, str)
        Fraction in [0, 1] and message of the running job.
    idle()
        The running job ended (any outcome) and its callback started no follow-up job.
    """

    started = Signal(str)
    progress = Signal(float, str)
    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.current: Job | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None

    def start(self, job: Job, *, on_success: Callable[[Any], object] | None = None,
              on_failure: Callable[[BaseException], None] | None = None,
              on_cancel: Callable[[], None] | None = None) -> Job:
        """Start ``job``; the callbacks run on the GUI thread.

        Raises
        ------
        RuntimeError
            Another job is still running (the GUI disables actions while busy).
        """
        if self.current is not None:
            raise RuntimeError(f"a job is already running: {self.current.stage}")
        self.current = job
        job.signals.progress.connect(self.progress)

        def finish(callback: Callable | None, *args: Any) -> None:
            # Runs on the GUI thread. The runner is free *before* the callback runs, so a
            # callback can chain the next step; `idle` fires only if it did not.
            if self.current is not job:
                return
            self.current = None
            try:
                if callback is not None:
                    callback(*args)
            finally:
                if self.current is None:
                    self.idle.emit()

        job.signals.succeeded.connect(lambda result: finish(on_success, result))
        job.signals.failed.connect(lambda exc: finish(on_failure, exc))
        job.signals.cancelled.connect(lambda: finish(on_cancel))
        self.started.emit(job.stage)
        self.pool.start(job)
        return job

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the pool is empty (for shutdown and tests)."""
        return self.pool.waitForDone(timeout_ms)


class _LatestTask(QRunnable):
    """One request of a :class:`LatestWorker` (worker thread)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, signals: JobSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.signals = fn, args, signals

    def run(self) -> None:  # worker thread
        try:
            result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - reported on the GUI thread
            self.signals.failed.emit(exc)
        else:
            self.signals.succeeded.emit(result)


class LatestWorker(QObject):
    """Background computations where only the latest request matters ("latest request wins").

    At most one computation runs and at most one request waits: a new request replaces the
    waiting one (never a queue). When a computation ends while a newer request waits, its result
    is stale: it is dropped and the newer request starts. Used for the live window areas while
    the operator rotates the view, and for needle re-plans while they nudge the target.

    Parameters
    ----------
    fn : callable
        ``fn(*args) -> result``; runs on a worker thread and must not touch Qt or VTK.

    Signals
    -------
    finished(object, object)
        ``tag`` and result of the latest request (GUI thread).
    failed(object, object)
        ``tag`` and exception of the latest request.
    """

    finished = Signal(object, object)
    failed = Signal(object, object)

    def __init__(self, fn: Callable[..., Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._running: _LatestTask | None = None
        self._pending: tuple[Any, tuple] | None = None
        self._generation = 0
        self.started_count = 0
        self.dropped_count = 0

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending is not None

    def request(self, tag: Any, *args: Any) -> None:
        """Compute ``fn(*args)`` as soon as the worker is free, replacing any waiting request."""
        if self._pending is not None:
            self.dropped_count += 1
        self._pending = (tag, args)
        if self._running is None:
            self._start_pending()

    def clear(self) -> None:
        """Forget the waiting request and ignore the running one's result (inputs changed)."""
        self._pending = None
        self._generation += 1

    def wait(self, timeout_ms: int = -1) -> bool:
        return self.pool.waitForDone(timeout_ms)

    def _start_pending(self) -> None:
        tag, args = self._pending
        self._pending = None
        signals = JobSignals()
        task = _LatestTask(self.fn, args, signals)
        generation = self._generation
        signals.succeeded.connect(lambda result: self._done(task, generation, tag, result, None))
        signals.failed.connect(lambda exc: self._done(task, generation, tag, None, exc))
        self._running = task
        self.started_count += 1
        self.pool.start(task)

    def _done(self, task: _LatestTask, generation: int, tag: Any, result: Any,
              exc: BaseException | None) -> None:
        if self._running is not task:
            return
        self._running = None
        current = generation == self._generation
        if self._pending is not None:
            if current:
                self.dropped_count += 1  # stale: a newer request waits
            self._start_pending()
            return
        if not current:
            return
        if exc is not None:
            self.failed.emit(tag, exc)
        else:
            self.finished.emit(tag, result)
