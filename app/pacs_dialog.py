"""PACS dialogs: the configured nodes (Tools > PACS nodes…) and File > Open from PACS….

:class:`PacsNodesDialog` edits :attr:`AppSettings.pacs_nodes` (name, AE title, host, port or a
DICOMweb URL, C-GET or C-MOVE), our AE title and the port of our C-MOVE storage SCP.

:class:`OpenFromPacsDialog` searches a node by patient ID, accession number or date (C-FIND /
QIDO-RS on a worker thread, with Cancel), lists studies and their series, and returns the chosen
series; the main window then retrieves it on the session's worker (progress bar and Cancel) and
opens the folder like a dropped one (:meth:`app.controller.SessionController.open_from_pacs`).
Study dates and descriptions (free text that may hold a name) are shown only when the user ticks
"Show dates and descriptions"; patient names and IDs returned by the PACS are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QProgressBar,
                               QPushButton, QSpinBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from spinect_core.errors import SpinectError

from app.pacs_nodes import PacsNodeConfig, client_for
from app.workers import Job, JobRunner

__all__ = ["PacsNodesDialog", "OpenFromPacsDialog", "PacsChoice"]


class PacsNodesDialog(QDialog):
    """Edit the configured PACS nodes, our AE title and our SCP port; saves on OK."""

    def __init__(self, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.settings = settings
        self.nodes: list[PacsNodeConfig] = list(settings.pacs_nodes)
        self.list = QListWidget()
        self.list.setObjectName("pacsNodeList")
        self.name = QLineEdit()
        self.aet = QLineEdit()
        self.host = QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://pacs:8042/dicom-web (instead of AE title/host/port)")
        self.move = QCheckBox("Retrieve by C-MOVE to this computer (else C-GET)")
        add = QPushButton("Add / update")
        add.clicked.connect(self._add)
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove)
        self.our_aet = QLineEdit(settings.pacs_aet)
        self.scp_port = QSpinBox()
        self.scp_port.setRange(1, 65535)
        self.scp_port.setValue(settings.pacs_scp_port)
        self.message = QLabel("")
        self.message.setObjectName("muted")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("AE title:", self.aet)
        form.addRow("Host:", self.host)
        form.addRow("Port:", self.port)
        form.addRow("or DICOMweb URL:", self.url)
        form.addRow("", self.move)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        ours = QFormLayout()
        ours.addRow("Our AE title:", self.our_aet)
        ours.addRow("Our C-MOVE port:", self.scp_port)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addLayout(ours)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.list.currentRowChanged.connect(self._show)
        self._refresh()

    def _refresh(self) -> None:
        self.list.clear()
        for n in self.nodes:
            self.list.addItem(n.describe())

    def _show(self, row: int) -> None:
        if 0 <= row < len(self.nodes):
            n = self.nodes[row]
            self.name.setText(n.name)
            self.aet.setText(n.ae_title)
            self.host.setText(n.host)
            self.port.setValue(int(n.port))
            self.url.setText(n.url)
            self.move.setChecked(n.move)

    def current_node(self) -> PacsNodeConfig:
        """The node in the form (validated; raises :class:`SpinectError` with the reason)."""
        return PacsNodeConfig(name=self.name.text().strip(), ae_title=self.aet.text().strip(),
                              host=self.host.text().strip(), port=self.port.value(),
                              url=self.url.text().strip(),
                              move=self.move.isChecked()).validate()

    def _add(self) -> bool:
        try:
            node = self.current_node()
        except SpinectError as exc:
            self.message.setText(str(exc))
            return False
        self.nodes = [n for n in self.nodes if n.name != node.name] + [node]
        self.message.setText("")
        self._refresh()
        return True

    def _remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.nodes):
            del self.nodes[row]
            self._refresh()

    def save(self) -> bool:
        try:
            self.settings.pacs_aet = self.our_aet.text()
            self.settings.pacs_scp_port = self.scp_port.value()
            self.settings.pacs_nodes = self.nodes
        except (SpinectError, ValueError) as exc:
            self.message.setText(str(exc))
            return False
        self.accept()
        return True


@dataclass(frozen=True, kw_only=True)
class PacsChoice:
    """The series the user chose: retrieve it with ``client``."""

    node: PacsNodeConfig
    client: Any
    study_uid: str
    series_uid: str | None


class OpenFromPacsDialog(QDialog):
    """Search a configured node and choose a series (see the module docstring)."""

    def __init__(self, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.settings = settings
        self.nodes: list[PacsNodeConfig] = list(settings.pacs_nodes)
        self.runner = JobRunner(self)
        self.studies: list[Any] = []
        self.node_box = QComboBox()
        for n in self.nodes:
            self.node_box.addItem(n.describe())
        self.patient_id = QLineEdit()
        self.accession = QLineEdit()
        self.date = QLineEdit()
        self.date.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.cancel_button = QPushButton("Cancel search")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel)
        self.show_descriptions = QCheckBox("Show dates and descriptions (may name the patient)")
        self.show_descriptions.toggled.connect(lambda _=False: self._fill())
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Study / series", "Modality", "Number", "Instances",
                                   "Date", "Description"])
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.message = QLabel("" if self.nodes else
                              "No PACS node configured: add one in Tools > PACS nodes…")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.open_button.setText("Retrieve and open")
        self.open_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("PACS:", self.node_box)
        form.addRow("Patient ID:", self.patient_id)
        form.addRow("Accession:", self.accession)
        form.addRow("Date:", self.date)
        row = QHBoxLayout()
        row.addWidget(self.search_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        row.addWidget(self.show_descriptions)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.search_button.setEnabled(bool(self.nodes))
        self.resize(760, 480)

    # --- search on a worker thread ---------------------------------------------------------------
    def node(self) -> PacsNodeConfig | None:
        i = self.node_box.currentIndex()
        return self.nodes[i] if 0 <= i < len(self.nodes) else None

    def client(self) -> Any:
        node = self.node()
        return client_for(node, aet=self.settings.pacs_aet, scp_port=self.settings.pacs_scp_port)

    def search(self) -> bool:
        """Start a C-FIND / QIDO-RS search; ``False`` (with a message) when it cannot start."""
        from spinect_core.pacs import Query

        if self.runner.busy or self.node() is None:
            return False
        try:
            query = Query(patient_id=self.patient_id.text(), accession=self.accession.text(),
                          date=self.date.text())
            client = self.client()
        except SpinectError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText("Searching…")
        self.search_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.runner.progress.connect(self._on_progress)
        self.runner.start(Job("Searching the PACS",
                              lambda progress: client.find(query, progress=progress)),
                          on_success=self._on_found, on_failure=self._on_failed,
                          on_cancel=lambda: self._done("Search cancelled"))
        return True

    def _cancel(self) -> None:
        if self.runner.current is not None:
            self.runner.current.cancel()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(1000 * fraction)))

    def _done(self, text: str) -> None:
        try:
            self.runner.progress.disconnect(self._on_progress)
        except (RuntimeError, TypeError):
            pass
        self.progress.setVisible(False)
        self.search_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.message.setText(text)

    def _on_found(self, studies: list[Any]) -> None:
        self.studies = list(studies)
        self._fill()
        n = sum(len(s.series) for s in self.studies)
        self._done(f"{len(self.studies)} studies, {n} series found" if self.studies
                   else "Nothing found")

    def _on_failed(self, exc: BaseException) -> None:
        self._done(str(exc) if isinstance(exc, SpinectError)
                   else f"Search failed ({type(exc).__name__})")

    def _fill(self) -> None:
        show = self.show_descriptions.isChecked()
        self.tree.clear()
        for study in self.studies:
            top = QTreeWidgetItem([f"Study {study.study_uid}", "/".join(study.modalities), "",
                                   str(len(study.series)), study.date if show else "",
                                   study.description if show else ""])
            top.setData(0, Qt.ItemDataRole.UserRole, (study.study_uid, None))
            for se in study.series:
                item = QTreeWidgetItem([
                    f"Series {se.series_uid}", se.modality,
                    "" if se.series_number is None else str(se.series_number),
                    "" if se.instances is None else str(se.instances), "",
                    se.description if show else ""])
                item.setData(0, Qt.ItemDataRole.UserRole, (study.study_uid, se.series_uid))
                top.addChild(item)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        self.tree.resizeColumnToContents(0)

    def _selection_changed(self) -> None:
        self.open_button.setEnabled(self.selected_uids() is not None)

    def selected_uids(self) -> tuple[str, str | None] | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def select(self, study_uid: str, series_uid: str | None = None) -> bool:
        """Select a study or series row (automation and tests)."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            rows = [top] + [top.child(j) for j in range(top.childCount())]
            for item in rows:
                if tuple(item.data(0, Qt.ItemDataRole.UserRole)) == (study_uid, series_uid):
                    self.tree.setCurrentItem(item)
                    return True
        return False

    def choice(self) -> PacsChoice | None:
        """The chosen series (or study) with the client to retrieve it, or ``None``."""
        uids = self.selected_uids()
        node = self.node()
        if uids is None or node is None:
            return None
        return PacsChoice(node=node, client=self.client(), study_uid=uids[0],
                          series_uid=uids[1])

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: stop a running search
        self._cancel()
        self.runner.pool.waitForDone(10_000)
        super().done(result)
