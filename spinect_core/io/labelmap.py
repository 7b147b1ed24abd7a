"""Label maps on disk: an image file (NIfTI, NRRD, MHA) plus a label-table sidecar JSON.

The sidecar sits beside the image with the image's stem and ``.labels.json``:
``seg.nii.gz`` -> ``seg.labels.json``. Its content::

    {"format": "spinect-labels", "version": 1, "coordinate_system": "LPS",
     "labels": [{"id": 0, "name": "background"}, {"id": 1, "name": "bone"}, ...]}

The image itself stores geometry in LPS through ITK (NIfTI files are converted to RAS on disk by
ITK as the NIfTI standard requires, and back on reading).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.atomic import atomic_path, write_text_atomic
from spinect_core.labels import LabelTable
from spinect_core.volume import CTMetadata, Volume

#: File endings we write and read as images (longest first so ``.nii.gz`` wins over ``.gz``).
IMAGE_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def image_stem(path: str | os.PathLike) -> str:
    """File name without an image suffix: ``a/b.nii.gz`` -> ``b``."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def sidecar_path(path: str | os.PathLike) -> Path:
    """The label-table sidecar of an image path."""
    return Path(path).with_name(image_stem(path) + ".labels.json")


def write_image(volume: Volume, path: str | os.PathLike, *, overwrite: bool = False,
                compress: bool = True) -> Path:
    """Write ``volume`` atomically as NIfTI, NRRD or MHA, chosen by the extension."""
    import SimpleITK as sitk

    target = Path(path)
    if not target.name.lower().endswith(IMAGE_SUFFIXES):
        raise InputError(f"unsupported image extension in {target.name}; use .nii.gz, .nrrd or .mha")
    with atomic_path(target, overwrite=overwrite) as tmp:
        sitk.WriteImage(volume.to_sitk(), str(tmp), useCompression=compress)
    return target


def save_label_map(volume: Volume, table: LabelTable, path: str | os.PathLike, *,
                   overwrite: bool = False) -> Path:
    """Write a label map (uint8 ids on ``volume``'s grid) and its sidecar JSON.

    Parameters
    ----------
    volume : Volume
        ``array`` of integer class ids, shape (z, y, x).
    table : LabelTable
        Names of the ids; every id in the array must be in the table.
    path : path-like
        Image path; the extension picks the format.
    """
    present = np.unique(volume.array)
    unknown = sorted(set(int(v) for v in present) - set(table.ids))
    if unknown:
        raise ValueError(f"label map contains ids {unknown} that the label table does not name")
    dtype = np.uint8 if max(table.ids) < 256 else np.uint16
    labels = volume.with_array(volume.array.astype(dtype, copy=False))
    sidecar = sidecar_path(path)
    if sidecar.exists() and not overwrite:
        # Refuse before writing anything so we never leave an image without its table.
        from spinect_core.io.atomic import check_writable
        check_writable(sidecar, overwrite=False)
    image_path = write_image(labels, path, overwrite=overwrite)
    doc = {"format": "spinect-labels", "version": 1, "coordinate_system": "LPS",
           "image": image_path.name, **table.to_json()}
    write_text_atomic(sidecar, json.dumps(doc, indent=2) + "\n", overwrite=overwrite)
    return image_path


def read_label_table(path: str | os.PathLike) -> LabelTable | None:
    """The sidecar label table of an image, or ``None`` when there is no sidecar."""
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return None
    try:
        return LabelTable.from_json(json.loads(sidecar.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"label table {sidecar.name} is not valid: {exc}") from exc


def read_label_image(path: str | os.PathLike, *, exact_integers: bool = False) -> Volume:
    """Read a label image (no table): integer ids, shape (z, y, x), LPS geometry.

    Floating-point images are accepted when their values are integers (to ``np.allclose``, or
    exactly with ``exact_integers``) and converted to int32.

    Raises
    ------
    InputError
        Unreadable file, or values that are not integers.
    """
    import SimpleITK as sitk

    p = Path(path)
    try:
        image = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise InputError(f"cannot read label map {p.name}: {str(exc).splitlines()[0]}") from exc
    volume = Volume.from_sitk(image, metadata=CTMetadata(modality="SEG", source_format=p.suffix))
    if not np.issubdtype(volume.array.dtype, np.integer):
        rounded = np.rint(volume.array)
        same = np.array_equal if exact_integers else np.allclose
        if not same(rounded, volume.array):
            raise InputError(f"{p.name} holds non-integer values; it is not a label map")
        volume = volume.with_array(rounded.astype(np.int32))
    return volume


def load_label_map(path: str | os.PathLike, *, default_table: LabelTable | None = None
                   ) -> tuple[Volume, LabelTable]:
    """Read a label map and its table (sidecar, else ``default_table``).

    Returns
    -------
    volume : Volume
        Integer ids, shape (z, y, x), LPS geometry.
    table : LabelTable
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"label map {p} does not exist")
    volume = read_label_image(p)
    table = read_label_table(p) or default_table
    if table is None:
        raise InputError(f"{p.name} has no label table ({sidecar_path(p).name}); "
                         "write one or say which table to use")
    return volume, table
