"""The report's "Nerve roots" section and plan.json's ``segmentation.operator_edits``.

Cheap: the roots are :class:`~spinect_core.anatomy.roots.Root` records put into a small
``plan.json``-like document (the structure :meth:`RootsResult.side_dict` writes), and the label
edits come from a :class:`~spinect_core.planning.label_edit.LabelEditor` on a 30-voxel cube; no
phantom and no plan step.
"""

from __future__ import annotations

import copy
import html
import json
import re
from typing import Any

import numpy as np
import pytest

from spinect_core.anatomy.roots import Root
from spinect_core.errors import InputError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.label_edit import LabelEditor, LabelEditSummary, summary_from_dict
from spinect_core.planning.plan import Plan
from spinect_core.report.exports import validate_plan_document
from spinect_core.report.html import plan_report_html, root_rows
from spinect_core.report.pdf import plan_report_lines
from spinect_core.volume import Volume

MISSING = ("the exiting L4 root on the right: neither the network nor the CT shows it: no root "
           "is drawn there, review the plan")


def _root(name: str, side: str, source: Any, *, length_mm: float = 20.0,
          radius_mm: float = 2.0, notes: tuple[str, ...] = ()) -> Root:
    """A straight root of ``length_mm`` along z, 21 points, radius ``radius_mm``."""
    z = np.linspace(0.0, -length_mm, 21)
    pts = np.stack([np.full_like(z, 30.0), np.full_like(z, 10.0), 100.0 + z], axis=1)
    return Root(name=name, side=side, centreline_lps_mm=pts, radius_mm=np.full(21, radius_mm),
                confidence=0.75 if source != "operator" else 1.0, source=source,
                notes=list(notes))


def _window() -> dict:
    return {"found": False, "reason": "not searched in this test", "best_view": None,
            "plateau_view": None, "inscribed_diameter_mm": None, "triangle_area_mm2": None}


def _doc() -> dict:
    """plan.json with roots on both sides: the left exiting L5 root corrected by the operator,
    the right exiting L4 root not found (and the plan's warning saying why)."""
    doc = Plan(sides={}, ct_geometry={}, segmentation_source="phantom truth",
               anatomy={}, roots_mode="fused", warnings=[MISSING]).to_dict()
    left = {"exiting_l5": _root("exiting_l5", "left", "operator", length_mm=30.0,
                                radius_mm=2.5,
                                notes=("corrected by the operator (was fused)",)).to_dict(),
            "exiting_l4": _root("exiting_l4", "left", "fused").to_dict(),
            "traversing_s1": _root("traversing_s1", "left", "ct").to_dict()}
    right = {"exiting_l5": _root("exiting_l5", "right", "network").to_dict(),
             "exiting_l4": None,
             "traversing_s1": _root("traversing_s1", "right", "fused").to_dict()}
    doc["sides"] = {s: {"kambin": _window(), "safe": _window(), "trajectory": None,
                        "trajectory_reason": "no window found", "landmarks": {}, "roots": r}
                    for s, r in (("left", left), ("right", right))}
    return doc


def _rows_html(page: str) -> list[str]:
    """The <tr> elements of the "Nerve roots" table."""
    start = page.index("<h3>Nerve roots</h3>")
    table = page[start:page.index("</table>", start)]
    return re.findall(r"<tr[^>]*>.*?</tr>", table)[1:]


def test_the_roots_table_has_a_row_per_side_and_root_and_marks_the_operators() -> None:
    doc = _doc()
    validate_plan_document(doc)  # the document is a valid plan.json
    rows = root_rows(doc)
    assert [(r.side, r.name) for r in rows] == [
        ("left", "exiting_l5"), ("left", "exiting_l4"), ("left", "traversing_s1"),
        ("right", "exiting_l5"), ("right", "exiting_l4"), ("right", "traversing_s1")]
    op = rows[0]
    assert op.operator and op.source == "operator" and op.points == 21
    assert op.length_mm == pytest.approx(30.0) and op.mean_radius_mm == pytest.approx(2.5)
    assert [r.operator for r in rows] == [True] + [False] * 5
    missing = rows[4]
    assert not missing.found and missing.note == ("neither the network nor the CT shows it: no "
                                                  "root is drawn there, review the plan")

    page = plan_report_html(doc)
    trs = _rows_html(page)
    assert len(trs) == 6
    marked = [tr for tr in trs if "corrected by the operator" in tr]
    assert marked == [trs[0]] and trs[0].startswith("<tr class='operator'>")
    assert "exiting L5 root" in trs[0] and "30.0&nbsp;mm" in trs[0] and "2.5&nbsp;mm" in trs[0]
    assert ">21<" in trs[0] and ">1.00<" in trs[0]
    assert "fused (network and CT)" in trs[1] and "20.0&nbsp;mm" in trs[1] and ">0.75<" in trs[1]
    assert "CT (traced)" in trs[2] and "network" in trs[3]
    assert "not found: neither the network nor the CT shows it" in html.unescape(trs[4])
    assert "1 corrected by the operator" in page

    lines = plan_report_lines(doc)
    roots = [(style, text) for style, text in lines if " root: " in text]
    assert len(roots) == 6
    assert [style for style, _ in roots] == ["bold", "text", "text", "text", "bold", "text"]
    assert roots[0][1].startswith("  left exiting L5 root: CORRECTED BY THE OPERATOR")
    assert "30.0 mm long" in roots[0][1] and "21 centreline points" in roots[0][1]
    assert not any("CORRECTED" in text for _, text in roots[1:])
    assert roots[4][1].startswith("  right exiting L4 root: not found (neither the network")


def test_no_roots_section_without_roots_or_label_edits() -> None:
    doc = _doc()
    for sp in doc["sides"].values():
        del sp["roots"]
    assert root_rows(doc) == []
    assert "Nerve roots" not in plan_report_html(doc)
    assert not any("Nerve roots" in text for _, text in plan_report_lines(doc))


def _edited_records() -> tuple[list[dict], LabelEditSummary]:
    """The label edit records of two strokes (nerve painted over bone, bone erased) as the app
    puts them into the plan: ClassEdit.to_dict() and the added / removed volumes."""
    a = np.zeros((30, 30, 30), np.uint8)
    a[5:25, 5:25, 5:25] = DEFAULT_LABELS.id_of("bone")
    labels = Volume(array=a, spacing_mm=np.array([0.8, 0.8, 1.5]),
                    origin_lps_mm=np.array([-10.0, -10.0, 50.0]))
    editor = LabelEditor(labels, DEFAULT_LABELS)
    assert editor.paint(labels.index_to_lps(np.array([15.0, 15.0, 15.0])).tolist(), 3.0, "nerve") > 0
    assert editor.erase(labels.index_to_lps(np.array([8.0, 8.0, 10.0])).tolist(), 2.0, "bone") > 0
    summary = editor.summary()
    records = [dict(c.to_dict(), added_ml=round(c.added * c.voxel_ml, 6),
                    removed_ml=round(c.removed * c.voxel_ml, 6)) for c in summary.classes]
    return records, summary


def test_operator_edits_round_trip_through_plan_json_and_show_in_the_report() -> None:
    records, summary = _edited_records()
    assert sorted(r["name"] for r in records) == ["bone", "nerve"]
    doc = _doc()
    plain = Plan(sides={}, ct_geometry={}, segmentation_source="x", anatomy={}).to_dict()
    assert "operator_edits" not in plain["segmentation"]  # None: the key is left out
    plan = Plan(sides={}, ct_geometry={}, segmentation_source="x", anatomy={},
                operator_edits=records)
    doc["segmentation"] = json.loads(json.dumps(plan.to_dict()))["segmentation"]
    back = doc["segmentation"]["operator_edits"]
    assert back == records and back is not records
    validate_plan_document(doc)
    # The records read back as the editor's summary (the session file's reader).
    again = summary_from_dict({"voxel_ml": summary.voxel_ml, "classes": back})
    assert [(c.name, c.added, c.removed) for c in again.classes] == [
        (c.name, c.added, c.removed) for c in summary.classes]
    for c, d in zip(again.classes, summary.classes):
        assert c.centroid_lps_mm == pytest.approx(d.centroid_lps_mm, abs=1e-3)  # 3 decimals
    assert again.lines() == summary.lines()

    page = html.unescape(plan_report_html(doc))
    assert "Labels edited by the operator" in page
    nerve = next(r for r in records if r["name"] == "nerve")
    assert f"{nerve['added_voxels']} voxels ({nerve['added_ml']:.2f}\xa0ml)" in page
    x, y, z = nerve["centroid_lps_mm"]
    assert f"({x:.1f}, {y:.1f}, {z:.1f})" in page
    pdf_text = "\n".join(text for _, text in plan_report_lines(doc))
    assert f"nerve: {nerve['added_voxels']} voxels added" in pdf_text

    bad = copy.deepcopy(doc)
    bad["segmentation"]["operator_edits"][0]["added_voxels"] = "many"
    bad["segmentation"]["operator_edits"][1]["centroid_lps_mm"] = [1.0, 2.0]
    with pytest.raises(InputError) as info:
        validate_plan_document(bad)
    message = str(info.value)
    assert "segmentation.operator_edits[0].added_voxels should be integer" in message
    assert "segmentation.operator_edits[1].centroid_lps_mm has 2 items" in message


def test_label_edit_volumes_from_a_record_without_them() -> None:
    """A record as ClassEdit.to_dict() writes it (no added_ml / removed_ml): the report takes the
    volumes from changed_ml per changed voxel."""
    from spinect_core.report.html import label_edit_ml

    record = {"name": "bone", "added_voxels": 30, "removed_voxels": 10, "changed_voxels": 40,
              "changed_ml": 0.4}
    assert label_edit_ml(record, "added") == pytest.approx(0.3)
    assert label_edit_ml(record, "removed") == pytest.approx(0.1)
    assert label_edit_ml({"name": "bone", "added_voxels": 1}, "added") is None
