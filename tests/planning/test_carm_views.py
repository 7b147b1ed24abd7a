"""C-arm view angles (prone patient): known directions and words, round trips, the search range,
its edges, and the literature views (docs/ARCHITECTURE.md sections 3 and 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinect_core.planning.optimise import optimise_view
from spinect_core.planning.plan import (PlanOptions, WindowPlan, ViewResult,
                                        endplate_squared_tilt, search_edges)
from spinect_core.planning.trajectory import carm_angles, carm_view_direction

S45 = math.sqrt(0.5)
C20, S20 = math.cos(math.radians(20)), math.sin(math.radians(20))

# (view direction d: the beam, skin -> target, LPS), side, oblique, tilt, description.
# LPS: +x left, +y posterior, +z superior; a prone patient's back faces the detector at PA.
KNOWN = [
    ((0.0, -1.0, 0.0), "left", 0.0, 0.0, "straight PA, no tilt"),
    ((-S45, -S45, 0.0), "left", 45.0, 0.0, "45.0 deg ipsilateral (left) oblique, no tilt"),
    ((S45, -S45, 0.0), "right", 45.0, 0.0, "45.0 deg ipsilateral (right) oblique, no tilt"),
    ((S45, -S45, 0.0), "left", -45.0, 0.0,
     "45.0 deg contralateral (contra-left) oblique, no tilt"),
    ((0.0, -C20, -S20), "right", 0.0, 20.0, "straight PA, 20.0 deg cranial tilt"),
    ((0.0, -C20, S20), "left", 0.0, -20.0, "straight PA, 20.0 deg caudal tilt"),
    ((-0.5 * C20, -math.sqrt(0.75) * C20, -S20), "left", 30.0, 20.0,
     "30.0 deg ipsilateral (left) oblique, 20.0 deg cranial tilt"),
    # Past lateral: rays travelling towards the patient's back (what the old local search gave).
    ((-math.cos(math.radians(8)), math.sin(math.radians(8)), 0.0), "left", 98.0, 0.0,
     "98.0 deg ipsilateral (left) oblique, no tilt"),
]


@pytest.mark.parametrize("d, side, oblique, tilt, words", KNOWN)
def test_known_view_vectors_and_their_carm_words(d, side, oblique, tilt, words) -> None:
    carm = carm_angles(np.asarray(d), side)
    assert carm["oblique_deg"] == pytest.approx(oblique, abs=1e-9)
    assert carm["tilt_deg"] == pytest.approx(tilt, abs=1e-9)
    assert carm["description"] == words
    assert np.allclose(carm_view_direction(oblique, tilt, side), d, atol=1e-12)


@pytest.mark.parametrize("side", ["left", "right"])
def test_angles_ray_angles_round_trip(side) -> None:
    for oblique in np.arange(-80.0, 81.0, 10.0):
        for tilt in np.arange(-80.0, 81.0, 10.0):
            d = carm_view_direction(oblique, tilt, side)
            assert np.linalg.norm(d) == pytest.approx(1.0)
            assert d[1] < 0  # the entry (-d) stays on the patient's back
            carm = carm_angles(d, side)
            assert carm["oblique_deg"] == pytest.approx(oblique, abs=1e-9)
            assert carm["tilt_deg"] == pytest.approx(tilt, abs=1e-9)


def test_options_keep_the_entry_on_the_back() -> None:
    assert PlanOptions().oblique_range_deg == (0.0, 60.0)
    assert PlanOptions().tilt_range_deg == (-40.0, 40.0)
    for bad in ({"oblique_range_deg": (0.0, 95.0)}, {"tilt_range_deg": (-90.0, 10.0)},
                {"oblique_range_deg": (30.0, 10.0)}, {"literature_obliques_deg": (15.0, 90.0)}):
        with pytest.raises(ValueError):
            PlanOptions(**bad)


def test_search_stays_in_the_range_and_flags_a_maximum_on_its_edge() -> None:
    # An area that keeps growing past 60 deg oblique (as the safe window did towards lateral).
    def area(oblique: float, tilt: float) -> float:
        return 30.0 - ((oblique - 95.0) / 30.0) ** 2 - ((tilt - 10.0) / 20.0) ** 2

    o = PlanOptions()
    result = optimise_view(area, alpha_range_deg=o.oblique_range_deg,
                           beta_range_deg=o.tilt_range_deg, coarse_step_deg=5.0,
                           final_step_deg=0.5, starts=1)
    views = [(result.best.alpha_deg, result.best.beta_deg),
             (result.plateau.alpha_deg, result.plateau.beta_deg)]
    views += [(p.alpha_deg, p.beta_deg) for p in result.history]
    for ob, ti in views:
        assert 0.0 <= ob <= 60.0 and -40.0 <= ti <= 40.0
    assert result.best.alpha_deg == 60.0
    assert result.best.beta_deg == pytest.approx(10.0, abs=0.5)
    edges = search_edges(views[0], o.oblique_range_deg, o.tilt_range_deg, tolerance_deg=1.0)
    assert edges == ["oblique_max"]
    # An interior maximum is not flagged; a corner names both edges.
    assert search_edges((30.0, 0.0), (0, 60), (-40, 40), tolerance_deg=1.0) == []
    assert search_edges((0.4, -39.5), (0, 60), (-40, 40), tolerance_deg=1.0) == [
        "oblique_min", "tilt_min"]


def test_the_edge_is_reported_in_words() -> None:
    d = carm_view_direction(60.0, 12.0, "left")
    view = ViewResult(alpha_deg=55.0, beta_deg=-3.0, area_mm2=20.0, view_direction_lps=d,
                      carm=carm_angles(d, "left"))
    wp = WindowPlan(kind="safe", side="left", found=True, best_view=view, plateau_view=view,
                    search_edges=["oblique_max"])
    doc = wp.to_dict()
    assert doc["at_search_edge"] is True and doc["search_edges"] == ["oblique_max"]
    assert "edge of the C-arm search range" in doc["search_edge_note"]
    assert "largest oblique" in doc["search_edge_note"]
    assert doc["best_view"]["oblique_deg"] == pytest.approx(60.0)
    assert doc["best_view"]["tilt_deg"] == pytest.approx(12.0)
    inside = WindowPlan(kind="safe", side="left", found=True, best_view=view, plateau_view=view)
    assert inside.to_dict()["at_search_edge"] is False
    assert inside.to_dict()["search_edge_note"] == ""


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("oblique", [0.0, 15.0, 35.0])
def test_endplate_squared_tilt_puts_the_beam_in_the_endplate_plane(side, oblique) -> None:
    # An S1 endplate with a 40-degree sacral slope, facing cranially and anteriorly (LPS -y).
    slope = math.radians(40.0)
    normal = np.array([0.05, -math.sin(slope), math.cos(slope)])
    normal /= np.linalg.norm(normal)
    tilt = endplate_squared_tilt(normal, oblique, side)
    assert 0.0 < tilt < 45.0  # a cranial tilt squares it, as for L5/S1 in practice
    assert carm_view_direction(oblique, tilt, side) @ normal == pytest.approx(0.0, abs=1e-12)
    if oblique == 0.0:  # straight PA: the tilt is the sacral slope itself
        assert tilt == pytest.approx(40.0, abs=1e-9)
