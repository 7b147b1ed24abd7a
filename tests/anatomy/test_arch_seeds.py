"""Seeds of L5's arch placed from its body's core: the bone just behind the core's back, beside
the canal, in the body's upper half, in the frame of L5's own axis."""

from __future__ import annotations

import numpy as np

from spinect_core.anatomy.arch_seeds import l5_arch_seeds

CORE_MM = 7.0


def _frame(up) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (LPS) along the column, towards the back and to the side, for ``up``."""
    u = np.asarray(up, float) / np.linalg.norm(up)
    b = np.array([0.0, 1.0, 0.0]) - u[1] * u
    b /= np.linalg.norm(b)
    return u, b, np.cross(u, b)


def _core(up) -> np.ndarray:
    """A body's core: a 26 x 16 x 14 mm box (side, back, up) about the origin in the frame of
    ``up``. Its back lies 8 mm behind the centre, the body's posterior wall 15 mm (the core
    lies 7 mm inside the bone); its top 7 mm above, the body's 14 mm."""
    u, b, s = _frame(up)
    g = np.stack(np.meshgrid(np.arange(-13, 14), np.arange(-8, 9), np.arange(-7, 8),
                             indexing="ij"), -1).reshape(-1, 3).astype(float)
    return np.outer(g[:, 0], s) + np.outer(g[:, 1], b) + np.outer(g[:, 2], u)


def _points(up, sbh) -> np.ndarray:
    """LPS points given as (side, back, height) mm in the frame of ``up``."""
    u, b, s = _frame(up)
    sbh = np.asarray(sbh, float)
    return np.outer(sbh[:, 0], s) + np.outer(sbh[:, 1], b) + np.outer(sbh[:, 2], u)


def _cases() -> tuple[list, list[bool]]:
    """(side, back, height) points and whether each is a seed; the core's back plus its depth
    at 15 mm."""
    return ([
        [15.0, 20.0, 4.0],     # left, behind the core, upper half: seed
        [-15.0, 20.0, 4.0],    # right: seed
        [15.0, 20.0, 13.0],    # below the body's top: seed
        [15.0, 20.0, -6.0],    # beside the canal in the lower half (S1's superior articular
                               # process comes up there): no
        [15.0, 20.0, 16.0],    # above the body's top (L4's inferior articular process): no
        [35.0, 20.0, 4.0],     # a transverse process, far lateral: no
        [3.0, 20.0, 4.0],      # the canal's middle (a spur of bone there): no
        [0.0, 5.0, 0.0],       # the body: no
        [15.0, 35.0, 4.0],     # an articular process, far behind the wall: no
    ], [True, True, True, False, False, False, False, False, False])


def test_the_bone_behind_the_body_beside_the_canal_is_seeded_and_nothing_else() -> None:
    up = np.array([0.0, 0.0, 1.0])
    sbh, expected = _cases()
    seeds = l5_arch_seeds(_points(up, sbh), _core(up), up, core_mm=CORE_MM)
    assert seeds.tolist() == expected


def test_the_seeds_follow_a_leaning_column() -> None:
    """A column leaning 30 degrees forward (lordosis) and 10 to the side: the same points in
    the body's own frame give the same seeds (upright frame's seeds would miss them)."""
    up = np.array([np.sin(np.radians(10.0)), -np.sin(np.radians(30.0)), 1.0])
    sbh, expected = _cases()
    points, core = _points(up, sbh), _core(up)
    assert l5_arch_seeds(points, core, up, core_mm=CORE_MM).tolist() == expected
    assert l5_arch_seeds(points, core, 5.0 * up, core_mm=CORE_MM).tolist() == expected
    assert l5_arch_seeds(points, core, np.array([0.0, 0.0, 1.0]),
                            core_mm=CORE_MM).tolist() != expected


def test_no_core_no_seeds() -> None:
    up = np.array([0.0, 0.0, 1.0])
    assert not l5_arch_seeds(_points(up, [[15.0, 20.0, 4.0]]), np.zeros((0, 3)), up,
                                core_mm=CORE_MM).any()
