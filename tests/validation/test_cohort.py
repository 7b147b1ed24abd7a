"""The cohort run on two tiny synthetic cases: Table 2 with known Dice, resumability, the
outputs, the CLI; and the same-view window comparison on stand-in plans."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io import save_label_map, write_image
from spinect_core.labels import STUDY_LABELS
from spinect_core.validation import (ValidationOptions, discover_cohort, run_cohort,
                                     summarise_cohort, write_validation_outputs)
from spinect_core.validation.cohort import compare_windows
from spinect_core.volume import Volume

SHAPES = {"caseA": (20, 24, 28), "caseB": (22, 24, 28)}


def _manual(shape):
    lab = np.zeros(shape, np.uint8)
    lab[2:12, 4:14, 4:14] = 1  # bone: 1000 voxels
    lab[14:18, 4:9, 4:9] = 2  # nerve: 100 voxels
    return lab


def _automatic(shape):
    """caseA: bone shifted 5 voxels in x (500 of 1000 overlap: Dice 0.5, IoU 1/3, PA 0.5),
    nerve half found (50 of 100: Dice 2/3, IoU 0.5, PA 0.5); caseB: perfect."""
    lab = _manual(shape)
    if shape == SHAPES["caseA"]:
        lab[lab == 1] = 0
        lab[2:12, 4:14, 9:19] = 1
        lab[16:18, 4:9, 4:9] = 0
    return lab


class FakeSegmenter:
    """Stands in for the network: known labels, counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, ct, progress):
        self.calls += 1
        if progress is not None:
            progress(1.0, "fake")
        return ct.with_array(_automatic(ct.array.shape)), STUDY_LABELS, {"source": "fake 1"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    for name, shape in SHAPES.items():
        ct = Volume(array=np.full(shape, -100, np.int16), spacing_mm=(1.0, 1.0, 2.0),
                    origin_lps_mm=(0.0, 0.0, 0.0))
        write_image(ct, root / name / "ct.nii.gz")
        save_label_map(ct.with_array(_manual(shape)), STUDY_LABELS, root / name / "labels.nii.gz")
    (root / "notes").mkdir()  # not a case: ignored
    return root


def test_discovery_and_table2_known_dice(cohort, tmp_path):
    cases = discover_cohort(cohort)
    assert [c.case_id for c in cases] == ["caseA", "caseB"]
    run = run_cohort(cases, tmp_path, FakeSegmenter(), options=ValidationOptions(planning=False))
    summary = summarise_cohort(run.records)
    bone, nerve = summary["table2"]["bone"], summary["table2"]["nerve"]
    assert bone["dice"]["mean"] == pytest.approx(0.75)
    assert bone["dice"]["sd"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert (bone["dice"]["min"], bone["dice"]["max"]) == (pytest.approx(0.5), 1.0)
    assert bone["iou"]["mean"] == pytest.approx((1 / 3 + 1) / 2)
    assert bone["pixel_accuracy"]["mean"] == pytest.approx(0.75)
    assert nerve["dice"]["min"] == pytest.approx(2 / 3) and nerve["iou"]["min"] == pytest.approx(0.5)
    assert summary["table4"] == {}  # planning off


def test_resume_skips_done_cases_with_identical_results(cohort, tmp_path):
    seg = FakeSegmenter()
    options = ValidationOptions(planning=False)
    first = run_cohort(discover_cohort(cohort), tmp_path, seg, options=options,
                       segment_fingerprint={"weights": "fake 1"})
    assert seg.calls == 2 and first.computed == ["caseA", "caseB"]
    files1 = write_validation_outputs(summarise_cohort(first.records), first.records, tmp_path)
    texts1 = {p.name: p.read_bytes() for p in files1}
    messages = []
    second = run_cohort(discover_cohort(cohort), tmp_path, seg, options=options,
                        segment_fingerprint={"weights": "fake 1"},
                        progress=lambda f, m: messages.append(m))
    assert seg.calls == 2 and second.reused == ["caseA", "caseB"] and not second.computed
    assert second.records == first.records
    assert any("reused" in m for m in messages)
    files2 = write_validation_outputs(summarise_cohort(second.records), second.records, tmp_path)
    assert {p.name: p.read_bytes() for p in files2} == texts1
    # other settings into the same folder are refused; --force recomputes
    with pytest.raises(InputError, match="other settings"):
        run_cohort(discover_cohort(cohort), tmp_path, seg, options=options,
                   segment_fingerprint={"weights": "fake 2"})
    forced = run_cohort(discover_cohort(cohort), tmp_path, seg, options=options,
                        segment_fingerprint={"weights": "fake 2"}, force=True)
    assert seg.calls == 4 and forced.computed == ["caseA", "caseB"]


def test_unreadable_case_is_reported_and_retried(cohort, tmp_path):
    import shutil

    root = tmp_path / "cohort"
    shutil.copytree(cohort, root)
    (root / "caseB" / "labels.nii.gz").write_bytes(b"not an image")
    out = tmp_path / "out"
    run = run_cohort(discover_cohort(root), out, FakeSegmenter(),
                     options=ValidationOptions(planning=False))
    assert run.failed == ["caseB"]
    summary = summarise_cohort(run.records)
    assert summary["cases"] == ["caseA"] and summary["failed"][0]["case_id"] == "caseB"
    again = run_cohort(discover_cohort(root), out, FakeSegmenter(),
                       options=ValidationOptions(planning=False))
    assert again.reused == ["caseA"] and again.computed == ["caseB"]


def test_outputs_hold_no_paths(cohort, tmp_path):
    out = tmp_path / "secret-folder-name"
    run = run_cohort(discover_cohort(cohort), out, FakeSegmenter(),
                     options=ValidationOptions(planning=False))
    written = write_validation_outputs(summarise_cohort(run.records), run.records, out)
    names = {p.name for p in written}
    assert {"validation.json", "table2_segmentation.csv", "report.html", "cases.csv"} <= names
    for p in list(written) + sorted((out / "cases").iterdir()):
        text = p.read_text(encoding="utf-8")
        assert str(cohort) not in text and "secret-folder-name" not in text
    doc = json.loads((out / "validation.json").read_text())
    assert doc["coordinate_system"] == "LPS"
    assert "bone,dice,0.7500" in (out / "table2_segmentation.csv").read_text()
    assert "caseA" in (out / "cases.csv").read_text()


def test_cli_validate_resumes(cohort, tmp_path, monkeypatch, capsys):
    import spinect_core.validation as validation
    from spinect_core.cli import main

    seg = FakeSegmenter()
    monkeypatch.setattr(validation, "network_segment_function",
                        lambda weights, bone=None: (seg, {"weights": "fake 1"}))
    out = tmp_path / "out"
    args = ["validate", str(cohort), "-o", str(out), "--no-plan", "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Table 2 (2 cases)" in text and "bone" in text
    assert main(args) == 0
    assert "2 cases reused" in capsys.readouterr().out and seg.calls == 2
    assert main(["validate", str(tmp_path / "nothing"), "-o", str(out)]) == 2


# --- the same-view comparison on stand-in plans ---------------------------------------------------
def _view(direction, area, oblique=20.0, tilt=5.0):
    return SimpleNamespace(view_direction_lps=np.asarray(direction, float), area_mm2=area,
                           oblique_deg=oblique, tilt_deg=tilt)


class _Scene:
    def __init__(self, areas):
        self.areas, self.asked = areas, []

    def windows(self, direction, *, pixel_mm):
        self.asked.append((tuple(np.round(direction, 6)), pixel_mm))
        return SimpleNamespace(area=lambda kind: self.areas[kind])


def _plan(kambin, safe):
    def window(kind):
        best = {"kambin": kambin, "safe": safe}[kind]
        return SimpleNamespace(found=best is not None, best_view=best)
    return SimpleNamespace(sides={"left": SimpleNamespace(window=window)})


def test_windows_compared_at_the_manual_best_view():
    d_m, d_a = [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]
    m_engine = SimpleNamespace(scenes={"left": _Scene({"kambin": 0.0, "safe": 3.0})})
    a_engine = SimpleNamespace(scenes={"left": _Scene({"kambin": 30.0, "safe": 9.0})})
    manual = (m_engine, _plan(kambin=_view(d_m, 40.0), safe=None))
    automatic = (a_engine, _plan(kambin=_view(d_a, 45.0), safe=_view(d_a, 12.0)))
    out = compare_windows(manual, automatic, pixel_mm=0.25)["left"]
    k = out["kambin"]
    # the automatic labels measured along the manual best view, not at their own best
    assert k["reference_view"] == "manual best"
    assert (k["manual_area_mm2"], k["automatic_area_mm2"]) == (40.0, 30.0)
    assert a_engine.scenes["left"].asked[0] == ((0.0, 1.0, 0.0), 0.25)
    assert k["best_view_angle_deg"] == pytest.approx(45.0)
    assert k["automatic_best"]["area_mm2"] == 45.0
    s = out["safe"]  # no manual safe window: the automatic best view is the reference
    assert s["reference_view"] == "automatic best" and s["manual_found"] is False
    assert (s["manual_area_mm2"], s["automatic_area_mm2"]) == (3.0, 12.0)
    assert s["best_view_angle_deg"] is None
    failed = compare_windows(manual, (None, None), pixel_mm=0.25)["left"]["kambin"]
    assert failed["automatic_area_mm2"] is None and failed["automatic_found"] is None
    summary = summarise_cohort([{"case_id": "x", "status": "done", "metrics": {},
                                 "windows": compare_windows(manual, automatic, pixel_mm=0.25)}])
    row = summary["table4"]["same_view"]["left"]["kambin"]
    assert row["n"] == 1 and row["test"] == "none" and row["manual_values"] == [40.0]
    assert summary["table4"]["own_best"]["left"]["safe"]["manual_values"] == [0.0]


def test_dicom_case_and_cropped_slicer_labels(tmp_path):
    from spinect_core.io.slicer_seg import write_slicer_segmentation
    from spinect_core.validation.cohort import load_manual_labels

    shape = SHAPES["caseA"]
    ct = Volume(array=np.zeros(shape, np.int16), spacing_mm=(1.0, 1.0, 2.0),
                origin_lps_mm=(-10.0, 5.0, 3.0))
    labels = _manual(shape)
    # a DICOM case: a series in dicom/ (discovery only looks at the names) and a Slicer file
    # cropped to its segments, as Slicer saves by default
    folder = tmp_path / "cohort" / "site-007"
    (folder / "dicom").mkdir(parents=True)
    (folder / "dicom" / "IM0001.dcm").write_bytes(b"")
    crop = labels[2:18, 4:14, 4:14]
    cropped = Volume(array=crop, spacing_mm=ct.spacing_mm,
                     origin_lps_mm=ct.origin_lps_mm + np.array([4.0, 4.0, 4.0]))
    write_slicer_segmentation(cropped, STUDY_LABELS, folder / "Segmentation.seg.nrrd")
    (case,) = discover_cohort(tmp_path / "cohort")
    assert case.case_id == "site-007" and case.ct == folder / "dicom"
    back, table = load_manual_labels(case, ct)
    assert back.same_grid(ct) and np.array_equal(back.array, labels)
    assert table.has("bone") and table.has("nerve")


def test_plots_skipped_without_matplotlib(monkeypatch, tmp_path):
    import sys

    from spinect_core.validation.report import MATPLOTLIB_MISSING

    manual = (None, _plan(kambin=_view([0, 1, 0], 40.0), safe=_view([0, 1, 0], 8.0)))
    records = [{"case_id": f"c{i}", "status": "done", "metrics": {},
                "windows": compare_windows((manual[0], manual[1]),
                                           (None, _plan(kambin=_view([0, 1, 0], 40.0 + i),
                                                        safe=_view([0, 1, 0], 8.0 - i))),
                                           pixel_mm=0.25)} for i in range(3)]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    written = write_validation_outputs(summarise_cohort(records), records, tmp_path)
    assert not [p for p in written if p.suffix == ".png"]
    assert "plots skipped: matplotlib is not installed" in (tmp_path / "report.html").read_text()
    doc = json.loads((tmp_path / "validation.json").read_text())
    assert doc["plots"] == [] and doc["plot_note"] == MATPLOTLIB_MISSING
    # the statistics do not need the plots: the automatic best views differ by i from manual's
    row = doc["summary"]["table4"]["own_best"]["left"]["kambin"]
    assert row["automatic_values"] == [40.0, 41.0, 42.0] and row["difference"]["mean"] == 1.0
