"""Predictor.from_weights with a tiny U-Net saved by the model package."""

import numpy as np
import pytest
import torch

model = pytest.importorskip("spinect_core.model")

from spinect_core.inference import Predictor, PredictorOptions  # noqa: E402


def _save_tiny(tmp_path, patch=(16, 16, 16)):
    cfg = model.UNetConfig(in_channels=1, num_classes=3, base_channels=4, depth=2, norm="batch")
    torch.manual_seed(0)
    net = model.UNet3D(cfg).eval()
    card = model.ModelCard(name="tiny", version="0.0.1", architecture=cfg, patch_size_zyx=patch,
                           normalisation={"scheme": "none"})
    path = tmp_path / "tiny.safetensors"
    model.save_weights(net, card, path)
    return path, net


def test_from_weights_uses_the_card(tmp_path):
    path, net = _save_tiny(tmp_path)
    p = Predictor.from_weights(path, options=None)
    assert p.options.patch_size == (16, 16, 16)
    assert p.options.stride == (10, 10, 10)  # 5/8 of the patch, as the study's 20/32
    assert p.num_classes == 3
    assert p.card.name == "tiny"


def test_from_weights_predicts_like_the_network(tmp_path):
    path, net = _save_tiny(tmp_path)
    opts = PredictorOptions(patch_size=(16, 16, 16), stride=(10, 10, 10), device="cpu",
                            precision="float32", channels_last=False, prob_dtype="float32")
    image = np.random.default_rng(0).standard_normal((20, 23, 17)).astype(np.float32)
    a = Predictor.from_weights(path, options=opts).predict(image)
    b = Predictor(net, options=opts).predict(image)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
