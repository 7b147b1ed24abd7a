"""Derived DICOM (planes, secondary captures, SEG, SR) on small series, and the phantom's own
series: valid for dciodvfy, accepted by highdicom as a source, filed with the source's patient.

dciodvfy (dicom3tools) is run where installed (CI installs it); without it those checks skip.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from spinect_core.io import load_ct
from spinect_core.io.dicom_derived import (dicom_source, plane_dataset, secondary_capture_dataset,
                                           write_dataset)
from spinect_core.io.dicom_seg import segmentation_dataset
from spinect_core.io.dicom_sr import plan_sr_dataset
from spinect_core.io.dicom_write import write_dicom_series
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.reslice.plane import ObliquePlane
from spinect_core.volume import CTMetadata, Volume
from tests.dciodvfy import dciodvfy_errors
from tests.io import dicom_factory as fac

PATIENT_ID = "ID-777"


def _ball_volume() -> Volume:
    # Just above the loader's "too small for a spine" limits (20 mm, 8 voxels per axis).
    z, y, x = np.mgrid[:12, :24, :26]
    arr = np.where((x - 12) ** 2 + (y - 10) ** 2 + (z - 6) ** 2 < 20, 700, -50).astype(np.int16)
    return Volume(array=arr, spacing_mm=[1.0, 1.0, 2.0], origin_lps_mm=[-10.0, 5.0, 30.0],
                  metadata=CTMetadata(series_description="small"))


@pytest.fixture(scope="module")
def source_ct(tmp_path_factory) -> Volume:
    """A small CT written by the library, given a patient ID, read back by the loader."""
    folder = tmp_path_factory.mktemp("ct")
    for path in write_dicom_series(_ball_volume(), folder):
        ds = pydicom.dcmread(path)
        ds.PatientID = PATIENT_ID
        ds.save_as(path)
    return load_ct(folder)


def _plane(ct: Volume) -> ObliquePlane:
    img = np.linspace(-100, 900, 30 * 40, dtype=np.float32).reshape(30, 40)
    t = np.radians(30)
    return ObliquePlane(image=img, labels=None, table=None, inside=np.ones(img.shape, bool),
                        origin_lps_mm=ct.index_to_lps(np.array([2.0, 2.0, 3.0])),
                        col_axis_lps=np.array([1.0, 0.0, 0.0]),
                        row_axis_lps=np.array([0.0, np.cos(t), np.sin(t)]), pixel_mm=0.5,
                        needle_pixels=np.array([[15.0, 30.0], [15.0, 5.0]]), kind="needle")


def test_the_library_series_passes_dciodvfy_and_highdicom_takes_it_as_source(tmp_path) -> None:
    paths = write_dicom_series(_ball_volume(), tmp_path / "ct")
    assert dciodvfy_errors(paths[0]) == []
    ds = pydicom.dcmread(paths[0])
    for name in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                 "AccessionNumber", "ReferringPhysicianName", "PositionReferenceIndicator"):
        assert name in ds and ds[name].value in ("", None), name  # Type 2: present, empty
    assert str(ds.PatientName) == "" and ds.PatientID == ""  # the phantom names no one
    ct = load_ct(tmp_path / "ct")
    labels = ct.with_array((ct.array > 300).astype(np.uint8))
    seg, segments = segmentation_dataset(labels, DEFAULT_LABELS, dicom_source(ct))
    assert [s.name for s in segments] == ["bone"]


def test_plane_and_screenshot_carry_the_source_and_pass_dciodvfy(source_ct, tmp_path) -> None:
    source = dicom_source(source_ct)
    assert not source.generated and source.on_grid
    plane = _plane(source_ct)
    ds = plane_dataset(plane, source, ct=source_ct)
    path = write_dataset(ds, tmp_path / "plane.dcm")
    assert dciodvfy_errors(path) == []
    back = pydicom.dcmread(path)
    assert back.PatientID == PATIENT_ID
    assert back.StudyInstanceUID == source_ct.metadata.study_instance_uid
    assert back.FrameOfReferenceUID == source_ct.metadata.frame_of_reference_uid
    # The plane rises 30 degrees from slice 3: its last row is 29 * 0.5 * sin(30) mm higher,
    # so it crosses slices 3 .. ceil(3 + 7.25 / 2) = 7.
    referenced = [i.ReferencedSOPInstanceUID
                  for i in back.ReferencedSeriesSequence[0].ReferencedInstanceSequence]
    uids = [str(h.SOPInstanceUID) for h in source_ct.metadata.source_headers]
    assert referenced == uids[3:8]
    np.testing.assert_array_equal(back.pixel_array, np.rint(plane.image).astype(np.int16))

    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :, 0] = 200
    sc = secondary_capture_dataset(rgb, source, series_description="view", series_number=951,
                                   derivation_description="3D rendering")
    path = write_dataset(sc, tmp_path / "sc.dcm")
    assert dciodvfy_errors(path) == []
    back = pydicom.dcmread(path)
    assert back.PatientID == PATIENT_ID and back.Modality == "OT"
    np.testing.assert_array_equal(back.pixel_array, rgb)


def test_seg_and_sr_of_a_resampled_stack_reference_every_source_slice(tmp_path) -> None:
    """A tilted-gantry series is resampled by the loader: the SEG frames get the volume's grid
    positions, and still reference the source series; the SR points are in its frame."""
    t = np.radians(15.0)
    row, col = np.array([1.0, 0, 0]), np.array([0, np.cos(t), -np.sin(t)])
    pos = np.array([[-5.0, -8.0, 0.0]]) + np.outer(np.arange(16) * 1.5, [0, 0, 1])
    arr = fac.sample_world(lambda p: np.where(np.linalg.norm(p - [5, 5, 10], axis=-1) < 4, 800,
                                              -100), pos, row, col, (0.9, 0.9), (30, 26))
    fac.write_series(tmp_path / "tilt", arr, pos, row_dir=row, col_dir=col, spacing_xy=(0.9, 0.9))
    ct = load_ct(tmp_path / "tilt")
    source = dicom_source(ct)
    assert not source.generated and not source.on_grid
    labels = ct.with_array((ct.array > 300).astype(np.uint8))
    seg, _ = segmentation_dataset(labels, DEFAULT_LABELS, source)
    path = write_dataset(seg, tmp_path / "seg.dcm")
    assert dciodvfy_errors(path) == []
    back = pydicom.dcmread(path)
    referenced = {i.ReferencedSOPInstanceUID
                  for i in back.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {str(h.SOPInstanceUID) for h in ct.metadata.source_headers}
    # The frames lie on the volume's slices that hold the ball, one frame each.
    k = np.flatnonzero((labels.array > 0).any(axis=(1, 2)))
    want = ct.index_to_lps(np.stack([np.zeros(len(k)), np.zeros(len(k)), k], axis=1))
    got = np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
                    for f in back.PerFrameFunctionalGroupsSequence])
    assert len(got) == len(k)
    assert all(np.abs(want - g).max(axis=1).min() < 1e-3 for g in got)

    target, entry = ct.index_to_lps(np.array([10.0, 10.0, 5.0])), ct.index_to_lps(np.array([0, 0, 9]))
    doc = {"sides": {"left": {"kambin": {"found": False}, "safe": {"found": False},
                              "trajectory": {"entry_lps_mm": list(entry),
                                             "target_lps_mm": list(target),
                                             "length_mm": float(np.linalg.norm(entry - target)),
                                             "min_nerve_clearance_mm": 3.0, "window": "kambin"}}}}
    sr = plan_sr_dataset(doc, source)
    path = write_dataset(sr, tmp_path / "sr.dcm")
    assert dciodvfy_errors(path) == []
    patient = str(ct.metadata.source_headers[0].PatientID)
    assert patient and pydicom.dcmread(path).PatientID == patient
