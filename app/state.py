"""The typed state of the app, which the GUI binds to and exports read from.

Every piece is a frozen dataclass (its dict fields read-only mappings): nothing edits it in
place, and equality is identity (the fields hold volumes). A change makes a new value with
:func:`dataclasses.replace` and hands it to the store (:class:`app.store.StateStore`), which
emits the old and the new state once; widgets redraw from what changed. A worker or an export
that read a :class:`Session` keeps a consistent snapshot however the GUI moves on meanwhile.
The arrays inside (CT, labels, body mask) are shared between states and never written to.

* :class:`Session`: the case (CT, labels, surfaces, plan) and the needle edits in progress.
* :class:`ViewState`: what the window shows that is no data (best view snapped to, picking).
* :class:`AppState`: both, plus what is being opened and the last error.

This module holds data only (numpy volumes and meshes from the core); it knows nothing about Qt.
The planning types are imported for type checking only, to keep start-up light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from spinect_core.io import SeriesInfo
from spinect_core.labels import LabelTable
from spinect_core.surfaces import Mesh
from spinect_core.segment import DEFAULT_BONE_MODE
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from spinect_core.bone.agreement import BoneAgreement
    from spinect_core.io.load import SeriesScan
    from spinect_core.planning.plan import Plan, PlanEngine
    from spinect_core.report.level_text import LevelStatus

    from app.errors import ErrorReport
    from app.planning import NeedlePlanes, ReplanResult

__all__ = ["AppState", "Session", "SegmentationSource", "SettingsValues", "ViewState",
           "frozen_map"]


def frozen_map(items: Mapping | None = None, **changes: Any) -> Mapping:
    """A read-only copy of ``items`` with ``changes`` applied (the state's dict fields)."""
    out = dict(items or {})
    out.update(changes)
    return MappingProxyType(out)


def _empty_map() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class SettingsValues:
    """An immutable snapshot of the settings.

    Attributes
    ----------
    device : {"auto", "cpu", "cuda"}
    weights_path : str
        Weights file chosen by the user; ``""`` means the bundled default weights.
    blend : {"sum", "gaussian"}
    bone : {"network", "ct", "fused"}
        Where the segmentation's bone comes from (``SegmentOptions.bone``): the network, the
        model-free CT bone model, or both fused.
    needle_gauge : int
        Needle gauge (G) for the planning panel (22 G is the usual tESI spinal needle).
    safety_margin_mm : float
        Clearance added to the needle radius when the planning engine erodes windows.
    auto_segment : bool
        Segment (and build surfaces) right after a CT is loaded.
    auto_plan : bool
        Plan L5/S1 right after the surfaces are built.
    variant : {"feasible", "bony", "neural"}
        Which structures block a window (see :mod:`spinect_core.planning.l5s1`).
    trajectory_window : {"auto", "kambin", "safe"}
        Window the planned needle goes through (``auto``: the larger usable area).
    plan_search : {"standard", "quick"}
        View search grid: standard (5 deg, refined to 0.5 deg) or quick (15 deg, refined to 2 deg).
    recent_files : tuple of str
    last_export_dir : str
    last_open_dir : str
    remember_recent_paths : bool
        Paths are kept in the settings file (off by default: CT folders are often named after
        the patient).
    """

    device: str = "auto"
    weights_path: str = ""
    blend: str = "sum"
    bone: str = DEFAULT_BONE_MODE
    needle_gauge: int = 22
    safety_margin_mm: float = 2.0
    auto_segment: bool = True
    auto_plan: bool = True
    variant: str = "feasible"
    trajectory_window: str = "auto"
    plan_search: str = "standard"
    recent_files: tuple[str, ...] = ()
    last_export_dir: str = ""
    last_open_dir: str = ""
    remember_recent_paths: bool = False


@dataclass(frozen=True, kw_only=True)
class SegmentationSource:
    """Where the current label map came from.

    Attributes
    ----------
    kind : {"network", "file"}
    description : str
        Human-readable, e.g. ``"spinect-default 1.0.0 on cpu"`` or ``"labels.nii.gz"``.
    bone_source : {"network", "ct", "fused"} or None
        Where the network segmentation's bone came from (``None`` for a file).
    """

    kind: str
    description: str = ""
    bone_source: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Session:
    """Everything known about the case being planned (immutable: see the module docstring).

    Attributes
    ----------
    source_path : Path or None
        What the user opened (folder, zip or file), for the title and the recent list.
    input_path : Path or None
        What the core reads (the unzipped folder for a zip).
    series : tuple of SeriesInfo
        Series found at ``input_path`` (headers only, no patient identifiers).
    scan : spinect_core.io.load.SeriesScan or None
        The header scan behind ``series``; loading a series from it reads no header again.
    series_uid : str or None
        The chosen series (``None``: the core's default choice).
    ct : Volume or None
        HU, array (z, y, x), LPS geometry.
    labels : Volume or None
        Integer class ids on ``ct``'s grid.
    table : LabelTable or None
        Names of the ids in ``labels``.
    segmentation_source : SegmentationSource or None
    probabilities : np.ndarray or None
        Per-class probabilities (C, z, y, x) when the segmenter kept them.
    bone_check : spinect_core.bone.agreement.BoneAgreement or None
        The network's bone against the CT bone model at L4-S1 (network segmentations only);
        its warnings join the notes and lead the plan's warnings.
    meshes : mapping of str to Mesh
        Surfaces in LPS mm, keyed by class name (read-only).
    notes : tuple of str
        Loader warnings and segmentation notes (fallbacks, OOM), shown to the user.
    settings : SettingsValues
        The settings the last computation used (device, weights, needle gauge, margin).
    plan : spinect_core.planning.plan.Plan or None
        The L5/S1 plan. A re-planned or nudged needle gives a new plan (its side replaced), so
        exports read the needle the operator sees and no reader sees a half-edited plan.
    engine : spinect_core.planning.plan.PlanEngine or None
        The engine that made ``plan`` (anatomy and per-side scenes), for live windows and export.
    body_mask : np.ndarray or None
        Body mask, bool (z, y, x) on the CT grid, reused by needle re-plans.
    planes : mapping of str to app.planning.NeedlePlanes
        Oblique planes along each side's needle (rendered RGB), for the 2D views.
    plan_refusal : tuple of str
        When the last plan step was refused (an ``AnatomyError``: L5/S1 not established): its
        message and, when known, where the scan ends (``app.planning.refusal_level``); empty
        otherwise. Shown instead of any plan title.
    pending_targets : mapping of str to np.ndarray
        Needle tips (LPS mm, shape (3,)) asked for per side whose re-plan has not arrived yet.
    replans : mapping of str to app.planning.ReplanResult
        The last needle re-plan per side (in or outside its window, planes error).
    """

    source_path: Path | None = None
    input_path: Path | None = None
    series: tuple[SeriesInfo, ...] = ()
    scan: SeriesScan | None = None
    series_uid: str | None = None
    ct: Volume | None = None
    labels: Volume | None = None
    table: LabelTable | None = None
    segmentation_source: SegmentationSource | None = None
    probabilities: np.ndarray | None = None
    bone_check: BoneAgreement | None = None
    meshes: Mapping[str, Mesh] = field(default_factory=_empty_map)
    notes: tuple[str, ...] = ()
    settings: SettingsValues = field(default_factory=SettingsValues)
    plan: Plan | None = None
    engine: PlanEngine | None = None
    body_mask: np.ndarray | None = None
    planes: Mapping[str, NeedlePlanes] = field(default_factory=_empty_map)
    plan_refusal: tuple[str, ...] = ()
    pending_targets: Mapping[str, np.ndarray] = field(default_factory=_empty_map)
    replans: Mapping[str, ReplanResult] = field(default_factory=_empty_map)

    @property
    def has_ct(self) -> bool:
        return self.ct is not None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and self.table is not None

    @property
    def has_meshes(self) -> bool:
        return any(not m.is_empty for m in self.meshes.values())

    def without_segmentation(self) -> Session:
        """This session without labels, meshes and plan (e.g. before a new segmentation)."""
        return dataclasses.replace(
            self.without_plan(), labels=None, table=None, segmentation_source=None,
            probabilities=None, bone_check=None, meshes=_empty_map())

    def without_plan(self) -> Session:
        """This session without plan, engine, needle planes and needle edits (keeps CT, labels,
        meshes)."""
        return dataclasses.replace(
            self, plan=None, engine=None, body_mask=None, planes=_empty_map(), plan_refusal=(),
            pending_targets=_empty_map(), replans=_empty_map())

    @property
    def has_plan(self) -> bool:
        return self.plan is not None and self.engine is not None

    @property
    def plan_level(self) -> LevelStatus | None:
        """How sure the plan's level is (:class:`spinect_core.report.level_text.LevelStatus`),
        or None without a plan."""
        from app.planning import plan_level  # app.planning imports this module

        return plan_level(self.plan)

    def case_title(self) -> str:
        """A neutral title, e.g. ``"CT (512x512x300, 0.70x0.70x3.00 mm)"``: size and spacing,
        never the folder or file name nor the series description (both often carry the
        patient's name, and the title shows in the case panel, the window title and
        screenshots)."""
        if self.source_path is None and self.ct is None:
            return "No case"
        if self.ct is None:
            return "CT"
        nx, ny, nz = self.ct.size_xyz
        sx, sy, sz = (float(v) for v in self.ct.spacing_mm)
        return f"CT ({nx}x{ny}x{nz}, {sx:.2f}x{sy:.2f}x{sz:.2f} mm)"


@dataclass(frozen=True, kw_only=True, eq=False)
class ViewState:
    """What the main window shows that is no data.

    Attributes
    ----------
    snapped : tuple of (np.ndarray, str, str) or None
        The best view the 3D view was turned to and has not left: unit view direction (3,)
        LPS, side, window kind. Its windows are measured with the plan's ray spacing.
    live_key : tuple or None
        The view (rounded direction, ray spacing mm) whose windows are measured or being
        measured; the same view is not requested twice.
    picking : bool
        A left click in the 3D view places the active needle's tip.
    """

    snapped: tuple[np.ndarray, str, str] | None = None
    live_key: tuple | None = None
    picking: bool = False


@dataclass(frozen=True, kw_only=True, eq=False)
class AppState:
    """The whole state of the app: one value, replaced (never edited) on every change.

    Attributes
    ----------
    session : Session
    view : ViewState
    opening : Path or None
        What is being opened (scanned, chosen, loaded); it becomes ``session.source_path`` when
        the CT loaded.
    last_error : app.errors.ErrorReport or None
        The last failure reported (a step, a needle re-plan).
    """

    session: Session = field(default_factory=Session)
    view: ViewState = field(default_factory=ViewState)
    opening: Path | None = None
    last_error: ErrorReport | None = None
