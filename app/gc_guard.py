"""Python's cyclic garbage collection on the GUI thread only.

The cyclic collector runs on whichever thread happens to allocate when a generation fills up. In
a Qt application that can be a worker thread (reading DICOM, segmenting), and a collected cycle
that holds a Qt object (a closed dialog, a previous job's signals) is then destroyed off the GUI
thread: Qt crashes (seen as a segmentation fault while a worker read a DICOM folder). The guard
turns the automatic collector off and collects from a GUI-thread timer instead, with the same
generation thresholds, so nothing is collected anywhere else.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

__all__ = ["GuiThreadGarbageCollector", "install"]


class GuiThreadGarbageCollector(QObject):
    """Collects garbage on the GUI thread every ``interval_ms`` when a generation is full.

    Parameters
    ----------
    parent : QObject
        Usually the QApplication (the guard lives as long as it does).
    interval_ms : int
        How often the generation counts are checked (milliseconds).
    """

    def __init__(self, parent: QObject, *, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the oldest generation whose count passed its threshold (as gc would)."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.threshold[generation]:
                gc.collect(generation)
                return


def install(app: QObject) -> GuiThreadGarbageCollector:
    """Install the guard once on ``app``; later calls turn the automatic collector off again
    (a test may have turned it back on) and return the installed guard."""
    existing = app.findChild(GuiThreadGarbageCollector)
    if existing is None:
        return GuiThreadGarbageCollector(app)
    gc.disable()
    return existing
