"""Weights on disk: safetensors tensors plus a JSON model card; never a pickle.

A set of weights is two files side by side::

    spinect_default.safetensors   tensors (state_dict names) + header metadata
    spinect_default.json          the model card, human-readable, with the file's sha256

The safetensors header's ``__metadata__`` holds ``{"format": "spinect-unet3d",
"format_version": "1", "card": <card JSON>, "tensors_data_sha256": <hex>}``, so the
``.safetensors`` file alone is enough to load (the embedded card cannot contain the hash of the
file it is part of, so its ``tensors_sha256`` is ``""``; ``tensors_data_sha256`` covers the tensor
bytes instead). Loading checks, in this order: the file exists and is not larger than
:data:`MAX_WEIGHTS_BYTES` (1 GiB; nothing is read then), is not a pickle, the header
parses and the sizes add up (truncation), the format tag, the sha256 of the tensor bytes and of the
whole file (against the sidecar card), that sidecar and embedded cards agree, that tensor names,
shapes and dtypes are exactly those of the card's architecture, and that the values are finite.
``torch.load`` is never called: unpickling a file a user gives us can run arbitrary code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spinect_core.errors import NoWeightsInstalledError, WeightsError, WeightsTooLargeError
from spinect_core.model.card import TENSOR_DTYPES, ModelCard
from spinect_core.model.unet import UNet3D
from spinect_core.resources import asset_path

WEIGHTS_FORMAT = "spinect-unet3d"
WEIGHTS_FORMAT_VERSION = "1"
DEFAULT_WEIGHTS_NAME = "spinect_default.safetensors"

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: safetensors header dtype codes of the storage dtypes we write.
_ST_CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
#: BatchNorm's ``num_batches_tracked`` is the only non-floating tensor a U-Net state dict has.
_INT_CODE = "I64"
_FLOAT16_MAX = 65504.0
#: Largest weights file read, bytes: a SPINECT U-Net is tens of MB; a bigger file is not one of
#: ours and is refused before it is read into memory.
MAX_WEIGHTS_BYTES = 1024 ** 3
#: Largest model card read, bytes.
MAX_CARD_BYTES = 16 * 1024 ** 2
#: File endings of PyTorch pickle checkpoints, to explain a refusal even for a damaged file.
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar"}


@dataclass
class LoadedModel:
    """Weights loaded and checked.

    Attributes
    ----------
    model : UNet3D
        In eval mode, float32 parameters, on the requested device.
    card : ModelCard
        The sidecar card when present (it carries ``tensors_sha256``), else the embedded one.
    path : Path
        The ``.safetensors`` file.
    card_path : Path or None
        The sidecar card read, or ``None`` when only the embedded card was available.
    """

    model: UNet3D
    card: ModelCard
    path: Path
    card_path: Path | None = None


def card_path_for(weights_path: str | os.PathLike) -> Path:
    """The sidecar card of a weights file: ``a/b.safetensors`` -> ``a/b.json``."""
    return Path(weights_path).with_suffix(".json")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- saving -------------------------------------------------------------------------------------
def save_weights(model: UNet3D, card: ModelCard, path: str | os.PathLike, *,
                 dtype: str = "float32", overwrite: bool = False) -> Path:
    """Write ``model``'s tensors and ``card`` as ``path`` (.safetensors) and ``<stem>.json``.

    Parameters
    ----------
    model : UNet3D
        Its ``config`` must equal ``card.architecture``. All parameters and buffers (BatchNorm
        running statistics included) are written; channels-last tensors are stored contiguous.
    card : ModelCard
        Written with ``tensors_dtype = dtype`` and ``tensors_sha256`` filled in (sidecar only).
    path : path-like
        Target ending in ``.safetensors``.
    dtype : {"float32", "float16", "bfloat16"}
        Storage dtype of floating tensors (halves the file for 16-bit; loading gives float32).
    overwrite : bool
        Replace existing files; otherwise an existing weights file or card is refused before
        anything is written.

    Returns
    -------
    Path
        ``path``. Both files are written atomically (temporary file + rename).

    Raises
    ------
    ValueError
        Wrong suffix, unknown dtype, architecture mismatch, non-finite weights, or weights too
        large for float16.
    FileExistsRefusedError
        A target exists and ``overwrite`` is False.
    """
    from safetensors.torch import save as st_save

    from spinect_core.io.atomic import check_writable, write_bytes_atomic, write_text_atomic

    target = Path(path)
    if target.suffix.lower() != ".safetensors":
        raise ValueError(f"weights are written as .safetensors; got {target.name}")
    if dtype not in TENSOR_DTYPES:
        raise ValueError(f"dtype must be one of {list(TENSOR_DTYPES)}, got {dtype!r}")
    if not isinstance(model, UNet3D):
        raise TypeError(f"expected a UNet3D, got {type(model).__name__}")
    if model.config != card.architecture:
        raise ValueError(f"model config {model.config} differs from the card's architecture "
                         f"{card.architecture}")
    sidecar = card_path_for(target)
    # Refuse both before writing either, so we never leave a half-replaced pair.
    check_writable(target, overwrite=overwrite)
    check_writable(sidecar, overwrite=overwrite)

    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            t = t.float()
            if not torch.isfinite(t).all():
                raise ValueError(f"tensor {name} contains NaN or infinity; refusing to save it")
            if dtype == "float16" and t.abs().max() > _FLOAT16_MAX:
                raise ValueError(f"tensor {name} exceeds the float16 range; save as bfloat16 or float32")
            t = t.to(_TORCH_DTYPES[dtype])
        # clone: safetensors refuses tensors sharing storage; contiguous: channels_last_3d.
        tensors[name] = t.contiguous(memory_format=torch.contiguous_format).clone()

    embedded = dataclasses.replace(card, tensors_dtype=dtype, tensors_sha256="")
    metadata = {"format": WEIGHTS_FORMAT, "format_version": WEIGHTS_FORMAT_VERSION,
                "card": embedded.dumps(indent=None)}
    # The tensor data section does not depend on the metadata, so hash it first, then write the
    # hash into the header (the whole-file hash can only live outside the file, in the sidecar).
    data_sha = sha256_hex(_data_section(st_save(tensors, metadata=metadata)))
    blob = st_save(tensors, metadata={**metadata, "tensors_data_sha256": data_sha})
    if sha256_hex(_data_section(blob)) != data_sha:  # would mean safetensors reorders data
        raise RuntimeError("safetensors data section changed with the metadata; cannot hash it")

    final = dataclasses.replace(embedded, tensors_sha256=sha256_hex(blob))
    write_bytes_atomic(target, blob, overwrite=overwrite)
    write_text_atomic(sidecar, final.dumps(indent=2) + "\n", overwrite=overwrite)
    return target


def _data_section(blob: bytes) -> bytes:
    n = int.from_bytes(blob[:8], "little")
    return blob[8 + n:]


# --- loading ------------------------------------------------------------------------------------
def load_weights(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load and verify a weights file (or its card ``.json``) into an eval-mode :class:`UNet3D`.

    Parameters
    ----------
    path : path-like
        The ``.safetensors`` file, or its sidecar model card ``<stem>.json``.
    device : str or torch.device
        Where the model's (float32) parameters go.

    Returns
    -------
    LoadedModel

    Raises
    ------
    WeightsError
        Missing file; a pickle / ``.pt`` checkpoint (only safetensors are accepted); a truncated
        or corrupt file; a sha256 mismatch; an invalid card or cards that disagree; tensors whose
        names, shapes or dtypes differ from the card's architecture; non-finite values.
    """
    weights_path, card_path = _resolve(Path(path))
    raw = _read_bytes(weights_path)
    header = _parse_header(raw, weights_path)
    metadata = _check_metadata(header, raw, weights_path)

    embedded = None
    if "card" in metadata:
        embedded = _card_or_error(metadata["card"], f"the card embedded in {weights_path.name}")
    sidecar = None
    if card_path is not None:
        sidecar = _card_or_error(_read_bytes(card_path), card_path.name)
        file_sha = sha256_hex(raw)
        if sidecar.tensors_sha256 != file_sha:
            raise WeightsError(
                f"sha256 of {weights_path.name} ({file_sha[:12]}...) does not match its model card "
                f"{card_path.name} ({sidecar.tensors_sha256[:12] or 'none recorded'}...): the file is "
                "corrupt or was replaced; copy both files again"
            )
    if sidecar is not None and embedded is not None and card_path is not None:
        differ = sidecar.differing_fields(embedded)
        if differ:
            raise WeightsError(f"model card {card_path.name} disagrees with the card embedded in "
                               f"{weights_path.name} in {differ}; restore the original card")
    card = sidecar if sidecar is not None else embedded
    if card is None:
        raise WeightsError(f"{weights_path.name} has no model card (no {card_path_for(weights_path).name} "
                           "beside it and none embedded); cannot tell its architecture and labels")

    model = UNet3D(card.architecture)
    _check_tensor_table(header, model, card, weights_path)
    tensors = _deserialise(raw, weights_path)
    state: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if t.is_floating_point():
            t = t.float()
            if not torch.isfinite(t).all():
                raise WeightsError(f"tensor {name} in {weights_path.name} contains NaN or infinity")
        state[name] = t
    model.load_state_dict(state, strict=True)  # names and shapes were checked above
    model.to(device)
    model.eval()
    return LoadedModel(model=model, card=card, path=weights_path, card_path=card_path)


def read_model_card(path: str | os.PathLike) -> ModelCard:
    """The model card of a weights file (sidecar, else embedded) without loading the tensors.

    For listing / ``spinect weights info``; nothing is verified beyond the card itself.
    """
    weights_path, card_path = _resolve(Path(path))
    if card_path is not None:
        return _card_or_error(_read_bytes(card_path), card_path.name)
    raw = _read_bytes(weights_path)
    metadata = _check_metadata(_parse_header(raw, weights_path), raw, weights_path)
    if "card" not in metadata:
        raise WeightsError(f"{weights_path.name} has no model card")
    return _card_or_error(metadata["card"], f"the card embedded in {weights_path.name}")


def default_weights_path() -> Path:
    """``assets/weights/spinect_default.safetensors`` of this installation (may not exist)."""
    return asset_path("weights", DEFAULT_WEIGHTS_NAME)


def load_default_weights(*, device: str | torch.device = "cpu") -> LoadedModel:
    """Load the bundled default weights.

    Raises
    ------
    NoWeightsInstalledError
        When this installation ships no default weights.
    """
    path = default_weights_path()
    if not path.is_file():
        raise NoWeightsInstalledError(
            "no default weights are installed; train them with `spinect train` or pass --weights FILE"
        )
    return load_weights(path, device=device)


# --- helpers ------------------------------------------------------------------------------------
def _resolve(path: Path) -> tuple[Path, Path | None]:
    """``(weights file, sidecar card or None)`` for a path to either of them."""
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise WeightsError(f"model card {path} does not exist")
        weights = path.with_suffix(".safetensors")
        if not weights.is_file():
            raise WeightsError(f"weights file {weights.name} named by model card {path.name} "
                               f"does not exist beside it")
        return weights, path
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist")
    if not path.is_file():
        raise WeightsError(f"{path} is not a file; pass a .safetensors weights file")
    sidecar = card_path_for(path)
    return path, (sidecar if sidecar.is_file() else None)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, refused before reading when larger than the cap of its kind
    (:data:`MAX_CARD_BYTES` for a ``.json`` card, :data:`MAX_WEIGHTS_BYTES` otherwise)."""
    limit = MAX_CARD_BYTES if path.suffix.lower() == ".json" else MAX_WEIGHTS_BYTES
    try:
        size = path.stat().st_size
        if size > limit:
            what = "model card" if limit == MAX_CARD_BYTES else "weights file"
            raise WeightsTooLargeError(
                f"{path.name} is {size / 1e6:.0f} MB, larger than any SPINECT {what} "
                f"({limit / 1e6:.0f} MB at most); it was not read - choose the .safetensors file "
                "written by spinect train")
        return path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def _looks_like_pickle(raw: bytes, path: Path) -> bool:
    # torch.save writes a zip archive (since 1.6) or a bare pickle (protocol 2+ starts 0x80 n).
    return (raw[:4] == b"PK\x03\x04" or (len(raw) > 1 and raw[0] == 0x80 and 2 <= raw[1] <= 5)
            or path.suffix.lower() in _PICKLE_SUFFIXES)


def _parse_header(raw: bytes, path: Path) -> dict[str, Any]:
    """Parse and sanity-check the safetensors header (8-byte length + JSON) without the data."""

    def bad(detail: str) -> WeightsError:
        if _looks_like_pickle(raw, path):
            return WeightsError(f"{path.name} looks like a PyTorch pickle checkpoint; only .safetensors "
                                "weights are accepted (pickles can run code when loaded)")
        return WeightsError(f"{path.name} is truncated or not a safetensors file ({detail}); "
                            "copy or save it again")

    if len(raw) < 8:
        raise bad(f"{len(raw)} bytes")
    n = int.from_bytes(raw[:8], "little")
    if n < 2 or 8 + n > len(raw):
        raise bad("header length exceeds the file")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = (int(v) for v in info["data_offsets"])
            str(info["dtype"])
            if not all(isinstance(s, int) and s >= 0 for s in info["shape"]) or stop < start:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise bad(f"malformed entry for tensor {name!r}") from None
        end = max(end, stop)
    data_len = len(raw) - 8 - n
    if end != data_len:
        raise bad(f"header describes {end} data bytes, file holds {data_len}")
    return header


def _check_metadata(header: dict[str, Any], raw: bytes, path: Path) -> dict[str, str]:
    metadata = header.get("__metadata__") or {}
    fmt = metadata.get("format")
    if fmt != WEIGHTS_FORMAT:
        raise WeightsError(f"{path.name} is a safetensors file but not SPINECT U-Net weights "
                           f"(format {fmt!r}, expected {WEIGHTS_FORMAT!r})")
    if metadata.get("format_version") != WEIGHTS_FORMAT_VERSION:
        raise WeightsError(f"{path.name} has weights format version {metadata.get('format_version')!r}; "
                           f"this version of SPINECT reads {WEIGHTS_FORMAT_VERSION!r} (update SPINECT)")
    expected = metadata.get("tensors_data_sha256")
    if expected is not None and sha256_hex(_data_section(raw)) != expected:
        raise WeightsError(f"sha256 of the tensor data in {path.name} does not match its header: "
                           "the file is corrupt; copy it again")
    return metadata


def _card_or_error(text: str | bytes, where: str) -> ModelCard:
    try:
        return ModelCard.from_json(text)
    except WeightsError as exc:
        raise WeightsError(f"{where}: {exc}") from None


def _brief(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _check_tensor_table(header: dict[str, Any], model: UNet3D, card: ModelCard, path: Path) -> None:
    """Names, shapes and dtypes in the header must be exactly the architecture's state dict."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(int(s) for s in v["shape"]) for k, v in header.items() if k != "__metadata__"}
    head = found.get("head.weight")
    if head and head[0] != card.num_classes:
        raise WeightsError(
            f"{path.name} has {head[0]} output classes but its model card declares "
            f"{card.num_classes} ({list(card.labels.names.values())})"
        )
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [f"{k} {found[k]} != {expected[k]}" for k in sorted(set(expected) & set(found))
                  if found[k] != expected[k]]
    if missing:
        problems.append(f"{len(missing)} missing ({_brief(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_brief(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} with other shapes ({_brief(mismatched)})")
    if problems:
        raise WeightsError(f"tensors in {path.name} do not match the card's architecture "
                           f"{card.architecture.to_dict()}: " + "; ".join(problems))
    want = _ST_CODES[card.tensors_dtype]
    wrong = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        code = info["dtype"]
        ok = code == _INT_CODE if name.endswith("num_batches_tracked") else code == want
        if not ok:
            wrong.append(f"{name}: {code}")
    if wrong:
        raise WeightsError(f"tensors in {path.name} are not stored as the card's {card.tensors_dtype} "
                           f"({want}): {_brief(wrong)}")


def _deserialise(raw: bytes, path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        return st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path.name} is truncated or not a safetensors file ({exc})") from None
