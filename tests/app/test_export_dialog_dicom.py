"""The export dialog's DICOM option says what it writes (every DICOM object of the plan, not just
the planes), and Send to PACS is offered only while those objects are written."""

from __future__ import annotations


def test_the_dicom_option_names_every_object_it_writes(qtbot, tmp_path) -> None:
    from app.widgets.export_dialog import ExportDialog

    dialog = ExportDialog(str(tmp_path), has_labels=True, has_meshes=False, has_plan=True)
    qtbot.addWidget(dialog)
    text = dialog.plan_dicom.text()
    assert "DICOM" in text and "PACS" in text
    for what in ("planes", "screenshots", "segmentation", "report"):
        assert what in text, what
    tip = dialog.plan_dicom.toolTip()
    for what in ("dicom/", "derived CT", "secondary capture", "DICOM SEG", "structured report",
                 "encapsulated", "patient, study and frame of reference"):
        assert what in tip, what
    assert dialog.request().plan_dicom is True
    dialog.plan_dicom.setChecked(False)
    assert dialog.request().plan_dicom is False


def test_send_to_pacs_needs_the_dicom_objects(qtbot, tmp_path) -> None:
    from app.widgets.export_dialog import ExportDialog

    dialog = ExportDialog(str(tmp_path), has_labels=True, has_meshes=False, has_plan=True,
                          pacs_nodes=["Test PACS"])
    qtbot.addWidget(dialog)
    dialog.send_to.setCurrentIndex(1)
    assert dialog.send_to.isEnabled() and dialog.request().send_to == "Test PACS"
    dialog.plan_dicom.setChecked(False)  # nothing for the PACS would be written
    assert not dialog.send_to.isEnabled() and dialog.request().send_to == ""
    dialog.plan_dicom.setChecked(True)
    assert dialog.request().send_to == "Test PACS"
    dialog.plan.setChecked(False)
    assert not dialog.send_to.isEnabled() and dialog.request().send_to == ""
