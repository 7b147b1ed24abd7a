"""installers/check_screenshot.py on synthetic PNGs: a plausible window passes, blanks fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "installers" / "check_screenshot.py"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _window(bone: bool = True, nerve: bool = True, size=(640, 480)) -> np.ndarray:
    """A dark gradient window with shaded bone (ivory) and nerve (yellow) blobs."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 20 + 40 * xx / w
    img[..., 1] = 30 + 40 * yy / h
    img[..., 2] = 50 + 30 * (xx + yy) / (w + h)
    shade = 0.55 + 0.45 * (xx / w)  # lighting across the surfaces
    if bone:
        mask = (xx - 200) ** 2 + (yy - 200) ** 2 < 90 ** 2
        img[mask] = np.array([238, 226, 196], np.float32) * shade[mask, None]
    if nerve:
        mask = (abs(xx - 420) < 60) & (abs(yy - 300) < 12)
        img[mask] = np.array([255, 214, 0], np.float32) * shade[mask, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(tmp_path, array, name="shot.png", fmt=None) -> Path:
    path = tmp_path / name
    Image.fromarray(array).save(path, format=fmt)
    return path


def test_plausible_window_passes(checker, tmp_path):
    result = checker.analyse(_save(tmp_path, _window()))
    assert result["ok"], result["failures"]
    assert result["nerve_pixels"] >= checker.MIN_NERVE_PIXELS
    assert result["bone_fraction"] >= checker.MIN_BONE_FRACTION
    assert checker.main([str(tmp_path / "shot.png")]) == 0


def test_missing_file_fails(checker, tmp_path):
    assert checker.main([str(tmp_path / "absent.png")]) == 1


def test_blank_window_fails(checker, tmp_path):
    flat = np.full((480, 640, 3), 30, np.uint8)
    result = checker.analyse(_save(tmp_path, flat))
    assert not result["ok"]
    assert any("colours" in f for f in result["failures"])


def test_no_nerve_fails(checker, tmp_path):
    result = checker.analyse(_save(tmp_path, _window(nerve=False)))
    assert not result["ok"] and any("nerve" in f for f in result["failures"])


def test_no_bone_fails(checker, tmp_path):
    result = checker.analyse(_save(tmp_path, _window(bone=False)))
    assert not result["ok"] and any("bone" in f for f in result["failures"])


def test_tiny_or_not_png_fails(checker, tmp_path):
    assert not checker.analyse(_save(tmp_path, _window(size=(200, 100))))["ok"]
    jpeg = _save(tmp_path, _window(), name="shot.jpg", fmt="JPEG")
    result = checker.analyse(jpeg)
    assert any("PNG" in f for f in result["failures"])


def test_garbage_file_fails(checker, tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"not a png at all")
    result = checker.analyse(path)
    assert not result["ok"] and "cannot read" in result["failures"][0]
