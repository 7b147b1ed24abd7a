"""The slice viewer's keyboard and mouse shortcuts: one table, the Help entry that lists it.

:data:`SHORTCUTS` is the only place the slice views' keys are defined: the views dispatch a key
through :func:`command_for_key` and the Help > Keyboard shortcuts dialog lists the same rows, so
the two cannot disagree. The dialog adds the menus' own shortcuts, read from the window's
actions at the time it opens (their single source is the menu).

The main window calls :func:`install_slice_viewer` once after building its menus: it adds the
Help entry and links the slice views' crosshair to a marker in the 3D view.

Mouse conventions (as in 3D Slicer and most PACS viewers)
---------------------------------------------------------
* left click or drag: crosshair (the other two planes move to the point; marked in 3D);
* right drag: window/level (left/right = width, up/down = level);
* middle drag or Shift + left drag: pan; Ctrl + wheel: zoom about the cursor;
* wheel: previous / next slice; ``M`` then left drag: distance ruler;
* nerve roots: left drag on a control point moves it, a click selects it (Delete removes it),
  Ctrl + left click near a root adds a point, Shift + wheel over a point sets its radius, a right
  click without dragging opens the root's menu (Ctrl + wheel stays the zoom everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView,
                               QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spinect_core.planning.root_edit import RootEditOptions

__all__ = ["Shortcut", "SHORTCUTS", "SLICE_VIEWS", "ZOOM_STEP", "PAGE_STEP", "RADIUS_STEP_MM",
           "command_for_key",
           "shortcut_rows", "ShortcutsDialog", "install_help_menu", "install_slice_viewer"]

#: Where the slice-view shortcuts work (the view must have the keyboard focus: click it first).
SLICE_VIEWS = "Slice views (click a view first)"
#: Zoom factor of one wheel notch with Ctrl, or one +/- key press.
ZOOM_STEP = 1.25
#: Slices moved by Page Up / Page Down.
PAGE_STEP = 10
#: Change of a root control point's radius (mm) by one Shift + wheel notch over it.
RADIUS_STEP_MM = 0.25

_K = Qt.Key
#: The root edits' limits the Help rows quote (the controller edits with these defaults).
_EDIT = RootEditOptions()


@dataclass(frozen=True, kw_only=True)
class Shortcut:
    """One row of the shortcut table.

    Attributes
    ----------
    keys : str
        The keys or mouse gesture as the Help dialog shows them.
    does : str
        What it does, in the operator's words.
    area : str
        Where it works.
    command : str
        Command the slice views run (``""``: a mouse gesture, handled by the canvas itself).
    bindings : tuple of (Qt.Key, float)
        Keys (without Ctrl/Alt) that run :attr:`command`, each with its argument.
    """

    keys: str
    does: str
    area: str = SLICE_VIEWS
    command: str = ""
    bindings: tuple[tuple[Qt.Key, float], ...] = ()


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(keys="Left click / drag", does="Crosshair: move the other two planes to the point "
             "and mark it in the 3D view"),
    Shortcut(keys="Right drag", does="Window/level: left/right narrows/widens the window, "
             "up/down brightens/darkens (lowers/raises the level)"),
    Shortcut(keys="Middle drag, Shift + left drag", does="Pan"),
    Shortcut(keys="Ctrl + wheel", does="Zoom about the cursor"),
    Shortcut(keys="Wheel", does="Next / previous slice (one voxel toward S, L or P / back)"),
    Shortcut(keys="Up / Down", does="Next / previous slice (one voxel toward S, L or P / back)",
             command="step", bindings=((_K.Key_Up, 1), (_K.Key_Down, -1))),
    Shortcut(keys="Page Up / Page Down", does=f"{PAGE_STEP} slices toward S, L or P / back",
             command="step", bindings=((_K.Key_PageUp, PAGE_STEP), (_K.Key_PageDown, -PAGE_STEP))),
    Shortcut(keys="Home / End", does="First / last slice of the series", command="end",
             bindings=((_K.Key_Home, -1), (_K.Key_End, 1))),
    Shortcut(keys="+ / -", does="Zoom in / out about the centre", command="zoom",
             bindings=((_K.Key_Plus, ZOOM_STEP), (_K.Key_Equal, ZOOM_STEP),
                       (_K.Key_Minus, 1 / ZOOM_STEP))),
    Shortcut(keys="R", does="Reset zoom and pan (whole slice in view)", command="reset_view",
             bindings=((_K.Key_R, 0),)),
    Shortcut(keys="M, then left drag", does="Distance ruler on and off; the drag measures in mm",
             command="ruler", bindings=((_K.Key_M, 0),)),
    Shortcut(keys="Delete / Backspace", does="Delete the selected root control point (a root "
             "keeps at least two); with no point selected, clear the ruler",
             command="clear_ruler", bindings=((_K.Key_Delete, 0), (_K.Key_Backspace, 0))),
    Shortcut(keys="1 … 9", does="Window preset 1 to 9 of the Window list (1 = the series' own "
             "DICOM window when it has one)", command="preset",
             bindings=tuple((getattr(_K, f"Key_{n}"), n - 1) for n in range(1, 10))),
    # Mouse gestures and Ctrl keys the slice canvas handles itself (no command binding).
    Shortcut(keys="Left drag on a root's control point", does="Move the point: the root is "
             "refitted and the windows at the current view are measured again on release"),
    Shortcut(keys="Left click on a root's control point", does="Select it (white ring); "
             "Delete removes it. Hovering shows the root, the point and its radius"),
    Shortcut(keys="Ctrl + left click near a root", does="Add a control point to the nearest "
             f"root where the click projects onto it (within the root's radius + "
             f"{_EDIT.insert_reach_mm:g} mm)"),
    Shortcut(keys="Shift + wheel over a control point", does=f"Radius of that point, "
             f"{RADIUS_STEP_MM:g} mm a notch ({_EDIT.radius_range_mm[0]:g} to "
             f"{_EDIT.radius_range_mm[1]:g} mm)"),
    Shortcut(keys="Right click (without dragging)", does="Root menu: on a control point delete "
             "it or set its radius or the whole root's (mm); near a root add a point there"),
    Shortcut(keys="Ctrl + Z / Ctrl + Shift + Z", does="Undo / redo the last label stroke while a "
             "label tool is on, else the last root correction (move, add, delete, radius)"),
    # The main window's own QShortcut (not a menu action, so not found in the menus).
    Shortcut(keys="Esc", does="End target picking", area="3D view"),
)

_BLOCKING = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
             | Qt.KeyboardModifier.MetaModifier)


def command_for_key(key: int, modifiers=Qt.KeyboardModifier.NoModifier
                    ) -> tuple[str, float] | None:
    """(command, argument) the slice views run for ``key``, or None.

    Keys with Ctrl, Alt or Meta are left to the menus; Shift and the keypad are allowed (``+``
    is Shift + ``=`` on many layouts).
    """
    if modifiers & _BLOCKING:
        return None
    for shortcut in SHORTCUTS:
        for bound, arg in shortcut.bindings:
            if int(bound) == int(key):
                return shortcut.command, float(arg)
    return None


def _menu_rows(menu, path: str) -> list[tuple[str, str, str]]:
    rows = []
    for action in menu.actions():
        if action.menu() is not None:
            rows += _menu_rows(action.menu(), f"{path} > {action.menu().title().replace('&', '')}")
        elif not action.isSeparator() and not action.shortcut().isEmpty():
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            rows.append((path, keys, action.text().replace("&", "").rstrip("…").strip()))
    return rows


def shortcut_rows(window=None) -> list[tuple[str, str, str]]:
    """(where, keys, what it does) for the menus of ``window`` (if given) and :data:`SHORTCUTS`."""
    rows: list[tuple[str, str, str]] = []
    if window is not None and hasattr(window, "menuBar"):
        for action in window.menuBar().actions():
            if action.menu() is not None:
                title = action.menu().title().replace("&", "")
                rows += _menu_rows(action.menu(), f"Menu {title}")
    rows += [(s.area, s.keys, s.does) for s in SHORTCUTS]
    return rows


class ShortcutsDialog(QDialog):
    """A read-only table of :func:`shortcut_rows` (Help > Keyboard shortcuts)."""

    def __init__(self, window=None, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self.setWindowTitle("Keyboard shortcuts")
        self.rows = shortcut_rows(window)
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Keys / mouse", "What it does"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(True)
        for r, row in enumerate(self.rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.resizeRowsToContents()
        note = QLabel("Slice-view keys act on the view that has the keyboard focus: click a view "
                      "first. Positions are LPS millimetres.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(760, 520)


def _help_menu(window):
    bar = window.menuBar()
    for action in bar.actions():
        menu = action.menu()
        if menu is not None and menu.title().replace("&", "").lower() == "help":
            return menu
    return bar.addMenu("&Help")


def install_help_menu(window) -> QAction:
    """Add Help > Keyboard shortcuts (F1) to ``window`` (a QMainWindow); idempotent.

    The dialog is modeless and kept on ``window.shortcuts_dialog`` (tests read it).
    """
    menu = _help_menu(window)
    for action in menu.actions():
        if action.objectName() == "keyboardShortcuts":
            return action
    action = QAction("&Keyboard shortcuts", window)
    action.setObjectName("keyboardShortcuts")
    action.setShortcut(QKeySequence(Qt.Key.Key_F1))
    action.setToolTip("List the keyboard and mouse shortcuts of the menus and the slice views")

    def show() -> None:
        # Rebuilt on each opening: the menus may have gained actions since.
        old = getattr(window, "shortcuts_dialog", None)
        if old is not None:
            old.close()
        window.shortcuts_dialog = ShortcutsDialog(window)
        window.shortcuts_dialog.show()

    action.triggered.connect(show)
    first = menu.actions()[0] if menu.actions() else None
    menu.insertAction(first, action)
    return action


def install_slice_viewer(window) -> QAction:
    """What the slice viewer needs from the main window; call once after the menus exist.

    Adds Help > Keyboard shortcuts and shows the slice views' crosshair point as a marker in
    the 3D view (``window.slice_views`` and ``window.view3d``, when the view offers
    ``set_marker``). Returns the Help action.
    """
    action = install_help_menu(window)
    panel = getattr(window, "slice_views", None)
    view3d = getattr(window, "view3d", None)
    if panel is not None and view3d is not None and hasattr(view3d, "set_marker") \
            and not getattr(panel, "_linked_3d", False):
        panel.crosshair_moved.connect(view3d.set_marker)
        panel._linked_3d = True
    return action
