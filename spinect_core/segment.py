"""Segment a CT with a SPINECT network: preprocess, sliding window, map back onto the input grid.

This is the one function the CLI (``spinect segment``), the demo and the desktop app call. A
:class:`Segmenter` loads the weights once and segments many volumes::

    segmenter = Segmenter.from_weights(None)        # None: the bundled default weights
    result = segmenter.segment(ct, progress=cb)     # cb(fraction, message) -> False cancels
    result.labels                                   # Volume of uint8 class ids on ct's grid
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

__all__ = ["SegmentOptions", "Segmentation", "Segmenter", "segment_ct"]


@dataclass(frozen=True, kw_only=True)
class SegmentOptions:
    """How to run the network.

    Attributes
    ----------
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU) or a torch device name.
    blend : {"sum", "gaussian"}
        ``sum`` is the study's Algorithm 1 (summed softmax, then argmax); ``gaussian`` weights
        each window by an nnU-Net importance map (sigma = patch / 8).
    stride_zyx : tuple of 3 ints, optional
        Sliding-window step in voxels; default 5/8 of the card's patch (the study: 20x40x40).
    batch_size : int
        Windows per forward pass.
    precision : {"auto", "float32", "bfloat16", "float16"}
    keep_probabilities : bool
        Also return per-class probabilities on the input grid (C x input size x 2 bytes).
    crop_to_body : bool
        Run the network only inside the body's bounding box (same result, less time).
    """

    device: str = "auto"
    blend: Literal["sum", "gaussian"] = "sum"
    stride_zyx: tuple[int, int, int] | None = None
    batch_size: int = 4
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    keep_probabilities: bool = False
    crop_to_body: bool = True


@dataclass(kw_only=True)
class Segmentation:
    """The result of :meth:`Segmenter.segment`, on the input CT's grid.

    Attributes
    ----------
    labels : Volume
        uint8 class ids, array (z, y, x), same geometry as the input CT.
    table : LabelTable
        Names of the ids (from the model card).
    probabilities : np.ndarray or None, float16, shape (C, z, y, x)
        Per-class probabilities summing to 1, when requested.
    device_used, precision_used : str
    notes : list of str
        Fallbacks taken (e.g. out of GPU memory) and other remarks for the user.
    timings_s : dict
        Seconds per stage: ``prepare``, ``predict``, ``restore``, ``total``.
    """

    labels: Volume
    table: LabelTable
    probabilities: np.ndarray | None = None
    device_used: str = "cpu"
    precision_used: str = "float32"
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no voxels): voxel counts and volumes per class, timings."""
        voxel_mm3 = float(np.prod(self.labels.spacing_mm))
        counts = np.bincount(self.labels.array.reshape(-1), minlength=len(self.table.ids))
        return {
            "coordinate_system": "LPS",
            "classes": {name: {"voxels": int(counts[i]), "volume_ml": float(counts[i] * voxel_mm3 / 1000)}
                        for i, name in self.table.names.items()},
            "device": self.device_used,
            "precision": self.precision_used,
            "notes": list(self.notes),
            "timings_s": dict(self.timings_s),
        }


class Segmenter:
    """A loaded network plus its model card: loads once, segments many CTs.

    Parameters
    ----------
    loaded : spinect_core.model.LoadedModel
        Network (eval mode) and its model card.
    options : SegmentOptions, optional
    """

    def __init__(self, loaded: Any, *, options: SegmentOptions | None = None) -> None:
        from spinect_core.inference import Predictor, PredictorOptions
        from spinect_core.preprocess import CTNormalisation

        self.loaded = loaded
        self.card = loaded.card
        self.options = options or SegmentOptions()
        patch = tuple(int(p) for p in self.card.patch_size_zyx)
        stride = self.options.stride_zyx or tuple(max(1, round(p * 5 / 8)) for p in patch)
        if any(s > p for s, p in zip(stride, patch)):
            raise InputError(f"stride {tuple(stride)} is larger than the patch {patch}: "
                             "voxels between windows would never be seen")
        self.normalisation = CTNormalisation.from_dict(self.card.normalisation)
        self.predictor = Predictor(
            loaded.model,
            options=PredictorOptions(patch_size=patch, stride=tuple(stride),
                                     blend=self.options.blend, batch_size=self.options.batch_size,
                                     device=self.options.device, precision=self.options.precision,
                                     keep_probabilities=True),
            num_classes=self.card.labels.num_classes,
        )

    @classmethod
    def from_weights(cls, path: str | Path | None, *, options: SegmentOptions | None = None
                     ) -> "Segmenter":
        """Load weights (``None``: the bundled default, or a clear error when none is installed)."""
        from spinect_core.model import load_default_weights, load_weights

        loaded = load_default_weights() if path is None else load_weights(path)
        return cls(loaded, options=options)

    @property
    def table(self) -> LabelTable:
        return self.card.labels

    def segment(self, ct: Volume, *, progress: ProgressCallback | None = None) -> Segmentation:
        """Segment a CT and return labels (and optionally probabilities) on its own grid.

        Parameters
        ----------
        ct : Volume
            HU values, array (z, y, x), any spacing and orientation.
        progress : callable, optional
            ``progress(fraction, message)``; returning ``False`` raises :class:`Cancelled`.
        """
        from spinect_core.preprocess import prepare_for_model

        t0 = time.perf_counter()
        report(progress, 0.0, "preparing the CT")
        prepared = prepare_for_model(ct, spacing_mm=self.card.spacing_mm,
                                     normalisation=self.normalisation,
                                     crop=self.options.crop_to_body,
                                     progress=sub_progress(progress, 0.0, 0.08, "preparing: "))
        t1 = time.perf_counter()
        prediction = self.predictor.predict(
            prepared.image, progress=sub_progress(progress, 0.08, 0.9, "segmenting: "))
        t2 = time.perf_counter()
        report(progress, 0.9, "mapping the result onto the CT grid")
        labels, probabilities = self._restore(prediction.probabilities, prepared, ct,
                                              progress=sub_progress(progress, 0.9, 1.0))
        t3 = time.perf_counter()
        report(progress, 1.0, "segmentation done")
        return Segmentation(
            labels=dataclasses.replace(ct.with_array(labels), warnings=[]),
            table=self.table,
            probabilities=probabilities,
            device_used=prediction.device_used,
            precision_used=prediction.precision_used,
            notes=list(prediction.notes),
            timings_s={"prepare": t1 - t0, "predict": t2 - t1, "restore": t3 - t2,
                       "total": t3 - t0},
        )

    def _restore(self, model_probs: np.ndarray, prepared: Any, ct: Volume, *,
                 progress: ProgressCallback | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (and probabilities) on the input grid from model-grid probabilities.

        Each class is resampled linearly on its own and the argmax is kept running, so the peak
        memory is two input-size float32 maps rather than C of them; renormalising the resampled
        probabilities would not change the argmax, so it is skipped for the labels.
        """
        from spinect_core.preprocess import restore_to_input

        num_classes = model_probs.shape[0]
        keep = self.options.keep_probabilities
        out = np.empty((num_classes, *ct.array.shape), np.float16) if keep else None
        best = np.full(ct.array.shape, -1.0, np.float32)
        labels = np.zeros(ct.array.shape, np.uint8)
        factors = self.card.decision_weights
        for c in range(num_classes):
            p = model_probs[c].astype(np.float32)
            if c == 0:
                # Outside the body crop everything is certain background: restore 1 - p so the
                # zero fill of the uncropped region means probability 1 for background.
                q = 1.0 - restore_to_input(1.0 - p, prepared, ct, interpolation="linear")
            else:
                q = restore_to_input(p, prepared, ct, interpolation="linear")
            if out is not None:
                out[c] = q
            # The card's calibrated decision weights scale the probabilities for the argmax only.
            factor = float(factors.get(self.table.name_of(c), 1.0))
            score = q if factor == 1.0 else q * np.float32(factor)
            better = score > best
            labels[better] = c
            np.maximum(best, score, out=best)
            report(progress, (c + 1) / num_classes, f"class {self.table.name_of(c)}")
        if out is not None:
            total = out.astype(np.float32).sum(axis=0, keepdims=True)
            out = (out / np.maximum(total, 1e-6)).astype(np.float16)
        return labels, out


def segment_ct(ct: Volume, *, weights: str | Path | None = None,
               options: SegmentOptions | None = None,
               progress: ProgressCallback | None = None) -> Segmentation:
    """One-shot convenience: load ``weights`` (default: bundled) and segment ``ct``."""
    return Segmenter.from_weights(weights, options=options).segment(ct, progress=progress)
