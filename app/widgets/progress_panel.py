"""Progress of the running step: bar, stage, message, elapsed time and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

__all__ = ["ProgressPanel"]


class ProgressPanel(QFrame):
    """A strip shown while a job runs.

    Signals
    -------
    cancel_requested()
    """

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("progressPanel")
        self.stage = QLabel("")
        self.stage.setObjectName("stage")
        self.message = QLabel("")
        self.message.setObjectName("muted")
        self.message.setMinimumWidth(200)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(10)
        self.elapsed = QLabel("0:00")
        self.elapsed.setObjectName("muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.elapsed)
        layout.addWidget(self.cancel_button)
        self._clock = QElapsedTimer()
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self._update_elapsed)
        self.setVisible(False)

    def start(self, stage: str) -> None:
        """A new job started (keeps the elapsed clock running across chained steps)."""
        if not self.isVisible():
            self._clock.start()
            self._tick.start()
        self.stage.setText(stage)
        self.message.setText("")
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.setVisible(True)

    def set_progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(round(1000 * max(0.0, min(1.0, fraction)))))
        self.message.setText(message)

    def stop(self) -> None:
        """The job (or chain of jobs) ended."""
        self._tick.stop()
        self.setVisible(False)

    @property
    def elapsed_s(self) -> float:
        return self._clock.elapsed() / 1000.0 if self._clock.isValid() else 0.0

    def _update_elapsed(self) -> None:
        s = int(self.elapsed_s)
        self.elapsed.setText(f"{s // 60}:{s % 60:02d}")

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self.cancel_requested.emit()
