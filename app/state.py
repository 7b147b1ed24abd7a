"""The typed state of one planning session, which the GUI binds to and exports read from.

:class:`Session` holds data only (numpy volumes and meshes from the core); it knows nothing about
Qt. :class:`app.controller.SessionController` fills it from workers and announces changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinect_core.io import SeriesInfo
from spinect_core.labels import LabelTable
from spinect_core.planning.meshes import Mesh
from spinect_core.segment import DEFAULT_BONE_MODE
from spinect_core.volume import Volume

__all__ = ["Session", "SegmentationSource", "SettingsValues"]


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


@dataclass(kw_only=True)
class Session:
    """Everything known about the case being planned.

    Attributes
    ----------
    source_path : Path or None
        What the user opened (folder, zip or file), for the title and the recent list.
    input_path : Path or None
        What the core reads (the unzipped folder for a zip).
    series : list of SeriesInfo
        Series found at ``input_path`` (headers only, no patient identifiers).
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
    meshes : dict of str to Mesh
        Surfaces in LPS mm, keyed by class name.
    notes : list of str
        Loader warnings and segmentation notes (fallbacks, OOM), shown to the user.
    settings : SettingsValues
        The settings the last computation used (device, weights, needle gauge, margin).
    plan : spinect_core.planning.plan.Plan or None
        The L5/S1 plan; a nudged or re-planned needle replaces ``plan.sides[side].trajectory``,
        so exports read the needle the operator sees.
    engine : spinect_core.planning.plan.PlanEngine or None
        The engine that made ``plan`` (anatomy and per-side scenes), for live windows and export.
    body_mask : np.ndarray or None
        Body mask (z, y, x) on the CT grid, reused by needle re-plans.
    planes : dict of str to app.planning.NeedlePlanes
        Oblique planes along each side's needle (rendered RGB), for the 2D views.
    plan_refusal : list of str
        When the last plan step was refused (an ``AnatomyError``: L5/S1 not established): its
        message and, when known, where the scan ends (``app.planning.refusal_level``); empty
        otherwise. Shown instead of any plan title.
    """

    source_path: Path | None = None
    input_path: Path | None = None
    series: list[SeriesInfo] = field(default_factory=list)
    series_uid: str | None = None
    ct: Volume | None = None
    labels: Volume | None = None
    table: LabelTable | None = None
    segmentation_source: SegmentationSource | None = None
    probabilities: Any = None
    bone_check: Any = None
    meshes: dict[str, Mesh] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: SettingsValues = field(default_factory=SettingsValues)
    plan: Any = None
    engine: Any = None
    body_mask: Any = None
    planes: dict[str, Any] = field(default_factory=dict)
    plan_refusal: list[str] = field(default_factory=list)

    @property
    def has_ct(self) -> bool:
        return self.ct is not None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and self.table is not None

    @property
    def has_meshes(self) -> bool:
        return any(not m.is_empty for m in self.meshes.values())

    def clear_segmentation(self) -> None:
        """Forget labels, meshes and plan (e.g. before a new segmentation); keep the CT."""
        self.labels = None
        self.table = None
        self.segmentation_source = None
        self.probabilities = None
        self.bone_check = None
        self.meshes = {}
        self.clear_plan()

    def clear_plan(self) -> None:
        """Forget the plan, its engine and the needle planes (keep CT, labels, meshes)."""
        self.plan = None
        self.engine = None
        self.body_mask = None
        self.planes = {}
        self.plan_refusal = []

    @property
    def has_plan(self) -> bool:
        return self.plan is not None and self.engine is not None

    @property
    def plan_level(self) -> Any:
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
