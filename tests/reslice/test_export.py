"""Plane exports: NIfTI with the 3D affine, PNG with overlay, no overwrite; the planes as DICOM come
from the derived writer (spinect_core.io.dicom_derived) only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.reslice import export_plane_nifti, export_plane_png, export_planes, oblique_planes
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


def test_the_planes_as_dicom_are_the_derived_writers_series(planes, tmp_path):
    """reslice writes no DICOM of its own (its writer left out the patient module, so a PACS filed
    the plane as another patient's study); a plane as DICOM is dicom_derived's derived CT, checked
    here on a real oblique plane: frame of reference, geometry and HU."""
    import pydicom

    import spinect_core.reslice as reslice
    from spinect_core.io.dicom_derived import dicom_source, plane_dataset, write_dataset

    assert not hasattr(reslice, "export_plane_dicom")
    ct, (main, _) = planes
    source = dicom_source(ct)  # no source headers here: a generated study in the CT's frame
    ds = pydicom.dcmread(write_dataset(plane_dataset(main, source, ct=ct), tmp_path / "p.dcm"))
    assert ds.FrameOfReferenceUID == ct.metadata.frame_of_reference_uid
    assert ds.StudyInstanceUID == source.study_instance_uid
    assert ds.SeriesInstanceUID not in (source.series_instance_uid, "")
    assert "PatientName" in ds and ds.PatientID == "SPINECT-ANON"  # the patient module is there
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.SeriesDescription == "SPINECT oblique plane (needle)"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.series_instance_uid
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    np.testing.assert_allclose(iop, np.concatenate([main.col_axis_lps, main.row_axis_lps]), atol=1e-6)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], main.origin_lps_mm,
                               atol=1e-4)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.5, 0.5])
    assert (ds.Rows, ds.Columns) == main.shape
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(hu[main.inside], np.rint(main.image[main.inside]), atol=0.5)
    assert np.all(hu[~main.inside] == -1024)


def test_png_has_the_overlay_colours(planes, tmp_path):
    from PIL import Image

    _, (main, _) = planes
    path = export_plane_png(main, tmp_path / "p.png")
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert rgb.shape[:2] == (2 * main.shape[0], 2 * main.shape[1])
    assert rgb.std() > 5  # not blank
    from spinect_core.vocabulary import NEEDLE_COLOUR

    needle = np.abs(rgb - np.array(NEEDLE_COLOUR)).max(axis=-1) <= 10  # the needle, orange
    yellow = (rgb[..., 0] - rgb[..., 2] > 60) & (rgb[..., 1] - rgb[..., 2] > 50) & ~needle  # nerve
    assert needle.sum() > 20 and yellow.sum() > 20
    assert not Image.open(path).info.get("exif")
    with pytest.raises(ValueError):
        export_plane_png(main, tmp_path / "p.jpg")


def test_exports_never_overwrite_silently(planes, tmp_path):
    _, (main, companion) = planes
    export_plane_png(main, tmp_path / "p.png")
    with pytest.raises(FileExistsRefusedError):
        export_plane_png(main, tmp_path / "p.png")
    export_plane_png(main, tmp_path / "p.png", overwrite=True)
    # a refused label map leaves no CT behind
    (tmp_path / "s.nii.gz").write_bytes(b"x")
    with pytest.raises(FileExistsRefusedError):
        export_plane_nifti(main, tmp_path / "n.nii.gz", labels_path=tmp_path / "s.nii.gz")
    assert not (tmp_path / "n.nii.gz").exists()


def test_export_planes_writes_nifti_and_png_only(planes, tmp_path):
    _, (main, companion) = planes
    written = export_planes((main, companion), tmp_path)
    assert set(written) == {"needle", "companion"}
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert names == sorted(f"{kind}_plane{end}" for kind in ("needle", "companion")
                           for end in (".nii.gz", ".png", "_labels.nii.gz", "_labels.labels.json"))
    assert not [p for files in written.values() for p in files if p.suffix == ".dcm"]
    assert json.loads((tmp_path / "needle_plane_labels.labels.json").read_text())["coordinate_system"] == "LPS"
