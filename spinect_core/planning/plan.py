"""The L5/S1 plan: best views of the Kambin and safe windows per side, and the needle.

:class:`PlanEngine` identifies the anatomy and builds the per-side scenes once; the desktop app
asks it for the windows of the exact current view while the operator rotates
(:meth:`PlanEngine.windows_for_view`), and :meth:`PlanEngine.plan` fills a :class:`Plan`: for
each side and window the best view and the plateau view (the centroid of the views that reach
>= 90 % of the maximum, what a C-arm can hit), the window's numbers at the plateau view, its
triangle, and a needle trajectory through the chosen window. The engine is the one planning
entry of the CLI, the demo and the app: it puts the label map on the CT grid
(:func:`labels_on_ct_grid`), plans every needle, the plan's and the app's re-plans alike
(:meth:`PlanEngine.plan_needle`, on its one :meth:`PlanEngine.body_mask`), and the exports read
the CT, the label map and its table from it. Exports read the plan only from the :class:`Plan`
(``Plan.to_dict`` is the versioned ``plan.json`` schema, LPS millimetres).

Views are searched in C-arm angles for a prone patient (:func:`carm_view_direction`:
ipsilateral oblique and cranial/caudal detector tilt from the straight PA view, default 0-60
and -40..+40 degrees), i.e. over views a C-arm takes, whatever the sacral slope; the local
endplate-frame angles (alpha, beta) of every view are kept as secondary numbers. A best view on
the edge of that range is flagged (:attr:`WindowPlan.search_edges`): the window may grow
further outside it. Beside the optimum, every window is measured at the views the literature
uses (:func:`literature_views`: straight PA with the S1 endplate squared, and 15-35 degrees
ipsilateral oblique with the endplate squared).
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

from spinect_core import __version__
from spinect_core.anatomy.counting import refused_last_level
from spinect_core.anatomy.root_tracing import TracingOptions
from spinect_core.anatomy.roots import ROOTS_MODES, FusionOptions, RootsResult
from spinect_core.bone.metal import MetalOptions, MetalReport, find_metal
from spinect_core.errors import AnatomyError, InputError, SpinectError
# labels_on_ct_grid lives with the label maps (every label-map loader uses it, not only the
# planner); re-exported here for planning's callers.
from spinect_core.io.labelmap import labels_on_ct_grid
from spinect_core.labels import LabelTable
from spinect_core.planning.l5s1 import (
    SIDES, WINDOW_KINDS, L5S1Options, SideScene, SideWindows, Triangle, Variant,
)
from spinect_core.planning.optimise import ViewOptimum, optimise_views
from spinect_core.planning.carm import carm_angles, carm_view_direction
from spinect_core.vocabulary import TRAJECTORY_WINDOWS
from spinect_core.planning.trajectory import Trajectory, TrajectoryOptions, plan_trajectory
from spinect_core.planning.scene import resolve_device
from spinect_core.planning.windows import WindowResult
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

#: Version of the ``plan.json`` schema (see ``docs`` in the README and :meth:`Plan.to_dict`).
#: 1.5: ``segmentation.operator_edits`` and ``segmentation_check.planned_level``.
#: 1.6: ``metal`` (pieces of metal in the CT and their distance to the L5/S1 disc centre).
#: 1.7: ``view_search.bone_surface`` (where the bones' surfaces lay for the windows).
PLAN_SCHEMA_VERSION = "1.7"

#: Edge names of the C-arm search range (``WindowPlan.search_edges``), in words.
EDGE_WORDS = {"oblique_min": "the smallest oblique", "oblique_max": "the largest oblique",
              "tilt_min": "the largest caudal tilt", "tilt_max": "the largest cranial tilt"}


#: A safe window's best area above this (mm^2) is far beyond the published ones at L5/S1 (the
#: study: 8.7 +- 2.2, 3-18; Pain Pract 2015: at most about 24 at 25-30 degrees oblique): its
#: bounds were found in the wrong place. On TotalSegmentator's real 3 mm CT cropped below L2 the
#: safe windows came out 109 and 143 mm^2 (the exiting roots not found in the segmentation and
#: uncertain on the CT) at "moderate" level confidence, with no word on the windows.
SAFE_AREA_IMPLAUSIBLE_MM2 = 40.0


def _implausibly_large(window: Any) -> bool:
    """Whether a :class:`WindowPlan` is a safe window whose best area exceeds
    :data:`SAFE_AREA_IMPLAUSIBLE_MM2`."""
    return (window.kind == "safe" and window.found and window.best_view is not None
            and float(window.best_view.area_mm2) > SAFE_AREA_IMPLAUSIBLE_MM2)


def needle_window(kambin: Any, safe: Any, choice: str) -> Any:
    """The :class:`WindowPlan` a side's needle goes through, or None when none is found.

    ``choice`` is :attr:`PlanOptions.trajectory_window`: ``"kambin"`` or ``"safe"`` that
    window; ``"auto"`` the one with the larger usable area (then the larger area), but an
    implausibly large safe window (:func:`_implausibly_large`: its bounds probably misplaced,
    and warned of) only when the Kambin window is not found: it wins "the larger area" because
    it is wrong.
    """
    candidates = [w for w in (kambin, safe) if w.found and (choice == "auto" or w.kind == choice)]
    if not candidates:
        return None
    return max(candidates, key=lambda w: (not _implausibly_large(w), w.usable_area_mm2,
                                          w.window.area_mm2))


def window_area_warnings(sides: dict[str, Any]) -> list[str]:
    """Warnings for safe windows whose best area is implausibly large
    (:data:`SAFE_AREA_IMPLAUSIBLE_MM2`), per side of ``sides`` (side -> :class:`SidePlan`)."""
    out = []
    for side, plan in sides.items():
        safe = plan.safe
        if _implausibly_large(safe):
            area = float(safe.best_view.area_mm2)
            out.append(f"the {side} safe window's best area, {area:.0f} mm^2, is far above any "
                       "published at L5/S1 (the study: 8.7 +- 2.2 mm^2, 3-18; at most about 24 "
                       "mm^2 in the literature): its bounds (the exiting L5 root, the L5 pedicle) "
                       "are probably not where they were found; review them before using this "
                       "window")
    return out


def coarse_ct_warning(spacing_mm: Sequence[float], limit_mm: float) -> str:
    """The warning of a plan on a CT whose voxels exceed ``limit_mm`` along an axis, else "".

    At such a resolution the foramen's bony edges and the roots (4-7 mm across) are resolved to
    about a voxel, and the windows, a few mm^2 to a few tens, move with it. Measured 2026-12-06
    on real-bone phantoms (seeds 100-103) planned on their true labels at 1, 2 and 3 mm voxels:
    the safe window's best area was 4-18 mm^2 at 1 mm, 8-67 mm^2 at 2 mm and none to 10.5
    mm^2 at 3 mm (not found on 3 of 8 sides), its best view moved by up to 50 degrees, and the
    Kambin window's best area changed by up to 60 % (24.5 -> 9.6 mm^2); a real 3 mm CT
    (TotalSegmentator's example) stored mirrored gave another left safe window (found / not
    found).

    Parameters
    ----------
    spacing_mm : (3,)
        The CT's voxel size (x, y, z) in mm.
    limit_mm : float
        ``PlanOptions.coarse_voxel_mm``; 0 or less: never warn.
    """
    sizes = [float(v) for v in spacing_mm]
    if limit_mm <= 0 or max(sizes) <= limit_mm:
        return ""
    shown = " x ".join(f"{v:.2g}" for v in sizes)
    return (f"the CT's voxels are {shown} mm (over {limit_mm:g} mm along an axis): the "
            "foramen's edges and the nerve roots are resolved to about a voxel, so the window "
            "areas and best views are approximate (on phantoms planned from their true labels, "
            "3 mm voxels changed or lost the safe window on most sides against 1 mm); check the "
            "windows on the CT, or plan on a CT with thinner slices")


@dataclass(frozen=True, kw_only=True)
class PlanOptions:
    """Options of the planning run.

    Attributes
    ----------
    sides : tuple of {"left", "right"}
    variant : {"feasible", "bony", "neural"}
        Which structures block (see :mod:`spinect_core.planning.l5s1`).
    oblique_range_deg : (float, float)
        C-arm oblique searched, degrees from straight PA (+ = ipsilateral: the detector towards
        the operated side), patient prone; within (-90, 90) so the entry stays on the back.
    tilt_range_deg : (float, float)
        C-arm cranio-caudal detector tilt searched, degrees (+ = cranial, the needle then
        points caudally), within (-90, 90).
    edge_tolerance_deg : float
        A best view this close to an edge of the range (degrees) is reported as on the edge:
        the compass search stops within about a step of an edge the area still rises towards.
    literature_obliques_deg : tuple of float
        Ipsilateral obliques (with the S1 endplate squared) at which every window is also
        measured, besides straight PA with the endplate squared (:func:`literature_views`).
    coarse_step_deg, final_step_deg : float
        Grid spacing, and the refinement's final step.
    fine_levels : int
        Compass step sizes (the last ones, down to ``final_step_deg``) run at
        ``optimise_pixel_mm``; the larger steps before them run at ``grid_pixel_mm``.
    grid_pixel_mm, optimise_pixel_mm, report_pixel_mm : float
        Ray spacing on the coarse view grid (and the refinement's large steps), in the
        refinement's last steps, and for the reported numbers.
    plateau_fraction : float
        Views reaching this fraction of the maximum form the plateau.
    trajectory_window : {"auto", "kambin", "safe"}
        Window the needle goes through; ``auto``: the one with the larger usable area, a safe
        window implausibly large (:data:`SAFE_AREA_IMPLAUSIBLE_MM2`, warned of) only when the
        Kambin window is not found (TotalSegmentator's real 3 mm CT cropped below L2: the
        left needle went through a 44 mm^2 safe window past a 14 mm^2 Kambin one).
    l5s1 : L5S1Options
    trajectory : TrajectoryOptions
    roots : {"fused", "ct", "network"} or None
        Where the nerve roots come from (:func:`spinect_core.anatomy.roots.resolve_roots`):
        ``fused`` (the CT's traced roots and the label map's nerve, fused, disagreements
        warned), ``ct`` (traced on the CT; the label map's nerve class is not used at all),
        ``network`` (the label map's nerve as it is, its roots recorded). ``None`` (the
        library's default, as before schema 1.4): the label map's nerve as it is and no roots
        recorded. ``spinect plan`` defaults to ``fused``.
    tracing : TracingOptions
        How roots are traced (CT and label map alike).
    fusion : FusionOptions
        When the network's and the CT's roots agree.
    metal : MetalOptions
        What counts as metal in the CT and how near the L5/S1 disc centre it is warned of
        (:func:`spinect_core.bone.metal.find_metal`).
    bone_surface : {"ct_half_maximum", "labels"}
        Where the bones' surfaces lie for the windows, the views and the needle: at the CT's
        half-maximum between the bone nearby and soft tissue (the bone's surface voxels darker
        than that are peeled off the parts map: :func:`peel_partial_volume_rim`; only on a CT
        whose voxels are at most :data:`RIM_MAX_VOXEL_MM` along every axis), or at the label
        map's boundary as it is.
    coarse_voxel_mm : float
        On a CT whose voxels exceed this along any axis (mm; e.g. 3 mm slices) the plan warns
        that its window areas and best views are approximate (:func:`coarse_ct_warning`). 0
        turns the warning off.
    """

    sides: tuple[str, ...] = SIDES
    variant: Variant = "feasible"
    oblique_range_deg: tuple[float, float] = (0.0, 60.0)
    tilt_range_deg: tuple[float, float] = (-40.0, 40.0)
    edge_tolerance_deg: float = 1.0
    literature_obliques_deg: tuple[float, ...] = (15.0, 20.0, 25.0, 30.0, 35.0)
    coarse_step_deg: float = 5.0
    final_step_deg: float = 0.5
    fine_levels: int = 2
    grid_pixel_mm: float = 1.0
    optimise_pixel_mm: float = 0.5
    report_pixel_mm: float = 0.25
    plateau_fraction: float = 0.9
    trajectory_window: Literal["auto", "kambin", "safe"] = "auto"
    l5s1: L5S1Options = field(default_factory=L5S1Options)
    trajectory: TrajectoryOptions = field(default_factory=TrajectoryOptions)
    roots: Literal["fused", "ct", "network"] | None = None
    tracing: TracingOptions = field(default_factory=TracingOptions)
    fusion: FusionOptions = field(default_factory=FusionOptions)
    metal: MetalOptions = field(default_factory=MetalOptions)
    coarse_voxel_mm: float = 1.5
    bone_surface: Literal["labels", "ct_half_maximum"] = "ct_half_maximum"

    def __post_init__(self) -> None:
        if self.roots is not None and self.roots not in ROOTS_MODES:
            raise ValueError(f"roots must be one of {ROOTS_MODES} or None, got {self.roots!r}")
        bad = [s for s in self.sides if s not in SIDES]
        if bad or not self.sides:
            raise ValueError(f"sides must be a non-empty subset of {SIDES}, got {self.sides}")
        if self.trajectory_window not in TRAJECTORY_WINDOWS:
            raise ValueError(f"trajectory_window must be one of {TRAJECTORY_WINDOWS}")
        for name in ("oblique_range_deg", "tilt_range_deg"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"{name} must be (low, high) with low <= high, got "
                                 f"{getattr(self, name)}")
            # |angle| >= 90 turns the beam horizontal or beyond: the entry would leave the back.
            if max(abs(lo), abs(hi)) >= 90.0:
                raise ValueError(f"{name} must lie within (-90, 90) degrees so the entry stays on "
                                 f"the patient's back, got {getattr(self, name)}")
        if any(not 0.0 <= float(v) < 90.0 for v in self.literature_obliques_deg):
            raise ValueError("literature_obliques_deg must lie in [0, 90) degrees")


@dataclass(kw_only=True)
class ViewResult:
    """One view of one window: C-arm angles (searched), local angles, area, directions.

    Attributes
    ----------
    alpha_deg, beta_deg : float
        Local endplate-frame angles (secondary numbers).
    area_mm2 : float
    view_direction_lps : np.ndarray, shape (3,)
    carm : dict
        :func:`carm_angles` of the view (``oblique_deg``, ``tilt_deg``, words).
    label : str
        Name of a literature view (empty otherwise).
    """

    alpha_deg: float
    beta_deg: float
    area_mm2: float
    view_direction_lps: np.ndarray
    carm: dict[str, Any]
    label: str = ""

    @property
    def entry_direction_lps(self) -> np.ndarray:
        return -self.view_direction_lps

    @property
    def oblique_deg(self) -> float:
        """C-arm oblique (+ ipsilateral), degrees."""
        return float(self.carm["oblique_deg"])

    @property
    def tilt_deg(self) -> float:
        """C-arm detector tilt (+ cranial), degrees."""
        return float(self.carm["tilt_deg"])

    def to_dict(self) -> dict[str, Any]:
        out = {"oblique_deg": round(self.oblique_deg, 3), "tilt_deg": round(self.tilt_deg, 3),
               "alpha_deg": round(float(self.alpha_deg), 3),
               "beta_deg": round(float(self.beta_deg), 3),
               "area_mm2": _num(self.area_mm2),
               "view_direction_lps": [float(v) for v in self.view_direction_lps],
               "entry_direction_lps": [float(v) for v in self.entry_direction_lps],
               "carm": self.carm}
        if self.label:
            out["label"] = self.label
        return out


@dataclass(kw_only=True)
class WindowPlan:
    """The plan of one window (Kambin or safe) on one side.

    ``window`` holds the measurement at the plateau view with ``report_pixel_mm`` rays (masks,
    outline, hit depths) for overlays and the trajectory; it is not serialised.
    """

    kind: str
    side: str
    found: bool
    reason: str = ""
    best_view: ViewResult | None = None
    plateau_view: ViewResult | None = None
    inscribed_diameter_mm: float = float("nan")
    usable_area_mm2: float = float("nan")
    area_band_mm2: tuple[float, float] = (float("nan"), float("nan"))
    triangle: Triangle | None = None
    optimum: ViewOptimum | None = None
    window: WindowResult | None = None
    search_edges: list[str] = field(default_factory=list)
    literature_views: list[ViewResult] = field(default_factory=list)

    @property
    def at_search_edge(self) -> bool:
        """The best view lies on the edge of the C-arm search range."""
        return bool(self.search_edges)

    @property
    def search_edge_note(self) -> str:
        """The edge finding in words (empty when the best view is inside the range)."""
        if not self.search_edges or self.best_view is None:
            return ""
        edges = " and ".join(EDGE_WORDS.get(e, e) for e in self.search_edges)
        view = self.best_view
        return (f"the largest {self.kind} window found on the {self.side} side lies on the edge of "
                f"the C-arm search range ({edges} searched, at {view.oblique_deg:.1f} deg "
                f"oblique, {view.tilt_deg:.1f} deg tilt): the window may be larger still outside "
                "the range searched")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "found": bool(self.found), "reason": self.reason,
            "best_view": None if self.best_view is None else self.best_view.to_dict(),
            "plateau_view": None if self.plateau_view is None else self.plateau_view.to_dict(),
            "inscribed_diameter_mm": _num(self.inscribed_diameter_mm),
            "usable_area_mm2": _num(self.usable_area_mm2),
            "area_band_mm2": [_num(a) for a in self.area_band_mm2],
            "triangle_area_mm2": None if self.triangle is None else _num(self.triangle.area_mm2),
            "triangle_vertices_lps_mm": (None if self.triangle is None else
                                         [[float(v) for v in p] for p in self.triangle.vertices_lps]),
            "outline_lps_mm": ([] if self.window is None else
                               [[[round(float(v), 3) for v in p] for p in poly]
                                for poly in self.window.polygons_lps]),
        }
        out["at_search_edge"] = self.at_search_edge
        out["search_edges"] = list(self.search_edges)
        out["search_edge_note"] = self.search_edge_note
        out["literature_views"] = [v.to_dict() for v in self.literature_views]
        if self.optimum is not None:
            # The grid is over C-arm angles (schema 1.3; before: local alpha / beta).
            out["area_map"] = {"frame": "carm",
                               "oblique_deg": [float(a) for a in self.optimum.alphas_deg],
                               "tilt_deg": [float(b) for b in self.optimum.betas_deg],
                               "area_mm2": [[_num(v) for v in row] for row in self.optimum.values],
                               "plateau_fraction": None}
        return out


@dataclass(kw_only=True)
class SidePlan:
    """Both windows of one side, the needle and the landmarks used."""

    side: str
    kambin: WindowPlan
    safe: WindowPlan
    trajectory: Trajectory | None = None
    trajectory_window: str | None = None
    trajectory_reason: str = ""
    landmarks: dict[str, Any] = field(default_factory=dict)
    #: ``plan.json``'s ``roots`` of this side (:meth:`RootsResult.side_dict`); None: not recorded.
    roots: dict[str, Any] | None = None

    def window(self, kind: str) -> WindowPlan:
        return {"kambin": self.kambin, "safe": self.safe}[kind]

    def to_dict(self) -> dict[str, Any]:
        traj = None
        if self.trajectory is not None:
            traj = self.trajectory.to_dict()
            traj["window"] = self.trajectory_window
            traj["carm"] = carm_angles(self.trajectory.direction_lps, self.side)
        out = {"kambin": self.kambin.to_dict(), "safe": self.safe.to_dict(),
               "trajectory": traj, "trajectory_reason": self.trajectory_reason,
               "landmarks": self.landmarks}
        if self.roots is not None:
            out["roots"] = self.roots  # schema 1.4
        return out


@dataclass(kw_only=True)
class Plan:
    """The whole plan; ``to_dict`` is ``plan.json``.

    Attributes
    ----------
    sides : dict
        ``"left"`` / ``"right"`` -> :class:`SidePlan` (only the planned sides).
    ct_geometry : dict
        Size, spacing, origin and direction of the CT (LPS).
    segmentation_source : str
        Where the labels came from (``"file"``, the weights' name, ``"phantom truth"``, ...).
    anatomy : dict
        Landmarks and the anatomy source, JSON-ready.
    warnings : list of str
        A level in doubt first, then the segmentation check's warnings (a disagreement of the
        network's bone with the CT's), metal near L5/S1, the anatomy's, then the roots' (the
        network and the CT disagree on a root, a root not found or uncertain).
    bone_source : str or None
        Where the labels' bone class came from (``"network"``, ``"ct"``, ``"fused"``; ``None``
        for a label map read from a file).
    segmentation_check : dict or None
        :meth:`spinect_core.bone.agreement.BoneAgreement.to_dict` of the network's bone
        against the CT bone model, when the labels came from the network.
    roots_mode : {"fused", "ct", "network"} or None
        Where the roots came from (``PlanOptions.roots``); per side in ``SidePlan.roots``.
    operator_edits : list of dict or None
        The operator's label edits (the app's brush and eraser) in the label map the plan was
        made on, one record per class changed, against the segmentation they started from:
        ``name``, ``added_voxels``, ``removed_voxels``, ``changed_voxels``, ``added_ml``,
        ``removed_ml``, ``changed_ml``, ``centroid_lps_mm`` (3,) and ``bbox_lps_mm`` (2, 3),
        LPS mm (:meth:`spinect_core.planning.label_edit.ClassEdit.to_dict` with the added and
        removed volumes). ``plan.json``'s ``segmentation.operator_edits``; None (the key left
        out): the labels were not edited.
    metal : dict or None
        :meth:`spinect_core.bone.metal.MetalReport.to_dict`: the CT's metal, each piece's volume,
        centroid and distance to the L5/S1 disc centre (LPS mm), and the warning when one lies
        near (``plan.json``'s ``metal``; None: the key left out).
    options : PlanOptions
    timings_s : dict
    """

    sides: dict[str, SidePlan]
    ct_geometry: dict[str, Any]
    segmentation_source: str
    anatomy: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    bone_source: str | None = None
    segmentation_check: dict[str, Any] | None = None
    roots_mode: str | None = None
    operator_edits: list[dict[str, Any]] | None = None
    metal: dict[str, Any] | None = None
    options: PlanOptions = field(default_factory=PlanOptions)
    timings_s: dict[str, float] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc)
                         .isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """The ``plan.json`` document (schema ``PLAN_SCHEMA_VERSION``)."""
        return {
            "format": "spinect-plan", "schema_version": PLAN_SCHEMA_VERSION,
            "software": {"name": "spinect", "version": __version__},
            "created": self.created, "coordinate_system": "LPS",
            "units": {"length": "mm", "area": "mm^2", "angle": "deg"},
            "angle_conventions": {
                "oblique_deg": "C-arm oblique for a prone patient from the straight PA view, + = "
                               "ipsilateral (detector towards the operated side); the views are "
                               "searched over oblique_deg and tilt_deg",
                "tilt_deg": "C-arm cranio-caudal detector tilt, + = cranial (needle pointing "
                            "caudally)",
                "alpha_deg": "secondary: local oblique angle about the cranio-caudal (S1 endplate "
                             "normal) axis, from straight posterior towards the operated side",
                "beta_deg": "secondary: local cranio-caudal tilt; positive = needle pointing "
                            "caudally",
                "carm": "C-arm tunnel view for a prone patient: oblique_deg + = ipsilateral, "
                        "tilt_deg + = cranial (see spinect_core.planning.carm.carm_angles)",
                "literature_views": "straight PA and 15-35 deg ipsilateral oblique, each with the "
                                    "C-arm tilt that squares the S1 superior endplate (beam "
                                    "parallel to it)",
                "view_direction_lps": "direction in which rays travel (skin to target)",
            },
            "ct": self.ct_geometry, "segmentation_source": self.segmentation_source,
            "segmentation": {"source": self.segmentation_source, "bone_source": self.bone_source,
                             **({} if self.operator_edits is None else {
                                 "operator_edits": [dict(e) for e in self.operator_edits]})},
            "segmentation_check": self.segmentation_check,
            **({} if self.metal is None else {"metal": self.metal}),
            "anatomy": self.anatomy, "variant": self.options.variant,
            "view_search": {"frame": "carm",
                            "oblique_range_deg": [float(v) for v in self.options.oblique_range_deg],
                            "tilt_range_deg": [float(v) for v in self.options.tilt_range_deg],
                            # The surface the windows were measured on (a coarse CT's bone
                            # keeps its labelled surface: moves_bone_surface).
                            "bone_surface": self.options.bone_surface if moves_bone_surface(
                                self.options, self.ct_geometry.get("spacing_mm", (1.0,) * 3))
                                else "labels"},
            "sides": {s: p.to_dict() for s, p in self.sides.items()},
            **({} if self.roots_mode is None else {"roots": {
                "mode": self.roots_mode, "agreement_mm": float(self.options.fusion.agree_mm),
                "coordinate_system": "LPS"}}),
            "warnings": list(self.warnings), "timings_s": dict(self.timings_s),
            "intended_use": "Research and planning support; not a certified medical device.",
        }


class PlanEngine:
    """Anatomy and per-side scenes of one CT, built once.

    Parameters
    ----------
    ct : Volume
        HU, (z, y, x).
    labels : Volume
        Class ids, (z, y, x); ``table`` names them. On another grid than the CT it is resampled
        onto the CT's (nearest neighbour; :attr:`notes` says so): the engine's :attr:`labels`
        are always on the CT grid.
    table : LabelTable
    instances, instance_table : optional
        Per-level labels (e.g. the phantom's) used directly when given (put on the CT grid like
        ``labels``).
    options : PlanOptions, optional
    segmentation_source : str
        Recorded in the plan.
    bone_source : {"network", "ct", "fused"} or None
        Where the labels' bone came from (``Segmentation.bone_source``), recorded in the plan.
    segmentation_check : BoneAgreement, optional
        The network's bone against the CT bone model
        (:func:`spinect_core.bone.agreement.check_segmentation`): recorded in the plan, and its
        warnings lead the plan's warnings.
    progress : callable, optional
    """

    def __init__(self, ct: Volume, labels: Volume, table: LabelTable, *,
                 instances: Volume | None = None, instance_table: LabelTable | None = None,
                 options: PlanOptions | None = None, segmentation_source: str = "",
                 bone_source: str | None = None, segmentation_check: Any = None,
                 progress: ProgressCallback | None = None) -> None:
        from spinect_core.anatomy import identify_lumbosacral

        #: What the engine did to its inputs, in words (a label map resampled onto the CT grid).
        self.notes: list[str] = []
        # The planner works on the CT's grid: a label map (and instance map) on another grid is
        # put on it here, nearest neighbour, for every caller alike (CLI, demo, app).
        labels, note = labels_on_ct_grid(labels, ct, what="label map")
        self.notes += [note] if note else []
        if instances is not None:
            instances, note = labels_on_ct_grid(instances, ct, what="instance map")
            self.notes += [note] if note else []
        self.ct, self.labels, self.table = ct, labels, table
        self.options = options or PlanOptions()
        self.segmentation_source = segmentation_source
        self.bone_source = bone_source
        self.segmentation_check = segmentation_check
        self.timings_s: dict[str, float] = {}
        #: Bone voxels of the parts map peeled as partial volume (``bone_surface``).
        self.rim_voxels = 0
        #: Views ray-cast by :meth:`optimise_side`, per ``"<side> <pixel> mm"`` (deterministic:
        #: what the optimisation costs, independent of the machine's load).
        self.view_casts: dict[str, int] = {}
        t0 = time.perf_counter()
        report(progress, 0.0, "identifying L5/S1")
        o = self.options
        if o.roots == "ct":
            from spinect_core.anatomy.roots import without_nerve

            # --roots ct: the label map's nerve class is not used at all, not even to identify
            # the anatomy; the traced roots are drawn in afterwards.
            labels, instances = without_nerve(labels, table, instances)
            self.labels = labels
        anatomy_progress = sub_progress(progress, 0.0, 0.5, "anatomy: ")
        try:
            self.anatomy = identify_lumbosacral(labels, table, instances=instances,
                                                instance_table=instance_table, ct=ct,
                                                progress=anatomy_progress)
            #: The planned L5/S1 against the levels counted on the CT's own bone (network labels).
            self.level_check = _check_planned_level(self.anatomy, segmentation_check)
        except AnatomyError as exc:
            if instances is not None or not _ct_bone_may_count(exc, bone_source):
                raise
            labels = self._count_on_ct_bone(exc, table, anatomy_progress)
            # The check would compare the CT's count with itself.
            self.level_check = None
        #: Metal in the CT and how far it lies from L5/S1: its streaks corrupt the bone and the
        #: roots found near it.
        self.metal: MetalReport = find_metal(ct, point_lps_mm=self.anatomy.disc_centre_lps,
                                             point_name="the L5/S1 disc centre",
                                             options=o.metal)
        if moves_bone_surface(o, ct.spacing_mm):
            # Windows lie between the bones' physical surfaces: a label map's bone a voxel
            # wider than the bone (the CT bone model's partial-volume rim, the fused default)
            # shrinks each by a voxel all round (the safe windows of an unseen phantom 36-44 %
            # smaller than its true labels'). Peeled before the roots are traced, so that they,
            # the scenes and any later re-trace (the root editor) read one parts map.
            self.rim_voxels = peel_partial_volume_rim(self.anatomy, ct)
        t1 = time.perf_counter()
        #: The roots chosen (``None`` when ``options.roots`` is None).
        self.roots: RootsResult | None = None
        if o.roots is not None:
            from spinect_core.anatomy.roots import resolve_roots

            self.roots = resolve_roots(o.roots, ct, labels, table, self.anatomy, sides=o.sides,
                                       tracing=o.tracing, fusion=o.fusion,
                                       progress=sub_progress(progress, 0.5, 0.7, "roots: "))
            # The planner (windows, needle clearance, exports) uses the chosen roots.
            self.labels, self.table = self.roots.labels, self.roots.table
        t2 = time.perf_counter()
        self.scenes: dict[str, SideScene] = {}
        for i, side in enumerate(self.options.sides):
            report(progress, 0.7 + 0.3 * i / len(self.options.sides), f"building the {side} scene")
            self.scenes[side] = SideScene(self.anatomy, side, variant=self.options.variant,
                                          options=self.options.l5s1)
        report(progress, 1.0, "scenes ready")
        self.timings_s.update(anatomy=t1 - t0, scenes=time.perf_counter() - t2)
        if self.roots is not None:
            self.timings_s["roots"] = t2 - t1

    # --- live queries ---------------------------------------------------------------------------
    def windows_for_view(self, view_direction_lps: np.ndarray, *, pixel_mm: float = 0.5,
                         polygons: bool = True) -> dict[str, SideWindows]:
        """Windows of every planned side for one view (rays along ``view_direction_lps``)."""
        return {side: scene.windows(view_direction_lps, pixel_mm=pixel_mm, polygons=polygons)
                for side, scene in self.scenes.items()}

    # --- optimisation ---------------------------------------------------------------------------
    def optimise_side(self, side: str, *, progress: ProgressCallback | None = None
                      ) -> tuple[WindowPlan, WindowPlan]:
        """Best and plateau views of both windows of ``side`` (one ray cast serves both).

        The views an optimiser step asks for (a row of the grid, the moves of one compass poll)
        are cast together (:meth:`SideScene.windows_many`), and every view is cast once for both
        windows; :attr:`view_casts` counts the views cast per side and ray spacing.
        """
        scene = self.scenes[side]
        o = self.options
        # A GPU caster's cost is per cast (~100 marching steps of ~40 kernel launches), not per
        # ray: it gets whole grid rows, or the whole coarse grid, per call.
        on_gpu = resolve_device(scene.scene.device).type == "cuda"
        batch = _BATCH_VIEWS_GPU if on_gpu else _BATCH_VIEWS
        # (oblique, tilt, pixel_mm) -> {kind: area}: one ray cast serves both optimisations.
        cache: dict[tuple[float, float, float], dict[str, float]] = {}

        def areas_many(views: Sequence[tuple[float, float]], pixel_mm: float
                       ) -> list[dict[str, float]]:
            keys = [(round(float(a), 6), round(float(b), 6), pixel_mm) for a, b in views]
            todo = list(dict.fromkeys(k for k in keys if k not in cache))
            for first in range(0, len(todo), batch):
                chunk = todo[first:first + batch]
                got = scene.windows_many([self.local_angles(side, *k[:2]) for k in chunk],
                                         pixel_mm=pixel_mm, areas_only=True)
                cache.update((k, {kind: w.area(kind) for kind in WINDOW_KINDS})
                             for k, w in zip(chunk, got))
            count = f"{side} {pixel_mm:g} mm"
            self.view_casts[count] = self.view_casts.get(count, 0) + len(todo)
            return [cache[k] for k in keys]

        if scene.root_lps is None:
            reason = scene.windows_at(0.0, 0.0, pixel_mm=o.optimise_pixel_mm).reason
            return (WindowPlan(kind="kambin", side=side, found=False, reason=reason),
                    WindowPlan(kind="safe", side=side, found=False, reason=reason))
        def areas(pixel_mm: float) -> Callable[[Sequence], list[tuple[float, ...]]]:
            return lambda views: [tuple(a[kind] for kind in WINDOW_KINDS)
                                  for a in areas_many(views, pixel_mm)]

        # Both windows' searches side by side: one ray cast gives both areas, so every round
        # of their compass searches is one cast (each gets what optimise_view gives it alone).
        # The optimiser's two angles are the C-arm oblique and tilt here.
        optima = optimise_views(areas(o.optimise_pixel_mm), len(WINDOW_KINDS),
                                grid_evaluate=areas(o.grid_pixel_mm),
                                grid_views_per_call=batch,
                                alpha_range_deg=o.oblique_range_deg,
                                beta_range_deg=o.tilt_range_deg,
                                coarse_step_deg=o.coarse_step_deg,
                                final_step_deg=o.final_step_deg, fine_levels=o.fine_levels,
                                plateau_fraction=o.plateau_fraction,
                                progress=sub_progress(progress, 0.0, 0.8, "windows: "))
        report(progress, 0.8, f"{side}: measuring the chosen views")
        # The best and plateau views of both windows and the literature views, at the reported
        # ray spacing, cast together.
        literature = self.literature_views(side)
        views = list(dict.fromkeys(
            [(p.alpha_deg, p.beta_deg) for opt in optima if opt.best.value > 0.0
             for p in (opt.best, opt.plateau)] + [(ob, ti) for _, ob, ti in literature]))
        measured = dict(zip(views, scene.windows_many(
            [self.local_angles(side, *v) for v in views], pixel_mm=o.report_pixel_mm,
            polygons=True)))
        count = f"{side} {o.report_pixel_mm:g} mm"
        self.view_casts[count] = self.view_casts.get(count, 0) + len(views)
        plans = [self._window_plan(side, kind, optimum, measured)
                 for kind, optimum in zip(WINDOW_KINDS, optima)]
        for plan in plans:
            plan.literature_views = [
                self._view(scene, side, ob, ti, measured[(ob, ti)].area(plan.kind), label=label)
                for label, ob, ti in literature]
        report(progress, 1.0, f"{side} side optimised")
        return plans[0], plans[1]

    def _window_plan(self, side: str, kind: str, optimum: ViewOptimum,
                     measured: dict[tuple[float, float], SideWindows]) -> WindowPlan:
        scene = self.scenes[side]
        o = self.options
        if optimum.best.value <= 0.0:
            return WindowPlan(kind=kind, side=side, found=False, optimum=optimum,
                              reason=f"no {kind} window is visible on the {side} side in any C-arm "
                              f"view searched (oblique {_range(o.oblique_range_deg)}, tilt "
                              f"{_range(o.tilt_range_deg)} deg)")
        best = measured[(optimum.best.alpha_deg, optimum.best.beta_deg)]
        plateau = measured[(optimum.plateau.alpha_deg, optimum.plateau.beta_deg)]
        window = plateau.window(kind)
        return WindowPlan(
            kind=kind, side=side, found=True,
            best_view=self._view(scene, side, optimum.best.alpha_deg, optimum.best.beta_deg,
                                 best.area(kind)),
            plateau_view=self._view(scene, side, optimum.plateau.alpha_deg,
                                    optimum.plateau.beta_deg, plateau.area(kind)),
            inscribed_diameter_mm=window.inscribed_diameter_mm,
            usable_area_mm2=window.usable_area_mm2,
            area_band_mm2=(window.area_low_mm2, window.area_high_mm2),
            triangle=scene.triangle(plateau, kind), optimum=optimum, window=window,
            search_edges=search_edges((optimum.best.alpha_deg, optimum.best.beta_deg),
                                      o.oblique_range_deg, o.tilt_range_deg,
                                      tolerance_deg=max(o.edge_tolerance_deg,
                                                        o.final_step_deg)))

    @staticmethod
    def _view(scene: SideScene, side: str, oblique: float, tilt: float, area: float, *,
              label: str = "") -> ViewResult:
        d = carm_view_direction(oblique, tilt, side)
        alpha, beta = scene.angles(d)
        return ViewResult(alpha_deg=alpha, beta_deg=beta, area_mm2=area, view_direction_lps=d,
                          carm=carm_angles(d, side), label=label)

    def local_angles(self, side: str, oblique_deg: float, tilt_deg: float) -> tuple[float, float]:
        """Local endplate-frame (alpha, beta) of C-arm angles on ``side``."""
        return self.scenes[side].angles(carm_view_direction(oblique_deg, tilt_deg, side))

    def literature_views(self, side: str) -> list[tuple[str, float, float]]:
        """``(label, oblique_deg, tilt_deg)`` of the views the literature uses on ``side``:
        straight PA and each of ``options.literature_obliques_deg`` ipsilateral oblique, each
        with the tilt that squares the S1 superior endplate (:func:`endplate_squared_tilt`)."""
        z = self.scenes[side].frame.z_lps
        out = []
        for ob in (0.0,) + tuple(float(v) for v in self.options.literature_obliques_deg):
            label = ("straight PA, endplate squared" if ob == 0.0
                     else f"{ob:g} deg ipsilateral oblique, endplate squared")
            out.append((label, ob, endplate_squared_tilt(z, ob, side)))
        return list(dict.fromkeys(out))

    # --- the whole plan -------------------------------------------------------------------------
    def plan(self, *, progress: ProgressCallback | None = None) -> Plan:
        """Optimise every side, plan the needles and return the :class:`Plan`."""
        t0 = time.perf_counter()
        sides: dict[str, SidePlan] = {}
        n = len(self.scenes)
        for i, side in enumerate(self.scenes):
            part = sub_progress(progress, i / n, (i + 1) / n, f"{side}: ")
            kambin, safe = self.optimise_side(side, progress=sub_progress(part, 0.0, 0.9))
            report(part, 0.9, "planning the needle")
            sides[side] = self._side_plan(side, kambin, safe)
        report(progress, 1.0, "plan ready")
        self.timings_s["optimise_and_trajectories"] = time.perf_counter() - t0
        check, level = self.segmentation_check, self.level_check
        check_doc = None
        if check is not None:
            check_doc = {**check.to_dict(),
                         **({} if level is None else {"planned_level": level.to_dict()})}
        return Plan(sides=sides, ct_geometry=self.ct.geometry_dict(),
                    segmentation_source=self.segmentation_source, anatomy=self.anatomy_summary(),
                    warnings=self.plan_warnings() + window_area_warnings(sides),
                    bone_source=self.bone_source, roots_mode=self.options.roots,
                    segmentation_check=check_doc, metal=self.metal.to_dict(),
                    options=self.options, timings_s=dict(self.timings_s))

    def plan_warnings(self) -> list[str]:
        """The plan's warnings: a level in doubt first (it makes every other number moot), then
        the segmentation check's, metal near L5/S1, the anatomy's (the level count's doubts
        among them), a coarse CT's and the roots'."""
        level, check = self.level_check, self.segmentation_check
        coarse = coarse_ct_warning(self.ct.spacing_mm, self.options.coarse_voxel_mm)
        return (([level.warning] if level is not None and level.warning else [])
                + (list(check.warnings) if check is not None else [])
                + ([self.metal.warning] if self.metal.warning else [])
                + list(self.anatomy.warnings)
                + ([coarse] if coarse else [])
                + ([] if self.roots is None else list(self.roots.warnings)))

    def _side_plan(self, side: str, kambin: WindowPlan, safe: WindowPlan) -> SidePlan:
        side_plan = SidePlan(side=side, kambin=kambin, safe=safe,
                             landmarks=_landmarks(self.anatomy.sides[side]),
                             roots=None if self.roots is None else self.roots.side_dict(side))
        choice = self.options.trajectory_window
        chosen = needle_window(kambin, safe, choice)
        if chosen is None:
            side_plan.trajectory_reason = (f"no {choice if choice != 'auto' else ''} window found "
                                           f"on the {side} side").replace("  ", " ")
            return side_plan
        try:
            trajectory = self.plan_needle(side, chosen.window)
        except SpinectError as exc:
            side_plan.trajectory_reason = str(exc)
            return side_plan
        side_plan.trajectory = trajectory
        side_plan.trajectory_window = chosen.kind
        side_plan.trajectory_reason = trajectory.reason
        return side_plan

    # --- the needle -----------------------------------------------------------------------------
    def plan_needle(self, side: str, window: WindowResult | None,
                    target: Sequence[float] | np.ndarray | None = None, *,
                    entry_direction_lps: Sequence[float] | np.ndarray | None = None,
                    progress: ProgressCallback | None = None) -> Trajectory:
        """Plan ``side``'s needle through ``window`` (the one planning call of CLI, demo and app).

        The needle is checked against this engine's CT (skin entry, on :meth:`body_mask`), its
        label map and table (the chosen roots included), its nerve and bone classes, the
        anatomy's midline and ``options.trajectory``: what :meth:`plan` does, so a re-planned
        needle (another window, a nudged target) is judged exactly as the plan's own.

        Parameters
        ----------
        side : {"left", "right"}
            A planned side (a key of :attr:`scenes`).
        window : WindowResult or None
            The window the needle goes through (``WindowPlan.window``: its plateau view at the
            report ray spacing). Without ``target`` the needle aims at its deepest point backed
            off ``options.trajectory.back_off_mm``, along the window's view direction. May be
            None only with ``target`` and ``entry_direction_lps``.
        target : (3,) LPS mm, optional
            A needle tip to aim at instead (a nudged or picked target).
        entry_direction_lps : (3,), optional
            ``u`` (target -> skin) for ``target``; default ``-window.view_direction_lps``.
        progress : callable, optional

        Returns
        -------
        Trajectory

        Raises
        ------
        TrajectoryError
            The window is empty or no skin entry is found.
        InputError
            ``side`` was not planned, or neither a window nor a target with its direction.
        """
        if side not in self.scenes:
            raise InputError(f"the {side} side was not planned (sides: {', '.join(self.scenes)})")
        if target is None:
            if window is None:
                raise InputError("plan_needle needs a window or a target")
            aim: Any = window
        else:
            aim = np.asarray(target, float).reshape(3)
            if entry_direction_lps is None:
                if window is None:
                    raise InputError("a target without a window needs its entry direction")
                entry_direction_lps = -np.asarray(window.view_direction_lps, float)
        table = self.table
        return plan_trajectory(
            aim, ct=self.ct, labels=self.labels, table=table,
            entry_direction_lps=entry_direction_lps,
            midline_point_lps=self.anatomy.midline_point_lps,
            midline_normal_lps=self.anatomy.midline_normal_lps,
            nerve_names=tuple(n for n in ("nerve", "dura") if table.has(n)),
            bone_names=tuple(n for n in ("bone",) if table.has(n)),
            options=self.options.trajectory, body_mask=self.body_mask(), progress=progress)

    def body_mask(self) -> np.ndarray:
        """(z, y, x) bool body mask (CT above the trajectory's body threshold, largest component).

        Computed once and cached: finding the largest component costs seconds on a full CT, and
        every needle (both sides, re-plans in the app) needs it to find the skin.
        """
        if not hasattr(self, "_body"):
            from spinect_core.preprocess.crop import BodyCropOptions, body_mask

            threshold = self.options.trajectory.body_threshold_hu
            self._body = body_mask(self.ct.array, BodyCropOptions(threshold_hu=threshold))
        return self._body

    def _count_on_ct_bone(self, refusal: AnatomyError, table: LabelTable,
                          progress: ProgressCallback | None) -> Volume:
        """Identify the anatomy on the labels with their bone replaced by the CT bone model's.

        For a network's segmentation whose levels could not be counted (bodies merged across
        discs the network called bone, or bone it missed: on a real chest CT the fused labels
        made one 71 mm block of T12 to L2 where the CT bone model's own bone counted right). The
        rest of the labels (nerve, disc, dura) stay; the network's bone outside the CT's becomes
        background. Sets :attr:`anatomy`, :attr:`labels` and :attr:`bone_source` (``"ct"``) and
        says so in the level evidence, the anatomy's warnings and :attr:`notes`.

        Returns
        -------
        Volume
            The relabelled map (the engine's :attr:`labels`).

        Raises
        ------
        AnatomyError
            ``refusal`` again when the CT bone's levels cannot be counted either, or the CT
            bone's own refusal when it says where the scan ends (``"the scan ends within L3"``)
            and ``refusal`` does not.
        """
        from spinect_core.anatomy import identify_lumbosacral
        from spinect_core.bone import combine_bone, segment_bone_from_ct

        ct_bone = segment_bone_from_ct(
            self.ct, progress=sub_progress(progress, 0.0, 0.3, "CT bone model: ")).mask.array
        labels = combine_bone(self.labels, table, ct_bone, mode="ct")
        try:
            anatomy = identify_lumbosacral(labels, table, ct=self.ct,
                                           progress=sub_progress(progress, 0.3, 1.0))
        except AnatomyError as exc:
            # The segmentation's own reason, unless only the CT's bone says where the scan ends.
            if refused_last_level(exc) and not refused_last_level(refusal):
                raise exc from None
            raise refusal from None
        why = (f"the segmentation's bone could not be counted ({refusal}); the levels were "
               "counted on the CT bone model's bone, which the plan uses (as --bone ct), so the "
               "check of the level against the CT's own count is not independent here")
        evidence = getattr(anatomy, "level_evidence", None)
        if evidence is not None:
            evidence.reasons.append(why)
        anatomy.warnings.insert(0, why)
        self.notes.append("the levels were counted on the CT bone model's bone: the "
                          "segmentation's own could not be counted")
        self.anatomy, self.labels, self.bone_source = anatomy, labels, "ct"
        return labels

    def anatomy_summary(self) -> dict[str, Any]:
        a = self.anatomy
        evidence = getattr(a, "level_evidence", None)
        return {"source": a.source, "warnings": list(a.warnings),
                "level_evidence": None if evidence is None else evidence.to_dict(),
                "s1_endplate_centre_lps_mm": _vec(a.s1_endplate_centre_lps),
                "s1_endplate_normal_lps": _vec(a.s1_endplate_normal_lps),
                "disc_centre_lps_mm": _vec(a.disc_centre_lps),
                "midline_point_lps_mm": _vec(a.midline_point_lps),
                "midline_normal_lps": _vec(a.midline_normal_lps)}


def _ct_bone_may_count(refusal: AnatomyError, bone_source: str | None) -> bool:
    """Whether a refused identification may be tried again on the CT bone model's bone: the
    labels are a network's (``bone_source`` "network" or "fused"; a user's label map is taken
    as given) and the refusal does not say where the scan ends (``"the scan ends at L3"`` is a
    statement about the field of view, not about the labels)."""
    return bone_source in ("network", "fused") and refused_last_level(refusal) is None


def _check_planned_level(anatomy: Any, check: Any) -> Any:
    """:func:`spinect_core.bone.agreement.check_planned_level` of the identified disc against a
    segmentation check's CT levels (``None`` without a check whose levels were found or whose
    count said where the scan ends above L5). A level in doubt lowers the level evidence to
    ``"low"`` with the warning as its reason, so the report's and the app's level line say so
    too."""
    if check is None or not (getattr(check, "levels_found", False)
                             or getattr(check, "ct_ends_at", None)):
        return None
    from spinect_core.bone.agreement import check_planned_level

    result = check_planned_level(check, anatomy.disc_centre_lps)
    evidence = getattr(anatomy, "level_evidence", None)
    if result.agrees is False and evidence is not None:
        evidence.downgrade("low", result.warning)
    return result


def target_in_window(window: WindowResult | None, target_lps: Sequence[float] | np.ndarray
                     ) -> bool:
    """True when ``target_lps`` projects, along the window's rays, onto a free pixel of it.

    Parameters
    ----------
    window : WindowResult or None
        Its ray grid (:attr:`WindowResult.ray_grid`) and ``mask`` (H, W) bool; None: False.
    target_lps : (3,) LPS mm

    Returns
    -------
    bool
        The nearest ray's pixel ``(row, col)`` lies in the grid and is free.
    """
    if window is None:
        return False
    row, col, _ = window.ray_grid.project(np.asarray(target_lps, float).reshape(3))
    r, c = int(round(float(row))), int(round(float(col)))
    mask = np.asarray(window.mask, bool)
    return bool(0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c])


def build_plan(ct: Volume, labels: Volume, table: LabelTable, *,
               instances: Volume | None = None, instance_table: LabelTable | None = None,
               options: PlanOptions | None = None, segmentation_source: str = "",
               bone_source: str | None = None, segmentation_check: Any = None,
               progress: ProgressCallback | None = None) -> tuple[Plan, PlanEngine]:
    """Identify the anatomy, optimise both windows per side and plan the needles."""
    engine = PlanEngine(ct, labels, table, instances=instances, instance_table=instance_table,
                        options=options, segmentation_source=segmentation_source,
                        bone_source=bone_source, segmentation_check=segmentation_check,
                        progress=sub_progress(progress, 0.0, 0.15))
    return engine.plan(progress=sub_progress(progress, 0.15, 1.0)), engine


#: Views cast together at most on the CPU (at 1 mm rays, 64 views = 100000 rays, a few tens of
#: MB: the marching loop's fixed cost per torch operation is shared by four grid rows; the
#: view searches of the demo's both sides 4.6-5.4 -> 3.5-3.8 s of CPU with optimise_views,
#: same views and values, than 16 views one window after the other).
_BATCH_VIEWS = 64
#: The same on a CUDA device, where the per-cast launch overhead dominates (not yet measured on
#: a GPU: a first guess from the CPU profile).
_BATCH_VIEWS_GPU = 256


def endplate_squared_tilt(endplate_normal_lps: Sequence[float], oblique_deg: float,
                          side: str) -> float:
    """C-arm tilt (degrees, + cranial) that squares an endplate at a given oblique.

    The endplate is squared when the beam runs parallel to it (its normal ``n`` is perpendicular
    to the view): with ``h = cos(obl) P + sin(obl) S_side`` (see :func:`carm_view_direction`),
    ``u . n = cos(tilt) h . n + sin(tilt) S . n = 0``, so ``tilt = atan(-(h . n) / (S . n))``.

    Parameters
    ----------
    endplate_normal_lps : (3,)
        Normal of the endplate (LPS; either orientation).
    oblique_deg : float
        C-arm oblique, + ipsilateral.
    side : {"left", "right"}
    """
    n = np.asarray(endplate_normal_lps, float).reshape(3)
    d0 = carm_view_direction(oblique_deg, 0.0, side)  # -h
    h = -d0
    s_n = float(n[2])
    if abs(s_n) < 1e-9:  # an endplate parallel to the long axis: no tilt squares it
        return float("nan")
    return math.degrees(math.atan(-float(h @ n) / s_n))


def search_edges(view: tuple[float, float], oblique_range_deg: Sequence[float],
                 tilt_range_deg: Sequence[float], *, tolerance_deg: float) -> list[str]:
    """Edges of the C-arm search range (``"oblique_min"``, ``"oblique_max"``, ``"tilt_min"``,
    ``"tilt_max"``) that a view ``(oblique_deg, tilt_deg)`` lies on, within ``tolerance_deg``
    (``PlanOptions.edge_tolerance_deg``)."""
    (o0, o1), (t0, t1) = sorted(oblique_range_deg), sorted(tilt_range_deg)
    ob, ti = view
    tol = float(tolerance_deg) + 1e-9
    out = []
    for name, on in (("oblique_min", ob <= o0 + tol), ("oblique_max", ob >= o1 - tol),
                     ("tilt_min", ti <= t0 + tol), ("tilt_max", ti >= t1 - tol)):
        if on:
            out.append(name)
    return out


def _range(r: Sequence[float]) -> str:
    return f"{float(r[0]):g} to {float(r[1]):g}"


def _landmarks(lm: Any) -> dict[str, Any]:
    out = {k: _vec(getattr(lm, k)) for k in (
        "pedicle_centre_lps", "pedicle_lower_margin_lps", "pedicle_medial_wall_lps",
        "vertebral_body_lateral_border_lps", "foramen_centre_lps",
                 "posterior_wall_lps")}
    out = {k.replace("_lps", "_lps_mm"): v for k, v in out.items()}
    f = lm.frame
    out["local_frame"] = {"origin_lps_mm": _vec(f.origin_lps), "x_lateral_lps": _vec(f.x_lps),
                          "y_posterior_lps": _vec(f.y_lps), "z_cranial_lps": _vec(f.z_lps)}
    return out


def _vec(v: Any) -> list[float] | None:
    return None if v is None else [float(x) for x in np.asarray(v).reshape(-1)]


def _num(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


#: Only where the bone nearby is at least this much brighter than soft tissue (HU): where the CT
#: shows an edge at all (not on label maps drawn on a CT without one).
RIM_MIN_CONTRAST_HU = 150.0
#: How far around L5 and S1 (mm) the surface is moved: the scenes' reach around the foramina.
RIM_MARGIN_MM = 60.0
#: The surface is moved only on a CT whose voxels are at most this large along every axis (mm).
#: A coarser voxel is more than the rim: on TotalSegmentator's real 3 mm CT the peel took
#: 10,800 voxels (290 ml) around L5/S1, the thin edges of laminae with them, and the scenes
#: looked through the gaps: the right "Kambin window" lay at straight PA through the canal (its
#: needle crossed 9 mm of S1's lamina that the labels still held) and the left needle crossed
#: bone too. Kept as labelled, both windows are transforaminal (best at 16 and 27 deg oblique)
#: and neither needle crosses bone.
RIM_MAX_VOXEL_MM = 1.5


def moves_bone_surface(options: PlanOptions, spacing_mm: Sequence[float]) -> bool:
    """Whether the planner moves the bones' surface to the CT's half-maximum
    (:func:`peel_partial_volume_rim`) on a CT of voxel size ``spacing_mm`` (x, y, z; mm): with
    ``bone_surface="ct_half_maximum"`` and voxels of at most :data:`RIM_MAX_VOXEL_MM`."""
    return (options.bone_surface == "ct_half_maximum"
            and max(float(v) for v in spacing_mm) <= RIM_MAX_VOXEL_MM)


def peel_partial_volume_rim(anatomy: Any, ct: Volume) -> int:
    """Move the bone parts' surface to the CT's half-maximum around L5/S1, in place.

    Bone voxels on the surface that are darker than halfway between soft tissue nearby
    (:func:`~spinect_core.anatomy.ct_edges.soft_tissue_hu`) and the brightest bone within 2 mm
    become background in ``anatomy.parts`` (:func:`~spinect_core.bone.ct_model.partial_volume_rim`).
    A label map that marks voxel centres inside the bone (a phantom's) loses almost nothing.

    Returns
    -------
    int
        How many voxels were peeled.
    """
    from spinect_core.anatomy.ct_edges import soft_tissue_hu
    from spinect_core.anatomy.geometry import bbox_slices, spacing_zyx
    from spinect_core.anatomy.parts import BONE_PARTS, PART_ID
    from spinect_core.bone.ct_model import partial_volume_rim

    parts = anatomy.parts.array
    if parts.shape != ct.array.shape:
        return 0
    sp = spacing_zyx(anatomy.parts)
    near = np.isin(parts, [PART_ID["L5"], PART_ID["S1"]])
    box = bbox_slices(near, np.ceil(RIM_MARGIN_MM / sp).astype(int))
    if box is None:
        return 0
    sub = parts[box]
    bone = np.isin(sub, [PART_ID[n] for n in BONE_PARTS])
    hu = np.asarray(ct.array[box], np.float32)
    soft = soft_tissue_hu(hu, bone)
    if soft is None:
        return 0
    rim = partial_volume_rim(bone, hu, sp, soft, min_contrast_hu=RIM_MIN_CONTRAST_HU)
    sub[rim] = 0
    return int(np.count_nonzero(rim))
