"""DICOM inputs that are not one CT series: DICOMDIR, Secondary Capture, SR, RT, interleaved
acquisitions, and a series too small to be a CT (issue 16, case 7).

Each is read through its index or named for what it is, never answered "no DICOM images found"
nor merged into one volume.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from spinect_core.errors import (InconsistentSeriesError, NoImagesFoundError, NotCTError,
                                 VolumeTooSmallError)
from spinect_core.io import list_series, load_ct
from spinect_core.io.dicom_scan import is_dicomdir, sop_kind
from spinect_core.io.dicom_write import DicomUIDs
from tests.io import dicom_factory as fac

SC = "1.2.840.10008.5.1.4.1.1.7"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


def ct_slices(n: int = 24, ny: int = 40, nx: int = 40) -> np.ndarray:
    """Air, a soft-tissue disc with fat and a bone block: plausible HU (32 x 32 mm at 0.8 mm)."""
    j, i = np.mgrid[:ny, :nx]
    disc = (i - nx / 2) ** 2 + (j - ny / 2) ** 2 <= (0.45 * nx) ** 2
    s = np.full((n, ny, nx), -1000, np.int16)
    s[:, disc] = 40
    s[:, disc & (j < ny // 3)] = -100
    s[:, ny // 2 - 4:ny // 2 + 4, nx // 2 - 4:nx // 2 + 4] = 700
    return s


def write_ct(folder, *, n=24, spacing=2.0, uids=None, edit=None, start=0.0, **kwargs):
    positions = fac.grid_positions([0.0, 0.0, start], np.eye(3), spacing, n)
    return fac.write_series(folder, ct_slices(n), positions, uids=uids, edit=edit, **kwargs)


def no_identifiers(text: str) -> None:
    for secret in (fac.IDENTIFYING_NAME, fac.IDENTIFYING_ID, fac.IDENTIFYING_DATE, "Doe"):
        assert secret not in text


def non_image_object(path, sop_class: str, modality: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = fac.IDENTIFYING_NAME
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


# --- DICOMDIR ---------------------------------------------------------------------------------------
@pytest.fixture()
def disc(tmp_path):
    """A DICOM 'disc': DICOMDIR plus the files it indexes in pydicom's folder layout."""
    from pydicom.fileset import FileSet

    def study(ds, k):  # what the DICOMDIR's study record needs
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "120000", "1"
        ds.SeriesNumber = ds.get("SeriesNumber", 1) or 1

    files = write_ct(tmp_path / "export", random_names=False, subfolders=False, edit=study)
    fs = FileSet()
    for f in files:
        fs.add(f)
    fs.write(tmp_path / "disc")
    return tmp_path / "disc"


def test_a_dicomdir_is_read_through_its_index(disc):
    dicomdir = disc / "DICOMDIR"
    assert dicomdir.is_file() and is_dicomdir(dicomdir)
    ct = load_ct(dicomdir)
    assert ct.array.shape == (24, 40, 40)
    np.testing.assert_allclose(ct.spacing_mm, [0.8, 0.8, 2.0], atol=1e-6)
    [info] = list_series(dicomdir)
    assert info.modality == "CT" and info.number_of_slices == 24


def test_a_dicomdir_finds_its_files_case_insensitively(disc):
    # A disc copied onto a case-sensitive file system with lower-case names.
    for p in sorted(disc.rglob("*"), key=lambda p: -len(p.parts)):
        if p.name != "DICOMDIR" and p.name != p.name.lower():
            p.rename(p.with_name(p.name.lower()))
    assert load_ct(disc / "DICOMDIR").array.shape == (24, 40, 40)


def test_a_dicomdir_without_its_images_says_so(disc, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(disc / "DICOMDIR", alone / "DICOMDIR")
    with pytest.raises(NoImagesFoundError, match="DICOMDIR .* none of them is beside it") as info:
        load_ct(alone / "DICOMDIR")
    no_identifiers(str(info.value))
    # The folder holding only the index, given as a folder.
    with pytest.raises(NoImagesFoundError, match="DICOMDIR"):
        load_ct(alone)


def test_a_folder_with_a_dicomdir_and_its_images_loads(disc):
    assert load_ct(disc).array.shape == (24, 40, 40)


# --- objects that are not CT ------------------------------------------------------------------------
def test_sop_kind_names():
    assert sop_kind(SC) == "Secondary Capture"
    assert sop_kind(BASIC_TEXT_SR) == "Basic Text SR"
    assert sop_kind(RT_STRUCT) == "RT Structure Set"
    assert sop_kind("1.2.840.10008.5.1.4.1.1.2") == "CT"
    assert sop_kind("1.2.3.4.5", "OT") == "OT"


def test_a_secondary_capture_is_named_as_such(tmp_path):
    def as_sc(ds, k):  # a screenshot of a CT: Modality CT, SC class, no patient geometry
        ds.SOPClassUID = SC
        ds.file_meta.MediaStorageSOPClassUID = SC
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient

    write_ct(tmp_path / "sc", n=1, edit=as_sc)
    for target in (tmp_path / "sc", next((tmp_path / "sc").rglob("*"), None)):
        if target.is_dir() and target != tmp_path / "sc":
            continue
        with pytest.raises(NotCTError, match="the input is a DICOM Secondary Capture, not a CT "
                                             "series") as info:
            load_ct(target)
        no_identifiers(str(info.value))


def test_secondary_captures_with_geometry_and_modality_ct_are_not_a_ct(tmp_path):
    def as_sc(ds, k):
        ds.SOPClassUID = SC
        ds.file_meta.MediaStorageSOPClassUID = SC

    write_ct(tmp_path, edit=as_sc)
    with pytest.raises(NotCTError, match=r"DICOM Secondary Capture \(24 objects\), not a CT"):
        load_ct(tmp_path)


@pytest.mark.parametrize("sop, modality, kind", [(BASIC_TEXT_SR, "SR", "Basic Text SR"),
                                                  (RT_STRUCT, "RTSTRUCT", "RT Structure Set")])
def test_sr_and_rt_objects_are_named(tmp_path, sop, modality, kind):
    path = tmp_path / "obj.dcm"
    non_image_object(path, sop, modality)
    for target in (path, tmp_path):
        with pytest.raises(NotCTError, match=f"the input is a DICOM {kind}, not a CT series"):
            load_ct(target)


def test_a_ct_beside_an_sr_still_loads(tmp_path):
    write_ct(tmp_path / "ct")
    non_image_object(tmp_path / "report.dcm", BASIC_TEXT_SR, "SR")
    assert load_ct(tmp_path).array.shape == (24, 40, 40)


# --- interleaved acquisitions -----------------------------------------------------------------------
def _acquisition(number):
    def edit(ds, k):
        ds.AcquisitionNumber = number
    return edit


def test_two_interleaved_acquisitions_in_one_series_are_refused(tmp_path):
    uids = DicomUIDs()
    write_ct(tmp_path / "a", uids=uids, edit=_acquisition(1))
    write_ct(tmp_path / "b", uids=uids, edit=_acquisition(2), start=0.7, seed=3)  # offset 0.7 mm
    with pytest.raises(InconsistentSeriesError, match="interleave") as info:
        load_ct(tmp_path)
    assert "AcquisitionNumber 1 and 2" in str(info.value) or "AcquisitionNumber 2 and 1" in str(info.value)
    [s] = list_series(tmp_path)
    assert "interleave" in s.problem


def test_two_acquisitions_at_the_same_positions_are_refused(tmp_path):
    uids = DicomUIDs()
    write_ct(tmp_path / "a", uids=uids, edit=_acquisition(1))
    write_ct(tmp_path / "b", uids=uids, edit=_acquisition(2), seed=5)
    with pytest.raises(InconsistentSeriesError, match="interleave|same position"):
        load_ct(tmp_path)


def test_step_and_shoot_blocks_and_per_slice_acquisitions_still_load(tmp_path):
    uids = DicomUIDs()
    # Two blocks meeting with one slice of overlap in range: not interleaved.
    write_ct(tmp_path / "a", n=12, uids=uids, edit=_acquisition(1))
    write_ct(tmp_path / "b", n=12, uids=uids, edit=_acquisition(2), start=24.0, seed=2)
    assert load_ct(tmp_path / "a").array.shape[0] == 12
    assert load_ct(tmp_path).array.shape == (24, 40, 40)

    def per_slice(ds, k):
        ds.AcquisitionNumber = k + 1

    write_ct(tmp_path / "c", edit=per_slice)
    assert load_ct(tmp_path / "c").array.shape == (24, 40, 40)


# --- too small --------------------------------------------------------------------------------------
def test_a_tiny_dicom_series_is_too_small_not_not_hu(tmp_path):
    flat = np.full((5, 5, 5), 40, np.int16)  # no air, no fat: the HU check would refuse it
    fac.write_series(tmp_path, flat, fac.grid_positions([0, 0, 0], np.eye(3), 1.0, 5),
                     spacing_xy=(1.0, 1.0))
    with pytest.raises(VolumeTooSmallError, match="5x5x5 voxels"):
        load_ct(tmp_path)
