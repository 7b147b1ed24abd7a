"""Out-of-memory fallback, exercised on the CPU with networks that raise on demand."""

import dataclasses

import numpy as np
import pytest
import torch

from spinect_core.errors import SpinectError
from spinect_core.inference import Predictor, PredictorOptions, tiling
from spinect_core.inference import predictor as predictor_mod
from spinect_core.inference.predictor import _plan_stages, _sliding_window_sum

from .conftest import OOMNet, TinyNet

CPU = torch.device("cpu")
PATCH, STRIDE = (8, 12, 10), (5, 7, 6)


def test_plan_on_a_gpu_halves_then_stitches_on_cpu_then_runs_on_cpu():
    cuda = torch.device("cuda")  # a device object only; nothing runs on it
    stages = _plan_stages(device=cuda, precision="bfloat16", batch_size=4,
                          channels_last_option="auto", stitch_on_cpu=False, cpu_fallback=True,
                          cpu_precision="float32")
    assert [(s.compute_device.type, s.stitch_device.type, s.batch_size, s.precision)
            for s in stages] == [
        ("cuda", "cuda", 4, "bfloat16"),
        ("cuda", "cuda", 2, "bfloat16"),
        ("cuda", "cuda", 1, "bfloat16"),
        ("cuda", "cpu", 1, "bfloat16"),
        ("cpu", "cpu", 4, "float32"),
    ]
    assert stages[0].note == ""
    assert "4 -> 2" in stages[1].note and "2 -> 1" in stages[2].note
    assert "stitching on the CPU" in stages[3].note
    assert "running on the CPU" in stages[4].note


def test_plan_variants():
    cuda = torch.device("cuda")
    kw = dict(precision="float16", channels_last_option=False, cpu_precision="bfloat16")
    s = _plan_stages(device=cuda, batch_size=3, stitch_on_cpu=True, cpu_fallback=False, **kw)
    assert [(x.stitch_device.type, x.batch_size) for x in s] == [("cpu", 3), ("cpu", 1)]
    s = _plan_stages(device=CPU, batch_size=4, stitch_on_cpu=False, cpu_fallback=True, **kw)
    assert len(s) == 1 and s[0].stitch_device == CPU


def _fake_gpu_chain(batch_size=4):
    """The GPU chain with every device replaced by the CPU, notes kept for identification."""
    real = _plan_stages(device=torch.device("cuda"), precision="float32", batch_size=batch_size,
                        channels_last_option=False, stitch_on_cpu=False, cpu_fallback=True,
                        cpu_precision="float32")
    return [dataclasses.replace(s, compute_device=CPU, stitch_device=CPU) for s in real]


def _reference(net, image):
    opts = PredictorOptions(patch_size=PATCH, stride=STRIDE, device="cpu", precision="float32",
                            channels_last=False, prob_dtype="float32")
    return Predictor(net, options=opts).predict(image)


def _run(stages, prepare, image, progress=None):
    notes: list[str] = []
    starts = tiling.tile_starts(image.shape, PATCH, STRIDE)
    with torch.inference_mode():
        acc, stage = _sliding_window_sum(
            torch.from_numpy(image), starts=starts, patch_size=PATCH, stages=stages,
            prepare=prepare, weight=None, num_classes=None, progress=progress, notes=notes)
    return (acc / acc.sum(0)).numpy(), stage, notes


def test_batch_is_halved_until_it_fits():
    image = np.random.default_rng(0).standard_normal((17, 26, 21)).astype(np.float32)
    net = OOMNet(TinyNet().eval(), max_batch=1)
    stages = _fake_gpu_chain()
    messages = []
    probs, stage, notes = _run(stages, lambda s: net, image,
                               progress=lambda f, m: messages.append(m))
    assert stage is stages[2] and stage.batch_size == 1
    assert notes == [stages[1].note, stages[2].note]
    assert stages[1].note in messages and stages[2].note in messages
    # batch 4 failed, 2 failed, then every window at batch 1
    n = tiling.num_windows(image.shape, PATCH, STRIDE)
    assert net.batch_sizes[:2] == [4, 2] and net.batch_sizes[2:] == [1] * n
    ref = _reference(TinyNet().eval(), image)
    np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)  # no window counted twice


def test_full_chain_down_to_the_cpu():
    """The "GPU" network fails even at batch 1: stitch on CPU, then run on the CPU."""
    image = np.random.default_rng(1).standard_normal((17, 26, 21)).astype(np.float32)
    stages = _fake_gpu_chain()
    gpu_net = OOMNet(TinyNet().eval(), max_batch=0)  # always out of memory
    cpu_net = OOMNet(TinyNet().eval(), max_batch=10**6)
    prepared = []

    def prepare(stage):
        prepared.append(stage)
        return cpu_net if stage is stages[-1] else gpu_net

    probs, stage, notes = _run(stages, prepare, image)
    assert stage is stages[-1]
    assert notes == [s.note for s in stages[1:]]
    assert prepared == stages  # prepare() is asked at every step (the Predictor no-ops it)
    assert cpu_net.batch_sizes[0] == 4  # the CPU runs at the requested batch size again
    ref = _reference(TinyNet().eval(), image)
    np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)


def test_failure_after_some_batches_keeps_their_work():
    """An OOM in the middle of the volume: finished windows are not recomputed or lost."""
    image = np.random.default_rng(2).standard_normal((17, 26, 21)).astype(np.float32)
    stages = _fake_gpu_chain()
    inner = TinyNet().eval()
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 3:  # the third batch of 4 fails once
            raise torch.OutOfMemoryError("simulated")
        return inner(x)

    probs, stage, notes = _run(stages, lambda s: flaky, image)
    assert stage.batch_size == 2 and len(notes) == 1
    ref = _reference(TinyNet().eval(), image)
    np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)


def test_accumulator_oom_skips_straight_to_cpu_stitching(monkeypatch):
    image = np.random.default_rng(3).standard_normal((17, 26, 21)).astype(np.float32)
    stages = _fake_gpu_chain()
    real_zeros = torch.zeros
    state = {"failed": False}

    def zeros(*args, **kwargs):
        if not state["failed"]:
            state["failed"] = True
            raise torch.OutOfMemoryError("simulated accumulator OOM")
        return real_zeros(*args, **kwargs)

    monkeypatch.setattr(predictor_mod.torch, "zeros", zeros)
    # give the first three stages a distinct stitch device object so the skip is visible
    gpu_like = torch.device("cpu", 0)
    stages = [dataclasses.replace(s, stitch_device=gpu_like) if i < 3 else s
              for i, s in enumerate(stages)]
    net = TinyNet().eval()
    probs, stage, notes = _run(stages, lambda s: net, image)
    assert notes == [stages[3].note]  # "stitching on the CPU", without halving the batch
    assert stage is stages[3]
    monkeypatch.setattr(predictor_mod.torch, "zeros", real_zeros)
    ref = _reference(TinyNet().eval(), image)
    np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)


def test_oom_with_no_fallback_left_is_a_spinect_error():
    image = np.random.default_rng(4).standard_normal((12, 12, 12)).astype(np.float32)
    stages = _fake_gpu_chain()[:3]
    net = OOMNet(TinyNet().eval(), max_batch=0)
    with pytest.raises(SpinectError, match="out of memory"):
        _run(stages, lambda s: net, image)


def test_predictor_records_fallback_notes(monkeypatch):
    image = np.random.default_rng(5).standard_normal((17, 26, 21)).astype(np.float32)
    net = OOMNet(TinyNet().eval(), max_batch=2)
    opts = PredictorOptions(patch_size=PATCH, stride=STRIDE, device="cpu", precision="float32",
                            channels_last=False, prob_dtype="float32", batch_size=4)
    predictor = Predictor(net, options=opts)
    stages = _fake_gpu_chain()
    monkeypatch.setattr(predictor, "_stages", lambda batch, precision: stages)
    messages = []
    pred = predictor.predict(image, progress=lambda f, m: messages.append(m))
    assert pred.notes == [stages[1].note]
    assert stages[1].note in messages
    ref = _reference(TinyNet().eval(), image)
    np.testing.assert_allclose(pred.probabilities, ref.probabilities, atol=1e-5)


def test_non_oom_errors_propagate():
    image = np.random.default_rng(6).standard_normal((12, 12, 12)).astype(np.float32)

    def broken(x):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        _run(_fake_gpu_chain(), lambda s: broken, image)
