"""``spinect-app INPUT ... --quit`` in a subprocess, on the X display pytest-xvfb provides."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def run_app(*args, tmp_path, timeout=300) -> subprocess.CompletedProcess:
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display (pytest-xvfb or xvfb-run provides one)")
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # offscreen would leave the 3D view blank
    return subprocess.run([sys.executable, "-m", "app", *map(str, args),
                           "--settings", str(tmp_path / "settings.ini")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_screenshot_and_quit_exits_zero(tmp_path, phantom_case, weights_file) -> None:
    out = tmp_path / "out.png"
    result = run_app(phantom_case["ct"], "--weights", weights_file, "--screenshot",
                     out, "--quit", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert image.width() > 600 and image.height() > 400
    assert "surfaces ready" in result.stdout


def test_plan_run_shows_needle_and_window_outlines(tmp_path, phantom_case) -> None:
    from PySide6.QtGui import QImage

    from app.widgets.view3d import NEEDLE_COLOR, WINDOW_COLORS
    from tests.app.helpers import colour_fraction, qimage_to_array

    (tmp_path / "settings.ini").write_text("[planning]\nsearch=quick\n")
    out = tmp_path / "plan.png"
    result = run_app(phantom_case["ct"], "--segmentation", phantom_case["labels"], "--plan",
                     "--screenshot", out, "--quit", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "needle via" in result.stdout and "plan ready" in result.stdout
    # The console names how sure the level is before any "safe" verdict.
    assert "spinect-app: level: " in result.stdout
    assert result.stdout.index("spinect-app: level: ") < result.stdout.index("needle via")
    rgb = qimage_to_array(QImage(str(out)))
    # The needle (orange) and at least one window outline (Kambin red or safe cyan) are drawn.
    assert colour_fraction(rgb, NEEDLE_COLOR, tol=30) > 2e-5
    outline = max(colour_fraction(rgb, WINDOW_COLORS["kambin"], tol=30),
                  colour_fraction(rgb, WINDOW_COLORS["safe"], tol=30))
    assert outline > 2e-5


def test_plan_without_lumbosacral_anatomy_exits_nonzero(tmp_path, phantom_case,
                                                        weights_file) -> None:
    # A random tiny network finds no spine: planning refuses with the anatomy message.
    (tmp_path / "settings.ini").write_text("[planning]\nsearch=quick\n")
    result = run_app(phantom_case["ct"], "--weights", weights_file, "--plan", "--quit",
                     tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Anatomy not found" in result.stderr


def test_failure_exits_nonzero_with_the_message(tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a CT")
    result = run_app(text, "--quit", tmp_path=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "Unsupported file" in result.stderr
