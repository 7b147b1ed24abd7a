"""Test doubles and small data for the app tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from spinect_core.io import SeriesInfo


@dataclass
class RecordingDialogs:
    """Satisfies the :class:`app.dialogs.Dialogs` protocol: records every message, answers from
    fields (``test_state.py`` checks that its methods match the protocol's)."""

    parent: Any = None
    errors: list = field(default_factory=list)
    infos: list = field(default_factory=list)
    overwrite_questions: list = field(default_factory=list)
    series_offered: list = field(default_factory=list)
    overwrite_answer: bool = False
    choose: Callable[[Sequence[SeriesInfo]], SeriesInfo | None] | None = None
    export_answer: Any = None
    export_offers: list = field(default_factory=list)
    file_answer: str = ""
    folder_answer: str = ""

    def error(self, report) -> None:
        self.errors.append(report)

    def info(self, title: str, text: str, detail: str = "") -> None:
        self.infos.append((title, text, detail))

    def confirm_overwrite(self, paths) -> bool:
        self.overwrite_questions.append(list(paths))
        return self.overwrite_answer

    def choose_series(self, series):
        self.series_offered.append(list(series))
        if self.choose is not None:
            return self.choose(series)
        return series[0] if series else None

    def export_request(self, folder, *, has_labels, has_meshes, has_plan=False, pacs_nodes=()):
        self.export_offers.append({"folder": folder, "has_plan": has_plan})
        return self.export_answer

    def open_from_pacs(self, settings):
        return None

    def edit_pacs_nodes(self, settings) -> bool:
        return False

    def edit_settings(self, settings) -> bool:
        return False

    def about(self, weights_path: str = "") -> None:
        self.infos.append(("about", weights_path, ""))

    def open_file(self, title, start_dir="", file_filter="") -> str:
        return self.file_answer

    def open_folder(self, title, start_dir="") -> str:
        return self.folder_answer


def tiny_weights(path: Path, *, spacing_mm=(3.0, 3.0, 3.0), seed: int = 0) -> Path:
    """A tiny random U-Net whose card asks for coarse voxels, so segmenting a phantom is quick."""
    import torch

    from spinect_core.model import ModelCard, UNet3D, UNetConfig, save_weights
    from spinect_core.labels import STUDY_LABELS

    torch.manual_seed(seed)
    config = UNetConfig(num_classes=3, base_channels=4, depth=3)
    card = ModelCard(name="tiny-test", version="0",
                     normalisation={"scheme": "ct_percentile_zscore", "clip_hu": [-1000.0, 2000.0],
                                    "mean_hu": 0.0, "std_hu": 500.0},
                     architecture=config, labels=STUDY_LABELS, patch_size_zyx=(16, 32, 32),
                     spacing_mm=tuple(spacing_mm))
    return save_weights(UNet3D(config).eval(), card, path)


def colour_fraction(rgb: np.ndarray, target: tuple[int, int, int], tol: int = 40) -> float:
    """Fraction of pixels within ``tol`` (per channel) of ``target``."""
    diff = np.abs(rgb[..., :3].astype(int) - np.asarray(target)[None, None, :])
    return float(np.mean(np.all(diff <= tol, axis=-1)))


def is_ivory(rgb: np.ndarray) -> np.ndarray:
    """Lit ivory bone: bright, warm (R >= G > B) and only mildly saturated."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (r > 110) & (r >= g - 5) & (g > b + 6) & (r - b < 90) & (r - b > 12)


def is_yellow(rgb: np.ndarray) -> np.ndarray:
    """Lit yellow nerve: red and green high, blue far lower."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (r > 120) & (g > 90) & (r - b > 100) & (g - b > 70)


def qimage_to_array(image) -> np.ndarray:
    """(h, w, 3) uint8 RGB of a QImage."""
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()
