"""Write a phantom to a folder: CT, labels, instances, label tables, metadata, optional DICOM.

Layout of ``out_dir``::

    ct.nii.gz                 HU (int16 or float32), LPS geometry through ITK
    labels.nii.gz             default table (+ labels.labels.json sidecar); 255 = unlabelled
                              (metal of patient-like phantoms), not named by the table
    instances.nii.gz          per level and side (+ instances.labels.json sidecar)
    labels.json               both tables with names
    meta.json                 seed, parameters, geometry, version, landmarks (LPS mm)
    dicom/IM00001.dcm ...     with ``dicom=True``: the CT as a DICOM CT series
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spinect_core.io.atomic import check_writable, write_text_atomic
from spinect_core.io.labelmap import save_label_map, sidecar_path, write_image
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom.generate import Phantom
from spinect_core.progress import ProgressCallback, report, sub_progress

#: Label value of voxels without a reference label (= ``spinect_core.training.loss.UNLABELLED``).
UNLABELLED = 255
CT_NAME = "ct.nii.gz"
LABELS_NAME = "labels.nii.gz"
INSTANCES_NAME = "instances.nii.gz"
TABLES_NAME = "labels.json"
META_NAME = "meta.json"
DICOM_DIR = "dicom"


def phantom_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    """The files :func:`write_phantom` writes (without DICOM slices)."""
    d = Path(out_dir)
    return {"ct": d / CT_NAME, "labels": d / LABELS_NAME, "instances": d / INSTANCES_NAME,
            "labels_sidecar": sidecar_path(d / LABELS_NAME),
            "instances_sidecar": sidecar_path(d / INSTANCES_NAME),
            "tables": d / TABLES_NAME, "meta": d / META_NAME}


def write_phantom(phantom: Phantom, out_dir: str | os.PathLike, *, dicom: bool = False,
                  overwrite: bool = False, progress: ProgressCallback | None = None
                  ) -> dict[str, Path]:
    """Write ``phantom`` into ``out_dir`` (created if needed).

    Parameters
    ----------
    phantom : Phantom
        From :func:`~spinect_core.phantom.generate_phantom`.
    out_dir : path-like
        Target folder.
    dicom : bool
        Also write the CT as a DICOM series into ``out_dir/dicom`` (one file per axial slice).
    overwrite : bool
        Replace existing files; otherwise an existing target raises
        :class:`~spinect_core.io.atomic.FileExistsRefusedError` before anything is written.

    Returns
    -------
    dict of str to Path
        What was written (``ct``, ``labels``, ``instances``, ``tables``, ``meta``, ``dicom``).
    """
    paths = phantom_paths(out_dir)
    # Refuse up front so a refused run leaves no half-written phantom behind.
    for p in paths.values():
        check_writable(p, overwrite=overwrite)
    dicom_dir = Path(out_dir) / DICOM_DIR
    if dicom and dicom_dir.exists() and any(dicom_dir.iterdir()) and not overwrite:
        check_writable(dicom_dir, overwrite=False)
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    report(progress, 0.0, "writing CT")
    write_image(phantom.ct, paths["ct"], overwrite=overwrite)
    report(progress, 0.3, "writing labels")
    if (phantom.labels.array == UNLABELLED).any():
        # Patient-like phantoms mark metal 255: unlabelled, deliberately not a class, so the
        # table does not name it (the training loader keeps such voxels out of the loss).
        label_file = write_image(phantom.labels, paths["labels"], overwrite=overwrite)
        doc = {"format": "spinect-labels", "version": 1, "coordinate_system": "LPS",
               "image": label_file.name, **DEFAULT_LABELS.to_json(),
               "unlabelled_value": UNLABELLED}
        write_text_atomic(paths["labels_sidecar"], json.dumps(doc, indent=2) + "\n",
                          overwrite=overwrite)
    else:
        save_label_map(phantom.labels, DEFAULT_LABELS, paths["labels"], overwrite=overwrite)
    save_label_map(phantom.instances, phantom.instance_table, paths["instances"],
                   overwrite=overwrite)
    tables = {"format": "spinect-phantom-labels", "version": 1, "coordinate_system": "LPS",
              "labels": {"image": LABELS_NAME, **DEFAULT_LABELS.to_json()},
              "instances": {"image": INSTANCES_NAME, **phantom.instance_table.to_json()}}
    write_text_atomic(paths["tables"], json.dumps(tables, indent=2) + "\n", overwrite=overwrite)
    meta = dict(phantom.meta)
    meta["files"] = {k: p.name for k, p in paths.items()}
    if dicom:
        meta["files"]["dicom"] = DICOM_DIR
    write_text_atomic(paths["meta"], json.dumps(meta, indent=1) + "\n", overwrite=overwrite)
    out = dict(paths)
    if dicom:
        out["dicom"] = dicom_dir
        write_ct_dicom(phantom, dicom_dir, overwrite=overwrite,
                       progress=sub_progress(progress, 0.6, 1.0, "DICOM: "))
    report(progress, 1.0, "phantom written")
    return out


def write_ct_dicom(phantom: Phantom, folder: str | os.PathLike, *, overwrite: bool = False,
                   progress: ProgressCallback | None = None) -> list[Path]:
    """Write the phantom CT as a DICOM CT series with the shared writer of ``spinect_core.io``."""
    import numpy as np

    from spinect_core.io.dicom_write import write_dicom_series

    vol = phantom.ct
    if vol.array.dtype != np.int16:  # DICOM stores rounded integer HU
        vol = vol.with_array(np.clip(np.rint(vol.array), -1024, 3071).astype(np.int16))
    return write_dicom_series(vol, folder, series_description=vol.metadata.series_description,
                              overwrite=overwrite, progress=progress)
