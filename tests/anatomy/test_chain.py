"""The spine chain: the longest smooth run of vertebral body cores (analytic cores, known answer).

A real chest CT (0.7 x 0.7 x 2.5 mm) gave a core to a sclerotic facet joint behind L2/L3; the
chain took it as its last body, 85 degrees off the column's course, and named it L3.
"""

from __future__ import annotations

import numpy as np

from spinect_core.anatomy.levels import _body_as_large_below, _chain, _Core, _sized_bodies_below


def _core(label: int, x: float, y: float, z: float, volume: float = 2000.0) -> _Core:
    return _Core(label=label, centre=np.array([x, y, z]), volume_mm3=volume, top_z=z + 8.0,
                 bottom_z=z - 8.0)


#: Four bodies 30 mm apart down a column that leans forwards (-y) as it descends.
COLUMN = [_core(k + 1, 2.0 * k, -12.0 * k, -30.0 * k) for k in range(4)]


def _labels(chain: list[_Core]) -> list[int]:
    return [c.label for c in chain]


def test_the_column_is_the_chain() -> None:
    assert _labels(_chain(list(COLUMN))) == [1, 2, 3, 4]


def test_a_core_behind_the_last_body_is_not_the_next_body() -> None:
    # 26 mm behind and 20 mm below the last body, larger than it: reached with a 77 degree
    # turn, which no column makes.
    facet = _core(9, 6.0 - 16.0, -36.0 + 26.0, -110.0, volume=3000.0)
    assert _labels(_chain(COLUMN + [facet])) == [1, 2, 3, 4]


def test_of_two_chains_as_long_the_smoother_wins_over_the_larger() -> None:
    # The facet core could replace body 4 with a 41 degree turn from body 3 (same length, more
    # volume): the chain keeps body 4.
    facet = _core(9, 4.0 - 14.0, -24.0 + 12.0, -60.0 - 46.0, volume=5000.0)
    assert _labels(_chain(COLUMN + [facet])) == [1, 2, 3, 4]


def test_the_sacrum_below_l5_is_kept_at_the_turn_real_spines_make() -> None:
    # L5 to the sacrum's core turns 32 degrees (the largest measured on real-bone phantoms).
    d = np.array([2.0, -12.0, -30.0])
    turn = np.radians(32.0)
    rot = np.array([[1, 0, 0], [0, np.cos(turn), -np.sin(turn)], [0, np.sin(turn), np.cos(turn)]])
    sacrum_at = COLUMN[-1].centre + 1.6 * rot @ d
    sacrum = _core(5, *sacrum_at, volume=9000.0)
    assert _labels(_chain(COLUMN + [sacrum])) == [1, 2, 3, 4, 5]


def test_a_single_core_is_a_chain_of_one() -> None:
    assert _labels(_chain([_core(1, 0, 0, 0, 100.0), _core(2, 200, 0, 0, 900.0)])) == [2]
    assert _chain([]) == []


def test_lumbar_sized_bodies_below_a_sacrum_candidate_are_counted() -> None:
    chain = [_core(1, 0, 0, 0, 2000.0), _core(2, 0, 0, -30, 6000.0),      # L5?, "sacrum"
             _core(3, 0, 0, -60, 1500.0), _core(4, 0, 0, -90, 900.0)]     # two below it
    assert _sized_bodies_below(chain, 1) == 1          # S2-like (900 < half of 2000) not counted
    chain[3].volume_mm3 = 1200.0
    assert _sized_bodies_below(chain, 1) == 2


def test_small_cores_behind_the_column_do_not_outrun_its_bodies() -> None:
    # Three small cores (facet joints, 120 mm^3 beside bodies of 2000: 430-1100 beside
    # 11000-14000 on a patient-like phantom) run on behind the column from body 2, turning 45
    # degrees there, one link further than bodies 3 and 4 (a sacrum without a core below them):
    # the chain keeps the bodies.
    facets = [_core(10 + k, 4.0 + 2.0 * k, 12.0 * k, -58.0 - 25.0 * k, volume=120.0)
              for k in range(3)]
    assert _labels(_chain(COLUMN + facets)) == [1, 2, 3, 4]


def test_a_body_below_as_large_as_the_candidate_makes_it_no_sacrum() -> None:
    # What lies below a sacrum's core is at most 3 % of it (45 label maps counted right); a
    # lumbar body below L3 is as large as L3.
    chain = [_core(1, 0, 0, 0, 2000.0), _core(2, 0, 0, -30, 7000.0), _core(3, 0, 0, -60, 7200.0)]
    assert _body_as_large_below(chain, 1)
    sacrum = [_core(1, 0, 0, 0, 7000.0), _core(2, 0, 0, -40, 60000.0), _core(3, 0, 0, -80, 900.0)]
    assert not _body_as_large_below(sacrum, 1) and not _body_as_large_below(sacrum, 2)
