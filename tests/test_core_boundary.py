"""The core stays headless: no Qt, no pyvistaqt, no VTK rendering, and it imports with Qt absent."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import spinect_core

CORE_DIR = Path(spinect_core.__file__).parent
REPO = CORE_DIR.parent
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "qtpy", "pyvistaqt", "pyvista.plotting", "vtkmodules.vtkRendering")


def core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(CORE_DIR)], prefix="spinect_core."))


def test_no_qt_import_statement_in_core_sources() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(" + "|".join(re.escape(f) for f in FORBIDDEN) + r")\b",
                         re.MULTILINE)
    offenders = [str(p.relative_to(CORE_DIR)) for p in CORE_DIR.rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_core_imports_with_qt_absent() -> None:
    """Import every core module in a fresh interpreter where Qt and pyvistaqt cannot be imported."""
    code = f"""
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'qtpy', 'pyvistaqt'):
            raise ImportError('blocked for the headless test: ' + name)
        return None
sys.meta_path.insert(0, Block())
for name in {core_modules()!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyvistaqt'))
assert not loaded, loaded
print('ok', len({core_modules()!r}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_cli_help_lists_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "spinect_core", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("info", "segment", "evaluate", "phantom", "plan", "window", "pacs"):
        assert name in result.stdout


def test_import_contracts_kept() -> None:
    """pyproject's import-linter contracts (layers, headless core) hold, as CI's gate checks."""
    pytest.importorskip("importlinter")
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
