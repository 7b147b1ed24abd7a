"""PyInstaller hook: VTK's Python overrides, which VTK's C++ modules import by name at load time.

``vtkmodules/__init__.py`` keeps ``MODULE_MAPPER`` (``vtkCommonCore`` ->
``vtkmodules.numpy_interface.array_overrides`` ...); when ``vtkCommonCore`` is loaded these are
imported with ``importlib`` and an ``ImportError`` is silently ignored. Frozen without them,
``vtkDataArray`` loses its ``__array__`` mixin and ``vtkmodules.util.numpy_support.vtk_to_numpy``
falls into a fallback path that raises ``NameError: name 'vtkConstants' is not defined``
(VTK 9.7, Python < 3.12): the app then fails at "Building 3D surfaces". Found by the smoke test.
"""

from PyInstaller import isolated
from PyInstaller.utils.hooks import collect_submodules


@isolated.decorate
def _override_modules():
    import vtkmodules

    mapper = getattr(vtkmodules, "MODULE_MAPPER", {})
    return sorted({name for names in mapper.values() for name in names})


hiddenimports = _override_modules()
hiddenimports += collect_submodules("vtkmodules.numpy_interface")
hiddenimports += [
    "vtkmodules.util.numpy_support",
    "vtkmodules.util.vtkConstants",
    "vtkmodules.util.data_model",
    "vtkmodules.util.execution_model",
    "vtkmodules.util.data_array_selection",
]
