"""The app names the plan's level only as surely as it is established.

The phantom planned from its class labels has no ribs in view: its level is counted from the
sacrum only ("moderate"), so the panel must not title it "L5/S1 plan" nor call its needle "clear
of nerves and dura" without the confidence. High and low are checked on copies of that plan with
evidence records made by hand; a refusal goes through the controller with the planning step
replaced by one that raises (no second plan is computed).
"""

from __future__ import annotations

import copy
import dataclasses
import html
import re

import pytest

from spinect_core.anatomy.counting import LevelEvidence
from spinect_core.errors import AnatomyError
from spinect_core.labels import DEFAULT_LABELS

from app import planning
from app.state import SegmentationSource, SettingsValues
from tests.app.conftest import wait_idle
from tests.app.test_segment_and_view import load

MODERATE_HEAD = "Plan at the level identified as L5/S1 (moderate confidence)"


@pytest.fixture(scope="module")
def left_plan(phantom_case) -> planning.PlanningResult:
    """The phantom's left side planned from its class labels (quick search, no planes)."""
    ph = phantom_case["phantom"]
    options = dataclasses.replace(planning.plan_options(SettingsValues(plan_search="quick")),
                                  sides=("left",))
    return planning.run_plan(ph.ct, ph.labels, DEFAULT_LABELS, options=options,
                             segmentation_source="truth", planes=False)


def _with(result: planning.PlanningResult, evidence, source: str = "labels"
          ) -> planning.PlanningResult:
    plan = copy.deepcopy(result.plan)
    plan.anatomy["level_evidence"] = None if evidence is None else evidence.to_dict()
    plan.anatomy["source"] = source
    return planning.PlanningResult(engine=result.engine, plan=plan, body_mask=result.body_mask)


def _plain(label) -> str:
    """A rich-text label's text as a user reads it (tags dropped, one line per <br>)."""
    return html.unescape(re.sub(r"<[^>]+>", "", label.text().replace("<br>", "\n")))


def _evidence(confidence: str) -> LevelEvidence:
    return LevelEvidence(confidence=confidence, counted_from="sacrum+ribs", lumbar_count=5,
                         reasons=[f"test reason for {confidence}"])


def test_the_panel_words_each_confidence(qtbot, left_plan) -> None:
    from app.widgets.planning_panel import NO_PLAN_HEADING, PlanningPanel

    plan = left_plan.plan
    ev = plan.anatomy["level_evidence"]
    assert ev["confidence"] == "moderate" and ev["reasons"]
    traj = plan.sides["left"].trajectory
    assert traj is not None and traj.safe
    panel = PlanningPanel()
    qtbot.addWidget(panel)
    assert panel.heading.text() == NO_PLAN_HEADING and not panel.level_label.isVisibleTo(panel)

    panel.set_plan(plan)                                   # moderate: from the sacrum only
    assert panel.heading.text() == MODERATE_HEAD
    box = _plain(panel.level_label)
    assert panel.level_label.isVisibleTo(panel)
    assert "Level identified as L5/S1 (moderate confidence): check the count" in box
    for reason in ev["reasons"]:
        assert reason in box
    assert "full-spine view" in panel.level_label.toolTip()
    verdict = panel.needle_values["verdict"].text()
    assert "clear of nerves and dura at the level identified as L5/S1 (moderate confidence" \
        in verdict

    panel.set_plan(_with(left_plan, _evidence("high")).plan)
    assert panel.heading.text() == "L5/S1 plan"
    assert _plain(panel.level_label).startswith("L5/S1 established with high confidence")
    assert "test reason for high" in panel.level_label.toolTip()
    assert panel.needle_values["verdict"].text().endswith("clear of nerves and dura</span>")

    panel.set_plan(_with(left_plan, _evidence("low")).plan)
    assert panel.heading.text() == "Plan at the level identified as L5/S1 (low confidence)"
    assert "confirm the level" in _plain(panel.level_label)
    assert "test reason for low" in _plain(panel.level_label)
    assert "low confidence" in panel.needle_values["verdict"].text()

    panel.set_plan(_with(left_plan, None, source="instances").plan)
    assert panel.heading.text() == "L5/S1 plan"
    assert "instance labels" in _plain(panel.level_label)

    panel.set_plan(_with(left_plan, None).plan)            # no record: never plain
    assert "confidence not recorded" in panel.heading.text()

    panel.set_plan(None)
    assert panel.heading.text() == NO_PLAN_HEADING and not panel.level_label.isVisibleTo(panel)


def _ready(qtbot, window, phantom_case) -> None:
    load(qtbot, window, phantom_case["ct"])
    window.controller.set_segmentation(
        phantom_case["phantom"].labels, DEFAULT_LABELS, build_surfaces=False,
        source=SegmentationSource(kind="file", description="truth"))


def test_the_window_says_how_sure_the_level_is(qtbot, window, phantom_case, left_plan) -> None:
    _ready(qtbot, window, phantom_case)
    with qtbot.waitSignal(window.plan_shown, timeout=60_000):
        with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000) as done:
            window.controller.set_plan_result(_with(left_plan, _evidence("moderate")))
    assert done.args[0] is True
    assert done.args[1].startswith("plan ready at the level identified as L5/S1 (moderate "
                                   "confidence: check the count): windows")
    level = window.controller.session.plan_level
    assert level is not None and level.confidence == "moderate"
    panel = window.planning_panel
    assert panel.heading.text() == MODERATE_HEAD
    assert "moderate confidence" in window.statusBar().currentMessage()
    wait_idle(qtbot, window)


def test_a_refusal_shows_no_plan_title_and_where_the_scan_ends(qtbot, window, phantom_case,
                                                               dialogs, monkeypatch,
                                                               left_plan) -> None:
    _ready(qtbot, window, phantom_case)
    message = "no sacrum in the field of view: L5/S1 is not in the field of view"

    def refuse(*_args, **_kwargs):
        err = AnatomyError(message)
        err.evidence = LevelEvidence(counted_from="ribs", last_level="L4", confidence="low")
        raise err

    monkeypatch.setattr(planning, "run_plan", refuse)
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000) as done:
        assert window.plan()
    wait_idle(qtbot, window)
    assert done.args[0] is False
    assert [e.title for e in dialogs.errors] == ["Anatomy not found"]
    session = window.controller.session
    assert session.plan is None and session.plan_refusal[0] == message
    panel = window.planning_panel
    assert panel.heading.text() == "No plan"
    assert message in panel.status.text() and "failed" in panel.status.text()
    box = _plain(panel.level_label)
    assert panel.level_label.isVisibleTo(panel)
    assert "L5/S1 not established" in box and "The scan ends at L4" in box
    assert "clear of nerves" not in panel.needle_values["verdict"].text()
    # A plan afterwards replaces the refusal.
    window.controller.set_plan_result(_with(left_plan, _evidence("high")))
    session = window.controller.session  # the state is replaced, never edited
    assert session.plan_refusal == () and panel.heading.text() == "L5/S1 plan"
    wait_idle(qtbot, window)
