"""Segment a CT with a SPINECT network: preprocess, sliding window, map back onto the input grid.

This is the one function the CLI (``spinect segment``), the demo and the desktop app call. A
:class:`Segmenter` loads the weights once and segments many volumes::

    segmenter = Segmenter.from_weights(None)        # None: the bundled default weights
    result = segmenter.segment(ct, progress=cb)     # cb(fraction, message) -> False cancels
    result.labels                                   # Volume of uint8 class ids on ct's grid

The bone class is the network's, the CT bone model's or both fused (:attr:`SegmentOptions.bone`,
``spinect segment/plan --bone``; see :mod:`spinect_core.bone`). Unless it is ``"network"``, the
model-free CT bone model runs on the same CT after the network and :func:`combine_bone` takes
the bone from it; the result keeps the CT bone model's mask (``ct_bone``) and the network's own
bone (``network_bone``) so the agreement check (:mod:`spinect_core.bone.agreement`) needs no
second run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from spinect_core.preprocess.orientation import Reoriented

__all__ = ["DEFAULT_BONE_MODE", "NetworkSegmentation", "SegmentOptions", "Segmentation",
           "Segmenter", "segment_ct"]

#: Where the bone class comes from by default (``--bone``): ``"network"`` (the network's bone),
#: ``"ct"`` (the CT bone model's) or ``"fused"`` (the CT's plus the network's within 3 mm of it).
#: Set from the real-CT measurements (issue 11); ``"fused"`` until they are in.
DEFAULT_BONE_MODE = "fused"


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
    batch_size : int or "auto"
        Windows per forward pass; ``"auto"``: 4 on the CPU, what free memory holds on a GPU
        (:class:`~spinect_core.inference.PredictorOptions`).
    precision : {"auto", "float32", "bfloat16", "float16"}
        ``"auto"`` on a CUDA GPU keeps whichever of float32 and half precision it measures faster.
    keep_probabilities : bool
        Also return per-class probabilities on the input grid (C x input size x 2 bytes).
    crop_to_body : bool
        Run the network only inside the body's bounding box (same result, less time).
    bone : {"network", "ct", "fused"}
        Source of the bone class (:data:`DEFAULT_BONE_MODE`; see
        :func:`spinect_core.bone.combine_bone`). ``"ct"`` and ``"fused"`` run the CT bone model
        (a few seconds) after the network; voxels that lose the bone class get the network's
        next most likely class (with the card's decision weights), as the network would have
        labelled them.
    ct_bone : spinect_core.bone.CTBoneOptions, optional
        Options of the CT bone model (default: its defaults).
    """

    device: str = "auto"
    blend: Literal["sum", "gaussian"] = "sum"
    stride_zyx: tuple[int, int, int] | None = None
    batch_size: int | Literal["auto"] = "auto"
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    keep_probabilities: bool = False
    crop_to_body: bool = True
    bone: Literal["network", "ct", "fused"] = DEFAULT_BONE_MODE
    ct_bone: Any = None

    def __post_init__(self) -> None:
        from spinect_core.bone import BONE_MODES

        if self.bone not in BONE_MODES:
            raise InputError(f"bone must be one of {', '.join(BONE_MODES)}, got {self.bone!r}")


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
        Seconds per stage: ``prepare``, ``predict``, ``restore``, ``ct_bone`` (when run),
        ``total``.
    bone_source : {"network", "ct", "fused"}
        Where the bone class of :attr:`labels` comes from.
    ct_bone : spinect_core.bone.CTBone or None
        The CT bone model's result on the input grid (mask, thresholds), when it was run (bone
        source ``ct`` or ``fused``, or later by the agreement check).
    network_bone : np.ndarray or None, bool, shape (z, y, x)
        The network's own bone before the CT's replaced or joined it, when given as a map
        (:meth:`network_bone_mask` gives it whatever the storage).
    network_bone_bits : np.ndarray or None, uint8
        The same, as :func:`numpy.packbits` of the flattened map (an eighth of the memory),
        which :class:`Segmenter` keeps. Both ``None`` when :attr:`bone_source` is
        ``"network"``: then it is ``labels == bone``.
    bone_check : spinect_core.bone.agreement.BoneAgreement or None
        The agreement of the network's bone with the CT bone model at L4-S1, once
        :func:`spinect_core.bone.agreement.check_segmentation` computed it.
    """

    labels: Volume
    table: LabelTable
    probabilities: np.ndarray | None = None
    device_used: str = "cpu"
    precision_used: str = "float32"
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    bone_source: str = "network"
    ct_bone: Any = None
    network_bone: np.ndarray | None = None
    network_bone_bits: np.ndarray | None = None
    bone_check: Any = None

    def network_bone_mask(self) -> np.ndarray:
        """The network's own bone, bool (z, y, x), before any CT bone replaced or joined it."""
        if self.network_bone is not None:
            return self.network_bone
        shape = self.labels.array.shape
        if self.network_bone_bits is not None:
            bits = np.unpackbits(self.network_bone_bits, count=int(np.prod(shape)))
            return bits.view(bool).reshape(shape)
        return np.asarray(self.labels.array) == self.table.id_of("bone")

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no voxels): voxel counts and volumes per class, timings, the
        bone source and the CT bone model's thresholds (and the agreement check when done)."""
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
            "bone_source": self.bone_source,
            "ct_bone": None if self.ct_bone is None else self.ct_bone.summary(),
            **({} if self.bone_check is None
               else {"segmentation_check": self.bone_check.to_dict()}),
        }


#: The share of :meth:`Segmenter.segment`'s progress the network takes when the CT bone model
#: runs after it (a tenth goes to the CT bone model).
_NETWORK_SHARE_WITH_CT = 0.88


@dataclass(kw_only=True)
class NetworkSegmentation:
    """The network's segmentation before the CT bone model (:meth:`Segmenter.segment_network`).

    Attributes
    ----------
    segmentation : Segmentation
        Its labels hold the network's own bone.
    next_best : np.ndarray or None, uint8
        Per voxel of the network's bone (C order), the class it takes when it loses the bone
        class (see :func:`~spinect_core.bone.combine_bone`); None without a bone class.
    """

    segmentation: Segmentation
    next_best: np.ndarray | None


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

        The network runs first; then, unless :attr:`SegmentOptions.bone` is ``"network"``, the
        CT bone model on the same CT (its own progress sub-step) and
        :func:`~spinect_core.bone.combine_bone` takes the bone class from it.

        Parameters
        ----------
        ct : Volume
            HU values, array (z, y, x), any spacing and orientation.
        progress : callable, optional
            ``progress(fraction, message)``; returning ``False`` raises :class:`Cancelled`.
        """
        mode = self.options.bone
        if mode != "network" and not self.table.has("bone"):
            raise InputError(f"the weights {self.card.name} have no bone class: use bone "
                             "source 'network'")
        with_ct = mode != "network"
        t0 = time.perf_counter()
        network = self._network(ct, with_ct=with_ct, progress=progress)
        result = network.segmentation
        if with_ct:
            # The network's label map is ours: combined in place, no copy.
            self._apply_ct_bone(result, ct, network.next_best,
                                ct_bone_options=self.options.ct_bone,
                                progress=sub_progress(progress, _NETWORK_SHARE_WITH_CT, 0.99,
                                                      "CT bone model: "))
        result.timings_s["total"] = time.perf_counter() - t0
        report(progress, 1.0, "segmentation done")
        return result

    def segment_network(self, ct: Volume, *, progress: ProgressCallback | None = None
                        ) -> "NetworkSegmentation":
        """The network's segmentation alone, with what :meth:`combine` needs to take the bone
        class from the CT bone model afterwards: run the network once, combine it with as many
        CT bone models (options) as wanted (the benchmarks re-measure a change of the CT bone
        model in seconds a case, not minutes).

        Parameters
        ----------
        ct : Volume
            HU values, array (z, y, x), any spacing and orientation.
        progress : callable, optional
        """
        t0 = time.perf_counter()
        network = self._network(ct, with_ct=self.table.has("bone"), progress=progress,
                                last=1.0)
        network.segmentation.timings_s["total"] = time.perf_counter() - t0
        report(progress, 1.0, "segmentation done")
        return network

    def combine(self, network: "NetworkSegmentation", ct: Volume, *,
                mode: Literal["ct", "fused"] = "fused", ct_bone: Any = None,
                progress: ProgressCallback | None = None) -> Segmentation:
        """:meth:`segment`'s result from :meth:`segment_network`'s, its bone class taken from
        the CT bone model by ``mode`` (``"ct"`` or ``"fused"``), with ``ct_bone``
        (:class:`~spinect_core.bone.CTBoneOptions`; default the segmenter's). ``network`` is
        not changed.
        """
        if mode == "network":
            raise InputError("combine takes the bone class from the CT bone model: mode 'ct' or "
                             "'fused'")
        if not self.table.has("bone"):
            raise InputError(f"the weights {self.card.name} have no bone class")
        t0 = time.perf_counter()
        seg = network.segmentation
        result = dataclasses.replace(seg, labels=seg.labels.with_array(seg.labels.array.copy()),
                                     notes=list(seg.notes), timings_s=dict(seg.timings_s),
                                     bone_source=mode)
        self._apply_ct_bone(result, ct, network.next_best,
                            ct_bone_options=self.options.ct_bone if ct_bone is None else ct_bone,
                            progress=sub_progress(progress, 0.0, 0.99, "CT bone model: "))
        result.timings_s["total"] = seg.timings_s.get("total", 0.0) + time.perf_counter() - t0
        report(progress, 1.0, "segmentation done")
        return result

    def _network(self, ct: Volume, *, with_ct: bool, progress: ProgressCallback | None,
                 last: float | None = None) -> "NetworkSegmentation":
        """Preprocess, predict and restore onto ``ct``'s grid, reporting up to ``last`` of the
        whole run (default: the network's share of :meth:`segment`); ``with_ct`` keeps the
        classes that voxels losing the bone class take."""
        from spinect_core.preprocess import prepare_for_model
        from spinect_core.preprocess.orientation import to_model_axes

        f_rest = last if last is not None else (_NETWORK_SHARE_WITH_CT if with_ct else 1.0)
        f_prep, f_pred = 0.08 * f_rest, 0.9 * f_rest
        t0 = time.perf_counter()
        report(progress, 0.0, "preparing the CT")
        # The network sees the CT on the patient's axes, as it was trained, whatever order the
        # file stores it in; the CT bone model and the anatomy work in LPS and need not.
        reoriented = to_model_axes(ct)
        view = reoriented.volume
        prepared = prepare_for_model(view, spacing_mm=self.card.spacing_mm,
                                     normalisation=self.normalisation,
                                     crop=self.options.crop_to_body,
                                     progress=sub_progress(progress, 0.0, f_prep, "preparing: "))
        t1 = time.perf_counter()
        prediction = self.predictor.predict(
            prepared.image, body_mask=prepared.body_mask,
            progress=sub_progress(progress, f_prep, f_pred, "segmenting: "))
        t2 = time.perf_counter()
        report(progress, f_pred, "mapping the result onto the CT grid")
        labels, probabilities, next_best = self._restore(
            prediction.probabilities, prepared, view, next_best=with_ct,
            progress=sub_progress(progress, f_pred, f_rest))
        if not reoriented.unchanged:
            labels, probabilities, next_best = self._in_stored_order(
                reoriented, labels, probabilities, next_best)
        t3 = time.perf_counter()
        timings = {"prepare": t1 - t0, "predict": t2 - t1, "restore": t3 - t2}
        result = Segmentation(
            labels=dataclasses.replace(ct.with_array(labels), warnings=[]),
            table=self.table, probabilities=probabilities,
            device_used=prediction.device_used, precision_used=prediction.precision_used,
            notes=list(prediction.notes), timings_s=timings, bone_source=self.options.bone)
        # The model-grid probabilities are C x the model grid in float32: freed (by the caller
        # dropping its reference) before the CT bone model allocates its own maps.
        del prediction, prepared
        return NetworkSegmentation(segmentation=result, next_best=next_best)

    def _in_stored_order(self, reoriented: Reoriented, labels: np.ndarray,
                         probabilities: np.ndarray | None, next_best: np.ndarray | None
                         ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """:meth:`_restore`'s results on the reoriented CT
        (:class:`~spinect_core.preprocess.orientation.Reoriented`) in the CT's own array order;
        ``next_best`` (one value per bone voxel, in C order) follows its voxels."""
        stored = np.ascontiguousarray(reoriented.back(labels))
        if probabilities is not None:
            probabilities = np.ascontiguousarray(reoriented.back(probabilities))
        if next_best is not None:
            bone_id = self.table.id_of("bone")
            runner_up = np.zeros(labels.shape, np.uint8)
            runner_up[labels == bone_id] = next_best
            next_best = reoriented.back(runner_up)[stored == bone_id]
        return stored, probabilities, next_best

    def _apply_ct_bone(self, result: Segmentation, ct: Volume, next_best: np.ndarray | None, *,
                       ct_bone_options: Any, progress: ProgressCallback | None) -> None:
        """Run the CT bone model and take the bone class from it (``ct`` / ``fused``), in place.

        Voxels the network called bone that lose the class get ``next_best`` (the network's most
        likely other class, decision weights applied), not background: the network's disc,
        dura and nerve survive where the CT's bone does not reach.
        """
        from spinect_core.bone import combine_bone, segment_bone_from_ct

        t0 = time.perf_counter()
        ct_bone = segment_bone_from_ct(ct, options=ct_bone_options,
                                       progress=sub_progress(progress, 0.0, 0.9))
        report(progress, 0.9, f"combining the bone ({result.bone_source})")
        bone_id = self.table.id_of("bone")
        # The network's own bone, kept for the agreement check as packed bits (an eighth of a
        # boolean map: a thin-slice CT's map alone is hundreds of MB).
        result.network_bone_bits = np.packbits(np.asarray(result.labels.array) == bone_id)
        # The label map is ours (made by _restore): combined in place, no copy.
        combine_bone(result.labels, self.table, ct_bone.mask.array,
                     mode=result.bone_source, next_best=next_best,  # type: ignore[arg-type]
                     in_place=True, ct_hu=np.asarray(ct.array),
                     ct_not_bone=None if ct_bone.discs is None else ct_bone.discs.array,
                     ct_cavities=None if ct_bone.cavities is None else ct_bone.cavities.array)
        result.ct_bone = ct_bone
        result.notes += list(ct_bone.notes)
        result.timings_s["ct_bone"] = time.perf_counter() - t0
        report(progress, 1.0, "bone combined")

    def _restore(self, model_probs: np.ndarray, prepared: Any, ct: Volume, *,
                 next_best: bool = False, progress: ProgressCallback | None
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Labels (and probabilities) on the input grid from model-grid probabilities.

        The probabilities are resampled linearly onto the input grid a slab at a time
        (:func:`~spinect_core.preprocess.restore_probabilities_in_slabs`), so no input-size
        float map is ever held: on a 900 x 512 x 512 thin-slice CT each would be 0.9 GB.
        Renormalising the resampled probabilities would not change the argmax, so it is done only
        for the kept probabilities. With ``next_best`` a second argmax over the classes other
        than bone gives the class a voxel takes when it loses the bone class to the CT bone model.

        Returns
        -------
        labels : np.ndarray, uint8 (z, y, x)
        probabilities : np.ndarray (C, z, y, x) float16, or None
        next_best : np.ndarray, uint8, or None
            The runner-up class of each voxel labelled bone, in C order (one value per voxel of
            ``labels == bone``: only those can lose the class).
        """
        from spinect_core.preprocess import restore_probabilities_in_slabs

        num_classes = model_probs.shape[0]
        shape = ct.array.shape
        out = (np.empty((num_classes, *shape), np.float16) if self.options.keep_probabilities
               else None)
        labels = np.empty(shape, np.uint8)
        bone_id = self.table.id_of("bone") if next_best and self.table.has("bone") else None
        alt_parts: list[np.ndarray] = []
        # The card's calibrated decision weights scale the probabilities for the argmax only.
        factors = np.array([float(self.card.decision_weights.get(self.table.name_of(c), 1.0))
                            for c in range(num_classes)], np.float32)[:, None, None, None]
        for z, q in restore_probabilities_in_slabs(model_probs, prepared, ct):
            # (C, slab, y, x) float32: a few tens of MB whatever the CT's size
            if out is not None:
                total = q.sum(axis=0, keepdims=True)
                out[:, z] = q / np.maximum(total, 1e-6)
            score = q * factors
            labels[z] = np.argmax(score, axis=0)
            if bone_id is not None:
                # Only the network's bone voxels can lose the class: their runner-up alone.
                score[bone_id] = -1.0
                alt_parts.append(np.argmax(score, axis=0).astype(np.uint8)[labels[z] == bone_id])
            report(progress, z.stop / shape[0], f"{z.stop}/{shape[0]} slices")
        alt = None if bone_id is None else (np.concatenate(alt_parts) if alt_parts
                                            else np.zeros(0, np.uint8))
        return labels, out, alt


def segment_ct(ct: Volume, *, weights: str | Path | None = None,
               options: SegmentOptions | None = None,
               progress: ProgressCallback | None = None) -> Segmentation:
    """One-shot convenience: load ``weights`` (default: bundled) and segment ``ct``."""
    return Segmenter.from_weights(weights, options=options).segment(ct, progress=progress)
