"""Brush and eraser on the label map in the slice views, and what follows an edit (issue 13).

:class:`LabelEditing` binds a :class:`~spinect_core.planning.label_edit.LabelEditor` to the
controller's session, the slice views (H1's tool hook: ``set_tool``, ``slice_clicked`` /
``slice_dragged`` / ``slice_released``, ``set_label_array``) and the tools bar
(:class:`app.widgets.label_tools.LabelToolsBar`):

* with the Brush or the Eraser on, a left press starts a stroke, each drag event paints a dab
  (dabs are spaced along the mouse's path so a fast drag leaves no gaps) and the release closes
  the stroke (one undo step). The views show the edited map at once.
* The editor paints on its own copy of the session's label map: the state's arrays are never
  written (:mod:`app.state`). Until the operator re-plans, the surfaces and the plan are those
  of the label map before the edits; the bar says so ("plan outdated") and offers
  :meth:`LabelEditing.replan`: the edited map becomes the session's segmentation through the
  controller's own path (``set_segmentation``: surfaces, then the plan step as after any
  segmentation), its source says "edited by the operator", and the new plan's warnings list
  what changed per class ("bone edited by the operator: N voxels (x ml ...) around LPS (...)
  mm") and carries them as data (``Plan.operator_edits``: plan.json's
  ``segmentation.operator_edits``, :func:`operator_edit_records`), so plan.json, the HTML and
  PDF reports carry it. Root corrections made before are saved to a temporary session file and
  applied again to the new plan.
* Edit > Undo / Redo (Ctrl+Z, Ctrl+Shift+Z) undo the label strokes while a label tool is on
  and there is a stroke to undo (:attr:`LabelEditing.owns_undo`, :attr:`LabelEditing.owns_redo`),
  else the root corrections (the main window routes them).
* :meth:`LabelEditing.save_files` writes ``labels_edited.nii.gz`` (LPS, the CT's grid, with its
  label-table sidecar) beside the exports and references it from ``planning_session.json``;
  :meth:`LabelEditing.restore` reopens them (one undo step).
* :func:`training_labels` chooses what a training case exports: the plan's label map with the
  operator's root corrections drawn in when there are any, else the edited (or the session's)
  label map.

Everything but the Qt binding is plain logic on the controller's session.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from spinect_core.labels import LabelTable
from spinect_core.planning.label_edit import (EDITABLE_CLASSES, LabelEditor, LabelEditOptions,
                                              LabelEditSummary)
from spinect_core.volume import Volume

__all__ = ["LabelEditing", "LABEL_SHORTCUTS", "TrainingLabels", "training_labels",
           "DAB_SPACING", "operator_edit_records"]

#: Keys of the label tools (the main window's Tools menu holds them as actions, so the Help
#: dialog lists them with the menus' shortcuts): (keys, what they do).
LABEL_SHORTCUTS = (
    ("B", "Label brush on / off: left drag in a slice view paints the chosen class"),
    ("E", "Label eraser on / off: left drag removes the chosen class only"),
    ("[", "Smaller brush (0.5 mm)"),
    ("]", "Larger brush (0.5 mm)"),
)
#: Dabs along a drag are at most this fraction of the radius apart (no gaps between them).
DAB_SPACING = 0.5


def operator_edit_records(summary: LabelEditSummary) -> list[dict[str, Any]] | None:
    """``Plan.operator_edits`` (plan.json's ``segmentation.operator_edits``) of the operator's
    label edits: per class changed :meth:`ClassEdit.to_dict` (voxels, ``changed_ml``, centroid
    and bounding box in LPS mm) with the added and removed volumes (ml); None without edits."""
    if not summary:
        return None
    return [dict(c.to_dict(), added_ml=round(c.added * c.voxel_ml, 6),
                 removed_ml=round(c.removed * c.voxel_ml, 6)) for c in summary.classes]


@dataclass(frozen=True, kw_only=True)
class TrainingLabels:
    """The label map a training case is exported with.

    Attributes
    ----------
    labels : Volume
        Class ids on the CT's grid (a copy).
    table : LabelTable
    edited : tuple of str
        What the operator changed (class names, ``"roots"``).
    note : str
        What was not included, in words ("" when everything was).
    """

    labels: Volume
    table: LabelTable
    edited: tuple[str, ...]
    note: str = ""


class LabelEditing(QObject):
    """The label brush and eraser of a controller's session in a slice panel.

    Parameters
    ----------
    controller : app.controller.SessionController
    panel : app.widgets.slice_views.SliceViewsPanel
    bar : app.widgets.label_tools.LabelToolsBar, optional
        Shows the tools and the edits; its requests come here.

    Signals
    -------
    changed()
        The edits or the plan's state changed (a stroke, undo, redo, re-plan, a new case).
    message(str)
        A line for the status bar.
    """

    changed = Signal()
    message = Signal(str)

    def __init__(self, controller: Any, panel: Any, bar: Any = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent if parent is not None else controller)
        self.controller = controller
        self.panel = panel
        self.bar = bar
        self.editor: LabelEditor | None = None
        self.tool: str | None = None
        self.label = "nerve"
        self.radius_mm = 3.0
        #: Brush over other classes (3D Slicer's default) or over background only.
        self.overwrite = True
        # The session's label map the editor started from, and the edited snapshot handed to
        # the controller by replan() (the session's labels are one of these while the editor
        # belongs to them; anything else is a new segmentation).
        self._base: Volume | None = None
        self._base_source: Any = None
        self._committed: Volume | None = None
        self._committed_lines: list[str] = []
        # plan.json's segmentation.operator_edits of the committed map (None: no edits).
        self._committed_edits: list[dict[str, Any]] | None = None
        self._pending = False
        self._plan_after_surfaces = False
        self._roots_to_reapply: Path | None = None
        self._last: np.ndarray | None = None
        controller.labels_changed.connect(self._on_labels_changed)
        controller.plan_changed.connect(self._on_plan_changed)
        controller.step_changed.connect(self._on_step)
        panel.slice_clicked.connect(self._on_slice)
        panel.slice_dragged.connect(self._on_slice)
        panel.slice_released.connect(self._on_slice)
        if bar is not None:
            bar.tool_changed.connect(self.set_tool)
            bar.label_changed.connect(self.set_label)
            bar.radius_changed.connect(self.set_radius)
            bar.undo_requested.connect(self.undo)
            bar.redo_requested.connect(self.redo)
            bar.replan_requested.connect(self.replan)
            self.radius_mm = float(bar.radius.value())
            self.label = bar.label.currentData() or self.label
        self._update()

    # --- the tool --------------------------------------------------------------------------------
    def set_tool(self, tool: str | None) -> None:
        """``"brush"``, ``"erase"`` or None (the left button back to the crosshair and roots)."""
        tool = tool or None
        if tool not in (None, "brush", "erase"):
            raise ValueError(f"unknown label tool {tool!r}")
        if tool is not None and not self.controller.session.has_labels:
            tool = None
        if self.editor is not None:
            self._end_stroke()
        self.tool = tool
        self.panel.set_tool(tool, radius_mm=self.radius_mm if tool else None)
        if self.bar is not None and self.bar.tool != tool:
            self.bar.blockSignals(True)
            self.bar.set_tool(tool)
            self.bar.blockSignals(False)
        self.changed.emit()

    def toggle_tool(self, tool: str) -> None:
        self.set_tool(None if self.tool == tool else tool)

    def set_label(self, name: str) -> None:
        if name:
            self.label = str(name)
            if self.bar is not None:
                self.bar.blockSignals(True)
                self.bar.set_label(self.label)
                self.bar.blockSignals(False)

    def set_radius(self, radius_mm: float) -> None:
        from app.widgets.label_tools import MAX_RADIUS_MM, MIN_RADIUS_MM

        self.radius_mm = float(min(MAX_RADIUS_MM, max(MIN_RADIUS_MM, radius_mm)))
        if self.tool is not None:
            self.panel.set_tool(self.tool, radius_mm=self.radius_mm)
        if self.bar is not None and abs(self.bar.radius.value() - self.radius_mm) > 1e-9:
            self.bar.blockSignals(True)
            self.bar.radius.setValue(self.radius_mm)
            self.bar.blockSignals(False)

    def step_radius(self, steps: int) -> None:
        """[ and ]: the radius by ``steps`` half millimetres."""
        from app.widgets.label_tools import RADIUS_STEP_MM

        self.set_radius(self.radius_mm + steps * RADIUS_STEP_MM)

    # --- painting --------------------------------------------------------------------------------
    def ensure_editor(self) -> LabelEditor | None:
        """The editor of the session's label map (made on first use), None without labels."""
        session = self.controller.session
        if not session.has_labels:
            return None
        if self.editor is None:
            classes = tuple(c for c in EDITABLE_CLASSES if session.table.has(c))
            if not classes:
                return None
            self.editor = LabelEditor(session.labels, session.table,
                                      options=LabelEditOptions(classes=classes))
            self._base = session.labels
            self._base_source = session.segmentation_source
        return self.editor

    def paint(self, center_lps_mm: Any, axis: int) -> int:
        """One dab of the current tool at ``center_lps_mm`` (LPS mm) in the index plane across
        numpy ``axis`` (0 z, 1 y, 2 x; the slice view's); returns the voxels changed."""
        editor = self.ensure_editor()
        if editor is None or self.tool is None or not editor.table.has(self.label):
            return 0
        # The index plane across numpy axis a is normal to the grid's index axis 2 - a.
        normal = editor.volume.direction[:, 2 - int(axis)]
        return editor.paint(center_lps_mm, self.radius_mm, self.label, plane=normal,
                            mode=self.tool, overwrite=self.overwrite)

    def _on_slice(self, event: Any) -> None:
        if self.tool is None:
            return  # the crosshair's and the roots' events
        from spinect_core.errors import SpinectError

        try:
            editor = self.ensure_editor()
        except SpinectError as exc:  # a label map the editor cannot take (ids above 255)
            self.message.emit(f"Label {self.tool}: {exc}")
            return
        if editor is None:
            return
        point = np.asarray(event.lps_mm, float)
        try:
            if event.kind == "press":
                editor.begin_stroke()
                self.paint(point, event.axis)
                self._last = point
            elif event.kind == "drag":
                if not editor.in_stroke:
                    editor.begin_stroke()
                for p in self._path(point):
                    self.paint(p, event.axis)
                self._last = point
            else:
                self._end_stroke()
        except SpinectError as exc:
            self._end_stroke()
            self.message.emit(f"Label {self.tool}: {exc}")
        self._show()

    def _path(self, point: np.ndarray) -> list[np.ndarray]:
        """Dab centres from the last one to ``point`` at most DAB_SPACING radii apart."""
        if self._last is None:
            return [point]
        gap = float(np.linalg.norm(point - self._last))
        n = max(1, int(np.ceil(gap / (DAB_SPACING * self.radius_mm))))
        return [self._last + (point - self._last) * (i / n) for i in range(1, n + 1)]

    def _end_stroke(self) -> None:
        self._last = None
        if self.editor is not None and self.editor.in_stroke:
            self.editor.end_stroke()
            self._update()

    @property
    def owns_undo(self) -> bool:
        """Edit > Undo (Ctrl+Z) undoes a label stroke: a label tool is on and there is one to
        undo (otherwise it undoes the last root correction)."""
        return self.tool is not None and self.editor is not None and self.editor.can_undo

    @property
    def owns_redo(self) -> bool:
        """Edit > Redo (Ctrl+Shift+Z) redoes a label stroke (as :attr:`owns_undo`)."""
        return self.tool is not None and self.editor is not None and self.editor.can_redo

    def undo(self) -> bool:
        if self.editor is None or not self.editor.undo():
            return False
        self._show()
        self._update()
        return True

    def redo(self) -> bool:
        if self.editor is None or not self.editor.redo():
            return False
        self._show()
        self._update()
        return True

    def _show(self) -> None:
        """The slice views show the working map (one redraw)."""
        if self.editor is not None and self.panel.labels is not None:
            self.panel.set_label_array(self.editor.volume.array)
        if self.bar is not None and self.editor is not None:
            self.bar.counts.setText(self.counts_text())

    # --- state -----------------------------------------------------------------------------------
    @property
    def has_edits(self) -> bool:
        """The operator changed the label map (against the segmentation it started from)."""
        return self.editor is not None and bool(self.editor.edited())

    @property
    def pending(self) -> bool:
        """The edited map differs from the session's label map (the one the surfaces and the
        plan use): re-plan to use it."""
        return self._pending

    @property
    def plan_outdated(self) -> bool:
        """There is a plan, and it was made on the label map before the latest edits."""
        return self._pending and self.controller.session.has_plan

    def counts_text(self) -> str:
        if self.editor is None:
            return ""
        parts = []
        for name, c in self.editor.counts().items():
            signed = [f"+{c['added']}"] if c["added"] else []
            signed += [f"−{c['removed']}"] if c["removed"] else []
            parts.append(f"{name} {' / '.join(signed)}")
        return f"Edited (voxels): {', '.join(parts)}" if parts else ""

    def outdated_text(self) -> str:
        if not self._pending:
            return ""
        if self.controller.session.has_plan:
            return "⚠ Plan outdated: the labels were edited after it"
        return "Labels edited: the 3D surfaces and plans do not use them yet"

    def _update(self) -> None:
        """Recompute whether the edits are pending (after a stroke, undo, redo or a new map)
        and show it."""
        session = self.controller.session
        self._pending = False
        if self.editor is not None and session.labels is not None:
            # The session's map is the editor's start or a snapshot of it: they can differ only
            # where the editor ever wrote.
            box = self.editor.written_region()
            self._pending = box is not None and not np.array_equal(
                self.editor.volume.array[box], session.labels.array[box])
        if self.bar is not None:
            self.bar.show_state(enabled=session.has_labels, counts=self.counts_text(),
                                can_undo=self.editor is not None and self.editor.can_undo,
                                can_redo=self.editor is not None and self.editor.can_redo,
                                outdated=self.outdated_text())
        self.changed.emit()

    def _on_labels_changed(self) -> None:
        session = self.controller.session
        labels = session.labels
        if labels is None or (labels is not self._committed and labels is not self._base):
            # A new case or a new segmentation: its edits start again.
            self.editor, self._base, self._committed = None, None, None
            self._committed_lines = []
            self._committed_edits = None
            self._roots_to_reapply = None
            self._plan_after_surfaces = False
            self._last = None
            if labels is None and self.tool is not None:
                self.set_tool(None)
        elif self.editor is not None:
            self._show()  # the views follow the working map again (set_labels showed a copy)
        self._update()

    # --- re-plan with the edited labels ----------------------------------------------------------
    def replan(self) -> bool:
        """Make the edited map the session's segmentation and plan again (surfaces, then the
        plan step, as after a segmentation); False when busy or nothing is edited."""
        from app.state import SegmentationSource

        c = self.controller
        session = c.session
        if c.busy:
            self.message.emit("Busy: wait for the current step or cancel it")
            return False
        if self.editor is None or not self._pending:
            return False
        self._end_stroke()
        roots = None
        if getattr(c, "has_root_corrections", False):
            # The root corrections belong to the engine the new plan replaces: keep them in a
            # session file and apply them to the new plan once it is there.
            from spinect_core.planning.session_file import SESSION_FILE_NAME

            roots = c.save_root_session(c.temp.new("spinect-roots-") / SESSION_FILE_NAME)
        summary = self.editor.summary()
        lines = summary.lines()
        # Described from the segmentation the edits started from (a second re-plan does not
        # stack its words on the first's); all edits undone: that segmentation's own words.
        base = self._base_source
        edits = ", ".join(f"{e.name} {e.changed} voxels" for e in summary.classes)
        source = base
        if edits:
            described = f"edited by the operator ({edits})"
            source = (dataclasses.replace(base, description=f"{base.description}; {described}")
                      if base is not None else SegmentationSource(kind="file",
                                                                  description=described))
        elif base is None:
            source = SegmentationSource(kind="file", description="label map")
        old_lines = self._committed_lines
        self._committed = self.editor.to_volume()
        self._committed_lines = lines
        self._committed_edits = operator_edit_records(summary)
        self._roots_to_reapply = roots
        self._plan_after_surfaces = True
        # The network's probabilities do not describe the edited map: they are not kept.
        c.set_segmentation(self._committed, self.editor.table, source=source,
                           probabilities=None, bone_check=session.bone_check,
                           build_surfaces=True)
        # The notes: the last re-plan's edit lines replaced by these, and the bone check's
        # warnings (set_segmentation adds them again) once.
        notes = tuple(dict.fromkeys(
            [n for n in c.session.notes if n not in old_lines] + lines))
        if notes != c.session.notes:
            c.store.replace_session(notes=notes)
            c.notes_changed.emit()
        self.message.emit("Re-planning with the edited labels…")
        return True

    def _on_step(self, step: str, status: str) -> None:
        if step == "surfaces" and status in ("failed", "cancelled"):
            self._plan_after_surfaces = False
        if step != "surfaces" or status != "done" or not self._plan_after_surfaces:
            return
        self._plan_after_surfaces = False
        # With auto-plan on, the controller plans after the surfaces itself.
        if not self.controller.settings.snapshot().auto_plan:
            self.controller.plan()

    def _on_plan_changed(self) -> None:
        c = self.controller
        session = c.session
        plan = session.plan
        if plan is not None and self._committed is not None and session.labels is \
                self._committed:
            missing = [w for w in self._committed_lines if w not in plan.warnings]
            if missing or plan.operator_edits != self._committed_edits:
                # The plan made on the edited map says what the operator changed, in words (the
                # warnings) and as data (plan.json's segmentation.operator_edits, the report's
                # table): a new plan value, as every change of the state. Each plan made on the
                # map (a re-plan of the roots too) gets them again.
                c.store.replace_session(plan=dataclasses.replace(
                    plan, warnings=list(plan.warnings) + missing,
                    operator_edits=self._committed_edits))
            if self._roots_to_reapply is not None:
                path, self._roots_to_reapply = self._roots_to_reapply, None
                c.open_root_session(path)
        self._update()

    # --- files beside the exports ----------------------------------------------------------------
    def session_targets(self, folder: str | Path) -> list[Path]:
        """The files :meth:`save_files` writes into ``folder`` (empty without edits)."""
        from spinect_core.io.labelmap import sidecar_path
        from spinect_core.planning.session_file import LABEL_EDITS_FILE_NAME, SESSION_FILE_NAME

        if not self.has_edits:
            return []
        f = Path(folder)
        return [f / LABEL_EDITS_FILE_NAME, sidecar_path(f / LABEL_EDITS_FILE_NAME),
                f / SESSION_FILE_NAME]

    def save_files(self, folder: str | Path, *, overwrite: bool = False,
                   session_written: Path | None = None) -> list[Path]:
        """Write ``labels_edited.nii.gz`` (and its sidecar) into ``folder`` and reference it from
        the session file: added to ``session_written`` (the root corrections' file the
        controller wrote just before), else a session file of label edits only."""
        from spinect_core.io.labelmap import sidecar_path
        from spinect_core.planning.session_file import (SESSION_FILE_NAME, add_label_edits,
                                                        save_label_edits, save_session)

        if self.editor is None or not self.has_edits:
            return []
        folder = Path(folder)
        record = save_label_edits(folder, self.editor, overwrite=overwrite)
        image = folder / record.file
        written = [image, sidecar_path(image)]
        if session_written is not None:
            written.append(add_label_edits(session_written, record))
            return written
        session = self.controller.session
        engine = session.engine
        options = None
        if engine is not None:
            o = engine.options
            options = {"roots": o.roots, "variant": o.variant, "sides": list(o.sides)}
        written.append(save_session(folder / SESSION_FILE_NAME, None, label_edits=record,
                                    ct=session.ct, plan_options=options, overwrite=overwrite))
        return written

    def restore(self, session_path: str | Path) -> bool:
        """Reopen the label edits of a planning session file (checked against the loaded CT;
        one undo step); False when it has none. Raises InputError for a session of another CT
        or a missing / changed edited map."""
        from spinect_core.errors import InputError
        from spinect_core.planning.session_file import check_ct, load_label_edits, load_session

        path = Path(session_path)
        saved = load_session(path)
        session = self.controller.session
        if session.ct is None or not session.has_labels:
            raise InputError("open the CT and its segmentation before the planning session")
        check_ct(saved, session.ct)
        if saved.label_edits is None:
            return False
        volume, table = load_label_edits(saved, path.parent)
        if table.names != session.table.names:
            raise InputError("the edited label map's classes differ from the segmentation's: "
                             f"{list(table.names.values())} against "
                             f"{list(session.table.names.values())}")
        editor = self.ensure_editor()
        if editor is None:
            raise InputError("this segmentation has no bone or nerve class to edit")
        editor.replace_all(volume.array)
        self._show()
        self._update()
        return True


def training_labels(controller: Any, editing: LabelEditing | None) -> TrainingLabels:
    """What a training case exports: with root corrections (and no label edits newer than the
    plan), the plan's label map with the corrected roots drawn in (read under the engine lock);
    else the edited label map, else the session's.

    Raises
    ------
    InputError
        The session has no label map.
    """
    from spinect_core.errors import InputError

    session = controller.session
    if not session.has_labels:
        raise InputError("segment the CT or open a segmentation before exporting a training "
                         "case")
    edited: list[str] = list(editing.editor.edited()) if (
        editing is not None and editing.editor is not None) else []
    pending = editing is not None and editing.pending
    roots = bool(getattr(controller, "has_root_corrections", False))
    note = ""
    if roots and not pending and session.engine is not None:
        engine = session.engine
        with controller.engine_lock:
            labels = engine.labels.with_array(np.array(engine.labels.array, copy=True))
            table = engine.table
        return TrainingLabels(labels=labels, table=table, edited=tuple(edited + ["roots"]))
    if roots:
        note = ("the root corrections are not in the exported labels: the labels were edited "
                "after the plan (re-plan with the edited labels to include both)")
    if editing is not None and editing.editor is not None and edited:
        labels = editing.editor.to_volume()
        table = editing.editor.table
    else:
        labels = session.labels.with_array(np.array(session.labels.array, copy=True))
        table = session.table
    return TrainingLabels(labels=labels, table=table, edited=tuple(edited), note=note)
