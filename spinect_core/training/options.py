"""Training options: the SPINECT study's recipe by default, and the better recipe as presets.

:class:`TrainOptions` is a keyword-only, immutable dataclass that round-trips through JSON
(:meth:`TrainOptions.to_dict` / :meth:`TrainOptions.from_dict`); checkpoints and model cards store
that JSON, and ``spinect train --options FILE.json`` reads fields from it. Fields added later
(e.g. ``lr_schedule``) take their defaults when an older JSON lacks them, so older checkpoints
still resume.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from spinect_core.model import UNetConfig
from spinect_core.training.augment import AugmentOptions

__all__ = ["TrainOptions", "RESUMABLE_CHANGES", "LR_SCHEDULES", "POLY_EXPONENT"]

#: Options that may differ between a run and its resumption (they do not change the iterations
#: already done, or only what is written). The learning rate and its schedule change only the
#: iterations still to come: on resumption the optimizer takes them from the new options.
RESUMABLE_CHANGES = frozenset({"iterations", "device", "val_every", "checkpoint_every",
                               "keep_checkpoints", "log_every", "val_batch_size", "name",
                               "version", "description", "learning_rate", "lr_schedule"})

#: Learning-rate schedules of :attr:`TrainOptions.lr_schedule`.
LR_SCHEDULES = ("constant", "poly")
#: Exponent of the "poly" schedule (nnU-Net's).
POLY_EXPONENT = 0.9


def _triple(value: Sequence[Any], kind: type, name: str) -> tuple:
    items = tuple(kind(v) for v in value)
    if len(items) != 3:
        raise ValueError(f"{name} must have 3 values, got {value!r}")
    return items


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """How to train (defaults: the SPINECT study's recipe).

    Attributes
    ----------
    architecture : UNetConfig
        Network; ``num_classes`` is replaced by the label table's size. Default: the study's
        22.6 M-parameter U-Net.
    patch_size : (int, int, int)
        Training patch (z, y, x) voxels; multiples of ``2**(depth-1)``. Study: 32 x 64 x 64.
    batch_size : int
        Patches per iteration and process. Study: 4.
    iterations : int
        Total training iterations (a resumed run continues up to this number).
    learning_rate : float
        Adam's (initial) learning rate. Study: 5e-4.
    lr_schedule : {"constant", "poly"}
        ``"constant"`` (the study): ``learning_rate`` throughout. ``"poly"`` (nnU-Net): iteration
        ``i`` (0-based) uses ``learning_rate * (1 - i / iterations) ** 0.9``, falling to about 0 at
        the last iteration. See :meth:`learning_rate_at`. Both ``learning_rate`` and the schedule
        may change when resuming; a changed ``iterations`` stretches the poly curve of the
        remaining iterations.
    grad_clip_norm : float or None
        Clip the gradient norm to this value before each step (nnU-Net: 12); None: no clipping.
    weight_decay : float
        Adam L2 weight decay.
    loss : {"ce", "dice_ce"}
        Study: weighted softmax cross-entropy (``"ce"``); better: Dice + CE.
    class_weights : {"median_frequency", "inverse", "inverse_sqrt", "none"}
        Cross-entropy class weights from the training voxel frequencies (:mod:`.loss`).
    augment : AugmentOptions
        Study: Gaussian noise and left/right flips.
    foreground_fraction : float
        Fraction of patches centred on a voxel of ``oversample_classes`` (0 in the study; 1/3 in
        the better recipe).
    oversample_classes : tuple of str
        Rare class names for foreground oversampling (those absent from the table are ignored).
    spacing_mm : (float, float, float)
        Model voxel size (x, y, z), millimetres. Study: 1 mm isotropic.
    crop : bool
        Body crop before training and inference.
    normalisation : {"ct_percentile_zscore", "zscore"}
        Intensity scheme; the percentile statistics are fitted on the training cases.
    val_every : int
        Validate (and checkpoint, by default) every this many iterations. Study: 100.
    val_stride : (int, int, int) or None
        Sliding-window stride (z, y, x); ``None``: 5/8 of the patch (the study's 20 x 40 x 40).
    val_blend : {"sum", "gaussian"}
        Study: summed probabilities.
    val_batch_size : int
        Windows per forward pass in validation.
    checkpoint_every : int or None
        ``None``: same as ``val_every``.
    keep_checkpoints : int
        Newest checkpoints kept on disk.
    log_every : int
        Iterations per "train" row of the log (mean loss of those iterations).
    seed : int
        Seeds the initial weights, patch sampling and augmentation.
    device : str
        ``"auto"`` (CUDA, MPS, CPU) or a torch device name.
    precision : {"float32", "bfloat16"}
        Autocast precision of the forward pass in training (losses are float32).
    name, version, description : str
        Written into the model card.
    """

    architecture: UNetConfig = field(default_factory=UNetConfig.study)
    patch_size: tuple[int, int, int] = (32, 64, 64)
    batch_size: int = 4
    iterations: int = 20000
    learning_rate: float = 5e-4
    lr_schedule: Literal["constant", "poly"] = "constant"
    weight_decay: float = 0.0
    grad_clip_norm: float | None = 12.0
    loss: Literal["ce", "dice_ce"] = "ce"
    class_weights: Literal["median_frequency", "inverse", "inverse_sqrt", "none"] = \
        "median_frequency"
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    foreground_fraction: float = 0.0
    oversample_classes: tuple[str, ...] = ("nerve",)
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop: bool = True
    normalisation: Literal["ct_percentile_zscore", "zscore"] = "ct_percentile_zscore"
    val_every: int = 100
    val_stride: tuple[int, int, int] | None = None
    val_blend: Literal["sum", "gaussian"] = "sum"
    val_batch_size: int = 4
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    precision: Literal["float32", "bfloat16"] = "float32"
    name: str = "spinect-trained"
    version: str = "0.1.0"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.architecture, UNetConfig):
            raise ValueError("architecture must be a UNetConfig")
        if not isinstance(self.augment, AugmentOptions):
            raise ValueError("augment must be an AugmentOptions")
        patch = _triple(self.patch_size, int, "patch_size")
        m = self.architecture.size_multiple
        if any(p < 1 or p % m for p in patch):
            raise ValueError(f"patch_size {patch} must be positive multiples of {m} for a "
                             f"depth-{self.architecture.depth} U-Net")
        object.__setattr__(self, "patch_size", patch)
        object.__setattr__(self, "spacing_mm", _triple(self.spacing_mm, float, "spacing_mm"))
        if self.val_stride is not None:
            stride = _triple(self.val_stride, int, "val_stride")
            if any(s < 1 or s > p for s, p in zip(stride, patch)):
                raise ValueError(f"val_stride {stride} must be between 1 and the patch {patch}")
            object.__setattr__(self, "val_stride", stride)
        object.__setattr__(self, "oversample_classes", tuple(str(c) for c in self.oversample_classes))
        for name in ("batch_size", "iterations", "val_every", "val_batch_size", "keep_checkpoints",
                     "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every is not None and int(self.checkpoint_every) < 1:
            raise ValueError("checkpoint_every must be >= 1 or None")
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.foreground_fraction <= 1.0:
            raise ValueError("foreground_fraction must be in [0, 1]")
        if self.loss not in ("ce", "dice_ce"):
            raise ValueError(f"loss must be 'ce' or 'dice_ce', got {self.loss!r}")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be float32 or bfloat16, got {self.precision!r}")
        if self.val_blend not in ("sum", "gaussian"):
            raise ValueError(f"val_blend must be sum or gaussian, got {self.val_blend!r}")

    # --- presets ----------------------------------------------------------------------------
    @classmethod
    def study(cls, **overrides: Any) -> "TrainOptions":
        """The AJNR 2019 recipe (the defaults), with ``overrides``."""
        return cls(**overrides)

    @classmethod
    def improved(cls, **overrides: Any) -> "TrainOptions":
        """The better recipe: 1/3 foreground oversampling, Dice + CE, intensity and zoom
        augmentation; same network as the study."""
        base = dict(loss="dice_ce", foreground_fraction=1.0 / 3.0, augment=AugmentOptions.strong())
        return cls(**{**base, **overrides})

    @classmethod
    def fast(cls, **overrides: Any) -> "TrainOptions":
        """The better recipe on the half-width U-Net (``UNetConfig.fast()``, ~4x cheaper)."""
        return cls.improved(**{"architecture": UNetConfig.fast(), **overrides})

    # --- derived ----------------------------------------------------------------------------
    @property
    def stride(self) -> tuple[int, int, int]:
        """Validation stride: ``val_stride`` or 5/8 of the patch."""
        if self.val_stride is not None:
            return self.val_stride
        return tuple(max(1, int(round(p * 5 / 8))) for p in self.patch_size)  # type: ignore[return-value]

    @property
    def checkpoint_interval(self) -> int:
        return int(self.checkpoint_every or self.val_every)

    def learning_rate_at(self, iteration: int) -> float:
        """Learning rate of the step of 0-based ``iteration`` under :attr:`lr_schedule`.

        Parameters
        ----------
        iteration : int
            Iterations completed before this step (0 .. ``iterations - 1``).

        Returns
        -------
        float
            ``learning_rate`` (constant) or ``learning_rate * (1 - iteration / iterations) ** 0.9``
            (poly; 0 from ``iterations`` on).
        """
        if self.lr_schedule == "constant":
            return float(self.learning_rate)
        remaining = max(0.0, 1.0 - float(iteration) / float(self.iterations))
        return float(self.learning_rate) * remaining ** POLY_EXPONENT

    # --- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested ``architecture`` and ``augment``)."""
        d = dataclasses.asdict(self)
        d["architecture"] = self.architecture.to_dict()
        d["augment"] = dataclasses.asdict(self.augment)
        for k, v in list(d.items()):
            if isinstance(v, tuple):
                d[k] = list(v)
        d["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["augment"].items()}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainOptions":
        d = dict(data)
        if "architecture" in d:
            d["architecture"] = UNetConfig.from_dict(d["architecture"])
        if "augment" in d:
            d["augment"] = AugmentOptions(**{k: tuple(v) if isinstance(v, list) else v
                                             for k, v in d["augment"].items()})
        for k in ("patch_size", "spacing_mm", "val_stride", "oversample_classes"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)
