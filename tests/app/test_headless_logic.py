"""The app's logic modules (no widgets) import without Qt, so they stay testable and reusable."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

LOGIC = ("app.pipeline", "app.state", "app.export", "app.slicing", "app.camera", "app.errors",
         "app.inputs", "app.model_info", "app.colors")


def test_logic_modules_import_without_qt() -> None:
    code = f"""
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyvistaqt', 'qtpy'):
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
for name in {LOGIC!r}:
    importlib.import_module(name)
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
