"""The one C-arm language (spinect_core.planning.carm): a table of view vectors and their words.

``CARM_TABLE`` is the single table every surface is checked against: here the core's angles and
words, in tests/app/test_carm_words.py the app, the CLI and the report.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinect_core.planning import carm, trajectory
from spinect_core.planning.carm import (CARM_CONVENTION, carm_angles, carm_text,
                                        carm_view_direction, carm_words, view_side)

C30, S30 = math.cos(math.radians(30)), math.sin(math.radians(30))
C25, S25 = math.cos(math.radians(25)), math.sin(math.radians(25))
C12, S12 = math.cos(math.radians(12)), math.sin(math.radians(12))

# (view direction d: detector -> patient, LPS), side, oblique (+ ipsilateral), tilt (+ cranial),
# the words. LPS: +x = patient's left, +y = posterior, +z = superior; the patient is prone, so a
# view into the back has d_y < 0. The detector sits at -d: an ipsilateral oblique for the left
# side puts it over the patient's left (-d_x > 0), a cranial tilt leans it to the head (-d_z > 0).
CARM_TABLE = [
    ((0.0, -1.0, 0.0), "left", 0.0, 0.0, "straight PA, no tilt"),
    ((0.0, -1.0, 0.0), "right", 0.0, 0.0, "straight PA, no tilt"),
    ((-S30, -C30, 0.0), "left", 30.0, 0.0, "30.0 deg ipsilateral (left) oblique, no tilt"),
    ((S30, -C30, 0.0), "right", 30.0, 0.0, "30.0 deg ipsilateral (right) oblique, no tilt"),
    ((S30, -C30, 0.0), "left", -30.0, 0.0,
     "30.0 deg contralateral (contra-left) oblique, no tilt"),
    ((-S30, -C30, 0.0), "right", -30.0, 0.0,
     "30.0 deg contralateral (contra-right) oblique, no tilt"),
    ((0.0, -C12, -S12), "left", 0.0, 12.0, "straight PA, 12.0 deg cranial tilt"),
    ((0.0, -C12, S12), "right", 0.0, -12.0, "straight PA, 12.0 deg caudal tilt"),
    ((-S25 * C12, -C25 * C12, -S12), "left", 25.0, 12.0,
     "25.0 deg ipsilateral (left) oblique, 12.0 deg cranial tilt"),
    ((S25 * C12, -C25 * C12, S12), "right", 25.0, -12.0,
     "25.0 deg ipsilateral (right) oblique, 12.0 deg caudal tilt"),
]


@pytest.mark.parametrize("d, side, oblique, tilt, words", CARM_TABLE)
def test_the_table_of_view_vectors_and_words(d, side, oblique, tilt, words) -> None:
    a = carm_angles(np.asarray(d), side)
    assert a["oblique_deg"] == pytest.approx(oblique, abs=1e-9)
    assert a["tilt_deg"] == pytest.approx(tilt, abs=1e-9)
    assert a["description"] == words == carm_words(oblique, tilt, side)
    assert np.allclose(carm_view_direction(oblique, tilt, side), d, atol=1e-12)
    assert a["oblique_word"] == ("none" if oblique == 0 else
                                 "ipsilateral" if oblique > 0 else "contralateral")
    assert a["tilt_word"] == ("none" if tilt == 0 else "cranial" if tilt > 0 else "caudal")


def test_the_detector_leans_where_the_words_say() -> None:
    # Ipsilateral (left): the detector (at -d from the patient) is over the patient's left.
    d = carm_view_direction(25.0, 12.0, "left")
    assert -d[0] > 0 and -d[1] > 0 and -d[2] > 0  # left, posterior (above the back), cranial
    d = carm_view_direction(25.0, -12.0, "right")
    assert -d[0] < 0 and -d[2] < 0                 # the patient's right, caudal


def test_display_words_and_a_stored_carm_dict() -> None:
    a = carm_angles(carm_view_direction(25.0, 12.0, "left"), "left")
    assert carm_text(a) == "25.0° ipsilateral (left) oblique, 12.0° cranial tilt"
    assert carm_text(a, with_side=False) == "25.0° ipsilateral oblique, 12.0° cranial tilt"
    assert carm_text(a, degree_sign=False) == a["description"]
    # plan.json's carm read back (rounded numbers, an older description) gives today's words.
    stored = {"side": "right", "oblique_deg": -7.25, "tilt_deg": 0.0, "description": "old"}
    assert carm_text(stored) == "7.2° contralateral (contra-right) oblique, no tilt"
    assert carm_text(None) == carm_text({}) == "—"
    with pytest.raises(ValueError):
        carm_words(10.0, 0.0, "both")


def test_view_side_names_where_the_detector_leans() -> None:
    assert view_side(carm_view_direction(20.0, 5.0, "right")) == "right"
    assert view_side(carm_view_direction(20.0, 5.0, "left")) == "left"
    assert view_side((0.0, -1.0, 0.0)) == "left"


def test_trajectory_re_exports_the_same_functions() -> None:
    assert trajectory.carm_angles is carm.carm_angles
    assert trajectory.carm_view_direction is carm.carm_view_direction
    for word in ("ipsilateral", "contralateral", "cranial", "caudal", "prone", "under the table",
                 "left is on the screen's left"):
        assert word in CARM_CONVENTION
