"""One C-arm language: the app, the CLI and the report name every view of the table in
tests/planning/test_carm.py with the same words (a test fails if any surface disagrees)."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from spinect_core.planning.carm import CARM_CONVENTION, carm_angles
from tests.planning.test_carm import CARM_TABLE


def _same(text: str) -> str:
    """Displays write the degree sign where plan.json writes " deg"; nothing else may differ."""
    return html.unescape(text).replace("°", " deg").strip()


def _doc(d, side) -> dict:
    """A minimal plan.json document whose Kambin window and needle are seen at ``d``."""
    carm = carm_angles(np.asarray(d), side)
    view = {"area_mm2": 20.0, "carm": carm, "alpha_deg": 1.0, "beta_deg": 2.0,
            "oblique_deg": carm["oblique_deg"], "tilt_deg": carm["tilt_deg"]}
    traj = {"carm": carm, "safe": True, "window": "kambin", "length_mm": 80.0,
            "min_nerve_clearance_mm": 3.0}
    return {"sides": {side: {"kambin": {"found": True, "plateau_view": view, "best_view": view},
                             "safe": {"found": False, "reason": "not visible"},
                             "trajectory": traj}}}


@pytest.fixture(scope="module")
def panel(qapp):
    from app.widgets.planning_panel import PlanningPanel

    return PlanningPanel()


@pytest.mark.parametrize("d, side, oblique, tilt, words", CARM_TABLE)
def test_app_cli_and_report_use_the_same_words(panel, d, side, oblique, tilt, words) -> None:
    from app.widgets.drr_view import drr_title
    from app.widgets.planning_panel import carm_text
    from spinect_core.cli.plan import summary_text
    from spinect_core.report.html import plan_report_html
    from spinect_core.report.pdf import plan_report_lines

    doc = _doc(d, side)
    carm = doc["sides"][side]["kambin"]["plateau_view"]["carm"]
    seen: dict[str, str] = {}
    # The app: "This view", the best-view list (side named above it), the DRR view's title.
    panel.update_for_view(np.asarray(d), side)
    seen["app: this view"] = panel.view_label.text()
    seen["app: best-view list"] = carm_text(carm)
    assert carm_text(carm, with_side=False) == carm_text(carm).replace(f" ({side})", "").replace(
        f" (contra-{side})", "")
    seen["app: fluoroscopy title"] = drr_title(np.asarray(d), side).split(": ", 1)[1]
    # The CLI summary.
    line = next(x for x in summary_text(doc).splitlines() if "kambin" in x)
    seen["cli"] = re.search(r"at C-arm (.*) \(local alpha", line).group(1)
    # The report: HTML cells (best, plateau, needle) and the PDF's lines.
    page = plan_report_html(doc)
    cells = [c for c in re.findall(r"<td>([^<]*)</td>", page) if "oblique" in c or "PA" in c]
    assert len(cells) == 3
    for i, cell in enumerate(cells):
        seen[f"report html {i}"] = cell
    pdf = [t for _, t in plan_report_lines(doc) if t.startswith("  ") and "C-arm" in t]
    assert len(pdf) == 3
    for i, text in enumerate(pdf):
        seen[f"report pdf {i}"] = text.split("C-arm", 1)[1].split(": ", 1)[1]
    assert {k: _same(v) for k, v in seen.items()} == {k: words for k in seen}


def test_the_sign_convention_is_shown_once_in_the_app(panel) -> None:
    assert panel.view_label.toolTip() == CARM_CONVENTION
    legend = panel.carm_legend.text()
    assert "ipsilateral" in legend and "cranial" in legend and "prone" in legend
    # "This view" follows the needle's side when no side is given.
    panel.side_combo.setCurrentIndex(panel.side_combo.findData("right"))
    panel.update_for_view(np.array(CARM_TABLE[2][0]))  # 30 deg towards the patient's left
    assert "contralateral (contra-right)" in panel.view_label.text()
    panel.side_combo.setCurrentIndex(panel.side_combo.findData("left"))
    assert "ipsilateral (left)" in panel.view_label.text()
