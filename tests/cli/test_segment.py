"""``spinect segment``: files written, grid kept, refusals are one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.cli import main
from spinect_core.io import load_label_map, write_image
from tests.segment_helpers import sphere_ct, tiny_unet_weights


@pytest.fixture()
def ct_file(tmp_path):
    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    return write_image(ct, tmp_path / "ct.nii.gz"), ct


def test_segment_writes_label_map_sidecar_and_summary(tmp_path, ct_file, capsys):
    path, ct = ct_file
    weights = tiny_unet_weights(tmp_path / "w" / "tiny.safetensors")
    out = tmp_path / "out" / "seg.nii.gz"
    code = main(["segment", str(path), "-o", str(out), "--weights", str(weights), "--quiet",
                 "--save-probabilities", "--json", "--precision", "float32"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["coordinate_system"] == "LPS"
    labels, table = load_label_map(out)
    assert table.names == {0: "background", 1: "bone", 2: "nerve"}
    assert labels.array.shape == ct.array.shape
    np.testing.assert_allclose(labels.spacing_mm, ct.spacing_mm, atol=1e-4)
    np.testing.assert_allclose(labels.direction, ct.direction, atol=1e-4)
    np.testing.assert_allclose(labels.origin_lps_mm, ct.origin_lps_mm, atol=1e-3)
    for name in ("bone", "nerve"):
        assert (out.parent / f"seg.prob-{name}.nii.gz").exists()
    assert sum(c["voxels"] for c in summary["classes"].values()) == ct.array.size


def test_segment_refuses_to_overwrite(tmp_path, ct_file, capsys):
    path, _ = ct_file
    out = tmp_path / "seg.nii.gz"
    out.write_bytes(b"precious")
    weights = tiny_unet_weights(tmp_path / "tiny.safetensors")
    code = main(["segment", str(path), "-o", str(out), "--weights", str(weights), "--quiet"])
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


def test_segment_without_installed_weights_says_so(tmp_path, ct_file, capsys, monkeypatch):
    from spinect_core.model import weights as weights_module

    monkeypatch.setattr(weights_module, "default_weights_path",
                        lambda: tmp_path / "none" / "spinect_default.safetensors")
    path, _ = ct_file
    code = main(["segment", str(path), "-o", str(tmp_path / "seg.nii.gz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no default weights" in err.lower()
    assert len(err.strip().splitlines()) == 1


def test_segment_rejects_a_pickle_as_weights(tmp_path, ct_file, capsys):
    path, _ = ct_file
    bad = tmp_path / "model.pt"
    import pickle

    bad.write_bytes(pickle.dumps({"state_dict": [1, 2, 3]}))
    code = main(["segment", str(path), "-o", str(tmp_path / "seg.nii.gz"), "--weights", str(bad),
                 "--quiet"])
    assert code == 2
    assert "safetensors" in capsys.readouterr().err


# --- the bone source and the segmentation check ------------------------------------------------
def test_segment_bone_source_and_check_in_the_summary(tmp_path, ct_file, capsys):
    from spinect_core.segment import DEFAULT_BONE_MODE

    path, ct = ct_file
    weights = tiny_unet_weights(tmp_path / "w" / "tiny.safetensors")
    out = tmp_path / "out" / "seg.nii.gz"
    code = main(["segment", str(path), "-o", str(out), "--weights", str(weights), "--quiet",
                 "--bone", "ct", "--precision", "float32"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads((out.parent / "seg.json").read_text(encoding="utf-8"))
    assert summary["bone_source"] == "ct"
    assert {"seed", "grow", "soft_tissue_peak"} <= set(summary["ct_bone"]["thresholds_hu"])
    # A ball in a box has no spine: the check says it could not run, in the file and on stderr.
    check = summary["segmentation_check"]
    assert check["levels_found"] is False and "could not be found" in check["reason"]
    assert "spinect: warning: the segmentation could not be checked against the CT" in captured.err
    labels, _ = load_label_map(out)
    bone = labels.array == 1
    # Bone source "ct": the label map's bone is the CT bone model's (the ball).
    assert bone.sum() > 0 and summary["classes"]["bone"]["voxels"] == int(bone.sum())
    assert DEFAULT_BONE_MODE in ("network", "ct", "fused")


def test_bone_help_names_every_source():
    from spinect_core.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["segment"]
    text = sub.format_help()
    for word in ("network", "ct", "fused", "CT bone model", "within 3 mm"):
        assert word in text
    from spinect_core.segment import DEFAULT_BONE_MODE

    assert sub.parse_args(["x", "-o", "y.nii.gz"]).bone == DEFAULT_BONE_MODE


# --- option values are checked by argparse: one line, exit 2, before anything loads ------------
@pytest.mark.parametrize("extra, words", [
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--batch-size", "two"], "argument --batch-size: 'two' is not an integer"),
    (["--stride", "0", "0", "0"], "argument --stride: must be at least 1, got 0"),
    (["--device", "gpu"], "argument --device: unknown device 'gpu'"),
    (["--bone", "both"], "argument --bone: invalid choice: 'both'"),
])
def test_bad_option_values_end_in_one_line(tmp_path, capsys, extra, words):
    rc = main(["segment", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "s.nii.gz"),
               *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("spinect: error: ") and words in err
    assert "Traceback" not in err


def test_a_cuda_device_this_machine_lacks_is_refused(tmp_path, capsys, monkeypatch):
    import torch

    # One CUDA device (as on a single-GPU machine): cuda:7 does not exist, cuda:0 does.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    from spinect_core.cli.segment import device_name

    assert device_name("CUDA:0") == "cuda:0"
    rc = main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "s.nii.gz"),
               "--device", "cuda:7"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "cuda:7 does not exist: this machine has 1 CUDA device (cuda:0)" in err
    # Without CUDA at all.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert main(["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "s.nii.gz"),
                 "--device", "cuda"]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err
