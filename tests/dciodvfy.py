"""dicom3tools' ``dciodvfy``: the DICOM validator every written object must pass (issue 15)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def dciodvfy_errors(path: Path) -> list[str]:
    """The "Error" lines of dciodvfy for ``path`` (skips the test without dciodvfy; CI installs
    Debian's dicom3tools)."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if "Error" in line]
