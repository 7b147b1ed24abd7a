"""The plan from the network's segmentation agrees with the plan from the true labels.

The study found no significant difference between manually and automatically measured triangle
areas; the planner's version of that claim (issue #4): on a phantom never used in training, the
best-view areas agree within 15 % and the plateau views within 5 degrees. Both plans derive the
anatomy from a plain 5-class label map, as a user's case does (no per-level instances).
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.plan import PlanEngine, PlanOptions
from spinect_core.training.demo_weights import TEST_SEEDS

OPTIONS = PlanOptions(coarse_step_deg=5.0, final_step_deg=1.0)


@pytest.fixture(scope="module")
def plans():
    from spinect_core.phantom import generate_phantom
    from spinect_core.segment import Segmenter

    phantom = generate_phantom(seed=TEST_SEEDS[1], spacing_mm=(1.0, 1.0, 1.0))
    seg = Segmenter.from_weights(None).segment(phantom.ct)
    truth = PlanEngine(phantom.ct, phantom.labels, DEFAULT_LABELS, options=OPTIONS).plan()
    network = PlanEngine(phantom.ct, seg.labels, seg.table, options=OPTIONS).plan()
    return truth, network


def _angle_between(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


#: The safe window's agreement is a target not met yet (README "Status"): the network's best
#: safe areas are 0.73-0.77 of the truth's (2026-12-07: 12.5 against 16.4 mm^2 on the left).
#: Strict, so the day it is met the run says so and the mark comes off.
SAFE_NOT_MET = pytest.mark.xfail(strict=True, reason="issue 12: the safe window from the "
                                 "network's labels is 0.73-0.77 of the truth's best area")


@pytest.mark.slow
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", ["kambin", pytest.param("safe", marks=SAFE_NOT_MET)])
def test_network_plan_agrees_with_truth_plan(plans, side, kind) -> None:
    truth, network = plans
    t, n = truth.sides[side].window(kind), network.sides[side].window(kind)
    assert t.found and n.found, (t.reason, n.reason)
    assert n.best_view.area_mm2 == pytest.approx(t.best_view.area_mm2, rel=0.15)
    # 5 degrees between the plateau view directions (both in LPS, so frames cannot hide a shift).
    assert _angle_between(t.plateau_view.view_direction_lps,
                          n.plateau_view.view_direction_lps) <= 5.0
