"""Fixtures of the app tests: a small phantom case on disk, settings in a temp file, the window.

The phantom is generated once per session at 2 mm (about 60x80x115 voxels, a few seconds) and
written as NIfTI, labels and a DICOM series. pytest-xvfb provides the X server, so the 3D view
really renders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.helpers import RecordingDialogs, tiny_weights

try:  # a headless install (no Qt) skips the app tests instead of failing to collect them
    import PySide6  # noqa: F401
    import pyvistaqt  # noqa: F401
except ImportError:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def phantom_case(tmp_path_factory) -> dict[str, Path]:
    """``ct`` (NIfTI), ``labels`` (NIfTI + sidecar), ``dicom`` (folder), ``dir``, ``phantom``."""
    from spinect_core.phantom import generate_phantom, write_phantom

    out = tmp_path_factory.mktemp("phantom")
    phantom = generate_phantom(seed=7, spacing_mm=(2.0, 2.0, 2.0))
    paths = write_phantom(phantom, out, dicom=True)
    return {"ct": paths["ct"], "labels": paths["labels"], "dicom": out / "dicom", "dir": out,
            "phantom": phantom}


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture()
def no_default_weights(monkeypatch, tmp_path):
    """Make 'no bundled weights' true whatever the installation ships."""
    import spinect_core.model.weights as weights

    monkeypatch.setattr(weights, "default_weights_path", lambda: tmp_path / "absent.safetensors")


@pytest.fixture()
def settings(tmp_path):
    from app.settings import AppSettings

    s = AppSettings.from_file(tmp_path / "settings.ini")
    s.auto_segment = False
    s.auto_plan = False
    s.plan_search = "quick"  # 15 deg grid refined to 2 deg: seconds on a 2 mm phantom
    return s


@pytest.fixture()
def dialogs() -> RecordingDialogs:
    return RecordingDialogs()


@pytest.fixture()
def window(qtbot, settings, dialogs):
    """The main window, sized to the (possibly small) virtual screen; closed after the test."""
    from PySide6.QtWidgets import QApplication

    from app.main import create_app

    win = create_app([], settings=settings, dialogs=dialogs)
    qtbot.addWidget(win)
    screen = QApplication.primaryScreen().availableGeometry()
    win.resize(min(1400, screen.width()), min(880, screen.height()))
    win.move(screen.topLeft())
    qtbot.waitExposed(win)
    yield win
    win.controller.shutdown()
    win.close()
    # The app collects garbage on the GUI thread only (app.gc_guard), from its event loop; the
    # tests after this one may run without a loop, so collect now and hand collection back.
    import gc

    gc.collect()
    gc.enable()


def wait_idle(qtbot, win, timeout: int = 60_000) -> None:
    """Wait until no job runs (after a chain of steps)."""
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=timeout)

