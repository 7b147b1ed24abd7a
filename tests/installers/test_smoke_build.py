"""The real thing: build the PyInstaller bundle in a fresh venv and smoke-test it (slow).

    pytest -m slow tests/installers/test_smoke_build.py

Runs ``bash installers/build.sh --smoke`` (10-30 min on 2 cores, ~2 GB of disk under
``$SPINECT_BUILD_DIR``, default a temporary folder) and checks its ``smoke/result.json``: the
frozen CLI made a phantom, the frozen app opened it with its labels, planned, saved a screenshot
with bone and nerve colours and exited 0. Needs Linux with xvfb-run (or a display) and network or
a pip mirror for the fresh venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="build.sh smoke runs on Linux")
def test_build_and_smoke(tmp_path):
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run") is None:
        pytest.skip("needs a display or xvfb-run")
    build_dir = Path(os.environ.get("SPINECT_BUILD_DIR", tmp_path / "build"))
    env = {**os.environ, "SPINECT_BUILD_DIR": str(build_dir)}
    result = subprocess.run(["bash", str(REPO / "installers" / "build.sh"), "--smoke"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=3 * 3600)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    smoke = json.loads((build_dir / "smoke" / "result.json").read_text())
    assert smoke["app_exit_code"] == 0, tail
    assert smoke["screenshot"]["ok"], smoke["screenshot"]
    assert (build_dir / "dist" / "spinect" / "spinect-app").is_file()
    assert (build_dir / "dist" / "spinect" / "spinect").is_file()
