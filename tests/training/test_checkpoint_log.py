import json
import sys

import pytest
import torch

from spinect_core.model import UNet3D, UNetConfig
from spinect_core.training import CheckpointError, TrainingLog
from spinect_core.training.checkpoint import (
    latest_checkpoint, load_checkpoint, restore_model_and_optimizer, save_checkpoint,
)


def _model_and_optimizer(seed):
    torch.manual_seed(seed)
    model = UNet3D(UNetConfig(base_channels=2, depth=2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(1, 1, 4, 4, 4)).sum().backward()
    opt.step()
    return model, opt


def test_checkpoint_roundtrip_without_pickle(tmp_path):
    model, opt = _model_and_optimizer(0)
    for it in (1, 2, 3):
        save_checkpoint(tmp_path, iteration=it, model=model, optimizer=opt,
                        state={"note": "x", "it": it}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.json")) == [
        "ckpt-00000002.json", "ckpt-00000003.json"]
    ckpt = load_checkpoint(latest_checkpoint(tmp_path))
    assert ckpt.iteration == 3 and ckpt.state == {"note": "x", "it": 3}
    model2, opt2 = _model_and_optimizer(1)
    restore_model_and_optimizer(ckpt, model2, opt2)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"][0]["betas"] == tuple(s2["param_groups"][0]["betas"])
    for pid in s1["state"]:
        for key, v in s1["state"][pid].items():
            torch.testing.assert_close(v, s2["state"][pid][key], rtol=0, atol=0)
    # the tensors are safetensors, not a pickle / zip
    raw = (tmp_path / "ckpt-00000003.safetensors").read_bytes()
    assert raw[:2] != b"PK" and raw[0] != 0x80


def test_corrupt_checkpoint_is_refused(tmp_path):
    model, opt = _model_and_optimizer(0)
    path = save_checkpoint(tmp_path, iteration=1, model=model, optimizer=opt, state={})
    blob = bytearray((tmp_path / "ckpt-00000001.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "ckpt-00000001.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)
    assert latest_checkpoint(tmp_path / "nothing") is None
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path, iteration=2, model=model, optimizer=opt,
                        state={"bad": float("nan")})


def test_log_files(tmp_path, monkeypatch, caplog):
    log = TrainingLog()
    for i in range(1, 4):
        log.add(iteration=i, kind="train", loss=1.0 / i)
    log.add(iteration=3, kind="val", mean_dice=0.5, dice_bone=0.7, dice_nerve=float("nan"))
    paths = log.write(tmp_path)
    assert {p.name for p in paths} == {"training_log.csv", "training_log.json",
                                       "training_curves.png"}
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    rows = json.loads((tmp_path / "training_log.json").read_text())["rows"]
    assert rows[-1]["dice_nerve"] is None
    csv_lines = (tmp_path / "training_log.csv").read_text().splitlines()
    assert csv_lines[0].startswith("iteration,kind,loss") and len(csv_lines) == 5
    # without matplotlib: CSV/JSON still written, PNG skipped with a warning
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "nompl"
    paths = log.write(out)
    assert {p.name for p in paths} == {"training_log.csv", "training_log.json"}
    assert "matplotlib" in caplog.text
