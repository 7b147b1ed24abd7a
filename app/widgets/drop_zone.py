"""Start screen: a drop zone for a DICOM folder, zip or image file, plus open buttons and recents.

Dropping works anywhere on the main window (it accepts the drop and calls the controller); this
widget is what a user sees before a case is open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

__all__ = ["DropZone", "StartScreen", "paths_from_mime"]


def paths_from_mime(mime: QMimeData) -> list[Path]:
    """Local file/folder paths carried by a drag (``file://`` URLs only)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class DropZone(QFrame):
    """The dashed target in the middle of the start screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setProperty("active", False)
        self.setMinimumSize(420, 220)
        title = QLabel("Drop a CT here")
        title.setObjectName("dropTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel("DICOM folder · zip of a DICOM folder · NIfTI, NRRD or MHA file")
        text.setObjectName("muted")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addStretch(1)

    def set_active(self, active: bool) -> None:
        """Highlight while something is dragged over the window."""
        self.setProperty("active", bool(active))
        self.style().unpolish(self)
        self.style().polish(self)


class StartScreen(QWidget):
    """What the window shows before a case is open.

    Signals
    -------
    open_file_requested, open_folder_requested
    recent_requested(str)
    """

    open_file_requested = Signal()
    open_folder_requested = Signal()
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        heading = QLabel("SPINECT planner")
        heading.setObjectName("heading")
        sub = QLabel("Segmentation of bone and lumbosacral nerves on CT and planning of "
                     "L5/S1 transforaminal injections")
        sub.setObjectName("muted")
        sub.setWordWrap(True)
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_zone = DropZone()
        open_folder = QPushButton("Open DICOM folder…")
        open_file = QPushButton("Open file…")
        open_folder.setObjectName("primary")
        open_folder.clicked.connect(self.open_folder_requested)
        open_file.clicked.connect(self.open_file_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(open_folder)
        buttons.addWidget(open_file)
        buttons.addStretch(1)
        self.recent_label = QLabel("Recent")
        self.recent_label.setObjectName("sectionTitle")
        self.recent = QListWidget()
        self.recent.setMaximumHeight(140)
        self.recent.itemActivated.connect(lambda item: self.recent_requested.emit(
            item.data(Qt.ItemDataRole.UserRole)))
        disclaimer = QLabel("For research and planning support; not a certified medical device.")
        disclaimer.setObjectName("muted")
        disclaimer.setAlignment(Qt.AlignmentFlag.AlignCenter)

        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(heading, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(sub)
        column.addSpacing(18)
        column.addWidget(self.drop_zone)
        column.addSpacing(8)
        column.addLayout(buttons)
        column.addSpacing(18)
        column.addWidget(self.recent_label)
        column.addWidget(self.recent)
        column.addStretch(1)
        column.addWidget(disclaimer)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(column, 3)
        outer.addStretch(1)

    def set_recent(self, paths: Sequence[str]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(f"{Path(p).name}    —    {Path(p).parent}")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            self.recent.addItem(item)
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
