"""The model card: everything needed to use a set of weights correctly, as JSON.

A card travels with every weights file (embedded in the safetensors header and as a readable
sidecar ``<stem>.json``). It records the architecture (so the tensors can be checked), the label
table (so code reads class names, not numbers), the patch size and voxel spacing the network was
trained at, the intensity normalisation (its statistics travel with the weights), what it was
trained on, how well it did, and what it may be used for.

JSON layout (``format_version`` 1)::

    {"format_version": 1, "name": "...", "version": "...", "description": "...",
     "architecture": {"in_channels": 1, "num_classes": 3, "base_channels": 32, "depth": 5,
                      "norm": "batch"},
     "labels": [{"id": 0, "name": "background"}, ...],
     "patch_size_zyx": [32, 64, 64], "spacing_mm": [1.0, 1.0, 1.0],
     "normalisation": {"scheme": "ct_percentile_zscore", "clip_hu": [lo, hi],
                       "mean_hu": m, "std_hu": s},
     "training": {...}, "metrics": {...}, "intended_use": "...",
     "tensors_dtype": "float32", "tensors_sha256": "<64 hex>", "created": "2025-01-31"}

Cards are strict JSON (no NaN/Infinity: write ``null`` for an undefined metric).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from spinect_core.errors import WeightsError
from spinect_core.labels import STUDY_LABELS, LabelTable
from spinect_core.model.unet import UNetConfig

CARD_FORMAT_VERSION = 1

#: Storage dtypes a weights file may use; tensors are always float32 once loaded.
TENSOR_DTYPES = ("float32", "float16", "bfloat16")

#: Keys each known normalisation scheme must provide. Schemes not listed are stored as given
#: (the preprocessing code that applies them is the one that can refuse an unknown scheme).
NORMALISATION_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    # Clip HU to the training set's [lo, hi] percentiles, then (hu - mean_hu) / std_hu.
    "ct_percentile_zscore": ("clip_hu", "mean_hu", "std_hu"),
    # Per-volume z-score (statistics of the CT itself): nothing to store.
    "zscore": (),
}

DEFAULT_INTENDED_USE = (
    "Research and procedure-planning support only: segmentation of bone and lumbosacral nerves "
    "on CT to help plan L5/S1 transforaminal injections. Not a certified medical device; every "
    "result must be reviewed by a qualified clinician before it informs patient care."
)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _json_roundtrip(value: Any, what: str) -> Any:
    """Return ``value`` as JSON would read it back (tuples -> lists, keys -> str), strict JSON.

    Normalising at construction makes a card equal to itself after ``to_json``/``from_json``.
    """
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable without NaN/Infinity: {exc}") from None


def _today() -> str:
    return _dt.date.today().isoformat()


@dataclass(kw_only=True)
class ModelCard:
    """Description of one set of weights (see the module docstring for the JSON form).

    Parameters
    ----------
    name : str
        Short identifier, e.g. ``"spinect-default"``.
    version : str
        Version of these weights, e.g. ``"1.0.0"``.
    normalisation : dict
        Intensity normalisation applied before the network; ``"scheme"`` (str) names it and a
        known scheme's keys (:data:`NORMALISATION_REQUIRED_KEYS`) must be present. Stored as given.
    description : str
        Free text.
    architecture : UNetConfig
        Network hyper-parameters; ``architecture.num_classes`` must equal ``labels``' size.
    labels : LabelTable
        Class ids and names of the output channels (ids must be ``0 .. num_classes-1``).
    patch_size_zyx : tuple of 3 int
        Training / sliding-window patch in voxels, (z, y, x) order; each a multiple of
        ``2**(depth-1)``.
    spacing_mm : tuple of 3 float
        Voxel size the network expects, millimetres, (x, y, z) order (ITK order, like
        ``Volume.spacing_mm``).
    training : dict
        Data summary (cases, split, source) and recipe (optimiser, lr, batch, iterations, loss).
    metrics : dict
        Evaluation results, e.g. ``{"test": {"bone": {"dice": 0.945, "iou": 0.897}, ...}}``.
    intended_use : str
        What the weights may be used for.
    decision_weights : dict of str to float
        Per-class factors (by class name; absent classes: 1) the probabilities are multiplied by
        before the argmax, calibrated on validation data (a network trained with class-weighted
        losses over-predicts rare classes). Empty: the plain argmax.
    tensors_dtype : {"float32", "float16", "bfloat16"}
        Storage dtype of the floating tensors in the file.
    tensors_sha256 : str
        SHA-256 (lower-case hex) of the ``.safetensors`` file's bytes; ``""`` until saved (and
        always ``""`` in the copy embedded in the file itself, which cannot hash itself).
    created : str
        ISO 8601 date (``YYYY-MM-DD``) or date-time.
    format_version : int
        Card format version (1).

    Raises
    ------
    ValueError
        On any invalid field at construction (``from_json`` turns it into ``WeightsError``).
    """

    name: str
    version: str
    normalisation: dict[str, Any]
    description: str = ""
    architecture: UNetConfig = field(default_factory=UNetConfig.study)
    labels: LabelTable = STUDY_LABELS
    patch_size_zyx: tuple[int, int, int] = (32, 64, 64)
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    intended_use: str = DEFAULT_INTENDED_USE
    decision_weights: dict[str, float] = field(default_factory=dict)
    tensors_dtype: str = "float32"
    tensors_sha256: str = ""
    created: str = field(default_factory=_today)
    format_version: int = CARD_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format_version != CARD_FORMAT_VERSION:
            raise ValueError(f"model card format_version {self.format_version!r} is not supported "
                             f"(this version reads {CARD_FORMAT_VERSION})")
        for name in ("name", "version", "description", "intended_use", "created"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"model card field {name!r} must be a string, "
                                 f"got {type(getattr(self, name)).__name__}")
        if not self.name.strip() or not self.version.strip():
            raise ValueError("model card needs a non-empty name and version")
        if not isinstance(self.architecture, UNetConfig):
            raise ValueError("model card architecture must be a UNetConfig")
        if not isinstance(self.labels, LabelTable):
            raise ValueError("model card labels must be a LabelTable")
        n_labels = self.labels.num_classes  # also checks ids are contiguous 0..N-1
        if n_labels != self.architecture.num_classes:
            raise ValueError(
                f"label table has {n_labels} classes {list(self.labels.names.values())} but the "
                f"architecture outputs {self.architecture.num_classes}"
            )
        self.patch_size_zyx = self._triple(self.patch_size_zyx, "patch_size_zyx", int)
        m = self.architecture.size_multiple
        if any(p < 1 or p % m for p in self.patch_size_zyx):
            raise ValueError(f"patch_size_zyx {self.patch_size_zyx} must be positive multiples of "
                             f"{m} for a depth-{self.architecture.depth} U-Net")
        self.spacing_mm = self._triple(self.spacing_mm, "spacing_mm", float)
        if any(not math.isfinite(s) or s <= 0 for s in self.spacing_mm):
            raise ValueError(f"spacing_mm {self.spacing_mm} must be positive millimetres")
        self.normalisation = self._check_normalisation(self.normalisation)
        for name in ("training", "metrics"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(f"model card field {name!r} must be a JSON object")
            setattr(self, name, _json_roundtrip(dict(value), name))
        if not isinstance(self.decision_weights, Mapping):
            raise ValueError("decision_weights must be a JSON object of class name -> factor")
        weights = {str(k): float(v) for k, v in self.decision_weights.items()}
        unknown = sorted(set(weights) - set(self.labels.names.values()))
        if unknown:
            raise ValueError(f"decision_weights name classes {unknown} that are not in the labels")
        if any(not math.isfinite(v) or v <= 0 for v in weights.values()):
            raise ValueError(f"decision_weights must be positive and finite, got {weights}")
        self.decision_weights = weights
        if self.tensors_dtype not in TENSOR_DTYPES:
            raise ValueError(f"tensors_dtype must be one of {list(TENSOR_DTYPES)}, "
                             f"got {self.tensors_dtype!r}")
        if not isinstance(self.tensors_sha256, str) or (
                self.tensors_sha256 and not _SHA256_RE.match(self.tensors_sha256)):
            raise ValueError("tensors_sha256 must be 64 lower-case hex digits (or empty before saving)")
        try:
            # fromisoformat accepts a plain date as well as a date-time.
            _dt.datetime.fromisoformat(self.created)
        except ValueError:
            raise ValueError(f"created {self.created!r} is not an ISO 8601 date") from None

    @staticmethod
    def _triple(value: Any, name: str, kind: type) -> tuple:
        try:
            items = list(value)
        except TypeError:
            raise ValueError(f"{name} must be 3 numbers, got {value!r}") from None
        if len(items) != 3 or any(isinstance(v, (bool, str)) for v in items):
            raise ValueError(f"{name} must be 3 numbers, got {value!r}")
        if kind is int and any(float(v) != int(v) for v in items):
            raise ValueError(f"{name} must be 3 integers, got {value!r}")
        return tuple(kind(v) for v in items)

    @staticmethod
    def _check_normalisation(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValueError("normalisation must be a JSON object with a 'scheme'")
        scheme = value.get("scheme")
        if not isinstance(scheme, str) or not scheme:
            raise ValueError(f"normalisation needs a 'scheme' string, got {scheme!r}")
        missing = [k for k in NORMALISATION_REQUIRED_KEYS.get(scheme, ()) if k not in value]
        if missing:
            raise ValueError(f"normalisation scheme {scheme!r} needs keys {missing}")
        return _json_roundtrip(dict(value), "normalisation")

    # --- properties ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.architecture.num_classes

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict in the documented layout (``json.dumps`` it, or use :meth:`dumps`)."""
        return {
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "architecture": self.architecture.to_dict(),
            "labels": self.labels.to_json()["labels"],
            "patch_size_zyx": list(self.patch_size_zyx),
            "spacing_mm": list(self.spacing_mm),
            "normalisation": self.normalisation,
            "training": self.training,
            "metrics": self.metrics,
            "intended_use": self.intended_use,
            "decision_weights": self.decision_weights,
            "tensors_dtype": self.tensors_dtype,
            "tensors_sha256": self.tensors_sha256,
            "created": self.created,
        }

    def dumps(self, *, indent: int | None = 2) -> str:
        """The card as a JSON string (human-readable with ``indent=2``; compact with ``None``)."""
        return json.dumps(self.to_json(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> "ModelCard":
        """Parse a card from a dict or JSON text.

        Raises
        ------
        WeightsError
            Not JSON, missing or unknown fields, or an invalid value; the message names the field.
        """
        if isinstance(data, (str, bytes, bytearray)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise WeightsError(f"model card is not valid JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise WeightsError("model card must be a JSON object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise WeightsError(f"model card has unknown fields {unknown}")
        required = [n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        # A written card always has these; requiring them catches hand-edited or foreign files.
        required += ["format_version", "architecture", "labels", "tensors_dtype"]
        missing = [n for n in required if n not in data]
        if missing:
            raise WeightsError(f"model card is missing fields {missing}")
        kwargs = dict(data)
        try:
            kwargs["architecture"] = UNetConfig.from_dict(data["architecture"])
        except (ValueError, TypeError) as exc:
            raise WeightsError(f"model card architecture is invalid: {exc}") from None
        try:
            kwargs["labels"] = LabelTable.from_json(data["labels"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"model card labels are invalid: {exc}") from None
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise WeightsError(f"model card is invalid: {exc}") from None

    def same_except_sha(self, other: "ModelCard") -> bool:
        """True when the cards agree in every field but ``tensors_sha256``."""
        return dataclasses.replace(self, tensors_sha256="") == dataclasses.replace(other, tensors_sha256="")

    def differing_fields(self, other: "ModelCard") -> list[str]:
        """Names of the fields (other than ``tensors_sha256``) in which the cards differ."""
        a, b = self.to_json(), other.to_json()
        return [k for k in a if k != "tensors_sha256" and a[k] != b.get(k)]
