"""Resumable training checkpoints without pickle: safetensors + JSON.

A checkpoint at iteration N is two files in the checkpoint folder, plus a pointer::

    ckpt-00000100.safetensors   model tensors ("model.<name>", BatchNorm statistics included),
                                optimizer tensors ("optim.<param index>.<key>", e.g. Adam's
                                exp_avg), the torch RNG states ("rng.torch_cpu", "rng.cuda.<i>")
    ckpt-00000100.json          iteration, optimizer param groups and non-tensor state, and the
                                caller's JSON state (options, sampler RNG states, log, best model),
                                plus the sha256 of the tensors file
    latest.json                 {"checkpoint": "ckpt-00000100.json", "iteration": 100}

Every file is written atomically (temporary file + rename, :mod:`spinect_core.io.atomic`), and
``latest.json`` is replaced only after both files of the new checkpoint are complete, so a crash at
any moment leaves the previous checkpoint usable. Older checkpoints beyond ``keep`` are removed
afterwards. Nothing is ever unpickled: ``torch.load`` is not used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spinect_core.errors import SpinectError
from spinect_core.io.atomic import write_bytes_atomic, write_text_atomic

__all__ = ["Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
           "restore_model_and_optimizer", "save_tensors", "load_tensors", "LATEST_NAME"]

FORMAT = "spinect-train-checkpoint"
FORMAT_VERSION = 1
LATEST_NAME = "latest.json"


class CheckpointError(SpinectError):
    """A checkpoint is missing, corrupt or does not fit the model / options."""


@dataclass(kw_only=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    iteration : int
        Completed training iterations.
    tensors : dict of str to torch.Tensor
        On the CPU.
    meta : dict
        The JSON part (``"state"`` holds the caller's state).
    path : Path
        The checkpoint's JSON file.
    """

    iteration: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    path: Path

    @property
    def state(self) -> dict[str, Any]:
        return self.meta["state"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    # clone: safetensors refuses shared storage; contiguous: channels-last parameters
    return t.detach().to("cpu").contiguous(memory_format=torch.contiguous_format).clone()


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], *,
                 metadata: dict[str, str] | None = None, overwrite: bool = True) -> Path:
    """Write tensors as a safetensors file atomically (CPU, contiguous copies)."""
    from safetensors.torch import save as st_save

    blob = st_save({k: _cpu_copy(v) for k, v in tensors.items()}, metadata=metadata)
    return write_bytes_atomic(path, blob, overwrite=overwrite)


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle) onto the CPU."""
    from safetensors.torch import load as st_load

    try:
        return st_load(Path(path).read_bytes())
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read tensors {Path(path).name}: {exc}") from None
    except Exception as exc:  # SafetensorError is not a subclass of the above
        raise CheckpointError(f"cannot read tensors {Path(path).name}: {exc}") from None


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = json.loads(json.dumps(sd["param_groups"]))  # tuples (Adam's betas) -> lists
    return tensors, {"param_groups": groups, "scalars": scalars}


def save_checkpoint(directory: str | os.PathLike, *, iteration: int, model: nn.Module,
                    optimizer: torch.optim.Optimizer, state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write a checkpoint (see the module docstring) and prune older ones.

    Parameters
    ----------
    directory : path-like
        Checkpoint folder (created).
    iteration : int
        Completed iterations.
    model : nn.Module
        The bare model (not the DDP wrapper).
    optimizer : torch.optim.Optimizer
    state : dict
        JSON-serialisable caller state (must not contain NaN or infinity).
    keep : int
        Checkpoints to keep (>= 1), newest first.

    Returns
    -------
    Path
        The checkpoint's JSON file.
    """
    from safetensors.torch import save as st_save

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"ckpt-{int(iteration):08d}"
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = _optimizer_parts(optimizer)
    tensors.update(opt_tensors)
    tensors["rng.torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    blob = st_save({k: _cpu_copy(v) for k, v in tensors.items()},
                   metadata={"format": FORMAT, "iteration": str(int(iteration))})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "iteration": int(iteration),
            "tensors_file": stem + ".safetensors", "tensors_sha256": _sha256(blob),
            "optimizer": opt_meta, "state": state}
    try:
        text = json.dumps(meta, allow_nan=False)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint state is not strict JSON: {exc}") from None
    write_bytes_atomic(folder / (stem + ".safetensors"), blob, overwrite=True)
    json_path = write_text_atomic(folder / (stem + ".json"), text, overwrite=True)
    write_text_atomic(folder / LATEST_NAME,
                      json.dumps({"checkpoint": json_path.name, "iteration": int(iteration)}),
                      overwrite=True)
    _prune(folder, keep=max(1, int(keep)), current=stem)
    return json_path


def _prune(folder: Path, *, keep: int, current: str) -> None:
    stems = sorted({p.name.split(".")[0] for p in folder.glob("ckpt-*.json")})
    for stem in stems[:-keep]:
        if stem == current:
            continue
        for suffix in (".json", ".safetensors"):
            try:
                (folder / (stem + suffix)).unlink()
            except FileNotFoundError:
                pass


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The JSON file of the newest complete checkpoint, or ``None`` when there is none."""
    folder = Path(directory)
    pointer = folder / LATEST_NAME
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{pointer} is corrupt: {exc}") from None
    path = folder / Path(name).name
    if not path.is_file():
        raise CheckpointError(f"{pointer.name} names {name}, which does not exist")
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint's JSON and tensors, checking the tensors' sha256."""
    p = Path(path)
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {p.name}: {exc}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p.name} is not a SPINECT training checkpoint (version "
                              f"{FORMAT_VERSION})")
    tensor_path = p.with_name(meta["tensors_file"])
    try:
        blob = tensor_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {tensor_path.name}: {exc.strerror or exc}") from None
    if _sha256(blob) != meta.get("tensors_sha256"):
        raise CheckpointError(f"{tensor_path.name} does not match its checkpoint's sha256: corrupt")
    from safetensors.torch import load as st_load

    return Checkpoint(iteration=int(meta["iteration"]), tensors=st_load(blob), meta=meta, path=p)


def restore_model_and_optimizer(ckpt: Checkpoint, model: nn.Module,
                                optimizer: torch.optim.Optimizer, *,
                                restore_rng: bool = True) -> None:
    """Load model, optimizer (and torch RNG) state from ``ckpt`` in place.

    Raises
    ------
    CheckpointError
        When tensor names or shapes do not fit ``model`` / ``optimizer``.
    """
    model_state = {k[len("model."):]: v for k, v in ckpt.tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit the model: {exc}") from None
    opt_meta = ckpt.meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, value in ckpt.tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, entries in opt_meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint does not fit the optimizer: {exc}") from None
    if restore_rng:
        if "rng.torch_cpu" in ckpt.tensors:
            torch.set_rng_state(ckpt.tensors["rng.torch_cpu"])
        keys = sorted((k for k in ckpt.tensors if k.startswith("rng.cuda.")),
                      key=lambda k: int(k.rsplit(".", 1)[1]))
        cuda = [ckpt.tensors[k] for k in keys]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
