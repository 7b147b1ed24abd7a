"""PyInstaller hook: pylibjpeg finds its decoders (openjpeg, libjpeg) through entry points.

``pylibjpeg.utils.get_pixel_data_decoders()`` reads ``importlib.metadata.entry_points()``; in a
frozen app that works only when the plugins' ``*.dist-info`` folders (with ``entry_points.txt``)
are collected, and the plugin modules are imported by name from those entry points, so the
module graph never sees them.
"""

from PyInstaller.utils.hooks import collect_dynamic_libs, copy_metadata, is_module_or_submodule
from PyInstaller.utils.hooks import collect_submodules

datas = []
hiddenimports = []
binaries = []

for dist, module in (("pylibjpeg", "pylibjpeg"), ("pylibjpeg-openjpeg", "openjpeg"),
                     ("pylibjpeg-libjpeg", "libjpeg"), ("pyjpegls", "jpeg_ls")):
    try:
        datas += copy_metadata(dist)
    except Exception:  # the plugin is not installed: pydicom reports the codec as missing
        continue
    hiddenimports += collect_submodules(
        module, filter=lambda name: not is_module_or_submodule(name, f"{module}.tests"))
    binaries += collect_dynamic_libs(module)
