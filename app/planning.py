"""L5/S1 planning for the app, as plain functions of data (no Qt, no threads, no rendering).

Workers run these (:mod:`app.workers`); tests call them directly. They wrap the core's planning
engine (:class:`~spinect_core.planning.plan.PlanEngine`):

* :func:`plan_options` turns the settings into :class:`PlanOptions` (gauge, margin, variant,
  needle window, search grid);
* :func:`run_plan` identifies the anatomy, optimises the views and plans the needles;
* :func:`live_windows` measures both windows of both sides for the exact current view;
* :func:`replan_needle` plans a side's needle again through another window or to a nudged target
  (same entry direction) with the engine's own :meth:`~PlanEngine.plan_needle` (the plan's
  call, so a re-planned needle is judged as the plan's), and :func:`needle_planes` resamples and
  renders the oblique planes; :func:`target_in_window` is the core's;
* :func:`plan_level` says how sure the plan's level is (the words every title and verdict uses:
  "L5/S1" plainly only when the level is established), :func:`refusal_level` where a refused
  scan ends.

All coordinates are LPS millimetres; a *view direction* is the direction rays travel (skin to
target), ``u = -d`` the needle's entry direction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinect_core.labels import LabelTable
from spinect_core.planning.plan import Plan, PlanEngine, PlanOptions, target_in_window
from spinect_core.planning.trajectory import (NEEDLE_OUTER_DIAMETER_MM, Trajectory,
                                              TrajectoryOptions)
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.report.level_text import LevelStatus, level_status, refusal_lines
from spinect_core.volume import Volume
from spinect_core.vocabulary import WINDOW_KINDS, WINDOW_NAMES

from app.state import SettingsValues

__all__ = [
    "KINDS", "KIND_LABELS", "LIVE_PIXEL_MM", "SNAPPED_PIXEL_MM", "SEARCH_STEPS_DEG",
    "PlanningResult", "LiveWindows", "NeedlePlanes", "ReplanResult", "supported_gauge",
    "plan_options", "run_plan", "live_windows", "nudge_axes", "nudged_target",
    "target_in_window", "replan_needle", "needle_planes", "plan_level", "refusal_level",
]

KINDS = WINDOW_KINDS
KIND_LABELS = {k: WINDOW_NAMES[k].capitalize() for k in WINDOW_KINDS}
#: Ray spacing of the live windows while the operator rotates, mm.
LIVE_PIXEL_MM = 0.5
#: Ray spacing at a best view: the plan's report spacing, so the numbers agree with the plan.
SNAPPED_PIXEL_MM = PlanOptions().report_pixel_mm
#: Coarse grid and final refinement step of the view search, deg.
SEARCH_STEPS_DEG = {"standard": (5.0, 0.5), "quick": (15.0, 2.0)}
#: Pixel size of the oblique planes shown in the 2D views, mm, and their magnification.
PLANE_PIXEL_MM = 0.35
PLANE_SCALE = 2


def supported_gauge(gauge: int) -> int:
    """The nearest needle gauge whose outer diameter the core knows (18-25 G)."""
    known = sorted(NEEDLE_OUTER_DIAMETER_MM)
    return min(known, key=lambda g: (abs(g - int(gauge)), g))


def plan_options(settings: SettingsValues) -> PlanOptions:
    """Planning options from the settings (needle gauge and margin, variant, window, search).

    The roots are those ``spinect plan`` uses by default (``fused``: traced on the CT and fused
    with the segmentation's nerve, a disagreement warned in the plan), so the app and the CLI
    plan the same case alike.
    """
    coarse, final = SEARCH_STEPS_DEG.get(settings.plan_search, SEARCH_STEPS_DEG["standard"])
    return PlanOptions(
        roots="fused",
        variant=settings.variant, trajectory_window=settings.trajectory_window,
        coarse_step_deg=coarse, final_step_deg=final,
        trajectory=TrajectoryOptions(needle_gauge=supported_gauge(settings.needle_gauge),
                                     safety_margin_mm=float(settings.safety_margin_mm)))


@dataclass(kw_only=True)
class NeedlePlanes:
    """The oblique planes along one side's needle, rendered for display.

    Attributes
    ----------
    side : str
    needle_rgb, companion_rgb : np.ndarray, shape (H, W, 3), uint8
        :func:`spinect_core.reslice.render_plane` pictures (labels overlaid, needle drawn).
    pixel_mm : float
        Size of one picture pixel, mm (the plane's pixel size over the magnification).
    length_mm : float
        Needle length shown.
    needle_plane, companion_plane : spinect_core.reslice.plane.ObliquePlane or None
        The planes' geometry (LPS mm of every pixel), to draw the roots on the pictures.
    """

    side: str
    needle_rgb: np.ndarray
    companion_rgb: np.ndarray
    pixel_mm: float
    length_mm: float
    needle_plane: Any = None
    companion_plane: Any = None


@dataclass(kw_only=True)
class PlanningResult:
    """What the planning step returns: the engine, its plan, planes per side."""

    engine: PlanEngine
    plan: Plan
    body_mask: np.ndarray | None = None
    planes: dict[str, NeedlePlanes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: The bone surface (LPS mm) of the labels the plan used, when that is not the
    #: segmentation's bone: the engine counted the levels on the CT bone model's bone (a
    #: network segmentation whose levels could not be counted); else None.
    bone_mesh: Any = None


@dataclass(kw_only=True)
class LiveWindows:
    """Both windows of every planned side for one view.

    Attributes
    ----------
    direction_lps : np.ndarray, shape (3,)
        The exact view direction measured (rays travel along it).
    pixel_mm : float
        Ray spacing used.
    areas_mm2 : dict of (side, kind) to float
        Window area, mm^2 (0 when the window is not visible).
    outlines_lps : dict of (side, kind) to list of np.ndarray (K, 3)
        Closed window outlines in LPS mm.
    reasons : dict of str to str
        Why a side has no window in this view ("" when it has one).
    compute_s : float
    """

    direction_lps: np.ndarray
    pixel_mm: float
    areas_mm2: dict[tuple[str, str], float]
    outlines_lps: dict[tuple[str, str], list[np.ndarray]]
    reasons: dict[str, str]
    compute_s: float = 0.0


@dataclass(kw_only=True)
class ReplanResult:
    """A side's needle planned again (other window or nudged target)."""

    side: str
    kind: str
    trajectory: Trajectory
    in_window: bool
    planes: NeedlePlanes | None = None
    planes_error: str = ""


def run_plan(ct: Volume, labels: Volume, table: LabelTable, *, options: PlanOptions,
             segmentation_source: str = "", bone_source: str | None = None,
             segmentation_check: Any = None, planes: bool = True,
             progress: ProgressCallback | None = None) -> PlanningResult:
    """Identify L5/S1, optimise both windows per side, plan the needles and their planes.

    ``bone_source`` and ``segmentation_check`` (the network's bone against the CT's, a
    :class:`~spinect_core.bone.agreement.BoneAgreement`) go into the plan; the check's warnings
    lead ``plan.warnings``.

    Raises
    ------
    AnatomyError
        No L5/S1 in the field of view, or the segmentation is implausible.
    Cancelled
        ``progress`` returned False.
    """
    engine = PlanEngine(ct, labels, table, options=options,
                        segmentation_source=segmentation_source, bone_source=bone_source,
                        segmentation_check=segmentation_check,
                        progress=sub_progress(progress, 0.0, 0.12, "anatomy: "))
    plan = engine.plan(progress=sub_progress(progress, 0.12, 0.94))
    result = PlanningResult(engine=engine, plan=plan, body_mask=engine.body_mask())
    if engine.bone_source == "ct" and bone_source not in (None, "ct"):
        # The 3D view must show the bone the plan was made on, not the network's.
        report(progress, 0.94, "the CT bone model's bone surface")
        from spinect_core.surfaces import meshes_from_labels

        from app.pipeline import MESH_OPTIONS

        result.bone_mesh = meshes_from_labels(engine.labels, engine.table, names=["bone"],
                                              options=MESH_OPTIONS).get("bone")
    if planes:
        sides = [s for s, sp in plan.sides.items() if sp.trajectory is not None]
        for i, side in enumerate(sides):
            report(progress, 0.94 + 0.06 * i / len(sides), f"{side}: oblique planes")
            try:
                result.planes[side] = needle_planes(engine, plan.sides[side].trajectory, side)
            except ValueError as exc:  # the needle runs along the endplate normal
                result.notes.append(f"No oblique planes for the {side} needle: {exc}")
    report(progress, 1.0, "plan ready")
    return result


def plan_level(plan: Any) -> LevelStatus | None:
    """How sure ``plan``'s level is (``plan.anatomy``'s ``level_evidence`` and ``source``); None
    without a plan.

    Titles name "L5/S1" plainly only when ``.established``; otherwise they use ``.level_name`` /
    ``.headline`` and a safety verdict gets ``.qualifier()``.
    """
    if plan is None:
        return None
    anatomy = getattr(plan, "anatomy", None) or {}
    return level_status(anatomy.get("level_evidence"),
                        anatomy_source=str(anatomy.get("source") or ""))


def refusal_level(exc: BaseException | None) -> list[str]:
    """A refused plan in lines: the message and, when the refusal's evidence knows it (an
    :class:`~spinect_core.errors.AnatomyError` from the level count), where the scan ends.
    Empty for anything but an :class:`~spinect_core.errors.AnatomyError`."""
    from spinect_core.errors import AnatomyError

    if not isinstance(exc, AnatomyError):
        return []
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "L5/S1 not identified"
    return refusal_lines(message, getattr(exc, "evidence", None))


def live_windows(engine: PlanEngine, direction_lps: np.ndarray, *,
                 pixel_mm: float = LIVE_PIXEL_MM) -> LiveWindows:
    """Kambin and safe windows of every planned side seen along ``direction_lps``.

    The rays are cast by the core's caster on the planner's device (``SceneOptions.device``,
    default CUDA when present, else the CPU), the same numbers as the plan's.
    """
    t0 = time.perf_counter()
    d = np.asarray(direction_lps, float).reshape(3)
    d = d / np.linalg.norm(d)
    per_side = engine.windows_for_view(d, pixel_mm=pixel_mm, polygons=True)
    areas: dict[tuple[str, str], float] = {}
    outlines: dict[tuple[str, str], list[np.ndarray]] = {}
    reasons: dict[str, str] = {}
    for side, windows in per_side.items():
        reasons[side] = windows.reason
        for kind in KINDS:
            w = windows.window(kind)
            areas[(side, kind)] = float(windows.area(kind))
            outlines[(side, kind)] = ([np.asarray(p, float) for p in w.polygons_lps]
                                      if w is not None else [])
    return LiveWindows(direction_lps=d, pixel_mm=float(pixel_mm), areas_mm2=areas,
                       outlines_lps=outlines, reasons=reasons,
                       compute_s=time.perf_counter() - t0)


def nudge_axes(entry_direction_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Screen axes (right, up) of the plane perpendicular to the needle, seen along it.

    ``up`` is the patient's cranial axis made perpendicular to the needle; ``right`` is what
    appears to the right when looking along the needle (rays along ``-u``) with cranial up, as
    in the 3D view's best views.
    """
    u = np.asarray(entry_direction_lps, float).reshape(3)
    u = u / np.linalg.norm(u)
    up = np.array([0.0, 0.0, 1.0]) - u[2] * u
    if np.linalg.norm(up) < 1e-6:
        up = np.array([0.0, -1.0, 0.0]) - u[1] * u
    up /= np.linalg.norm(up)
    right = np.cross(-u, up)
    return right / np.linalg.norm(right), up


def nudged_target(target_lps: np.ndarray, entry_direction_lps: np.ndarray, right_mm: float,
                  up_mm: float) -> np.ndarray:
    """``target`` moved in the plane perpendicular to the needle (see :func:`nudge_axes`)."""
    right, up = nudge_axes(entry_direction_lps)
    return np.asarray(target_lps, float).reshape(3) + right_mm * right + up_mm * up


def replan_needle(engine: PlanEngine, plan: Plan, side: str, kind: str, *,
                  target_lps: np.ndarray | None = None,
                  entry_direction_lps: np.ndarray | None = None,
                  planes: bool = True,
                  progress: ProgressCallback | None = None) -> ReplanResult:
    """Plan ``side``'s needle through the ``kind`` window again.

    Without ``target_lps`` the needle aims at the window's deepest point at its plateau view
    (as the plan does). With ``target_lps`` (a nudged target) the needle keeps
    ``entry_direction_lps`` (default: the side's current needle direction) and ends there.
    Either way the engine plans it (:meth:`PlanEngine.plan_needle`: its CT, labels, body mask,
    midline and needle options), exactly as the plan's own needles; the engine's own body mask
    (:meth:`PlanEngine.body_mask`) finds the skin.

    Raises
    ------
    TrajectoryError
        The window is empty or no skin entry is found.
    ValueError
        The window was not found on this side.
    """
    sp = plan.sides[side]
    wp = sp.window(kind)
    if not wp.found or wp.window is None:
        raise ValueError(f"no {KIND_LABELS[kind]} window on the {side} side: {wp.reason}")
    if target_lps is None:
        trajectory = engine.plan_needle(side, wp.window, progress=sub_progress(progress, 0.0, 0.6))
    else:
        u = entry_direction_lps
        if u is None:
            u = (sp.trajectory.entry_direction_lps if sp.trajectory is not None
                 else wp.plateau_view.entry_direction_lps)
        trajectory = engine.plan_needle(side, wp.window, np.asarray(target_lps, float),
                                        entry_direction_lps=u,
                                        progress=sub_progress(progress, 0.0, 0.6))
    result = ReplanResult(side=side, kind=kind, trajectory=trajectory,
                          in_window=target_in_window(wp.window, trajectory.target_lps_mm))
    if planes:
        report(progress, 0.6, "oblique planes")
        try:
            result.planes = needle_planes(engine, trajectory, side)
        except ValueError as exc:
            result.planes_error = str(exc)
    report(progress, 1.0, "needle planned")
    return result


def needle_planes(engine: PlanEngine, trajectory: Trajectory, side: str) -> NeedlePlanes:
    """Resample and render the needle plane and its companion (labels, needle drawn)."""
    from spinect_core.reslice import RenderOptions, oblique_planes, render_plane

    needle, companion = oblique_planes(
        engine.ct, engine.labels, trajectory,
        endplate_normal_lps=engine.anatomy.s1_endplate_normal_lps, table=engine.table,
        pixel_mm=PLANE_PIXEL_MM)
    options = RenderOptions(scale=PLANE_SCALE, needle_colour=(255, 140, 0))
    return NeedlePlanes(side=side, needle_rgb=render_plane(needle, options=options),
                        companion_rgb=render_plane(companion, options=options),
                        pixel_mm=PLANE_PIXEL_MM / PLANE_SCALE,
                        length_mm=float(trajectory.length_mm), needle_plane=needle,
                        companion_plane=companion)
