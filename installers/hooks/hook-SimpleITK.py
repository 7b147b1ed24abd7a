"""PyInstaller hook: SimpleITK is one extension module (``_SimpleITK``) plus pure Python.

No hook ships with pyinstaller-hooks-contrib; collect the submodules (``SimpleITK.extra`` is
imported from ``SimpleITK/__init__.py`` by a star import) and the package metadata that
``SimpleITK._version`` / ``importlib.metadata.version("SimpleITK")`` reads.
"""

from PyInstaller.utils.hooks import collect_dynamic_libs, collect_submodules, copy_metadata

hiddenimports = collect_submodules("SimpleITK")
binaries = collect_dynamic_libs("SimpleITK")
try:
    datas = copy_metadata("SimpleITK")
except Exception:  # metadata named differently in some builds (simpleitk)
    datas = []
