"""Simulated fluoroscopy (DRR) that follows the C-arm angle of the 3D view.

:class:`DRRView` shows what the C-arm would show at the view the operator has turned to: a
perspective DRR of the CT (:func:`spinect_core.reslice.drr.compute_drr`; tube under the table,
detector above the prone patient's back, SDD 1000 mm, SID 600 mm), seen as the operator looks
down at the back with the head at the top (the same orientation as the 3D view), with the window
outlines of that view, the needles and their tips projected onto it. The title names the view in
the one C-arm language (:mod:`spinect_core.planning.carm`), the same words as "This view".

A DRR takes about a second on a CPU, so it is computed off the GUI thread by an
:class:`app.workers.LatestWorker` (only the latest view matters while the operator rotates) and
only while the widget is visible; the CT's attenuation volume is made once per CT and reused.
Overlays are drawn on the GUI thread (cheap) so new outlines never recompute the DRR.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.camera import describe_direction
from spinect_core.planning.carm import CARM_CONVENTION
from spinect_core.reslice.drr import DRROptions

__all__ = ["DRRView", "APP_DRR_OPTIONS", "drr_title"]

#: The app's C-arm: the exports' geometry (SDD 1000 mm, SID 600 mm, 300 mm detector, tube under
#: the table) at a coarser detector and ray step, so a view takes about a second on a CPU.
APP_DRR_OPTIONS = DRROptions(detector_pixels=(256, 256), step_mm=1.5)


def drr_title(direction_lps: np.ndarray, side: str | None) -> str:
    """The view's title: "Simulated fluoroscopy: <C-arm words>" (:func:`app.camera.describe_direction`)."""
    return f"Simulated fluoroscopy: {describe_direction(direction_lps, side)}"


class _Canvas(QWidget):
    """An RGB picture drawn centred at the largest size that keeps square pixels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rgb: np.ndarray | None = None
        self._image: QImage | None = None
        self.placeholder = ""
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_rgb(self, rgb: np.ndarray | None) -> None:
        self.rgb = None if rgb is None else np.ascontiguousarray(rgb, dtype=np.uint8)
        if self.rgb is None:
            self._image = None
        else:
            h, w = self.rgb.shape[:2]
            # copy(): the QImage must own its bytes (the array may be freed).
            self._image = QImage(self.rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self._image is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        w, h = self._image.width(), self._image.height()
        s = min(self.width() / w, self.height() / h)
        target = QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(target, self._image)


class DRRView(QWidget):
    """Simulated fluoroscopy at the current view.

    Bind with :meth:`set_ct`, then call :meth:`set_view` whenever the view changes;
    :meth:`set_outlines` and :meth:`set_needles` add the overlays.

    Signals
    -------
    image_shown()
        A DRR of the latest requested view is on screen (tests wait on it).
    """

    image_shown = Signal()

    def __init__(self, parent: QWidget | None = None, *,
                 options: DRROptions = APP_DRR_OPTIONS) -> None:
        from app.workers import LatestWorker

        super().__init__(parent)
        self.options = options
        self.ct: Any = None
        self._mu: dict[str, Any] = {}  # the attenuation volume of self.ct, made in the worker
        self.result: Any = None        # DRRResult on screen
        self.view_key: tuple | None = None
        self.side: str | None = None
        self._pending: tuple | None = None  # a view asked for while hidden
        self.outlines: dict[tuple[str, str], list[np.ndarray]] = {}
        self.needles: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.worker = LatestWorker(_compute, self)
        self.worker.finished.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)

        self.title = QLabel("Simulated fluoroscopy")
        self.title.setObjectName("viewTitle")
        self.title.setToolTip(CARM_CONVENTION)
        self.title.setWordWrap(True)  # long C-arm words wrap instead of widening the tab
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.note.setToolTip(CARM_CONVENTION)
        self.canvas = _Canvas()
        self.canvas.placeholder = "Load a CT to see the simulated fluoroscopy"
        self.canvas.setToolTip("Simulated C-arm image (DRR) of this CT at the 3D view's angle: "
                               "tube under the table, detector above the back, SDD "
                               f"{options.sdd_mm:.0f} mm, SID {options.sid_mm:.0f} mm; seen "
                               "from the back, head up. Outlines: Kambin red, safe cyan; "
                               "needle orange.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addWidget(self.canvas, 1)

    # --- inputs ----------------------------------------------------------------------------------
    def set_ct(self, ct: Any) -> None:
        """The CT to project (``None`` clears); forgets the picture and the attenuation cache."""
        self.worker.clear()
        self.ct = ct
        self._mu = {}  # a new holder: a running job keeps filling the old one
        self.result = None
        self.view_key = None
        self._pending = None
        self.canvas.placeholder = ("Turn the 3D view to see the simulated fluoroscopy"
                                   if ct is not None else
                                   "Load a CT to see the simulated fluoroscopy")
        self.canvas.set_rgb(None)
        self.note.setText("")

    def set_view(self, direction_lps: np.ndarray, isocentre_lps_mm: np.ndarray,
                 side: str | None = None) -> None:
        """Follow a view: ``direction_lps`` as the 3D view looks (LPS), the central ray through
        ``isocentre_lps_mm``; ``side`` is what "ipsilateral" refers to in the title."""
        d = np.asarray(direction_lps, float)
        d = d / np.linalg.norm(d)
        iso = np.asarray(isocentre_lps_mm, float).reshape(3)
        self.side = side
        self.title.setText(drr_title(d, side))
        key = (tuple(np.round(d, 9)), tuple(np.round(iso, 6)))
        if self.ct is None or key == self.view_key:
            return
        self.view_key = key
        if not self.isVisible():
            self._pending = (d, iso)  # computed when shown: no CPU spent on a hidden tab
            return
        self._request(d, iso)

    def set_outlines(self, outlines: Mapping[tuple[str, str], list[np.ndarray]] | None) -> None:
        """Window outlines of the current view, (side, kind) -> closed LPS polylines."""
        self.outlines = {k: [np.asarray(p, float) for p in v] for k, v in (outlines or {}).items()}
        self._redraw()

    def set_needles(self, needles: Mapping[str, tuple[np.ndarray, np.ndarray]] | None) -> None:
        """side -> (entry, target), LPS mm."""
        self.needles = {s: (np.asarray(e, float), np.asarray(t, float))
                        for s, (e, t) in (needles or {}).items()}
        self._redraw()

    # --- computing -------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._pending is not None:
            d, iso = self._pending
            self._request(d, iso)

    def _request(self, d: np.ndarray, iso: np.ndarray) -> None:
        self._pending = None
        self.note.setText("Computing the simulated fluoroscopy…")
        self.worker.request(self.view_key, self.ct, self._mu, d, iso, self.options)

    def _on_result(self, tag: Any, result: Any) -> None:
        if tag != self.view_key:
            return  # an older view
        self.result = result
        g = result.geometry
        from spinect_core.reslice.render import orientation_letters

        self.note.setText(
            f"Image left: {orientation_letters(-g.col_axis_lps)}, top: "
            f"{orientation_letters(-g.row_axis_lps)} (patient). Tube {g.tube} the table, SDD "
            f"{g.sdd_mm:.0f} mm, SID {g.sid_mm:.0f} mm; magnification at the isocentre "
            f"{g.magnification_at_isocentre:.2f}.")
        self._redraw()
        self.image_shown.emit()

    def _on_failed(self, _tag: Any, exc: BaseException) -> None:
        self.note.setText(f"No simulated fluoroscopy: {exc}")

    def _redraw(self) -> None:
        if self.result is None:
            return
        from spinect_core.reslice.drr import render_plan_drr

        # The report's DRR pictures are drawn by the same function, in the same colours.
        outlines = [(kind, p) for (_side, kind), polys in self.outlines.items() for p in polys]
        self.canvas.set_rgb(render_plan_drr(self.result, outlines=outlines,
                                            needles=self.needles.values(), scale=2))

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the worker is idle (tests and shutdown)."""
        return self.worker.wait(timeout_ms)


def _compute(ct: Any, mu_holder: dict[str, Any], direction: np.ndarray, isocentre: np.ndarray,
             options: DRROptions) -> Any:
    """Worker thread: the DRR of one view (the CT's attenuation volume made on first use)."""
    from spinect_core.reslice.drr import attenuation_volume, compute_drr

    if "mu" not in mu_holder:
        mu_holder["mu"] = attenuation_volume(ct, options=options)
    # Pin the device the volume lives on, so "auto" cannot pick another one per view.
    opts = dataclasses.replace(options, device=str(mu_holder["mu"].device))
    return compute_drr(ct, direction, isocentre, options=opts, attenuation=mu_holder["mu"])
