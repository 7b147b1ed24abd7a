"""Entry point of the frozen SPINECT planner (PyInstaller): one script, two executables.

The spec builds this script twice from one analysis: ``spinect-app`` (windowed, the desktop
planner, ``app.main:main``) and ``spinect`` (console, the CLI, ``spinect_core.cli:main``). Which one
runs is decided by the executable's name, so both share every library in the bundle.

What this wrapper adds around the two ``main`` functions (only what a frozen app needs):

- ``multiprocessing.freeze_support()`` first: on Windows a frozen program that starts worker
  processes (torch DataLoader workers in ``spinect train``, any ``spawn``) re-executes itself, and
  without this call every child would open another planner window.
- A windowed Windows/macOS executable has no console: ``sys.stdout`` / ``sys.stderr`` are ``None``
  and a ``print(..., file=sys.stderr)`` would raise. They are sent to a log file in the per-user log
  folder instead (see :func:`user_log_dir`), and an uncaught exception is written there too.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

APP_NAME = "spinect"


def user_log_dir() -> Path:
    """Per-user log folder (created): where the installers' README says logs go.

    Linux ``$XDG_STATE_HOME/spinect/log`` (default ``~/.local/state/spinect/log``), Windows
    ``%LOCALAPPDATA%\\spinect\\logs``, macOS ``~/Library/Logs/spinect``. ``SPINECT_LOG_DIR``
    overrides all three.
    """
    override = os.environ.get("SPINECT_LOG_DIR")
    if override:
        path = Path(override)
    elif sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        path = Path(base) / APP_NAME / "logs"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Logs" / APP_NAME
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / APP_NAME / "log"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _redirect_missing_streams() -> None:
    """Give a console-less (windowed) executable a stdout/stderr: the file ``console.log``."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    try:
        stream = open(user_log_dir() / "console.log", "a", encoding="utf-8", buffering=1)
    except OSError:
        stream = open(os.devnull, "w", encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream


def _is_cli(executable: str) -> bool:
    """``spinect`` / ``spinect.exe`` runs the CLI; anything else (``spinect-app``) the app."""
    name = executable.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if name.endswith(".exe"):
        name = name[:-4]
    return name == "spinect"


def bundle_selftest() -> int:
    """``spinect --bundle-selftest``: check, inside the bundle, what a frozen app most often loses.

    Prints one line per check and a JSON summary; exit 0 when all pass. For IT staff and the smoke
    test: DICOM codecs through their plugins (JPEG 2000 via pylibjpeg/openjpeg, JPEG-LS via
    pyjpegls, RLE: encode + decode round trips), SimpleITK NIfTI I/O, a torch forward pass,
    VTK numpy conversion with its Python overrides, and where the bundled assets are.
    """
    import json
    import tempfile
    import traceback

    import numpy as np

    results: dict[str, str] = {}

    def check(name, func):
        try:
            detail = func()
            results[name] = f"ok {detail}" if detail else "ok"
        except Exception as exc:  # noqa: BLE001 - report every failure, keep going
            results[name] = f"FAILED {type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"{name}: {results[name]}", flush=True)

    def dicom_roundtrip(uid_name, plugin):
        def run():
            from pydicom.dataset import Dataset, FileMetaDataset
            from pydicom.uid import ExplicitVRLittleEndian
            import pydicom.uid

            uid = getattr(pydicom.uid, uid_name)
            arr = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7) % 4096
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.Rows, ds.Columns = arr.shape
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.PixelData = arr.tobytes()
            ds.compress(uid, arr, encoding_plugin=plugin)
            ds.pixel_array_options(decoding_plugin=plugin)
            out = ds.pixel_array
            if not np.array_equal(out, arr):
                raise AssertionError("decoded pixels differ")
            return f"({plugin})"
        return run

    def simpleitk_io():
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
        img.SetSpacing((0.5, 0.7, 2.0))
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "t.nii.gz")
            sitk.WriteImage(img, path)
            back = sitk.ReadImage(path)
        if not np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img)):
            raise AssertionError("NIfTI round trip differs")
        return sitk.Version_VersionString()

    def torch_forward():
        import torch

        conv = torch.nn.Conv3d(1, 2, 3, padding=1)
        out = conv(torch.zeros(1, 1, 8, 8, 8))
        return f"{torch.__version__}, cuda={torch.cuda.is_available()}, out {tuple(out.shape)}"

    def vtk_numpy():
        import vtkmodules
        from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy

        data = np.linspace(0, 1, 10)
        vtk_arr = numpy_to_vtk(data, deep=True)
        if not np.allclose(vtk_to_numpy(vtk_arr), data):
            raise AssertionError("numpy <-> VTK round trip differs")
        if not hasattr(vtk_arr, "__array__"):
            raise AssertionError("VTK Python overrides (numpy_interface) are missing")
        return vtkmodules.__version__

    def assets():
        from spinect_core.resources import asset_path

        root = asset_path()
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        return f"{root}: {', '.join(files) if files else 'no files'}"

    check("dicom jpeg2000 (pylibjpeg/openjpeg)", dicom_roundtrip("JPEG2000Lossless", "pylibjpeg"))
    check("dicom jpeg-ls (pyjpegls)", dicom_roundtrip("JPEGLSLossless", "pyjpegls"))
    check("dicom rle (pydicom)", dicom_roundtrip("RLELossless", "pydicom"))
    check("simpleitk nifti", simpleitk_io)
    check("torch", torch_forward)
    check("vtk numpy", vtk_numpy)
    check("assets", assets)
    ok = all(v.startswith("ok") for v in results.values())
    print(json.dumps({"ok": ok, "checks": results}), flush=True)
    return 0 if ok else 1


def main() -> int:
    multiprocessing.freeze_support()
    _redirect_missing_streams()
    if sys.argv[1:2] == ["--bundle-selftest"]:
        return bundle_selftest()
    if _is_cli(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]):
        from spinect_core.cli import main as cli_main

        return int(cli_main() or 0)
    from app.main import main as app_main

    return int(app_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
