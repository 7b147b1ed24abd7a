"""The computations behind the app's steps, as plain functions of data (no Qt, no threads).

Workers (:mod:`app.workers`) run these with a progress callback; tests can call them directly.
Each function calls the core and returns numpy/Mesh data only; nothing here renders.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io import LoadOptions, load_ct, load_label_map
from spinect_core.io.load import SeriesScan, scan_series
from spinect_core.io.labelmap import labels_on_ct_grid, read_label_table
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.surfaces import Mesh, MeshOptions, meshes_from_labels
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.segment import Segmentation, SegmentOptions, Segmenter
from spinect_core.volume import Volume

from app.inputs import TempFolders, prepare_input
from app.state import SettingsValues

__all__ = [
    "OpenedInput", "LoadedSegmentation", "SegmenterCache", "MESH_OPTIONS", "scan_input",
    "load_volume", "segment_volume", "build_meshes", "load_segmentation_file", "device_summary",
]

#: Surfaces for display: smoothed, and decimated so a full-resolution CT still rotates smoothly.
MESH_OPTIONS = MeshOptions(target_triangles=250_000, min_component_mm3=20.0)


@dataclass(frozen=True, kw_only=True)
class OpenedInput:
    """What :func:`scan_input` found: the path the core reads and its header scan.

    ``scan.series`` lists the series there; :func:`load_volume` given ``scan`` reads no DICOM
    header again.
    """

    input_path: Path
    scan: SeriesScan


@dataclass(kw_only=True)
class LoadedSegmentation:
    """A label map read from a file and placed on the CT's grid."""

    labels: Volume
    table: LabelTable
    notes: list[str] = field(default_factory=list)


def scan_input(path: str | Path, temp: TempFolders, *,
               progress: ProgressCallback | None = None) -> OpenedInput:
    """Unpack a zip if needed and list the series at ``path`` (headers only)."""
    input_path = prepare_input(path, temp, progress=sub_progress(progress, 0.0, 0.5, "unzip: "))
    scan = scan_series(input_path, progress=sub_progress(progress, 0.5, 1.0, "scanning: "))
    return OpenedInput(input_path=input_path, scan=scan)


def load_volume(input_path: Path, series_uid: str | None, *, scan: SeriesScan | None = None,
                progress: ProgressCallback | None = None) -> Volume:
    """Load the CT (HU, LPS) of one series; ``None`` lets the core choose.

    ``scan``: the header scan of ``input_path`` (:func:`scan_input`), so the headers are not
    read a second time.
    """
    return load_ct(input_path, options=LoadOptions(series_uid=series_uid or None),
                   progress=progress, scan=scan)


class SegmenterCache:
    """The loaded :class:`~spinect_core.segment.Segmenter`, kept for the next segmentation.

    Loading weights takes seconds (and memory on a GPU), so a second segmentation with the same
    weights file and options reuses the network. The key is the weights file (resolved path,
    size and modification time, so a replaced file is loaded again) and the
    :class:`~spinect_core.segment.SegmentOptions`; another key replaces the one kept (one
    network in memory at a time). Safe to use from the job thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._segmenter: Segmenter | None = None
        #: Weights loaded so far (tests, diagnostics).
        self.loads = 0

    def get(self, weights_path: str | None, options: SegmentOptions) -> Segmenter:
        """The segmenter of these weights (``None``: bundled default) and options.

        Raises
        ------
        NoWeightsInstalledError, WeightsError
            As :meth:`Segmenter.from_weights`; nothing is kept then.
        """
        key = (_weights_identity(weights_path), options)
        with self._lock:
            if self._segmenter is None or key != self._key:
                self._segmenter, self._key = None, None  # free the old network first
                self._segmenter = Segmenter.from_weights(weights_path, options=options)
                self._key = key
                self.loads += 1
            return self._segmenter

    def clear(self) -> None:
        with self._lock:
            self._segmenter, self._key = None, None


def _weights_identity(weights_path: str | None) -> tuple:
    """(path, size, mtime) of a weights file; the bundled default's when ``None``."""
    if weights_path is None:
        import spinect_core.model.weights as weights_module

        path = weights_module.default_weights_path()
    else:
        path = Path(weights_path)
    try:
        stat = Path(path).stat()
    except OSError:  # missing: from_weights says so; no identity to reuse
        return (str(weights_path), None, None)
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def segment_volume(ct: Volume, settings: SettingsValues, *,
                   progress: ProgressCallback | None = None,
                   segmenters: SegmenterCache | None = None) -> Segmentation:
    """Segment ``ct`` with the weights, device and bone source chosen in the settings, and check
    the network's bone against the CT's own at L4-S1.

    The same :class:`~spinect_core.segment.Segmenter` path as ``spinect segment/plan``; the
    check (:func:`spinect_core.bone.agreement.check_segmentation`, reusing the CT bone model's
    run) is in ``result.bone_check``. With ``segmenters`` the network loaded for an earlier
    segmentation with the same weights and options is reused.

    Raises
    ------
    NoWeightsInstalledError
        No weights file is chosen and none is bundled.
    WeightsError
        The chosen file is missing, corrupt or not SPINECT weights.
    """
    report(progress, 0.0, "loading the network weights")
    from spinect_core.bone.agreement import check_segmentation

    options = SegmentOptions(device=settings.device, blend=settings.blend, bone=settings.bone)
    weights = settings.weights_path or None
    segmenter = (segmenters.get(weights, options) if segmenters is not None
                 else Segmenter.from_weights(weights, options=options))
    result = segmenter.segment(ct, progress=sub_progress(progress, 0.02, 0.93))
    check_segmentation(result, ct, progress=sub_progress(progress, 0.93, 1.0, "checking: "))
    return result


def build_meshes(labels: Volume, table: LabelTable, *,
                 progress: ProgressCallback | None = None) -> dict[str, Mesh]:
    """Surfaces of every class present in ``labels`` (LPS mm), non-empty ones only."""
    meshes = meshes_from_labels(labels, table, options=MESH_OPTIONS, progress=progress)
    return {name: mesh for name, mesh in meshes.items() if not mesh.is_empty}


def load_segmentation_file(path: str | Path, ct: Volume, *,
                           progress: ProgressCallback | None = None) -> LoadedSegmentation:
    """Read a label map and put it on ``ct``'s grid (nearest neighbour when the grids differ).

    Without a label-table sidecar the default table (background, bone, nerve, disc, dura) is
    assumed, and a note says so.
    """
    p = Path(path)
    notes: list[str] = []
    report(progress, 0.0, f"reading {p.name}")
    if read_label_table(p) is None:
        notes.append(f"{p.name} has no label-table sidecar; assumed ids "
                     f"{', '.join(f'{i} {n}' for i, n in DEFAULT_LABELS.names.items())}")
    labels, table = load_label_map(p, default_table=DEFAULT_LABELS)
    unknown = sorted(set(np.unique(labels.array).tolist()) - set(table.ids))
    if unknown:
        raise InputError(f"{p.name} holds ids {unknown} that its label table does not name")
    labels, note = labels_on_ct_grid(labels, ct, what=f"label map {p.name}", atol=1e-3,
                                     progress=sub_progress(progress, 0.5, 0.95))
    notes += [note] if note else []
    dtype = np.uint8 if max(table.ids) < 256 else np.uint16
    labels = labels.with_array(labels.array.astype(dtype, copy=False))
    report(progress, 1.0, "label map read")
    return LoadedSegmentation(labels=labels, table=table, notes=notes)


def device_summary() -> dict[str, str | bool]:
    """What compute devices torch sees: ``cuda`` (bool), ``cuda_name``, ``text``."""
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
        name = torch.cuda.get_device_name(0) if cuda else ""
    except Exception as exc:  # a broken CUDA driver must not stop the settings dialog
        return {"cuda": False, "cuda_name": "", "text": f"CUDA check failed: {exc}"}
    text = f"CUDA available: {name}" if cuda else "CUDA not available: segmentation runs on the CPU"
    return {"cuda": cuda, "cuda_name": name, "text": text}
