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
