"""The network-vs-CT bone check in the plan: plan.json's block, the warnings, the report page."""

from __future__ import annotations

import json

import pytest

from spinect_core.bone.agreement import compare_bone
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.plan import PlanEngine, PlanOptions
from spinect_core.report import validate_plan_document, write_plan_outputs
from spinect_core.report.exports import ExportOptions, plan_document
from spinect_core.report.html import plan_report_html
from tests.bone.cases import phantom_case, without_l5_body

#: One side, coarse search: the tests check what the plan says about the check, not the optimum.
ONE_SIDE = PlanOptions(sides=("left",), coarse_step_deg=15.0, final_step_deg=3.0,
                       optimise_pixel_mm=1.0, report_pixel_mm=0.5)
L5_WARNING = "the segmentation disagrees with the CT at L5 (bone Dice "


@pytest.fixture(scope="module")
def checked_plan():
    """A plan whose segmentation check found the network's L5 body missing.

    The plan itself runs on the true labels (as a fused segmentation would restore the body);
    the check compares the "network's" bone without its L5 body with the CT bone model.
    """
    ph, ct_bone = phantom_case()
    check = compare_bone(without_l5_body(ph), ct_bone)
    engine = PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, options=ONE_SIDE,
                        segmentation_source="test network", bone_source="fused",
                        segmentation_check=check)
    return ph, check, engine, engine.plan()


def test_the_check_leads_the_plan_warnings_and_fills_its_block(checked_plan) -> None:
    _, check, _, plan = checked_plan
    assert plan.warnings[: len(check.warnings)] == check.warnings
    assert plan.warnings[0].startswith(L5_WARNING) and plan.warnings[0].endswith("): review it")
    doc = plan_document(plan)
    validate_plan_document(doc)
    assert doc["segmentation"] == {"source": "test network", "bone_source": "fused"}
    block = doc["segmentation_check"]
    assert block["agrees"] is False and block["warnings"] == check.warnings
    assert {lv["level"]: lv["agrees"] for lv in block["levels"]}["L5"] is False
    json.dumps(doc, allow_nan=False)


def test_plan_json_and_report_html_carry_the_warning(checked_plan, tmp_path) -> None:
    ph, check, engine, plan = checked_plan
    written = write_plan_outputs(plan, engine, tmp_path / "out", ct=ph.ct, labels=ph.labels,
                                 table=DEFAULT_LABELS, meshes=False,
                                 options=ExportOptions(dicom=False))
    doc = json.loads(written["plan_json"][0].read_text(encoding="utf-8"))
    assert doc["warnings"][0].startswith(L5_WARNING)
    assert doc["segmentation_check"]["levels_found"] is True
    page = written["report_html"][0].read_text(encoding="utf-8")
    # Prominent: the warnings box comes right after the title's notice, before any table.
    box = page.index("<div class='alert' id='warnings'>")
    assert box < page.index("<table>")
    assert page.index(L5_WARNING) > box
    assert "Segmentation check" in page and "DISAGREES" in page
    assert "fused: CT bone model plus the network" in page


def test_a_plan_without_a_check_says_why() -> None:
    doc = {"format": "spinect-plan", "schema_version": "1.1", "sides": {}, "warnings": [],
           "segmentation": {"source": "file labels.nii.gz", "bone_source": None},
           "segmentation_check": None}
    page = plan_report_html(doc)
    assert "No check: the labels did not come from the network" in page
    assert "id='warnings'" not in page
    # An older plan.json (schema 1.0) without the new keys still renders.
    assert "Segmentation check" in plan_report_html({"sides": {}})


def test_a_check_that_found_no_levels_is_shown_as_such() -> None:
    doc = {"segmentation": {"bone_source": "network"},
           "warnings": ["the segmentation could not be checked against the CT: x"],
           "segmentation_check": {"levels_found": False, "reason": "no sacrum found",
                                  "bounds": {"min_bone_dice": 0.8,
                                             "volume_ratio_range": [0.65, 1.5]},
                                  "levels": []}}
    page = plan_report_html(doc)
    assert "no sacrum found" in page and "could not be checked" in page
    assert "0.80" in page and "0.65" in page


def test_the_planned_level_check_is_a_line_under_the_table() -> None:
    level = {"judged": True, "offset_mm": -15.6, "level_spacing_mm": 32.8, "agrees": False,
             "warning": "the level is in doubt: the planned L5/S1 disc lies 16 mm above ..."}
    doc = {"segmentation": {"bone_source": "network"}, "warnings": [level["warning"]],
           "segmentation_check": {"levels_found": True, "levels": [], "bounds": {},
                                  "planned_level": level}}
    page = plan_report_html(doc)
    assert "Level in doubt: the planned L5/S1 disc lies 16&nbsp;mm above the CT's L5" in page
    level.update(agrees=True, offset_mm=18.6, warning="")
    page = plan_report_html(doc)
    assert "lies 19&nbsp;mm below the CT's L5 body centre" in page and ": agrees." in page
    assert "Level in doubt" not in page


def test_a_ct_count_ending_above_l5_is_a_level_in_doubt_line_without_an_offset() -> None:
    warning = ("the level is in doubt: the CT's own bone, counted down from the last rib-bearing "
               "vertebra (T12), ends at L3, so L5/S1 would not be in the field of view")
    doc = {"segmentation": {"bone_source": "fused"}, "warnings": [warning],
           "segmentation_check": {"levels_found": False, "ct_ends_at": "L3",
                                  "reason": "the scan ends within L3", "levels": [],
                                  "bounds": {},
                                  "planned_level": {"judged": True, "offset_mm": None,
                                                    "level_spacing_mm": None, "agrees": False,
                                                    "warning": warning}}}
    page = plan_report_html(doc)
    assert "the scan ends within L3" in page
    assert "Level in doubt: the CT&#x27;s own bone, counted down" in page
