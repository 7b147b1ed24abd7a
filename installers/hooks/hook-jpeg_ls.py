"""PyInstaller hook: pyjpegls (module ``jpeg_ls``) wraps CharLS; keep its metadata and extension."""

from PyInstaller.utils.hooks import collect_dynamic_libs, collect_submodules, copy_metadata
from PyInstaller.utils.hooks import is_module_or_submodule

datas = copy_metadata("pyjpegls")
hiddenimports = collect_submodules(
    "jpeg_ls", filter=lambda name: not is_module_or_submodule(name, "jpeg_ls.tests"))
binaries = collect_dynamic_libs("jpeg_ls")
