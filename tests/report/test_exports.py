"""write_plan_outputs on a small phantom plan: every file, and each one read back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.plan import PLAN_SCHEMA_VERSION
from spinect_core.report import INTENDED_USE, validate_plan_document, write_plan_outputs
from spinect_core.report.render import NEEDLE_COLOUR, WINDOW_COLOURS

from .conftest import FRAME_OF_REFERENCE, SERIES


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_every_file_is_written(planned, outputs) -> None:
    out, written, calls = outputs
    _, _, plan, _ = planned
    names = {p.relative_to(out).as_posix() for files in written.values() for p in files}
    expected = {"plan.json", "report.html", "report.pdf", "dicom/seg.dcm", "dicom/sr.dcm",
                "dicom/report_pdf.dcm"}
    for side in ("left", "right"):
        assert plan.sides[side].trajectory is not None, side  # the phantom has a needle each side
        expected |= {f"needle_{side}.mrk.json", f"screenshot_{side}_kambin.png",
                     f"screenshot_{side}_safe.png", f"area_map_{side}_kambin.png",
                     f"area_map_{side}_safe.png", f"dicom/sc_{side}_kambin.dcm",
                     f"dicom/sc_{side}_safe.dcm"}
        for kind in ("needle", "companion"):
            stem = f"planes_{side}/{kind}_plane"
            expected |= {f"{stem}.nii.gz", f"{stem}_labels.nii.gz", f"{stem}_labels.labels.json",
                         f"{stem}.png", f"dicom/planes_{side}_{kind}/IM00001.dcm"}
    expected |= {f"meshes/{c}_{cs}.stl" for c in ("bone", "nerve", "disc", "dura")
                 for cs in ("lps", "ras")}
    assert expected <= names, sorted(expected - names)
    assert all(p.is_file() and p.stat().st_size > 0 for files in written.values() for p in files)
    # No temporary files left behind by the atomic writes.
    assert not [p for p in out.rglob(".*")]
    # Progress ran from 0 to 1 without going backwards.
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:]))


def test_plan_json_has_the_schema_keys(planned, outputs) -> None:
    out, _, _ = outputs
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    validate_plan_document(doc)
    assert doc["schema_version"] == PLAN_SCHEMA_VERSION
    assert doc["coordinate_system"] == "LPS"
    for side in ("left", "right"):
        sp = doc["sides"][side]
        for kind in ("kambin", "safe"):
            w = sp[kind]
            assert w["found"] is True and w["reason"] == ""
            for view in ("best_view", "plateau_view"):
                assert set(w[view]) >= {"alpha_deg", "beta_deg", "area_mm2", "carm"}
                assert w[view]["area_mm2"] > 0
            assert w["inscribed_diameter_mm"] > 0
            assert "triangle_area_mm2" in w
        t = sp["trajectory"]
        assert set(t) >= {"entry_lps_mm", "target_lps_mm", "length_mm", "angle_to_axial_deg",
                          "angle_to_sagittal_deg", "min_nerve_clearance_mm", "carm"}
        assert t["carm"]["side"] == side
        assert t["length_mm"] == pytest.approx(
            np.linalg.norm(np.subtract(t["entry_lps_mm"], t["target_lps_mm"])), rel=1e-6)


def test_validate_plan_document_rejects_broken_documents(outputs) -> None:
    out, _, _ = outputs
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    future = dict(doc, schema_version="2.0")
    with pytest.raises(InputError, match="schema_version"):
        validate_plan_document(future)
    broken = json.loads(json.dumps(doc))
    del broken["sides"]["left"]["safe"]["plateau_view"]
    del broken["sides"]["right"]["trajectory"]["length_mm"]
    with pytest.raises(InputError, match="left.safe.plateau_view.*right.trajectory.length_mm"):
        validate_plan_document(broken)


def test_markups_read_back_equal_the_trajectories(planned, outputs) -> None:
    from spinect_core.io.markups import read_markups_line

    out, _, _ = outputs
    _, _, plan, _ = planned
    for side, sp in plan.sides.items():
        line = read_markups_line(out / f"needle_{side}.mrk.json")
        np.testing.assert_allclose(line.entry_lps_mm, sp.trajectory.entry_lps_mm, atol=1e-9)
        np.testing.assert_allclose(line.target_lps_mm, sp.trajectory.target_lps_mm, atol=1e-9)
        assert side in line.name


def test_oblique_nifti_holds_the_needle_in_its_plane(planned, outputs) -> None:
    import SimpleITK as sitk

    out, _, _ = outputs
    _, _, plan, _ = planned
    for side, sp in plan.sides.items():
        t = sp.trajectory
        for kind in ("needle", "companion"):
            image = sitk.ReadImage(str(out / f"planes_{side}" / f"{kind}_plane.nii.gz"))
            size = image.GetSize()
            assert size[2] == 1
            for point in (t.entry_lps_mm, t.target_lps_mm):
                col, row, k = image.TransformPhysicalPointToContinuousIndex(
                    [float(v) for v in point])
                assert abs(k) < 1e-3, (side, kind)  # in the plane
                assert 0 <= col <= size[0] - 1 and 0 <= row <= size[1] - 1
                # The needle runs along the middle row.
                assert row == pytest.approx((size[1] - 1) / 2, abs=1e-3)
            # The target falls on a pixel centre.
            col, row, _ = image.TransformPhysicalPointToContinuousIndex(
                [float(v) for v in t.target_lps_mm])
            assert col == pytest.approx(round(col), abs=1e-3)


def test_dicom_planes_are_derived_in_the_ct_frame_of_reference(outputs) -> None:
    """A CT without DICOM headers: the planes get a generated study (neutral PatientID, a new
    StudyInstanceUID, never the CT's study with an empty patient) in the CT's frame of
    reference, and plan.json says so."""
    import pydicom

    from spinect_core.io.dicom_derived import GENERATED_PATIENT_ID

    out, _, _ = outputs
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert doc["dicom"]["source"] == "generated" and "generated study" in doc["dicom"]["note"]
    assert doc["source"]["series_instance_uid"] == SERIES
    sops, series = set(), set()
    for side in ("left", "right"):
        for kind in ("needle", "companion"):
            ds = pydicom.dcmread(out / "dicom" / f"planes_{side}_{kind}" / "IM00001.dcm")
            assert ds.ImageType[0] == "DERIVED"
            assert ds.FrameOfReferenceUID == FRAME_OF_REFERENCE
            assert ds.SeriesInstanceUID != SERIES
            assert str(ds.PatientName) == "" and str(ds.PatientID) == GENERATED_PATIENT_ID
            assert ds.StudyInstanceUID == doc["dicom"]["study_instance_uid"]
            assert ds.StudyInstanceUID != doc["source"]["study_instance_uid"]
            sops.add(ds.SOPInstanceUID)
            series.add(ds.SeriesInstanceUID)
    assert len(sops) == 4 and len(series) == 4


def _share(rgb: np.ndarray, colour: tuple[int, int, int], *, tol: float = 0.06,
           min_value: int = 60) -> float:
    """Share of pixels whose colour is ``colour`` scaled by a shading factor (same hue)."""
    c = np.asarray(colour, float)
    ref = int(np.argmax(c))
    x = rgb.astype(float)
    bright = x[..., ref] >= min_value
    ratio = x / np.maximum(x[..., ref:ref + 1], 1.0)
    close = np.all(np.abs(ratio - c / c[ref]) <= tol, axis=-1)
    return float(np.mean(close & bright))


def _exact_share(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 30) -> float:
    return float(np.mean(np.all(np.abs(rgb.astype(int) - colour) <= tol, axis=-1)))


def test_screenshots_show_bone_nerve_and_window_outlines(outputs) -> None:
    out, _, _ = outputs
    for side in ("left", "right"):
        rgb = _png(out / f"screenshot_{side}_kambin.png")
        h, w, _ = rgb.shape
        assert h > w  # the scene (square) on top, the legend panel below
        scene = rgb[:w]
        assert _share(scene, (255, 250, 215)) + _share(scene, (255, 236, 190)) > 0.1  # bone
        assert _share(scene, (255, 215, 0)) > 0.002  # nerve
        assert _exact_share(scene, WINDOW_COLOURS["kambin"]) > 2e-4
        assert _exact_share(scene, WINDOW_COLOURS["safe"]) > 2e-4
        assert _exact_share(scene, NEEDLE_COLOUR) > 1e-4
        # The legend panel is light with dark text.
        panel = rgb[w:]
        assert panel.mean() > 180 and panel.min() < 80


def test_area_maps_are_written_per_side_and_window(outputs) -> None:
    out, written, _ = outputs
    assert len(written["area_maps"]) == 4
    rgb = _png(out / "area_map_left_kambin.png")
    assert rgb.shape[0] > 300 and rgb.shape[1] > 300
    # The viridis extremes (empty views and the peak) are both there.
    assert _exact_share(rgb, (68, 1, 84), tol=12) > 0.01
    assert _exact_share(rgb, (253, 231, 37), tol=40) > 0.001


def test_html_reports_both_sides_and_the_numbers(planned, outputs) -> None:
    out, _, _ = outputs
    from spinect_core.planning.carm import carm_text

    _, _, plan, _ = planned
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Left side" in page and "Right side" in page
    assert INTENDED_USE in page and "LPS" in page
    for side, sp in plan.sides.items():
        for kind in ("kambin", "safe"):
            w = sp.window(kind)
            assert f"{w.best_view.area_mm2:.1f}" in page
            assert f"{w.plateau_view.area_mm2:.1f}" in page
            assert f"{w.inscribed_diameter_mm:.2f}" in page
            assert f"{w.usable_area_mm2:.1f}" in page
            # The C-arm words of the one C-arm language (spinect_core.planning.carm).
            assert carm_text(w.best_view.carm) in page
        assert f"{sp.trajectory.length_mm:.1f}" in page
        assert f"{sp.trajectory.min_nerve_clearance_mm:.1f}" in page
    # Every image the page shows is embedded (the page is portable alone): no image links, and
    # each embedded picture is a PNG written beside the page too.
    import base64
    import re

    sources = re.findall(r"<img src='([^']+)'", page)
    assert len(sources) >= 12
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    pngs = {p.read_bytes() for p in out.rglob("*.png")}
    assert all(base64.b64decode(s.split(",", 1)[1]) in pngs for s in sources)
    assert not re.search(r"<img[^>]+src='(?!data:)", page)


def test_meshes_state_their_coordinate_system(outputs) -> None:
    out, written, _ = outputs
    for path in written["meshes"]:
        header = path.read_bytes()[:80]
        cs = "RAS" if path.stem.endswith("_ras") else "LPS"
        assert f"SPACE={cs}".encode() in header


def test_a_second_run_refuses_and_writes_nothing(planned, outputs, tmp_path) -> None:
    ct, ph, plan, engine = planned
    out, written, _ = outputs
    before = {p: p.stat().st_mtime_ns for files in written.values() for p in files}
    with pytest.raises(FileExistsRefusedError, match="already holds a plan"):
        write_plan_outputs(plan, engine, out, ct=ct, labels=ph.labels, table=DEFAULT_LABELS)
    assert before == {p: p.stat().st_mtime_ns for p in before}
    # One stale output of an earlier run (no plan.json) is refused as well, before any write.
    other = tmp_path / "other"
    other.mkdir()
    (other / "needle_right.mrk.json").write_text("{}")
    with pytest.raises(FileExistsRefusedError, match="needle_right.mrk.json"):
        write_plan_outputs(plan, engine, other, ct=ct, labels=ph.labels, table=DEFAULT_LABELS,
                           meshes=False)
    assert sorted(os.listdir(other)) == ["needle_right.mrk.json"]


def test_a_missing_window_is_reported_not_drawn(planned) -> None:
    import dataclasses

    from spinect_core.report import plan_document, plan_report_html, render_screenshot

    _, _, plan, engine = planned
    left = plan.sides["left"]
    gone = dataclasses.replace(left.kambin, found=False, best_view=None, plateau_view=None,
                               reason="no kambin window is visible on the left side")
    broken = dataclasses.replace(plan, sides={**plan.sides,
                                              "left": dataclasses.replace(left, kambin=gone)})
    with pytest.raises(ValueError, match="not found"):
        render_screenshot(broken, engine, "left", "kambin")
    doc = plan_document(broken)
    validate_plan_document(doc)  # a window that is not found needs no views
    page = plan_report_html(doc)
    assert "Not found: no kambin window is visible on the left side" in page


def test_plan_output_paths_cover_every_file_written(planned, outputs) -> None:
    from spinect_core.report import plan_output_paths

    out, written, _ = outputs
    _, _, plan, _ = planned
    expected = set(plan_output_paths(plan, out, DEFAULT_LABELS, meshes=True, ras=True))
    assert {p for files in written.values() for p in files} <= expected
