"""View optimiser: angle conventions, a smooth objective, and a tunnel of known orientation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinect_core.errors import Cancelled, InputError
from spinect_core.planning.optimise import (GRID_VIEWS_PER_CALL, LocalFrame, angles_of,
                                            entry_direction, optimise_view, optimise_views,
                                            view_direction)
from spinect_core.planning.scene import SceneFields
from spinect_core.planning.windows import WindowOptions, compute_window
from spinect_core.volume import Volume

# A patient-like frame: x = patient left (operated side), y = posterior, z = cranial.
FRAME = LocalFrame(origin_lps=[0.0, 0.0, 0.0], x_lps=[1.0, 0.0, 0.0], y_lps=[0.0, 1.0, 0.0],
                   z_lps=[0.0, 0.0, 1.0])


def test_angle_convention() -> None:
    assert np.allclose(entry_direction(FRAME, 0, 0), [0, 1, 0])  # straight posterior
    assert np.allclose(entry_direction(FRAME, 90, 0), [1, 0, 0])  # lateral
    d = view_direction(FRAME, 20, 12)
    assert d[2] < 0  # positive beta: the needle travels caudally
    assert np.allclose(angles_of(FRAME, -d), (20, 12))
    tilted = LocalFrame(origin_lps=[1, 2, 3], x_lps=[0, 0, 1], y_lps=[0, -1, 0],
                        z_lps=[1, 0, 0])  # left-handed (mirrored side) is allowed
    assert np.allclose(angles_of(tilted, entry_direction(tilted, 33, -7)), (33, -7))


def test_smooth_objective_best_and_plateau() -> None:
    calls = []

    def f(a: float, b: float) -> float:
        calls.append((a, b))
        return 100.0 * math.exp(-((a - 31.3) / 12) ** 2 - ((b + 8.6) / 9) ** 2)

    res = optimise_view(f)
    assert res.best.alpha_deg == pytest.approx(31.3, abs=0.3)
    assert res.best.beta_deg == pytest.approx(-8.6, abs=0.3)
    assert res.best.value == pytest.approx(100.0, rel=1e-3)
    assert res.values.shape == (16, 15) and res.alphas_deg[-1] == 75 and res.betas_deg[0] == -35
    assert res.evaluations == len(set(calls))
    # Symmetric peak: the plateau centre is near the maximum and reaches >= 90 % there.
    assert res.plateau.alpha_deg == pytest.approx(31.3, abs=2.5)
    assert res.plateau.beta_deg == pytest.approx(-8.6, abs=2.5)
    assert res.plateau.value >= 90.0
    assert 2 <= res.plateau_mask.sum() <= 6


def test_plateau_centre_differs_from_a_thin_peak() -> None:
    # A broad plateau at alpha 10-40 plus a thin, slightly higher spike at alpha 60.
    def f(a: float, b: float) -> float:
        broad = 90.0 if 10 <= a <= 40 and abs(b) <= 10 else 0.0
        spike = 100.0 * math.exp(-((a - 60) ** 2 + b ** 2) / 2.0)
        return max(broad, spike)

    res = optimise_view(f, refine=False)
    assert res.best.alpha_deg == 60  # the spike wins on the grid
    assert res.plateau.alpha_deg == 60  # its plateau is itself (90 % of 100 excludes the broad one)
    res2 = optimise_view(lambda a, b: min(f(a, b), 90.0), refine=False)
    assert res2.plateau.alpha_deg == pytest.approx(25.0)
    assert res2.plateau.beta_deg == pytest.approx(0.0)


def test_progress_can_cancel() -> None:
    with pytest.raises(Cancelled):
        optimise_view(lambda a, b: 1.0, progress=lambda frac, msg: frac < 0.3)


def _tunnel_scene(alpha: float, beta: float) -> tuple[SceneFields, np.ndarray]:
    """A 14 mm plate (blocker, y in [2, 16]) with a 2 mm-radius cylindrical tunnel through the
    origin along u(alpha, beta), and a target slab in front (y in [-6, -2])."""
    vox = 0.5
    xs = np.arange(-14, 14 + 1e-9, vox)
    ys = np.arange(-8, 18 + 1e-9, vox)
    zs = np.arange(-14, 14 + 1e-9, vox)
    Z, Y, X = np.meshgrid(zs, ys, xs, indexing="ij")
    p = np.stack([X, Y, Z], -1)
    u = entry_direction(FRAME, alpha, beta)
    radial = p - (p @ u)[..., None] * u
    tunnel = np.linalg.norm(radial, axis=-1) <= 2.0
    plate = (Y >= 2) & (Y <= 16) & ~tunnel
    target = (Y >= -6) & (Y <= -2)
    grid = Volume(array=np.zeros(X.shape, np.uint8), spacing_mm=[vox] * 3,
                  origin_lps_mm=[xs[0], ys[0], zs[0]])
    return SceneFields.from_masks(grid, target, plate), np.zeros(3)


def test_optimiser_recovers_a_tunnel_orientation() -> None:
    alpha0, beta0 = 23.3, -6.6
    scene, centre = _tunnel_scene(alpha0, beta0)
    opts = WindowOptions(roi_size_mm=8.0, pixel_mm=0.25, polygons=False)

    def area(a: float, b: float) -> float:
        return compute_window(scene, view_direction(FRAME, a, b), roi_center_lps=centre,
                              options=opts).area_mm2

    res = optimise_view(area, alpha_range_deg=(5, 45), beta_range_deg=(-20, 10),
                        coarse_step_deg=5, starts=1)
    assert res.best.alpha_deg == pytest.approx(alpha0, abs=1.0)
    assert res.best.beta_deg == pytest.approx(beta0, abs=1.0)
    # Looking down the tunnel shows most of its cross-section, pi * 2^2 = 12.6 mm^2 (measured
    # 11.1: the voxel staircase of a 14 mm long oblique tunnel at 0.5 mm voxels narrows it).
    assert 0.8 * math.pi * 4 < res.best.value <= 1.02 * math.pi * 4
    # 5 deg off the axis the far opening slides by 14 tan(5 deg) = 1.2 mm: much less is visible.
    assert area(alpha0 + 5, beta0) < 0.6 * res.best.value


def test_cheap_grid_estimate_drives_the_grid_and_the_true_objective_the_result() -> None:
    """``grid_evaluate`` fills the coarse map; the reported best and plateau use ``evaluate``."""
    from spinect_core.planning.optimise import optimise_view

    def true(a: float, b: float) -> float:
        return 100.0 - (a - 31.0) ** 2 / 10.0 - (b + 7.0) ** 2 / 10.0

    calls = {"true": 0}

    def counted(a: float, b: float) -> float:
        calls["true"] += 1
        return true(a, b)

    result = optimise_view(counted, grid_evaluate=lambda a, b: true(a, b) - 5.0,
                           final_step_deg=0.25)
    assert result.values.max() <= 95.0 + 1e-9  # the grid holds the cheap estimate
    assert result.best.value == true(result.best.alpha_deg, result.best.beta_deg)
    assert abs(result.best.alpha_deg - 31.0) <= 0.5 and abs(result.best.beta_deg + 7.0) <= 0.5
    assert result.plateau.value == true(result.plateau.alpha_deg, result.plateau.beta_deg)
    assert calls["true"] < result.values.size  # the expensive objective ran far less often


def _smooth(a: float, b: float) -> float:
    return 100.0 * math.exp(-((a - 31.3) / 12) ** 2 - ((b + 8.6) / 9) ** 2)


def test_batched_objective_gives_the_same_result_as_the_scalar_one() -> None:
    batches = []

    def many(views):
        batches.append(len(views))
        return [_smooth(a, b) for a, b in views]

    scalar = optimise_view(_smooth, grid_evaluate=lambda a, b: _smooth(a, b) - 1.0)
    batched = optimise_view(many, grid_evaluate=lambda views: [_smooth(a, b) - 1.0
                                                               for a, b in views],
                            batched=True)
    assert batched.best == scalar.best and batched.plateau == scalar.plateau
    np.testing.assert_array_equal(batched.values, scalar.values)
    assert (batched.evaluations, batched.fine_evaluations) == (scalar.evaluations,
                                                               scalar.fine_evaluations)
    # The fine objective gets whole polls (4 axis moves + the start, or 4 diagonals) at once.
    assert max(batches) >= 4 and sum(batches) == batched.fine_evaluations


def _ridge(a: float, b: float) -> float:
    # A second objective with two peaks and a flat-topped ridge (ties in the compass).
    return (60.0 * math.exp(-((a - 55.0) / 8) ** 2 - ((b - 20.0) / 6) ** 2)
            + 40.0 * math.exp(-((a - 12.0) / 10) ** 2 - ((b + 25.0) / 7) ** 2)
            + min(30.0, 35.0 * math.exp(-((b - 5.0) / 4) ** 2)))


@pytest.mark.parametrize("refine", [True, False])
def test_objectives_searched_together_give_each_its_own_result(refine: bool) -> None:
    functions = (_smooth, _ridge)
    joint_calls: list[int] = []

    def fine(views):
        joint_calls.append(len(views))
        return [[fn(a, b) for fn in functions] for a, b in views]

    def cheap(views):
        joint_calls.append(len(views))
        return [[round(fn(a, b), 1) for fn in functions] for a, b in views]

    together = optimise_views(fine, 2, grid_evaluate=cheap, final_step_deg=0.5, fine_levels=2,
                              refine=refine)
    alone_calls = 0
    for fn, got in zip(functions, together):
        calls: list[int] = []

        def many(views, fn=fn, calls=calls):
            calls.append(len(views))
            return [fn(a, b) for a, b in views]

        def few(views, fn=fn, calls=calls):
            calls.append(len(views))
            return [round(fn(a, b), 1) for a, b in views]

        alone = optimise_view(many, grid_evaluate=few, batched=True, final_step_deg=0.5,
                              fine_levels=2, refine=refine)
        alone_calls += len(calls)
        assert got.best == alone.best and got.plateau == alone.plateau
        assert got.history == alone.history
        np.testing.assert_array_equal(got.values, alone.values)
        np.testing.assert_array_equal(got.plateau_mask, alone.plateau_mask)
    assert together[0].best != together[1].best
    # One call per round for both objectives: fewer calls than one search after the other.
    assert len(joint_calls) < alone_calls
    with pytest.raises(InputError):
        optimise_views(lambda views: [[1.0] for _ in views], 2)


def test_the_whole_grid_in_one_call_gives_the_same_result() -> None:
    # A GPU caster takes the whole coarse grid at once; the result is the row-by-row one.
    calls = []

    def cheap(views):
        calls.append(len(views))
        return [_smooth(a, b) - 1.0 for a, b in views]

    def many(views):
        return [_smooth(a, b) for a, b in views]

    rows = optimise_view(many, grid_evaluate=cheap, batched=True, grid_views_per_call=1)
    n_rows = len(calls)
    calls.clear()
    whole = optimise_view(many, grid_evaluate=cheap, batched=True, grid_views_per_call=10_000)
    assert calls[0] == whole.values.size and n_rows > len(rows.alphas_deg) - 1
    calls.clear()
    default = optimise_view(many, grid_evaluate=cheap, batched=True)
    # By default whole rows, GRID_VIEWS_PER_CALL views or fewer per call.
    rows_per_call = GRID_VIEWS_PER_CALL // len(rows.betas_deg)
    n_grid_calls = -(-len(rows.alphas_deg) // rows_per_call)
    assert 1 < n_grid_calls < len(rows.alphas_deg)
    assert calls[0] == rows_per_call * len(rows.betas_deg)
    assert sum(calls[:n_grid_calls]) == rows.values.size
    assert default.best == rows.best and default.plateau == rows.plateau
    np.testing.assert_array_equal(default.values, rows.values)
    assert whole.best == rows.best and whole.plateau == rows.plateau
    np.testing.assert_array_equal(whole.values, rows.values)
    calls.clear()
    optimise_view(many, grid_evaluate=cheap, batched=True, refine=False,
                  grid_views_per_call=3 * len(rows.betas_deg))
    assert calls[:2] == [3 * len(rows.betas_deg)] * 2  # three rows per call


def test_only_the_last_compass_steps_use_the_fine_objective() -> None:
    fine_calls = []

    def fine(a: float, b: float) -> float:
        fine_calls.append((a, b))
        return _smooth(a, b)

    one = optimise_view(fine, grid_evaluate=_smooth, final_step_deg=0.5, fine_levels=1)
    # Steps 2.5 and 1.25 on the cheap objective, 0.625 on the fine one: the start, one or two
    # polls of 4 (+4 diagonals) around the best cheap view, and the plateau centre.
    assert one.fine_evaluations == len(set(fine_calls)) <= 1 + 2 * 8 + 1
    assert one.evaluations - one.fine_evaluations > one.values.size  # the cheap refinement
    plateau = (one.plateau.alpha_deg, one.plateau.beta_deg)
    others = [v for v in fine_calls if v != plateau]
    assert max(abs(a - one.best.alpha_deg) for a, _ in others) <= 2 * 0.625 + 1e-9
    assert max(abs(b - one.best.beta_deg) for _, b in others) <= 2 * 0.625 + 1e-9
    assert one.best.alpha_deg == pytest.approx(31.3, abs=0.63)
    assert one.best.beta_deg == pytest.approx(-8.6, abs=0.63)
    # Every step on the fine objective costs more fine calls and lands on the same view here.
    fine_calls.clear()
    every = optimise_view(fine, grid_evaluate=_smooth, final_step_deg=0.5, fine_levels=3)
    assert every.fine_evaluations > one.fine_evaluations
    assert (every.best.alpha_deg, every.best.beta_deg) == (one.best.alpha_deg, one.best.beta_deg)


def test_diagonal_ridge_is_followed(monkeypatch) -> None:
    """Axis moves fall off a narrow diagonal ridge; the diagonals (tried when they fail) follow
    it to the top."""
    from spinect_core.planning import optimise

    def ridge(a: float, b: float) -> float:
        return 100.0 - 2.0 * ((a - b) - 47.3) ** 2 - 0.05 * ((a + b) - 40.1) ** 2

    res = optimise_view(ridge, final_step_deg=0.25, starts=1)
    assert res.best.alpha_deg == pytest.approx(43.7, abs=0.4)
    assert res.best.beta_deg == pytest.approx(-3.6, abs=0.4)
    monkeypatch.setattr(optimise, "DIAGONAL_MOVES", ())
    axis_only = optimise_view(ridge, final_step_deg=0.25, starts=1)
    assert axis_only.best.value < res.best.value - 0.05


def test_batched_objective_must_return_one_value_per_view() -> None:
    from spinect_core.errors import InputError

    with pytest.raises(InputError, match="values for"):
        optimise_view(lambda views: [1.0], batched=True)


def _two_hills(a: float, b: float) -> float:
    return max(50.0 - 0.05 * ((a - 15.0) ** 2 + (b + 20.0) ** 2),
               60.0 - 0.08 * ((a - 55.0) ** 2 + (b - 12.0) ** 2))


def test_seeds_searched_side_by_side_take_the_paths_they_take_alone() -> None:
    # The compass searches from several grid seeds share each round's call of the batch
    # objective; each still takes its own path (same end, same views polled).
    from spinect_core.planning.optimise import ViewPoint, _compass_many

    calls = []

    def many(views):
        calls.append(list(views))
        return [_two_hills(a, b) for a, b in views]

    box = (0.0, 75.0, -35.0, 35.0)
    seeds = [ViewPoint(10.0, -15.0, _two_hills(10.0, -15.0)),
             ViewPoint(50.0, 15.0, _two_hills(50.0, 15.0))]
    steps = [2.5, 1.25, 0.625]
    alone, alone_history, alone_calls = [], [], []
    for seed in seeds:
        history: list = []
        calls.clear()
        alone.append(_compass_many(many, [seed], steps, box=box, history=history)[0])
        alone_history.append(history)
        alone_calls.append(len(calls))
    calls.clear()
    history = []
    together = _compass_many(many, seeds, steps, box=box, history=history)
    assert together == alone
    assert sorted(history) == sorted(alone_history[0] + alone_history[1])
    assert len(calls) == max(alone_calls) < sum(alone_calls)
    assert together[0].alpha_deg == pytest.approx(15.0, abs=0.7)
    assert together[1].alpha_deg == pytest.approx(55.0, abs=0.7)


def test_the_plateau_view_comes_with_the_first_fine_call() -> None:
    fine_calls = []

    def fine(views):
        fine_calls.append(list(views))
        return [_two_hills(a, b) for a, b in views]

    res = optimise_view(fine, grid_evaluate=lambda views: [_two_hills(a, b) - 1.0
                                                           for a, b in views], batched=True)
    assert (res.plateau.alpha_deg, res.plateau.beta_deg) in fine_calls[0]
    assert res.plateau.value == pytest.approx(_two_hills(res.plateau.alpha_deg,
                                                         res.plateau.beta_deg))
    assert res.best.value >= 59.9
