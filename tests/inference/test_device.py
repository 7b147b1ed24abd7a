import pytest
import torch

from spinect_core.inference import device as dev


def test_auto_device_on_this_machine():
    d = dev.resolve_device("auto")
    if torch.cuda.is_available():
        assert d.type == "cuda"
    else:
        assert d.type in ("mps", "cpu")


def test_named_devices():
    assert dev.resolve_device("cpu") == torch.device("cpu")
    assert dev.resolve_device("CPU") == torch.device("cpu")
    assert dev.resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            dev.resolve_device("cuda")


def test_precision_rules(monkeypatch):
    cpu = torch.device("cpu")
    assert dev.resolve_precision("float32", cpu) == "float32"
    assert dev.resolve_precision("bfloat16", cpu) == "bfloat16"
    with pytest.raises(ValueError, match="CUDA"):
        dev.resolve_precision("float16", cpu)
    with pytest.raises(ValueError):
        dev.resolve_precision("int8", cpu)
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: True)
    assert dev.resolve_precision("auto", cpu) == "bfloat16"
    monkeypatch.setattr(dev, "cpu_has_fast_bf16", lambda: False)
    assert dev.resolve_precision("auto", cpu) == "float32"
    assert dev.resolve_precision("auto", torch.device("mps")) == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.resolve_precision("auto", torch.device("cuda")) == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.resolve_precision("auto", torch.device("cuda")) == "float16"
    assert dev.resolve_precision("float16", torch.device("cuda")) == "float16"


def test_cpu_bf16_detection_returns_a_bool():
    assert isinstance(dev.cpu_has_fast_bf16(), bool)


def test_channels_last_rules():
    assert dev.resolve_channels_last("auto", torch.device("cpu")) is True
    assert dev.resolve_channels_last("auto", torch.device("cuda")) is True
    assert dev.resolve_channels_last("auto", torch.device("mps")) is False
    assert dev.resolve_channels_last(False, torch.device("cpu")) is False
    with pytest.raises(ValueError):
        dev.resolve_channels_last("yes", torch.device("cpu"))


def test_autocast_context():
    with dev.autocast(torch.device("cpu"), "float32"):
        assert not torch.is_autocast_enabled("cpu")
    with dev.autocast(torch.device("cpu"), "bfloat16"):
        assert torch.is_autocast_enabled("cpu")
