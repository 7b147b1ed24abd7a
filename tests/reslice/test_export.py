"""Plane exports: NIfTI with the 3D affine, DICOM derived series, PNG with overlay; no overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.reslice import (export_plane_dicom, export_plane_nifti, export_plane_png,
                                  export_planes, oblique_planes)
from tests.reslice.helpers import ENDPLATE_NORMAL, ENTRY, TARGET, scene, trajectory


@pytest.fixture(scope="module")
def planes():
    ct, labels = scene()
    return ct, oblique_planes(ct, labels, trajectory(ENTRY, TARGET),
                              endplate_normal_lps=ENDPLATE_NORMAL, pixel_mm=0.5,
                              size_mm=(40.0, 24.0), padding_mm=4.0)


def test_nifti_reads_back_with_the_3d_affine(planes, tmp_path):
    import SimpleITK as sitk

    _, (main, _) = planes
    written = export_plane_nifti(main, tmp_path / "p.nii.gz", labels_path=tmp_path / "p_seg.nii.gz")
    assert [p.name for p in written] == ["p.nii.gz", "p_seg.nii.gz"]
    assert (tmp_path / "p_seg.labels.json").exists()
    img = sitk.ReadImage(str(tmp_path / "p.nii.gz"))
    assert img.GetSize() == (main.shape[1], main.shape[0], 1)
    for point, rc in ((TARGET, main.target_pixel), (ENTRY, main.entry_pixel)):
        idx = img.TransformPhysicalPointToContinuousIndex([float(v) for v in point])
        np.testing.assert_allclose(idx, [rc[1], rc[0], 0.0], atol=1e-3)
    r, c = int(main.target_pixel[0]), int(main.target_pixel[1])
    assert sitk.GetArrayFromImage(img)[0, r, c] == pytest.approx(main.image[r, c], abs=1e-4)
    # an arbitrary pixel's LPS position
    np.testing.assert_allclose(img.TransformIndexToPhysicalPoint((5, 3, 0)), main.pixel_to_lps(3, 5),
                               atol=1e-3)
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "p_seg.nii.gz")))[0]
    np.testing.assert_array_equal(seg, main.labels)


def test_dicom_is_a_new_derived_series_in_the_same_frame_of_reference(planes, tmp_path):
    import pydicom

    ct, (main, _) = planes
    path = export_plane_dicom(main, tmp_path / "dcm")
    ds = pydicom.dcmread(path)
    src = ct.metadata
    assert ds.SeriesInstanceUID not in (src.series_instance_uid, "")
    assert ds.SOPInstanceUID != ds.SeriesInstanceUID
    assert ds.FrameOfReferenceUID == src.frame_of_reference_uid
    assert ds.StudyInstanceUID == src.study_instance_uid
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.SeriesDescription == "SPINECT oblique plane (needle)"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.series_instance_uid
    assert ds.PatientName == "" and ds.PatientID == ""
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    np.testing.assert_allclose(iop, np.concatenate([main.col_axis_lps, main.row_axis_lps]), atol=1e-6)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], main.origin_lps_mm,
                               atol=1e-4)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.5, 0.5])
    assert (ds.Rows, ds.Columns) == main.shape
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(hu[main.inside], np.rint(main.image[main.inside]), atol=0.5)
    # a second export gets another series UID but stays in the frame of reference
    ds2 = pydicom.dcmread(export_plane_dicom(main, tmp_path / "dcm2"))
    assert ds2.SeriesInstanceUID != ds.SeriesInstanceUID
    assert ds2.FrameOfReferenceUID == ds.FrameOfReferenceUID


def test_png_has_the_overlay_colours(planes, tmp_path):
    from PIL import Image

    _, (main, _) = planes
    path = export_plane_png(main, tmp_path / "p.png")
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert rgb.shape[:2] == (2 * main.shape[0], 2 * main.shape[1])
    assert rgb.std() > 5  # not blank
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)       # the needle
    yellow = (rgb[..., 0] - rgb[..., 2] > 60) & (rgb[..., 1] - rgb[..., 2] > 50) & ~red  # nerve
    assert red.sum() > 20 and yellow.sum() > 20
    assert not Image.open(path).info.get("exif")
    with pytest.raises(ValueError):
        export_plane_png(main, tmp_path / "p.jpg")


def test_exports_never_overwrite_silently(planes, tmp_path):
    _, (main, companion) = planes
    export_plane_png(main, tmp_path / "p.png")
    with pytest.raises(FileExistsRefusedError):
        export_plane_png(main, tmp_path / "p.png")
    export_plane_png(main, tmp_path / "p.png", overwrite=True)
    export_plane_dicom(main, tmp_path / "d")
    with pytest.raises(FileExistsRefusedError):
        export_plane_dicom(main, tmp_path / "d")
    # a refused label map leaves no CT behind
    (tmp_path / "s.nii.gz").write_bytes(b"x")
    with pytest.raises(FileExistsRefusedError):
        export_plane_nifti(main, tmp_path / "n.nii.gz", labels_path=tmp_path / "s.nii.gz")
    assert not (tmp_path / "n.nii.gz").exists()


def test_export_planes_writes_both_planes_in_one_frame_of_reference(planes, tmp_path):
    import pydicom

    ct, (main, companion) = planes
    no_uids = type(ct.metadata)()  # a NIfTI source: no study or frame of reference
    written = export_planes((main, companion), tmp_path, source_metadata=no_uids)
    assert set(written) == {"needle", "companion"}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "needle_plane.png" in names and "companion_plane_labels.nii.gz" in names
    a = pydicom.dcmread(written["needle"][-1])
    b = pydicom.dcmread(written["companion"][-1])
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID and a.StudyInstanceUID == b.StudyInstanceUID
    assert a.SeriesInstanceUID != b.SeriesInstanceUID
    assert b.SeriesDescription == "SPINECT oblique plane (companion)"
    assert json.loads((tmp_path / "needle_plane_labels.labels.json").read_text())["coordinate_system"] == "LPS"
