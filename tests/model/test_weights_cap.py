"""Weights and model cards larger than any SPINECT network are refused before they are read
(issue 16, case 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinect_core.errors import WeightsError, WeightsTooLargeError
from spinect_core.model import weights as W


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:  # a hole: no disk space used, no time spent
        f.truncate(size)
    return path


def test_a_weights_file_over_1_gib_is_refused_unread(tmp_path, monkeypatch):
    assert W.MAX_WEIGHTS_BYTES == 1024 ** 3
    big = _sparse(tmp_path / "huge.safetensors", W.MAX_WEIGHTS_BYTES + 1)

    def no_reading(self):
        raise AssertionError(f"{self.name} was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    for call in (W.load_weights, W.read_model_card):
        with pytest.raises(WeightsTooLargeError, match=r"huge.safetensors is 1074 MB, larger than "
                                                       r"any SPINECT weights file") as info:
            call(big)
        assert isinstance(info.value, WeightsError) and "\n" not in str(info.value)


def test_a_huge_model_card_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "MAX_CARD_BYTES", 1000)
    (tmp_path / "w.safetensors").write_bytes(b"\0" * 16)
    (tmp_path / "w.json").write_text("{" + " " * 2000 + "}")
    with pytest.raises(WeightsTooLargeError, match="w.json is .* larger than any SPINECT model "
                                                   "card"):
        W.read_model_card(tmp_path / "w.json")


def test_weights_under_the_cap_still_load(tmp_path):
    from tests.segment_helpers import tiny_unet_weights

    path = tiny_unet_weights(tmp_path / "tiny.safetensors")
    assert path.stat().st_size < W.MAX_WEIGHTS_BYTES
    assert W.load_weights(path).model is not None
