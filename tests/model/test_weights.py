"""Weights files: safetensors + sidecar card; round trips and every refusal."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import spinect_core.model.weights as weights_mod
from spinect_core.errors import NoWeightsInstalledError, WeightsError
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.model import (ModelCard, UNet3D, UNetConfig, card_path_for, default_weights_path,
                                load_default_weights, load_weights, read_model_card, save_weights)
from spinect_core.resources import asset_path

CONFIG = UNetConfig(base_channels=4, depth=3)
NORM = {"scheme": "ct_percentile_zscore", "clip_hu": [-1000.0, 2000.0], "mean_hu": 200.0,
        "std_hu": 400.0}


def make_card(config: UNetConfig = CONFIG, **kw) -> ModelCard:
    return ModelCard(name="tiny", version="0.0.1", normalisation=NORM, architecture=config,
                     patch_size_zyx=(8, 16, 16), created="2025-01-31",
                     metrics={"val": {"bone": {"dice": 0.9}}}, **kw)


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading must never go through pickle, whatever the file."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load / pickle.load called")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.fixture
def trained() -> UNet3D:
    """A tiny model with non-trivial weights and BatchNorm running statistics."""
    torch.manual_seed(0)
    model = UNet3D(CONFIG)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 1, 8, 8, 8) * 2 + 0.5)
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


@pytest.fixture
def saved(tmp_path: Path, trained: UNet3D) -> Path:
    return save_weights(trained, make_card(), tmp_path / "w.safetensors")


def x_input() -> torch.Tensor:
    return torch.randn(2, 1, 8, 8, 12, generator=torch.Generator().manual_seed(1))


# --- round trips --------------------------------------------------------------------------------
def test_round_trip_float32_is_exact(saved: Path, trained: UNet3D) -> None:
    loaded = load_weights(saved)
    assert not loaded.model.training
    assert loaded.path == saved and loaded.card_path == card_path_for(saved)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    with torch.no_grad():
        assert torch.equal(loaded.model(x_input()), trained(x_input()))
    for name, t in trained.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], t), name
    expected = dataclasses.replace(make_card(), tensors_sha256=loaded.card.tensors_sha256)
    assert loaded.card == expected
    assert len(loaded.card.tensors_sha256) == 64


def test_sidecar_is_readable_and_holds_the_file_hash(saved: Path) -> None:
    import hashlib

    sidecar = saved.with_name("w.json")
    text = sidecar.read_text()
    assert text.startswith("{\n  ")  # indented for humans
    doc = json.loads(text)
    assert doc["tensors_sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert doc["architecture"] == CONFIG.to_dict()


def test_load_via_card_json_and_via_embedded_card_only(saved: Path, trained: UNet3D) -> None:
    via_json = load_weights(saved.with_suffix(".json"))
    saved.with_suffix(".json").unlink()
    embedded = load_weights(saved)
    assert embedded.card_path is None
    assert embedded.card.tensors_sha256 == ""  # the file cannot hash itself
    assert embedded.card.same_except_sha(via_json.card)
    with torch.no_grad():
        assert torch.equal(embedded.model(x_input()), trained(x_input()))
    assert read_model_card(saved) == embedded.card


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_round_trip_16_bit(tmp_path: Path, trained: UNet3D, dtype: str) -> None:
    path = save_weights(trained, make_card(), tmp_path / "w16.safetensors", dtype=dtype)
    f32 = save_weights(trained, make_card(), tmp_path / "w32.safetensors")
    assert path.stat().st_size < 0.6 * f32.stat().st_size
    loaded = load_weights(path)
    assert loaded.card.tensors_dtype == dtype
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    with torch.no_grad():
        ref = trained.predict_proba(x_input())
        got = loaded.model.predict_proba(x_input())
    tol = 2e-2 if dtype == "bfloat16" else 2e-3
    assert (got - ref).abs().max().item() < tol


def test_channels_last_model_saves(tmp_path: Path, trained: UNet3D) -> None:
    trained.to(memory_format=torch.channels_last_3d)
    path = save_weights(trained, make_card(), tmp_path / "cl.safetensors")
    loaded = load_weights(path)
    torch.testing.assert_close(loaded.model.encoders[0].conv1.weight,
                               trained.encoders[0].conv1.weight.contiguous(), rtol=0, atol=0)


# --- saving refusals ----------------------------------------------------------------------------
def test_save_refuses_overwrite_and_mismatches(tmp_path: Path, saved: Path, trained: UNet3D) -> None:
    before = saved.read_bytes()
    with pytest.raises(FileExistsRefusedError):
        save_weights(trained, make_card(), saved)
    assert saved.read_bytes() == before
    # An existing card alone is also protected, and nothing is written.
    other = tmp_path / "other.safetensors"
    other.with_suffix(".json").write_text("{}")
    with pytest.raises(FileExistsRefusedError):
        save_weights(trained, make_card(), other)
    assert not other.exists()
    save_weights(trained, make_card(), saved, overwrite=True)
    with pytest.raises(ValueError, match="architecture"):
        save_weights(trained, make_card(dataclasses.replace(CONFIG, base_channels=8)), tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match=".safetensors"):
        save_weights(trained, make_card(), tmp_path / "a.pt")
    with pytest.raises(ValueError, match="dtype"):
        save_weights(trained, make_card(), tmp_path / "a.safetensors", dtype="float64")
    with torch.no_grad():
        trained.head.bias[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        save_weights(trained, make_card(), tmp_path / "nan.safetensors")
    assert not (tmp_path / "a.safetensors").exists()


# --- loading refusals ---------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "nothing.safetensors")
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "nothing.json")


def test_card_without_weights(saved: Path) -> None:
    saved.unlink()
    with pytest.raises(WeightsError, match="w.safetensors .*does not exist"):
        load_weights(saved.with_suffix(".json"))


@pytest.mark.parametrize("keep", [0, 5, 100, -1000, -1])
def test_truncated_file(saved: Path, keep: int) -> None:
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep])
    with pytest.raises(WeightsError, match="truncated or not a safetensors file"):
        load_weights(saved)


def test_flipped_byte_fails_sha(saved: Path) -> None:
    raw = bytearray(saved.read_bytes())
    raw[-10] ^= 0x01
    saved.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="sha256 .*does not match"):
        load_weights(saved)
    # Without the sidecar the hash of the tensor data in the header still catches it.
    saved.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="sha256 of the tensor data"):
        load_weights(saved)


def _rewrite(path: Path, *, card: ModelCard | None = None, tensors: dict | None = None,
             drop_card: bool = False) -> None:
    """Rewrite a weights file with another embedded card and/or tensors (and no sidecar)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    tensors = tensors if tensors is not None else st_load(path.read_bytes())
    metadata.pop("tensors_data_sha256", None)
    if card is not None:
        metadata["card"] = card.dumps(indent=None)
    if drop_card:
        metadata.pop("card")
    path.write_bytes(st_save(tensors, metadata=metadata))
    card_path_for(path).unlink(missing_ok=True)


def test_num_classes_differs_from_tensors(saved: Path) -> None:
    five = make_card(dataclasses.replace(CONFIG, num_classes=5), labels=DEFAULT_LABELS)
    _rewrite(saved, card=five)
    with pytest.raises(WeightsError, match="3 output classes but its model card declares 5"):
        load_weights(saved)


def test_card_with_other_architecture(saved: Path) -> None:
    # A hand-edited sidecar disagrees with the embedded card.
    sidecar = saved.with_suffix(".json")
    doc = json.loads(sidecar.read_text())
    doc["architecture"]["base_channels"] = 8
    sidecar.write_text(json.dumps(doc))
    with pytest.raises(WeightsError, match=r"disagrees .* in \['architecture'\]"):
        load_weights(saved)
    # Only a (wrong) card: tensor shapes do not fit the architecture.
    _rewrite(saved, card=make_card(dataclasses.replace(CONFIG, base_channels=8)))
    with pytest.raises(WeightsError, match="do not match the card's architecture.*other shapes"):
        load_weights(saved)
    _rewrite(saved, card=make_card(dataclasses.replace(CONFIG, depth=4)))
    with pytest.raises(WeightsError, match=r"30 missing \(decoders.2"):
        load_weights(saved)


def test_unexpected_tensor_and_wrong_dtype(saved: Path) -> None:
    tensors = st_load(saved.read_bytes())
    _rewrite(saved, tensors={**tensors, "extra.weight": torch.zeros(2)})
    with pytest.raises(WeightsError, match="1 unexpected \\(extra.weight\\)"):
        load_weights(saved)
    _rewrite(saved, tensors={k: (v.half() if k == "head.bias" else v) for k, v in tensors.items()})
    with pytest.raises(WeightsError, match="head.bias: F16"):
        load_weights(saved)


def test_file_without_card_or_foreign_safetensors(saved: Path) -> None:
    _rewrite(saved, drop_card=True)
    with pytest.raises(WeightsError, match="no model card"):
        load_weights(saved)
    saved.write_bytes(st_save({"a": torch.zeros(3)}))
    with pytest.raises(WeightsError, match="not SPINECT U-Net weights"):
        load_weights(saved)


def test_non_finite_weights(saved: Path) -> None:
    tensors = st_load(saved.read_bytes())
    tensors["head.bias"][0] = float("inf")
    _rewrite(saved, tensors=tensors)
    with pytest.raises(WeightsError, match="NaN or infinity"):
        load_weights(saved)


def test_pickle_checkpoints_are_refused(tmp_path: Path, trained: UNet3D, monkeypatch) -> None:
    monkeypatch.undo()  # torch.save needs pickle.dump only, but restore everything to be safe
    pt = tmp_path / "model.pt"
    torch.save(trained.state_dict(), pt)  # zip archive
    legacy = tmp_path / "legacy.safetensors"
    torch.save(trained.state_dict(), legacy, _use_new_zipfile_serialization=False)  # bare pickle
    plain = tmp_path / "plain.bin"
    plain.write_bytes(pickle.dumps({"a": 1}))

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", refuse)
    for path in (pt, legacy, plain):
        with pytest.raises(WeightsError, match="only .safetensors weights are accepted"):
            load_weights(path)


def test_corrupt_sidecar(saved: Path) -> None:
    saved.with_suffix(".json").write_text("{not json")
    with pytest.raises(WeightsError, match="w.json: model card is not valid JSON"):
        load_weights(saved)


# --- default weights ----------------------------------------------------------------------------
def test_default_weights_path_and_absence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = default_weights_path()
    assert path == asset_path("weights", "spinect_default.safetensors")
    assert path.parent.parent.name == "assets"
    assert path.parents[2] == Path(weights_mod.__file__).resolve().parents[2]  # repo root
    monkeypatch.setattr(weights_mod, "default_weights_path", lambda: tmp_path / "none.safetensors")
    with pytest.raises(NoWeightsInstalledError, match="no default weights are installed"):
        load_default_weights()


def test_load_default_weights_when_present(tmp_path: Path, trained: UNet3D,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_weights(trained, make_card(), tmp_path / "spinect_default.safetensors")
    monkeypatch.setattr(weights_mod, "default_weights_path", lambda: path)
    assert load_default_weights().card.name == "tiny"


def test_asset_path_in_a_frozen_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert asset_path("weights", "x.safetensors") == tmp_path / "assets" / "weights" / "x.safetensors"
