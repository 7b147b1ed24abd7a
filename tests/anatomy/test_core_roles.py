"""Which part each core of the L5/S1 box seeds (analytic cores in LPS mm, known answer).

TotalSegmentator's real 3 mm CT (an elderly, fatty sacrum): once the CT bone model filled the
sacrum's fatty marrow, its cores lay in the lateral masses, 15 and 29 mm behind the sacrum's
centre. Taken as other bone they flooded S1's top in the watershed and the disc centre moved
3.1 -> 5.7 mm off; the sacrum's depth bound is looser than a lumbar body's.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy.levels import _Core, _core_role


def _core(label: int, x: float, y: float, z: float) -> _Core:
    return _Core(label=label, centre=np.array([x, y, z]), volume_mm3=2000.0, top_z=z + 10.0,
                 bottom_z=z - 10.0)


L4 = _core(1, 0.0, -140.0, 280.0)
L5 = _core(2, 0.0, -135.0, 241.0)
SACRUM = _core(3, 0.0, -123.0, 210.0)
CHAIN = [L4, L5, SACRUM]


def _role(dx: float, dy: float, dz: float, of: _Core = SACRUM) -> str:
    x, y, z = of.centre
    return _core_role(_core(9, x + dx, y + dy, z + dz), CHAIN, [])


@pytest.mark.parametrize("dx, dy, dz", [(28.0, 29.0, 1.0), (-22.0, 15.0, 8.5), (0.0, 0.0, -5.0)])
def test_the_sacrums_lateral_masses_seed_s1(dx, dy, dz) -> None:
    assert _role(dx, dy, dz) == "S1"


def test_a_core_as_far_behind_l5_is_not_l5() -> None:
    # A lumbar body keeps its tight bound: beside it at its height, no deeper than 10 mm.
    assert _role(20.0, 8.0, 0.0, of=L5) == "L5"
    assert _role(20.0, 25.0, 0.0, of=L5) == "other_bone"


def test_cores_beyond_the_sacrums_bounds_are_not_s1() -> None:
    assert _role(20.0, 40.0, 0.0) == "other_bone"         # behind the lateral masses
    assert _role(0.0, 25.0, -25.0) == "other_bone"        # far below the centre, behind
    assert _role(70.0, 0.0, 0.0) == "ilium_left"          # LPS +x: the patient's left
    assert _role(-70.0, 0.0, 0.0) == "ilium_right"
