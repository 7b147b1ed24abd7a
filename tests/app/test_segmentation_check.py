"""The bone source and the network-vs-CT bone check in the app: settings, the segmentation
worker's path, the plan step and the planning panel's warnings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from spinect_core.bone.agreement import compare_bone
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.report.exports import plan_document
from spinect_core.segment import DEFAULT_BONE_MODE

from app import pipeline
from app.settings import BONE_SOURCES, AppSettings
from app.state import SegmentationSource, SettingsValues
from tests.app.conftest import wait_idle
from tests.app.test_segment_and_view import load
from tests.bone.cases import truth_as_ct_bone, without_l5_body


def test_bone_setting_roundtrip_default_and_fallback(tmp_path) -> None:
    s = AppSettings.from_file(tmp_path / "s.ini")
    assert s.bone == DEFAULT_BONE_MODE and s.snapshot().bone == DEFAULT_BONE_MODE
    assert SettingsValues().bone == DEFAULT_BONE_MODE and set(BONE_SOURCES) == {
        "network", "ct", "fused"}
    s.bone = "ct"
    s.sync()
    assert AppSettings.from_file(tmp_path / "s.ini").snapshot().bone == "ct"
    with pytest.raises(ValueError):
        s.bone = "both"
    (tmp_path / "h.ini").write_text("[segmentation]\nbone=maybe\n")
    assert AppSettings.from_file(tmp_path / "h.ini").bone == DEFAULT_BONE_MODE


def test_settings_dialog_offers_the_bone_source(qtbot, settings) -> None:
    from app.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert [dialog.bone.itemData(i) for i in range(dialog.bone.count())] == list(BONE_SOURCES)
    assert dialog.bone.currentData() == DEFAULT_BONE_MODE
    dialog.bone.setCurrentIndex(dialog.bone.findData("network"))
    dialog.apply()
    assert settings.snapshot().bone == "network"


def test_the_segmentation_worker_uses_the_bone_setting_and_checks(weights_file) -> None:
    """pipeline.segment_volume: the Segmenter path of the CLI, with the check attached."""
    from tests.segment_helpers import sphere_ct

    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    calls = []
    seg = pipeline.segment_volume(ct, SettingsValues(weights_path=str(weights_file),
                                                     device="cpu", bone="ct"),
                                  progress=lambda f, m: calls.append((f, m)) or True)
    assert seg.bone_source == "ct" and seg.ct_bone is not None
    assert (seg.labels.array == 1).sum() == seg.ct_bone.mask.array.sum()
    # A ball has no spine: the check ran and says it could not find the levels.
    assert seg.bone_check is not None and seg.bone_check.levels_found is False
    assert any(m.startswith("checking") for _, m in calls) and calls[-1][0] == 1.0


def test_the_plan_step_carries_the_check_and_the_panel_shows_it(qtbot, window, phantom_case,
                                                                 dialogs) -> None:
    ph = phantom_case["phantom"]
    # A "network" segmentation (the true labels, bone fused) whose own bone lacks L5's body.
    check = compare_bone(without_l5_body(ph), truth_as_ct_bone(ph))
    assert check.warnings and " at L5 " in check.warnings[0]
    load(qtbot, window, phantom_case["ct"])
    with qtbot.waitSignal(window.surfaces_shown, timeout=120_000):
        window.controller.set_segmentation(
            ph.labels, DEFAULT_LABELS, bone_check=check,
            source=SegmentationSource(kind="network", description="test", bone_source="fused"))
    wait_idle(qtbot, window)
    session = window.controller.session
    assert session.notes.count(check.warnings[0]) == 1
    assert check.warnings[0] in window.case_panel.notes.text()
    panel = window.planning_panel
    assert not panel.warnings.isVisibleTo(panel)
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=180_000) as done:
        qtbot.mouseClick(panel.plan_button, Qt.MouseButton.LeftButton)
    assert done.args[0] is True, dialogs.errors
    session = window.controller.session  # the state is replaced, never edited
    plan = session.plan
    assert plan.warnings[0] == check.warnings[0]
    assert session.notes.count(check.warnings[0]) == 1          # not repeated by the plan
    doc = plan_document(plan)
    assert doc["segmentation"]["bone_source"] == "fused"
    assert doc["segmentation_check"]["agrees"] is False
    # Prominent: a red box under the plan's status line, naming the level.
    assert panel.warnings.isVisibleTo(panel)
    assert "segmentation disagrees with the CT at L5" in panel.warnings.text()
    window.controller.set_segmentation(
        ph.labels, DEFAULT_LABELS, source=SegmentationSource(kind="file", description="truth"),
        build_surfaces=False)
    assert window.controller.session.bone_check is None
    assert not panel.warnings.isVisibleTo(panel)                # the plan (and its box) is gone


def test_a_plan_counted_on_the_ct_bone_shows_that_bone_in_3d(qtbot, window, tmp_path) -> None:
    """A network segmentation whose bone cannot be counted (here: none at all) is planned on the
    CT bone model's bone; the 3D view then shows that bone, and a note says so."""
    import numpy as np

    from spinect_core.io import write_image
    from spinect_core.planning.plan import PlanOptions

    from app import planning
    from tests.bone.cases import phantom_case as bone_case

    ph, _ = bone_case()
    array = np.asarray(ph.labels.array).copy()
    array[array == DEFAULT_LABELS.id_of("bone")] = 0
    labels = ph.labels.with_array(array)
    load(qtbot, window, write_image(ph.ct, tmp_path / "ct.nii.gz"))
    window.controller.set_segmentation(
        labels, DEFAULT_LABELS, build_surfaces=False,
        source=SegmentationSource(kind="network", description="test", bone_source="network"))
    assert "bone" not in window.controller.session.meshes
    result = planning.run_plan(window.controller.session.ct, labels, DEFAULT_LABELS,
                               options=PlanOptions(sides=("left",)), bone_source="network",
                               planes=False)
    assert result.engine.bone_source == "ct" and result.bone_mesh is not None
    with qtbot.waitSignal(window.controller.meshes_changed, timeout=10_000):
        window.controller.set_plan_result(result)
    session = window.controller.session
    assert session.meshes["bone"] is result.bone_mesh and not result.bone_mesh.is_empty
    assert any("the 3D view shows the CT bone model's bone" in n for n in session.notes)
    same = planning.run_plan(session.ct, ph.labels, DEFAULT_LABELS,
                             options=PlanOptions(sides=("left",)), bone_source="network",
                             planes=False)
    assert same.bone_mesh is None                 # counted on its own bone: nothing replaced
