"""Cases prepared for training (cached in memory) and the random patch sampler.

Each case is brought onto the model grid exactly as inference will see it (on the patient's
axes, :func:`spinect_core.preprocess.orientation.to_model_axes`, then
:func:`spinect_core.preprocess.prepare_for_model`: resample to the model spacing, body crop,
normalise with the statistics fitted on the training cases), its labels with
:func:`~spinect_core.preprocess.prepare_labels` (nearest neighbour, so :data:`~.loss.UNLABELLED`
voxels stay 255). Cases smaller than a patch are padded with air.

Padding (here, and where a patch leaves the case in :func:`~.augment.extract_patch`) is labelled
**background (0)**, not unlabelled: it is air outside the scan, which is background by
definition, and the network must learn that nothing lies there.

:class:`PatchSampler` draws batches of patches. A patch is centred on a uniformly random position
(clamped so it lies inside the case), or, with probability ``foreground_fraction``, on a random
voxel of one of the rare ``oversample_ids`` classes present in the case (nnU-Net's foreground
oversampling, which nnU-Net sets to 1/3). Without it a 2 mm-thick nerve root is in only a few
percent of 32 x 64 x 64 patches and the network learns it slowly. Unlabelled voxels are never a
foreground-sampling target (there is nothing to learn at them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spinect_core.labels import LabelTable
from spinect_core.preprocess import CTNormalisation, prepare_for_model, prepare_labels
from spinect_core.preprocess.orientation import to_model_axes
from spinect_core.progress import ProgressCallback, report
from spinect_core.training.augment import (
    AugmentOptions, augment_patch, extract_patch, lr_axis_of, side_swap_lookup,
)
from spinect_core.training.cases import Case
from spinect_core.training.loss import UNLABELLED

__all__ = ["PreparedCase", "prepare_case", "prepare_cases", "class_voxel_counts", "PatchSampler"]

#: Voxel positions kept per class and case for foreground sampling (memory bound; a random
#: subset is as good as all of them for picking patch centres).
_MAX_CLASS_LOCATIONS = 100_000


@dataclass(kw_only=True)
class PreparedCase:
    """A case on the model grid, ready for sampling and validation.

    Attributes
    ----------
    case_id : str
    image : np.ndarray, float32, shape (z, y, x)
        Normalised intensities.
    labels : np.ndarray, uint8, shape (z, y, x)
        Class ids; :data:`~.loss.UNLABELLED` (255) where there is no reference label.
    lr_axis : int
        Array axis of the patient's left/right direction (0 = z, 1 = y, 2 = x).
    pad_value : float
        Normalised value of air, used to pad patches that leave the case.
    class_locations : dict of int to np.ndarray (n, 3) int32
        (z, y, x) indices of (up to 100,000 randomly chosen) voxels of each class present.
    """

    case_id: str
    image: np.ndarray
    labels: np.ndarray
    lr_axis: int = 2
    pad_value: float = 0.0
    class_locations: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.image.shape)  # type: ignore[return-value]

    def index_locations(self, class_ids: Sequence[int], *, seed: int = 0) -> None:
        """Fill :attr:`class_locations` for ``class_ids`` (deterministic subsample).

        :data:`~.loss.UNLABELLED` is skipped: it is not a class to centre patches on.
        """
        rng = np.random.default_rng(seed)
        for cid in class_ids:
            if int(cid) == UNLABELLED:
                continue
            idx = np.argwhere(self.labels == cid).astype(np.int32)
            if len(idx) > _MAX_CLASS_LOCATIONS:
                idx = idx[np.sort(rng.choice(len(idx), _MAX_CLASS_LOCATIONS, replace=False))]
            if len(idx):
                self.class_locations[int(cid)] = idx


def prepare_case(case: Case, *, spacing_mm: Sequence[float], normalisation: CTNormalisation,
                 patch_size: Sequence[int], crop: bool = True,
                 oversample_ids: Sequence[int] = ()) -> PreparedCase:
    """Bring one case onto the model grid (see the module docstring).

    Parameters
    ----------
    case : Case
    spacing_mm : 3 floats
        Model spacing, (x, y, z) order, millimetres.
    normalisation : CTNormalisation
    patch_size : 3 int
        (z, y, x); smaller cases are padded up to it (air / background 0, see the module
        docstring), centred.
    crop : bool
        Body crop as in inference.
    oversample_ids : sequence of int
        Classes whose voxel positions are indexed for foreground oversampling.
    """
    # On the patient's axes, as the segmenter shows the network every CT (a file stored feet
    # first or as sagittal slices is the same patient).
    ct, case_labels = (to_model_axes(v).volume for v in (case.ct, case.labels))
    prepared = prepare_for_model(ct, spacing_mm=spacing_mm, normalisation=normalisation,
                                 crop=crop)
    labels = prepare_labels(case_labels, prepared).astype(np.uint8)
    image = prepared.image
    air = float(normalisation.apply(np.array([-1024.0], dtype=np.float32))[0])
    pads = [(max(p - n, 0) // 2, max(p - n, 0) - max(p - n, 0) // 2)
            for n, p in zip(image.shape, patch_size)]
    if any(a or b for a, b in pads):
        image = np.pad(image, pads, constant_values=air)
        labels = np.pad(labels, pads, constant_values=0)
    out = PreparedCase(case_id=case.case_id, image=np.ascontiguousarray(image, dtype=np.float32),
                       labels=np.ascontiguousarray(labels),
                       lr_axis=lr_axis_of(prepared.model_grid.direction), pad_value=air)
    out.index_locations(oversample_ids)
    return out


def prepare_cases(cases: Sequence[Case], *, spacing_mm: Sequence[float],
                  normalisation: CTNormalisation, patch_size: Sequence[int], crop: bool = True,
                  oversample_ids: Sequence[int] = (),
                  progress: ProgressCallback | None = None) -> list[PreparedCase]:
    """:func:`prepare_case` for every case, reporting progress (cancellable)."""
    out = []
    for i, case in enumerate(cases):
        report(progress, i / max(len(cases), 1), f"preparing {case.case_id}")
        out.append(prepare_case(case, spacing_mm=spacing_mm, normalisation=normalisation,
                                patch_size=patch_size, crop=crop, oversample_ids=oversample_ids))
    report(progress, 1.0, f"prepared {len(out)} cases")
    return out


def class_voxel_counts(cases: Sequence[PreparedCase], num_classes: int) -> np.ndarray:
    """Voxels per class over all cases, shape (C,), int64 (for class weights).

    Only ids ``0 .. C-1`` are counted: :data:`~.loss.UNLABELLED` voxels are not a class and do
    not enter the class frequencies (they would otherwise shrink every class's frequency alike
    and skew median-frequency weights of cases that hold many of them).
    """
    total = np.zeros(num_classes, dtype=np.int64)
    for c in cases:
        counts = np.bincount(c.labels.ravel(), minlength=num_classes)
        total += counts[:num_classes]  # drops UNLABELLED (255 >= num_classes)
    return total


class PatchSampler:
    """Random training batches from prepared cases.

    Parameters
    ----------
    cases : sequence of PreparedCase
        Each at least one patch large (:func:`prepare_case` pads).
    patch_size : 3 int
        (pz, py, px) voxels.
    batch_size : int
    table : LabelTable
        For the left/right swap of side-specific classes on mirroring.
    augment : AugmentOptions, optional
        Default: none.
    foreground_fraction : float
        Probability that a patch is centred on a voxel of an ``oversample_ids`` class.
    oversample_ids : sequence of int
        Rare classes (e.g. the nerve's id); their locations must have been indexed.
    rng : numpy.random.Generator
        All randomness comes from it (cases, positions, augmentation); its state is what a
        checkpoint stores.

    Notes
    -----
    Sampling runs in the calling process: cutting a 32 x 64 x 64 patch is microseconds and the
    network step dominates, so no worker processes are needed (and nothing has to be pickled
    under the ``spawn`` start method).
    """

    def __init__(self, cases: Sequence[PreparedCase], *, patch_size: Sequence[int],
                 batch_size: int, table: LabelTable, augment: AugmentOptions | None = None,
                 foreground_fraction: float = 0.0, oversample_ids: Sequence[int] = (),
                 rng: np.random.Generator) -> None:
        if not cases:
            raise ValueError("no training cases to sample from")
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
        self.cases = list(cases)
        self.patch_size = tuple(int(p) for p in patch_size)
        for c in self.cases:
            if any(n < p for n, p in zip(c.shape, self.patch_size)):
                raise ValueError(f"case {c.case_id} {c.shape} is smaller than the patch "
                                 f"{self.patch_size}; prepare it with prepare_case")
        self.batch_size = int(batch_size)
        self.augment = augment or AugmentOptions.none()
        self.foreground_fraction = float(foreground_fraction)
        self.oversample_ids = tuple(int(i) for i in oversample_ids if int(i) != UNLABELLED)
        lut = side_swap_lookup(table)
        self.swap_lookup = None if np.array_equal(lut, np.arange(lut.size)) else lut
        self.rng = rng

    # --- state for checkpoints ------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """JSON-ready state of the random generator."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    # --- sampling -------------------------------------------------------------------------------
    def _centre(self, case: PreparedCase) -> tuple[np.ndarray, bool]:
        """A patch centre (z, y, x) and whether it was a foreground pick."""
        p = np.asarray(self.patch_size)
        shape = np.asarray(case.shape)
        rng = self.rng
        if self.foreground_fraction > 0 and rng.random() < self.foreground_fraction:
            present = [i for i in self.oversample_ids if i in case.class_locations]
            if present:
                locs = case.class_locations[present[int(rng.integers(len(present)))]]
                voxel = locs[int(rng.integers(len(locs)))].astype(np.float64)
                # Clamp so the patch stays inside the case: the voxel is still in the patch.
                lo = (p - 1) / 2.0
                hi = shape - 1 - (p - 1) / 2.0
                return np.clip(voxel, lo, hi), True
        start = np.array([rng.integers(0, n - q + 1) for n, q in zip(shape, p)], dtype=np.float64)
        return start + (p - 1) / 2.0, False

    def sample_patch(self, case_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One augmented patch: image float32 (pz, py, px) and labels uint8 (pz, py, px)."""
        idx = int(self.rng.integers(len(self.cases))) if case_index is None else int(case_index)
        case = self.cases[idx]
        centre, _ = self._centre(case)
        image, labels = extract_patch(case.image, case.labels, centre, self.patch_size,
                                      options=self.augment, rng=self.rng, pad_value=case.pad_value)
        return augment_patch(image, labels, options=self.augment, rng=self.rng,
                             lr_axis=case.lr_axis, swap_lookup=self.swap_lookup)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch.

        Returns
        -------
        images : np.ndarray, float32, shape (B, 1, pz, py, px)
        labels : np.ndarray, int64, shape (B, pz, py, px)
        """
        images = np.empty((self.batch_size, 1, *self.patch_size), dtype=np.float32)
        labels = np.empty((self.batch_size, *self.patch_size), dtype=np.int64)
        for b in range(self.batch_size):
            images[b, 0], labels[b] = self.sample_patch()
        return images, labels
