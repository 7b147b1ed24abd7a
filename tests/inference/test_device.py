import io

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


def test_cpu_bf16_detection_on_this_machine_is_a_bool():
    assert isinstance(dev.cpu_has_fast_bf16(), bool)


def test_cpu_bf16_detection_asks_torch_then_the_linux_flags(monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    # torch's cpuinfo answers: native bf16 (AVX512_BF16) or AMX tiles, else not (emulated bf16).
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert dev.cpu_has_fast_bf16() is True
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert dev.cpu_has_fast_bf16() is False

    # The private helper gone: /proc/cpuinfo's flags decide, on Linux only.
    def moved():
        raise AttributeError("_is_avx512_bf16_supported")

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", moved, raising=False)
    monkeypatch.setattr(dev.platform, "system", lambda: "Linux")
    flags = {"text": "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n"}
    monkeypatch.setattr(dev, "open", lambda *a, **k: io.StringIO(flags["text"]), raising=False)
    assert dev.cpu_has_fast_bf16() is True
    flags["text"] = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512bw\n"  # emulated only
    assert dev.cpu_has_fast_bf16() is False
    flags["text"] = "processor\t: 0\nflags\t\t: fpu amx_bf16 amx_tile\n"
    assert dev.cpu_has_fast_bf16() is True
    monkeypatch.setattr(dev.platform, "system", lambda: "Darwin")
    assert dev.cpu_has_fast_bf16() is False
    # No oneDNN: no fast bf16 whatever the CPU says.
    monkeypatch.setattr(dev.platform, "system", lambda: "Linux")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert dev.cpu_has_fast_bf16() is False


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
