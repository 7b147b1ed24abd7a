"""Background jobs: progress reaches the GUI thread, Cancel stops the worker, errors arrive."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from spinect_core.errors import NotCTError
from spinect_core.progress import report

from app.workers import Job, JobRunner


def _slow(steps: int = 200, delay: float = 0.02, started: threading.Event | None = None):
    def fn(progress):
        for k in range(steps):
            report(progress, k / steps, f"step {k}")
            if started is not None:
                started.set()
            time.sleep(delay)
        return "done"
    return fn


def test_progress_arrives_on_gui_thread_and_result_is_delivered(qtbot) -> None:
    runner = JobRunner()
    seen, results = [], []
    runner.progress.connect(lambda f, m: seen.append(
        (f, m, QThread.currentThread() is QApplication.instance().thread())))
    with qtbot.waitSignal(runner.idle, timeout=20_000):
        runner.start(Job("slow", _slow(steps=10, delay=0.06)), on_success=results.append)
    assert results == ["done"]
    assert len(seen) >= 3 and all(on_gui for _, _, on_gui in seen)
    assert [f for f, _, _ in seen] == sorted(f for f, _, _ in seen)
    assert not runner.busy


def test_cancel_stops_the_worker(qtbot) -> None:
    runner = JobRunner()
    started = threading.Event()
    outcome = []
    job = runner.start(Job("slow", _slow(steps=1000, delay=0.01, started=started)),
                       on_success=lambda r: outcome.append("success"),
                       on_cancel=lambda: outcome.append("cancelled"))
    assert started.wait(10)
    t0 = time.monotonic()
    with qtbot.waitSignal(runner.idle, timeout=10_000):
        runner.cancel()
    assert outcome == ["cancelled"] and job.cancel_requested
    assert time.monotonic() - t0 < 5  # stopped long before its 10 s of work
    assert runner.wait(5000)


def test_failure_reaches_the_callback_and_runner_is_free_again(qtbot) -> None:
    runner = JobRunner()
    errors = []

    def boom(progress):
        raise NotCTError("series is MR, not CT")

    with qtbot.waitSignal(runner.idle, timeout=10_000):
        runner.start(Job("boom", boom), on_failure=errors.append)
    assert isinstance(errors[0], NotCTError)
    # A callback can chain the next job: the runner is free before callbacks run.
    chained = []
    with qtbot.waitSignal(runner.idle, timeout=10_000):
        runner.start(Job("a", lambda p: 1), on_success=lambda r: runner.start(
            Job("b", lambda p: 2), on_success=chained.append))
    assert chained == [2]
