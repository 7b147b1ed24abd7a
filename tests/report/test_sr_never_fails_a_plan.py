"""The SR is the last DICOM object of a plan: a failure to build it leaves it out, with a note in
plan.json, and never fails the plan after all the planning work."""

from __future__ import annotations

import json

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.report import write_plan_outputs
from spinect_core.report.exports import ExportOptions
from spinect_core.report.render import SceneRenderOptions


def test_a_failing_sr_is_left_out_with_a_note(planned, tmp_path, monkeypatch) -> None:
    import spinect_core.io.dicom_sr as dicom_sr

    def broken(*args, **kwargs):
        raise RuntimeError("SR encoder broke")

    monkeypatch.setattr(dicom_sr, "plan_sr_dataset", broken)
    ct, ph, plan, engine = planned
    out = tmp_path / "out"
    # Coarse screenshots and no PDF: this test is about the DICOM objects.
    options = ExportOptions(pdf=False, screenshot=SceneRenderOptions(pixel_mm=2.0))
    written = write_plan_outputs(plan, engine, out, ct=ct, labels=ph.labels,
                                 table=DEFAULT_LABELS, meshes=False, options=options)
    assert not (out / "dicom" / "sr.dcm").exists()
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    kinds = {o["kind"] for o in doc["dicom"]["objects"]}
    assert kinds == {"plane", "secondary_capture", "segmentation"}
    assert "no SR: RuntimeError: SR encoder broke" in doc["dicom"]["note"]
    assert {p.name for p in written["dicom"]} >= {"seg.dcm", "IM00001.dcm"}
    assert (out / "report.html").is_file()
