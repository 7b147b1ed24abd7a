"""About: version, the model card of the weights in use, and the intended-use statement."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from spinect_core import __version__

from app.model_info import card_html, weights_info

__all__ = ["AboutDialog", "DISCLAIMER"]

DISCLAIMER = "For research and planning support; not a certified medical device."


class AboutDialog(QDialog):
    def __init__(self, weights_path: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About SPINECT planner")
        title = QLabel(f"<h2>SPINECT planner {html.escape(__version__)}</h2>")
        text = QLabel("3D U-Net segmentation of bone and lumbosacral nerves on CT, and planning "
                      "of L5/S1 transforaminal injections (Kambin and safe triangles).")
        text.setWordWrap(True)
        self.disclaimer = QLabel(f"<b>{DISCLAIMER}</b>")
        self.disclaimer.setWordWrap(True)
        card_title = QLabel("<b>Segmentation model</b>")
        self.card = QLabel(card_html(weights_info(weights_path)))
        self.card.setWordWrap(True)
        offline = QLabel("Works fully offline: no data leaves this computer.")
        offline.setObjectName("muted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        for w in (title, text, self.disclaimer, card_title, self.card, offline):
            layout.addWidget(w)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)
