"""Build synthetic DICOM CT series (with optional faults) for tests.

The normal slice writer is the library's :func:`spinect_core.io.dicom_write.ct_slice_dataset`;
this module adds what only tests need: arbitrary per-slice positions (gantry tilt, gaps),
shuffled order and random file names, header edits (MR, missing UIDs, no rescale), and
multi-frame files (Enhanced CT with per-frame functional groups, plain multi-frame).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spinect_core.io.dicom_write import DicomUIDs, ct_slice_dataset, ds_number, set_int16_pixels

IDENTIFYING_NAME = "Doe^Jane"
IDENTIFYING_ID = "PID-314159"
IDENTIFYING_DATE = "19450102"


def rotation(ax_deg: float, ay_deg: float, az_deg: float) -> np.ndarray:
    """A rotation matrix (columns = rotated x, y, z axes) from angles about x, y, z in degrees."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", [ax_deg, ay_deg, az_deg], degrees=True).as_matrix()


def grid_positions(origin: np.ndarray, direction: np.ndarray, slice_spacing: float,
                   n: int) -> np.ndarray:
    """ImagePositionPatient of ``n`` slices on a regular orthogonal grid, shape (n, 3)."""
    return np.asarray(origin, float) + np.outer(np.arange(n) * slice_spacing, direction[:, 2])


def sample_world(func: Callable[[np.ndarray], np.ndarray], positions: np.ndarray,
                 row_dir: np.ndarray, col_dir: np.ndarray, spacing_xy: tuple[float, float],
                 shape_yx: tuple[int, int]) -> np.ndarray:
    """Evaluate ``func(points_lps (..., 3)) -> HU`` on every pixel of every slice; (n, ny, nx)."""
    ny, nx = shape_yx
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    inplane = (ii[..., None] * spacing_xy[0] * np.asarray(row_dir)
               + jj[..., None] * spacing_xy[1] * np.asarray(col_dir))
    return np.stack([func(p + inplane) for p in np.asarray(positions, float)])


def write_series(
    folder: Path,
    slices_hu: np.ndarray,
    positions: np.ndarray,
    *,
    direction: np.ndarray = np.eye(3),
    row_dir: np.ndarray | None = None,
    col_dir: np.ndarray | None = None,
    spacing_xy: tuple[float, float] = (0.8, 0.8),
    slice_thickness: float = 2.0,
    modality: str = "CT",
    series_description: str = "synthetic",
    uids: DicomUIDs | None = None,
    shuffle: bool = True,
    random_names: bool = True,
    subfolders: bool = True,
    identifiers: bool = True,
    transfer_syntax: str | None = None,
    edit: Callable[[FileDataset, int], None] | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write one file per slice; returns the paths in slice (not file) order.

    ``identifiers`` puts a fake patient name, ID and birth date into every file so tests can
    check that none of them leaks into messages. ``edit(ds, k)`` may change a dataset before
    it is written (faults).
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    uids = uids or DicomUIDs()
    r = np.asarray(direction[:, 0] if row_dir is None else row_dir, float)
    c = np.asarray(direction[:, 1] if col_dir is None else col_dir, float)
    order = list(range(len(slices_hu)))
    paths: list[Path | None] = [None] * len(order)
    if shuffle:
        rng.shuffle(order)
    for k in order:
        ds = ct_slice_dataset(
            slices_hu[k], position_lps_mm=positions[k], orientation=np.concatenate([r, c]),
            pixel_spacing_xy_mm=spacing_xy, slice_thickness_mm=slice_thickness,
            instance_number=k + 1, uids=uids, series_description=series_description,
            modality=modality)
        if identifiers:
            ds.PatientName = IDENTIFYING_NAME
            ds.PatientID = IDENTIFYING_ID
            ds.PatientBirthDate = IDENTIFYING_DATE
        if edit is not None:
            edit(ds, k)
        if transfer_syntax:
            ds.compress(transfer_syntax)
        name = f"{rng.getrandbits(48):012x}" if random_names else f"IM{k + 1:05d}.dcm"
        sub = folder / f"sub{rng.randint(0, 2)}" if subfolders else folder
        sub.mkdir(exist_ok=True)
        path = sub / name
        ds.save_as(path, enforce_file_format=True)
        paths[k] = path
    return [p for p in paths if p is not None]


def _multiframe_base(slices_hu: np.ndarray, *, sop_class: str, modality: str = "CT"
                     ) -> FileDataset:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = IDENTIFYING_NAME
    ds.PatientID = IDENTIFYING_ID
    ds.SeriesDescription = "multi-frame"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.NumberOfFrames = slices_hu.shape[0]
    set_int16_pixels(ds, np.rint(slices_hu))
    return ds


def write_enhanced_ct(path: Path, slices_hu: np.ndarray, positions: np.ndarray, *,
                      direction: np.ndarray, spacing_xy: tuple[float, float],
                      frame_order: list[int] | None = None) -> Path:
    """An Enhanced CT (one file, per-frame PlanePositionSequence, shared orientation/spacing).

    ``frame_order`` stores the slices in another order (the loader must sort by position).
    """
    order = list(range(len(slices_hu))) if frame_order is None else list(frame_order)
    ds = _multiframe_base(slices_hu[order], sop_class="1.2.840.10008.5.1.4.1.1.2.1")
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [ds_number(spacing_xy[1]), ds_number(spacing_xy[0])]
    measures.SliceThickness = "2"
    shared.PixelMeasuresSequence = Sequence([measures])
    orient = Dataset()
    orient.ImageOrientationPatient = [ds_number(v) for v in
                                      np.concatenate([direction[:, 0], direction[:, 1]])]
    shared.PlaneOrientationSequence = Sequence([orient])
    transform = Dataset()
    transform.RescaleIntercept = "-1024"
    transform.RescaleSlope = "1"
    transform.RescaleType = "HU"
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in order:
        item = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [ds_number(v) for v in positions[k]]
        item.PlanePositionSequence = Sequence([plane])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    # Stored values are HU + 1024 because the shared intercept is -1024.
    ds.PixelData = (np.rint(slices_hu[order]) + 1024).astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_plain_multiframe(path: Path, slices_hu: np.ndarray, *, origin: np.ndarray,
                           direction: np.ndarray, spacing_xy: tuple[float, float],
                           slice_spacing: float) -> Path:
    """A multi-frame CT with shared geometry: one IPP, IOP and SpacingBetweenSlices."""
    ds = _multiframe_base(slices_hu, sop_class="1.2.840.10008.5.1.4.1.1.2")
    ds.ImagePositionPatient = [ds_number(v) for v in origin]
    ds.ImageOrientationPatient = [ds_number(v) for v in
                                  np.concatenate([direction[:, 0], direction[:, 1]])]
    ds.PixelSpacing = [ds_number(spacing_xy[1]), ds_number(spacing_xy[0])]
    ds.SpacingBetweenSlices = ds_number(slice_spacing)
    ds.SliceThickness = ds_number(slice_spacing)
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.save_as(path, enforce_file_format=True)
    return path
