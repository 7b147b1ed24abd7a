"""UNet3D: size, shapes, input checks, initialisation, autocast and channels-last."""

from __future__ import annotations

import math

import pytest
import torch

from spinect_core.model import UNet3D, UNetConfig

STUDY_PARAMETERS = 22_581_411  # AJNR 2019 SPINECT, as reported


def small(**kw) -> UNetConfig:
    return UNetConfig(**{"base_channels": 4, "depth": 3, **kw})


def test_study_parameter_count_matches_paper() -> None:
    """Our study() network has 22,581,283 parameters: 128 (0.00057 %) fewer than the paper's.

    How the count is made up (c = 32, 64, 128, 256, 512; every conv has a bias; BatchNorm adds a
    scale and a shift per channel; running statistics are buffers, not parameters):

    ========================================  ===========
    3x3x3 conv weights (18 convs)              21,179,328
    3x3x3 conv biases (+3 head biases)              2,947
    BatchNorm scale + shift (18 layers)             5,888
    2x2x2 transposed convs (weights + bias)     1,393,120
    1x1x1 head weights (32 x 3)                        96
    ========================================  ===========
    total                                      22,581,283

    By block: encoder 14,134,944; decoder convs 7,053,120; up-convs 1,393,120; head 99.
    The 128 missing parameters are too few to be any conv; they would be e.g. one more
    64-channel normalisation layer. The paper does not say, so we assert agreement within 0.5 %.
    """
    config = UNetConfig.study()
    assert config.channels == (32, 64, 128, 256, 512)
    model = UNet3D(config)
    count = sum(p.numel() for p in model.parameters())
    assert count == 22_581_283
    assert config.num_parameters() == count  # closed form agrees with torch
    assert STUDY_PARAMETERS - count == 128
    assert abs(count - STUDY_PARAMETERS) / STUDY_PARAMETERS < 0.005


def test_fast_parameter_count() -> None:
    model = UNet3D(UNetConfig.fast())
    count = model.num_parameters()
    assert count == 5_647_891
    assert 5.0e6 <= count <= 6.2e6


@pytest.mark.parametrize(
    ("config", "shape"),
    [
        (small(), (1, 1, 4, 8, 12)),
        (small(num_classes=5), (2, 1, 8, 4, 4)),
        (small(in_channels=2, depth=2, norm="instance"), (1, 2, 6, 10, 2)),
        (UNetConfig(base_channels=2, depth=1), (1, 1, 3, 5, 7)),  # no pooling: any size
        (UNetConfig(base_channels=2, depth=4, num_classes=2), (1, 1, 8, 16, 8)),
    ],
)
def test_forward_shapes(config: UNetConfig, shape: tuple[int, ...]) -> None:
    model = UNet3D(config).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        logits = model(x)
        probs = model.predict_proba(x)
    assert logits.shape == (shape[0], config.num_classes, *shape[2:])
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(shape[0], *shape[2:]))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 1, 4, 8, 10), r"multiple of 4.*\(4, 8, 10\).*Pad to \(4, 8, 12\)"),
        ((1, 1, 2, 8, 8), "multiple of 4"),
        ((1, 2, 4, 4, 4), "1 input channel"),
        ((1, 4, 4, 4), "5D tensor"),
    ],
)
def test_invalid_input_is_explained(shape: tuple[int, ...], match: str) -> None:
    model = UNet3D(small())
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(*shape))


def test_he_initialisation() -> None:
    torch.manual_seed(0)
    model = UNet3D(UNetConfig(base_channels=16, depth=3))
    conv = model.encoders[2].conv2  # 64 -> 64 channels, fan_in = 64 * 27
    fan_in = conv.in_channels * 27
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    assert abs(conv.weight.mean().item()) < 0.05 * math.sqrt(2 / fan_in)
    up = model.ups[1]  # 64 -> 32, 2x2x2 stride 2: every output voxel sees 64 inputs once
    assert up.weight.std().item() == pytest.approx(math.sqrt(2 / up.in_channels), rel=0.05)
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
            assert torch.count_nonzero(module.bias) == 0
        if isinstance(module, torch.nn.BatchNorm3d):
            assert torch.all(module.weight == 1) and torch.count_nonzero(module.bias) == 0


def test_he_init_keeps_activation_scale() -> None:
    """Why He init: activations neither vanish nor explode through the encoder."""
    torch.manual_seed(0)
    model = UNet3D(UNetConfig(base_channels=8, depth=3, norm="instance"))
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        y = model.encoders[0].conv1(x)
    assert 0.5 < y.std().item() / math.sqrt(2) < 2.0


def test_eval_mode_uses_running_stats_and_is_batch_independent() -> None:
    torch.manual_seed(0)
    model = UNet3D(small())
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 1, 8, 8, 8) * 3 + 1)  # updates running statistics
    model.eval()
    x = torch.randn(3, 1, 8, 8, 8)
    with torch.no_grad():
        together = model(x)
        alone = model(x[1:2])
    torch.testing.assert_close(together[1:2], alone, rtol=1e-4, atol=1e-5)


def test_autocast_bfloat16_cpu() -> None:
    torch.manual_seed(0)
    model = UNet3D(small()).eval()
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        reference = model.predict_proba(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
            probs = model.predict_proba(x)
    assert logits.shape == (1, 3, 8, 8, 8)
    assert torch.isfinite(logits.float()).all()
    assert probs.dtype == torch.float32
    assert (probs - reference).abs().max().item() < 0.1  # bf16 has ~3 significant digits


def test_channels_last_3d_matches_contiguous() -> None:
    torch.manual_seed(0)
    model = UNet3D(small(base_channels=8)).eval()
    x = torch.randn(2, 1, 8, 12, 16)
    with torch.no_grad():
        reference = model(x)
        model_cl = model.to(memory_format=torch.channels_last_3d)
        out = model_cl(x.to(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out.contiguous(), reference, rtol=1e-4, atol=1e-4)


def test_backward_runs() -> None:
    model = UNet3D(small())
    loss = model(torch.randn(2, 1, 4, 4, 4)).logsumexp(dim=1).mean()
    loss.backward()
    assert model.encoders[0].conv1.weight.grad is not None


def test_config_dict_round_trip_and_validation() -> None:
    config = UNetConfig(base_channels=8, depth=4, norm="instance", num_classes=5)
    assert UNetConfig.from_dict(config.to_dict()) == config
    assert UNetConfig.from_dict({}) == UNetConfig()
    with pytest.raises(ValueError, match="unknown architecture keys"):
        UNetConfig.from_dict({**config.to_dict(), "dropout": 0.1})
    with pytest.raises(ValueError, match="norm"):
        UNetConfig.from_dict({"norm": "group"})
    with pytest.raises(ValueError, match="positive integer"):
        UNetConfig.from_dict({"depth": 0})
    with pytest.raises(ValueError, match="positive integer"):
        UNetConfig.from_dict({"base_channels": 8.0})
    with pytest.raises(ValueError, match="num_classes"):
        UNetConfig(num_classes=1)
    with pytest.raises(TypeError):
        UNetConfig(1, 3)  # keyword-only
    with pytest.raises(Exception):
        config.depth = 3  # frozen
