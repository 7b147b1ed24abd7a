"""A plan on a CT read from DICOM: the derived DICOM objects a PACS files with that CT.

The phantom plan of ``conftest.planned`` is exported with its CT written as a DICOM series (with
a patient name and ID, as a hospital's would have) and read back through the loader, so the
export sees real source headers. Every written object must pass dciodvfy (skipped only where
dicom3tools is not installed; CI installs it), carry the source's patient, study and frame of
reference and reference the source instances; the SEG reads back with highdicom as the label map;
the SR holds the needles in the CT's frame; plan.json names every UID.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS
from tests.dciodvfy import dciodvfy_errors

PATIENT_NAME = "Testpatient^Anna"
PATIENT_ID = "PAT-0042"


@pytest.fixture(scope="module")
def dicom_ct(planned, tmp_path_factory):
    """The planned CT written as a DICOM series with a patient, then loaded back."""
    import pydicom

    from spinect_core.io.dicom import load_dicom
    from spinect_core.io.dicom_write import write_dicom_series

    ct, _, _, _ = planned
    folder = tmp_path_factory.mktemp("source") / "ct"
    for path in write_dicom_series(ct, folder):
        ds = pydicom.dcmread(path)
        ds.PatientName = PATIENT_NAME
        ds.PatientID = PATIENT_ID
        ds.StudyDate = "20260101"
        ds.save_as(path)
    loaded = load_dicom(folder)
    assert loaded.same_grid(ct)
    return loaded


@pytest.fixture(scope="module")
def dicom_outputs(planned, dicom_ct, tmp_path_factory):
    from spinect_core.report import write_plan_outputs

    _, ph, plan, engine = planned
    out = tmp_path_factory.mktemp("dicomplan") / "out"
    written = write_plan_outputs(plan, engine, out, ct=dicom_ct, labels=ph.labels,
                                 table=DEFAULT_LABELS, meshes=False)
    return out, written


def test_the_loader_keeps_the_source_headers_in_memory_only(dicom_ct) -> None:
    headers = dicom_ct.metadata.source_headers
    assert len(headers) == dicom_ct.shape_zyx[0]
    assert all("PixelData" not in h for h in headers)
    assert str(headers[0].PatientID) == PATIENT_ID
    # Positions follow the volume's slices.
    for k in (0, len(headers) - 1):
        np.testing.assert_allclose([float(v) for v in headers[k].ImagePositionPatient],
                                   dicom_ct.index_to_lps(np.array([0.0, 0.0, k])), atol=1e-3)
    assert "source_headers" not in dicom_ct.metadata.to_dict()
    json.dumps(dicom_ct.metadata.to_dict())  # stays JSON-ready


def test_every_dicom_object_passes_dciodvfy(dicom_outputs) -> None:
    out, written = dicom_outputs
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    kinds = {o["kind"] for o in doc["dicom"]["objects"]}
    assert kinds == {"plane", "secondary_capture", "segmentation", "structured_report",
                     "encapsulated_pdf"}
    for obj in doc["dicom"]["objects"]:
        assert dciodvfy_errors(out / obj["path"]) == [], obj["path"]


def test_derived_objects_carry_the_source_patient_study_and_frame(dicom_ct, dicom_outputs) -> None:
    import pydicom

    out, _ = dicom_outputs
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    meta = dicom_ct.metadata
    assert doc["source"] == {"format": "dicom", "study_instance_uid": meta.study_instance_uid,
                             "series_instance_uid": meta.series_instance_uid,
                             "frame_of_reference_uid": meta.frame_of_reference_uid}
    assert doc["dicom"]["source"] == "dicom"
    assert doc["dicom"]["study_instance_uid"] == meta.study_instance_uid
    source_sops = {str(h.SOPInstanceUID) for h in meta.source_headers}
    series_seen = set()
    for obj in doc["dicom"]["objects"]:
        ds = pydicom.dcmread(out / obj["path"])
        assert str(ds.PatientName) == PATIENT_NAME and ds.PatientID == PATIENT_ID
        assert ds.StudyInstanceUID == meta.study_instance_uid and ds.StudyDate == "20260101"
        assert ds.SeriesInstanceUID == obj["series_instance_uid"] != meta.series_instance_uid
        assert ds.SOPInstanceUID == obj["sop_instance_uid"]
        assert ds.SOPClassUID == obj["sop_class_uid"]
        series_seen.add(ds.SeriesInstanceUID)
        if obj["kind"] in ("plane", "segmentation"):  # the SR: in its SCOORD3D items (below)
            assert ds.FrameOfReferenceUID == meta.frame_of_reference_uid
        # References to the source instances, each an instance of the CT.
        if obj["kind"] == "structured_report":
            refs = [i.ReferencedSOPInstanceUID
                    for s in ds.CurrentRequestedProcedureEvidenceSequence
                    for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence]
        elif obj["kind"] == "encapsulated_pdf":
            refs = [i.ReferencedSOPInstanceUID for i in ds.SourceInstanceSequence]
        else:
            series = ds.ReferencedSeriesSequence[0]
            assert series.SeriesInstanceUID == meta.series_instance_uid
            refs = [i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence]
            if obj["kind"] != "segmentation":
                assert {i.ReferencedSOPInstanceUID for i in ds.SourceImageSequence} == set(refs)
        assert refs and set(refs) <= source_sops, obj["path"]
    assert len(series_seen) == len(doc["dicom"]["objects"])  # one series per object
    # Nothing but DICOM files under dicom/, named without identifiers.
    names = [p.relative_to(out).as_posix() for p in (out / "dicom").rglob("*") if p.is_file()]
    assert sorted(names) == sorted(o["path"] for o in doc["dicom"]["objects"])
    for p in out.rglob("*"):
        assert PATIENT_ID not in p.name and "Testpatient" not in p.name
    for name in ("report.html", "plan.json"):
        text = (out / name).read_text(encoding="utf-8")
        assert PATIENT_ID not in text and "Testpatient" not in text


def test_plane_geometry_is_the_reformat_in_the_ct_frame(planned, dicom_outputs) -> None:
    import pydicom

    out, _ = dicom_outputs
    _, _, plan, _ = planned
    for side, sp in plan.sides.items():
        ds = pydicom.dcmread(out / "dicom" / f"planes_{side}_needle" / "IM00001.dcm")
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert ds.DerivationCodeSequence[0].CodeValue == "113072"  # multiplanar reformatting
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        spacing = float(ds.PixelSpacing[0])
        # The target lies in the image plane, on a pixel (row, col) inside the image.
        rel = sp.trajectory.target_lps_mm - ipp
        normal = np.cross(iop[:3], iop[3:])
        assert abs(rel @ normal) < 1e-2
        col, row = rel @ iop[:3] / spacing, rel @ iop[3:] / spacing
        assert 0 <= col < ds.Columns and 0 <= row < ds.Rows


def test_seg_reads_back_as_the_label_map(planned, dicom_ct, dicom_outputs) -> None:
    import highdicom as hd

    out, _ = dicom_outputs
    _, ph, _, _ = planned
    seg = hd.seg.segread(out / "dicom" / "seg.dcm")
    assert seg.SegmentationType == "BINARY"
    labels = [d.SegmentLabel for d in seg.SegmentSequence]
    assert labels == ["bone", "nerve", "disc", "dura"]
    types = {d.SegmentLabel: d.SegmentedPropertyTypeCodeSequence[0].CodeValue
             for d in seg.SegmentSequence}
    assert types == {"bone": "272673000", "nerve": "91728009", "disc": "360499006",
                     "dura": "18545000"}
    # Frame count: one frame per slice holding the segment, per segment.
    label_map = np.asarray(ph.labels.array)
    expected_frames = sum(int(np.any(label_map == i, axis=(1, 2)).sum()) for i in (1, 2, 3, 4))
    assert seg.NumberOfFrames == expected_frames
    # Frames read back per source slice (in the CT's z order) give the label map again.
    uids = [str(h.SOPInstanceUID) for h in dicom_ct.metadata.source_headers]
    got = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids,
                                            combine_segments=True, relabel=False,
                                            ignore_spatial_locations=False)
    want = np.where(np.isin(label_map, [1, 2, 3, 4]), label_map, 0)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_sr_holds_the_needles_in_the_ct_frame(planned, dicom_ct, dicom_outputs) -> None:
    import highdicom as hd

    out, _ = dicom_outputs
    _, _, plan, _ = planned
    sr = hd.sr.srread(out / "dicom" / "sr.dcm")
    frame = dicom_ct.metadata.frame_of_reference_uid
    lines, polygons, areas = [], [], []

    def walk(items):
        for item in items:
            if item.ValueType == "SCOORD3D":
                assert item.ReferencedFrameOfReferenceUID == frame
                data = np.array(item.GraphicData, dtype=float).reshape(-1, 3)
                (lines if item.GraphicType == "POLYLINE" else polygons).append(data)
            if item.ValueType == "NUM" and item.ConceptNameCodeSequence[0].CodeValue == "42798000":
                areas.append(float(item.MeasuredValueSequence[0].NumericValue))
            walk(item.get("ContentSequence", []))

    walk(sr.ContentSequence)
    assert len(lines) == len(plan.sides)
    for sp in plan.sides.values():
        t = sp.trajectory
        match = [ln for ln in lines if np.allclose(ln[-1], t.target_lps_mm, atol=1e-3)]
        assert len(match) == 1
        np.testing.assert_allclose(match[0][0], t.entry_lps_mm, atol=1e-3)
    assert len(polygons) == 2 * len(plan.sides)  # Kambin and safe, both sides
    want = sorted(round(sp.window(k).plateau_view.area_mm2, 3) for sp in plan.sides.values()
                  for k in ("kambin", "safe"))
    assert sorted(round(a, 3) for a in areas) == pytest.approx(want, abs=1e-3)


def test_outputs_get_the_umask_mode(planned, dicom_ct, tmp_path) -> None:
    import os

    from spinect_core.report import write_plan_outputs
    from spinect_core.report.exports import ExportOptions

    _, ph, plan, engine = planned
    old = os.umask(0o027)
    try:
        out = tmp_path / "modes"
        write_plan_outputs(plan, engine, out, ct=dicom_ct, labels=ph.labels,
                           table=DEFAULT_LABELS, meshes=False,
                           options=ExportOptions(pdf=False))
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and {p.stat().st_mode & 0o777 for p in files} == {0o640}


def test_report_pdf_and_its_encapsulation(dicom_outputs) -> None:
    import pydicom

    out, _ = dicom_outputs
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    ds = pydicom.dcmread(out / "dicom" / "report_pdf.dcm")
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert bytes(ds.EncapsulatedDocument)[:int(ds.EncapsulatedDocumentLength)] == pdf
    assert PATIENT_ID.encode() not in pdf


def test_a_nifti_ct_gets_a_generated_study(planned, tmp_path) -> None:
    """No DICOM source: a new study with a neutral patient, never the empty-patient copy of a
    real study; still valid DICOM."""
    import pydicom

    from spinect_core.io.dicom_derived import GENERATED_PATIENT_ID, dicom_source
    from spinect_core.io.dicom_seg import segmentation_dataset
    from spinect_core.io.dicom_derived import write_dataset

    ct, ph, _, _ = planned
    ct = dataclasses.replace(ct, metadata=dataclasses.replace(ct.metadata, source_format="nifti"))
    source = dicom_source(ct)
    assert source.generated and source.study_instance_uid != ct.metadata.study_instance_uid
    assert source.frame_of_reference_uid == ct.metadata.frame_of_reference_uid
    seg, _ = segmentation_dataset(ph.labels, DEFAULT_LABELS, source)
    path = write_dataset(seg, tmp_path / "seg.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PatientID == GENERATED_PATIENT_ID and str(ds.PatientName) == ""
    assert "PatientName" in ds
    assert dciodvfy_errors(path) == []


def test_a_foreign_dicom_folder_is_refused_before_planning_and_never_replaced(planned, tmp_path):
    """The phantom writes its CT series into OUT/dicom: planning into OUT must not take that
    folder for a plan's (and delete it with --force)."""
    from spinect_core.errors import InputError
    from spinect_core.report import write_plan_outputs
    from spinect_core.report.exports import ExportOptions, check_output_dir

    ct, ph, plan, engine = planned
    out = tmp_path / "case"
    (out / "dicom").mkdir(parents=True)
    (out / "dicom" / "IM00001.dcm").write_bytes(b"the CT")
    for overwrite in (False, True):
        with pytest.raises(InputError, match="not a plan's"):
            check_output_dir(out, overwrite=overwrite)
    # Without DICOM objects the folder is simply left alone.
    write_plan_outputs(plan, engine, out, ct=ct, labels=ph.labels, table=DEFAULT_LABELS,
                       meshes=False, overwrite=True, options=ExportOptions(dicom=False, pdf=False))
    assert (out / "dicom" / "IM00001.dcm").read_bytes() == b"the CT"
    assert (out / "plan.json").is_file()


def test_the_drrs_are_secondary_captures_with_their_patient_orientation(planned, dicom_outputs
                                                                        ) -> None:
    # Issue 17: the simulated fluoroscopy beside the other derived objects, in the CT's study.
    import pydicom
    from PIL import Image

    from spinect_core.io.dicom_derived import SECONDARY_CAPTURE_STORAGE, patient_orientation

    out, _ = dicom_outputs
    _, _, plan, _ = planned
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    listed = {o["path"]: o for o in doc["dicom"]["objects"]}
    checked = 0
    for side, sp in plan.sides.items():
        for kind in ("kambin", "safe"):
            if not sp.window(kind).found:
                continue
            rel = f"dicom/drr_{side}_{kind}.dcm"
            assert listed[rel]["kind"] == "secondary_capture"
            assert dciodvfy_errors(out / rel) == [], rel
            ds = pydicom.dcmread(out / rel)
            assert ds.SOPClassUID == SECONDARY_CAPTURE_STORAGE and ds.Modality == "OT"
            assert "DRR" in ds.SeriesDescription and "tube below the table" in ds.DerivationDescription
            assert ds.BurnedInAnnotation == "NO"
            g = json.loads((out / f"drr_{side}_{kind}.json").read_text(encoding="utf-8"))["geometry"]
            orientation = patient_orientation(g["row_axis_lps"], g["col_axis_lps"])
            assert list(ds.PatientOrientation) == orientation
            # Seen from the back, head up: rows run towards the feet, columns towards the right.
            assert "F" in orientation[1] and "R" in orientation[0]
            png = np.asarray(Image.open(out / f"drr_{side}_{kind}.png").convert("RGB"))
            assert np.array_equal(ds.pixel_array, png)
            checked += 1
    assert checked >= 2
    assert patient_orientation((0, 0, -1), (-1, 0, 0)) == ["R", "F"]  # straight PA, head up
    assert patient_orientation((0, 0, -1), (-0.8, -0.6, 0)) == ["RA", "F"]
