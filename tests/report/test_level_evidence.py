"""How sure the level is, in words: the wording module, the report's "Level identification" box
and title, and the CLI summary's first line.

A phantom planned from its class labels (no instances) has no ribs in view, so its level is
counted from the sacrum only: "moderate". High and low are checked on evidence records made by
hand (a plan whose anatomy block is replaced), so no second plan is computed.
"""

from __future__ import annotations

import copy
import html
import re

import pytest

from spinect_core.anatomy.counting import LevelEvidence
from spinect_core.cli.plan import summary_text
from spinect_core.errors import AnatomyError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.plan import PlanEngine, PlanOptions
from spinect_core.report.exports import plan_document
from spinect_core.report.html import plan_report_html
from spinect_core.report.level_text import (level_status, level_status_from_plan, refusal_lines,
                                            summary_lines)

ONE_SIDE = PlanOptions(sides=("left",), coarse_step_deg=15.0, final_step_deg=3.0,
                       optimise_pixel_mm=1.0, report_pixel_mm=0.5)
HIGH_REASONS = ["sacrum: ilia on the left and right sides", "5 lumbar vertebrae between T12 "
                "and the sacrum: the rib count agrees", "S1 endplate: the L5/S1 disc lies "
                "between the L5 and S1 bodies"]


def _high() -> LevelEvidence:
    return LevelEvidence(sacrum_found=True, ilia_found=True, s1_endplate_found=True,
                         ribs_found=True, lumbar_count=5, rib_count_agrees=True,
                         levels=("T12", "L1", "L2", "L3", "L4", "L5", "S1"), last_level="S1",
                         counted_from="sacrum+ribs", confidence="high",
                         reasons=list(HIGH_REASONS))


def _low() -> LevelEvidence:
    ev = _high()
    ev.downgrade("low", "a body without a core in the chain (counted as 1 missing body)")
    ev.warnings.append("4 lumbar vertebrae between the last rib-bearing vertebra (T12) and the "
                       "sacrum: possible sacralised L5")
    return ev


def _h1(page: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", page).group(1)


@pytest.fixture(scope="module")
def derived_doc(planned):
    """plan.json of the report tests' phantom with the anatomy identified from its class labels
    (levels counted, as for a network's segmentation).

    The engine identifies the anatomy when it is built (2 s); its windows and needles would be
    those of the instance-label plan (same phantom, same L5/S1), so that plan's sides are reused
    instead of optimising them again.
    """
    _, ph, plan, _ = planned
    engine = PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, options=ONE_SIDE,
                        segmentation_source="phantom truth")
    assert engine.anatomy.source != "instances"
    doc = plan_document(plan)
    doc["anatomy"] = engine.anatomy_summary()
    doc["sides"] = {"left": doc["sides"]["left"]}
    return doc


def _with_evidence(doc, evidence) -> dict:
    out = copy.deepcopy(doc)
    out["anatomy"]["level_evidence"] = None if evidence is None else evidence.to_dict()
    out["anatomy"]["source"] = "labels"
    return out


# --- the wording module --------------------------------------------------------------------------
def test_wording_for_each_confidence() -> None:
    high = level_status(_high())
    assert high.established and high.confidence == "high"
    assert high.sentence == "L5/S1 established with high confidence"
    assert high.plan_title() == "L5/S1 plan" and high.qualifier() == "" and not high.advice
    assert high.lumbar_count == 5 and high.reasons == tuple(HIGH_REASONS)
    assert "checked against the rib count" in high.counted_from

    moderate = level_status(LevelEvidence(confidence="moderate", counted_from="sacrum",
                                          reasons=["no ribs in view"]))
    assert not moderate.established
    assert moderate.sentence == "Level identified as L5/S1 with moderate confidence"
    assert moderate.headline == ("Level identified as L5/S1 (moderate confidence): check the "
                                 "count")
    assert moderate.plan_title() == "Plan at the level identified as L5/S1 (moderate confidence)"
    assert moderate.qualifier() == (" at the level identified as L5/S1 (moderate confidence: "
                                    "check the count)")
    assert moderate.advice.startswith("check the count") and "no rib count" in \
        moderate.counted_from

    low = level_status(_low().to_dict())          # the plan.json block reads the same
    assert not low.established and low.confidence == "low"
    assert low.headline.startswith("Level identified as L5/S1 (low confidence)")
    assert "may be wrong" in low.advice and "low confidence" in low.qualifier()
    assert low.warnings and "sacralised" in low.warnings[0]

    # Per-level instance labels name the level (no evidence record): plain.
    inst = level_status(None, anatomy_source="instances")
    assert inst.established and inst.plan_title() == "L5/S1 plan"
    assert "instance labels" in inst.sentence
    # No record and no instances (an older plan.json), or a confidence word not known: never
    # plain.
    for status in (level_status(None, anatomy_source="labels"), level_status_from_plan({}),
                   level_status({"confidence": "certain"})):
        assert not status.established and "L5/S1 plan" not in status.plan_title()
        assert status.qualifier()
    with pytest.raises(TypeError):
        level_status(42)


def test_refusal_lines_say_where_the_scan_ends_once() -> None:
    ev = LevelEvidence(counted_from="ribs", last_level="L3", confidence="low")
    message = "no sacrum in the field of view"
    lines = refusal_lines(message, ev)
    assert lines[0] == message
    assert len(lines) == 2 and "The scan ends at L3" in lines[1] and "T12" in lines[1]
    # The count's refusals already say it: not repeated.
    said = "no sacrum; the scan ends at L3 (counted down ...); L5/S1 is not in the field of view"
    assert refusal_lines(said, ev) == [said]
    # Without evidence, or where the end is unknown, the message alone.
    assert refusal_lines(message) == [message]
    assert refusal_lines(message, LevelEvidence(last_level="?")) == [message]
    err = AnatomyError(message)
    assert refusal_lines(str(err), getattr(err, "evidence", None)) == [message]


def test_summary_lines_put_the_confidence_first() -> None:
    high = summary_lines(level_status(_high()))
    assert high == ["level: L5/S1 established with high confidence (counted up from the sacrum "
                    "and checked against the rib count)"]
    low = summary_lines(level_status(_low()))
    assert low[0].startswith("level: Level identified as L5/S1 with low confidence")
    assert "may be wrong" in low[1]
    assert any("missing body" in line for line in low[2:])


# --- the report and the CLI summary of a phantom plan -------------------------------------------
def test_phantom_plan_is_moderate_and_the_report_says_so_next_to_the_title(derived_doc) -> None:
    ev = derived_doc["anatomy"]["level_evidence"]
    assert ev["confidence"] == "moderate" and ev["counted_from"] == "sacrum"
    assert not ev["ribs_found"] and ev["reasons"]
    page = plan_report_html(derived_doc)
    title = _h1(page)
    assert title == ("SPINECT transforaminal plan at the level identified as L5/S1 (moderate "
                     "confidence)")
    # The box follows the title at once, before the notice and any table.
    box = page.index("<div class='level level-moderate' id='level'>")
    assert page.index("</h1>") < box < page.index("class='notice'") < page.index("<table>")
    assert "Level identification" in page[box:]
    assert "Level identified as L5/S1 with moderate confidence" in page
    assert "Check the count: confirm that this is L5/S1" in page
    for reason in ev["reasons"]:
        assert html.escape(reason, quote=True) in page
    assert "Left side (level identified as L5/S1, moderate confidence)" in page
    assert "Left side (L5/S1)" not in page
    # The CLI's summary: the confidence first, then why.
    lines = summary_text(derived_doc).splitlines()
    assert lines[0].startswith("level: Level identified as L5/S1 with moderate confidence")
    assert lines[1].startswith("level: check the count")
    assert any("no ribs in view" in line for line in lines[2:])
    assert any(line.startswith("left  kambin") or line.startswith("left  safe")
               for line in lines)


def test_high_evidence_titles_the_plan_l5_s1(derived_doc) -> None:
    page = plan_report_html(_with_evidence(derived_doc, _high()))
    assert _h1(page) == "SPINECT L5/S1 transforaminal plan"
    assert "<div class='level level-high' id='level'>" in page
    assert "L5/S1 established with high confidence" in page
    assert "Lumbar vertebrae between T12 and the sacrum: 5." in page
    for reason in HIGH_REASONS:
        assert html.escape(reason, quote=True) in page
    assert "Left side (L5/S1)" in page and "class='advice'" not in page
    assert summary_text(_with_evidence(derived_doc, _high())).splitlines()[0] == (
        "level: L5/S1 established with high confidence (counted up from the sacrum and checked "
        "against the rib count)")


def test_low_evidence_shows_its_warnings_and_a_red_box(derived_doc) -> None:
    page = plan_report_html(_with_evidence(derived_doc, _low()))
    assert "L5/S1 (low confidence)" in _h1(page)
    box = page[page.index("<div class='level level-low' id='level'>"):]
    box = box[: box.index("</div>")]
    assert "The level may be wrong" in box
    assert "possible sacralised L5" in box and "missing body" in box


def test_instances_plain_and_an_old_plan_never_plain(planned, derived_doc) -> None:
    _, _, plan, _ = planned                     # the phantom planned with its instance labels
    doc = plan_document(plan)
    assert doc["anatomy"]["source"] == "instances" and doc["anatomy"]["level_evidence"] is None
    page = plan_report_html(doc)
    assert _h1(page) == "SPINECT L5/S1 transforaminal plan"
    assert "L5/S1 named by the per-level instance labels" in page
    old = _with_evidence(derived_doc, None)     # schema 1.0: no level evidence
    page = plan_report_html(old)
    assert "L5/S1 (confidence not recorded)" in _h1(page)
    assert "level-low" in page
    # An explicit title is kept, and the box still follows it.
    page = plan_report_html(derived_doc, title="My plan")
    assert _h1(page) == "My plan" and page.index("id='level'") < page.index("class='notice'")
