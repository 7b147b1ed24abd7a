"""``spinect train`` in one process (through ``main``) and under torchrun with two gloo ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spinect_core.cli.train import main
from spinect_core.model import load_weights

from tests.training.synthetic import write_case_folder

REPO = Path(__file__).resolve().parents[2]
TINY = {"architecture": {"base_channels": 4, "depth": 3}, "val_stride": [16, 32, 32],
        "log_every": 1, "learning_rate": 3e-3}
ARGS = ["--iterations", "4", "--val-every", "2", "--batch-size", "2", "--patch", "16", "32", "32",
        "--device", "cpu", "--quiet"]


@pytest.fixture()
def data_dir(tmp_path):
    for i in range(3):
        write_case_folder(tmp_path / "data", f"case{i}", i)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    return tmp_path


def test_cli_single_process(data_dir, capsys):
    out = data_dir / "out"
    code = main([str(data_dir / "data"), "-o", str(out), "--options", str(data_dir / "tiny.json"),
                 *ARGS])
    assert code == 0
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == 2 and len(split["val"]) == 1
    card = load_weights(out / "model.safetensors").card
    assert card.training["split"] == split and card.architecture.base_channels == 4
    assert "wrote" in capsys.readouterr().out
    # a second run into the same folder is refused (exit 2), --resume continues it
    assert main([str(data_dir / "data"), "-o", str(out), "--options",
                 str(data_dir / "tiny.json"), *ARGS]) == 2
    assert main([str(data_dir / "data"), "-o", str(out), "--options",
                 str(data_dir / "tiny.json"), *ARGS[:-1], "--resume", "--quiet"]) == 0


def test_ddp_two_cpu_processes(data_dir):
    out = data_dir / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "spinect_core.cli.train", str(data_dir / "data"), "-o", str(out),
           "--options", str(data_dir / "tiny.json"), *ARGS]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # only rank 0 reports and writes
    assert "2 processes (gloo)" in proc.stderr
    loaded = load_weights(out / "model.safetensors")
    assert loaded.card.training["recipe"]["processes"] == 2
    ckpt = json.loads((out / "checkpoints" / "ckpt-00000004.json").read_text())
    assert len(ckpt["state"]["sampler_states"]) == 2  # each rank's sampler can be resumed
    assert ckpt["state"]["sampler_states"][0] != ckpt["state"]["sampler_states"][1]
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert not leftovers  # no temporary files left by concurrent writers
