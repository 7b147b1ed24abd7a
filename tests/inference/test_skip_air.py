"""Skipping windows that lie wholly in air, and the batch size chosen for the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinect_core.inference import Predictor, PredictorOptions, tiling
from spinect_core.inference.predictor import (
    CPU_BATCH, _plan_stages, _sliding_window_sum, auto_batch_size, windows_touching)
from tests.inference.conftest import OOMNet, TinyNet

PATCH, STRIDE = (8, 12, 10), (5, 7, 6)
CPU32 = dict(device="cpu", precision="float32", channels_last=False, prob_dtype="float32")


def _body(shape, rng):
    """A block of 'body' in one corner of the volume: most windows see none of it."""
    mask = np.zeros(shape, bool)
    mask[2:12, 3:11, 2:9] = True
    image = rng.standard_normal(shape).astype(np.float32)
    image[~mask] = -3.0
    return image, mask


def test_windows_touching_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    mask = rng.random((23, 30, 27)) > 0.997
    starts = tiling.tile_starts(mask.shape, PATCH, STRIDE)
    want = [mask[z:z + 8, y:y + 12, x:x + 10].any() for z, y, x in starts]
    assert windows_touching(mask, starts, PATCH).tolist() == want
    assert 0 < sum(want) < len(starts)  # the case tests both outcomes


def test_skipped_windows_are_not_run_and_count_as_background():
    rng = np.random.default_rng(1)
    image, mask = _body((31, 40, 33), rng)
    net = OOMNet(TinyNet().eval(), max_batch=99)
    pred = Predictor(net, options=PredictorOptions(patch_size=PATCH, stride=STRIDE, batch_size=3,
                                                   **CPU32), num_classes=3).predict(
        image, body_mask=mask)
    starts = tiling.tile_starts(image.shape, PATCH, STRIDE)
    touching = windows_touching(mask, starts, PATCH)
    assert pred.num_skipped == int((~touching).sum()) > len(starts) // 2
    assert sum(net.batch_sizes) == int(touching.sum())        # only the body's windows ran
    assert any("were not run" in n for n in pred.notes)

    ref = Predictor(TinyNet().eval(), options=PredictorOptions(
        patch_size=PATCH, stride=STRIDE, batch_size=3, skip_air=False, **CPU32),
        num_classes=3).predict(image, body_mask=mask)
    assert ref.num_skipped == 0
    # voxels no skipped window covers are exactly as before; voxels only skipped windows cover
    # are background with probability 1
    run_cover = np.zeros(image.shape, bool)
    skip_cover = np.zeros(image.shape, bool)
    for (z, y, x), t in zip(starts, touching):
        (run_cover if t else skip_cover)[z:z + 8, y:y + 12, x:x + 10] = True
    only_run, only_skip = run_cover & ~skip_cover, skip_cover & ~run_cover
    assert only_run.any() and only_skip.any()
    np.testing.assert_allclose(pred.probabilities[:, only_run], ref.probabilities[:, only_run],
                               atol=1e-6)
    assert np.all(pred.labels[only_skip] == 0)
    np.testing.assert_allclose(pred.probabilities[0][only_skip], 1.0)
    np.testing.assert_allclose(pred.probabilities.sum(axis=0), 1.0, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4, 40])
def test_rolling_sums_with_skipped_windows_equal_the_whole_volume(batch_size):
    rng = np.random.default_rng(2)
    image_np, mask = _body((37, 20, 18), rng)
    image = torch.from_numpy(image_np)
    starts = tiling.tile_starts(tuple(image.shape), PATCH, STRIDE)
    skip = ~windows_touching(mask, starts, PATCH)
    stages = _plan_stages(device=torch.device("cpu"), precision="float32",
                          batch_size=batch_size, channels_last_option=False, stitch_on_cpu=True,
                          cpu_fallback=False, cpu_precision="float32")
    net = TinyNet().eval()
    kw = dict(starts=starts, patch_size=PATCH, stages=stages, prepare=lambda st: net,
              weight=None, num_classes=3, progress=None, notes=[], skip=skip)
    with torch.inference_mode():
        whole, _ = _sliding_window_sum(image, **kw)
        pieces = []
        _sliding_window_sum(image, **kw, emit=lambda s, z0: pieces.append((z0, s.clone())))
    assert [z for z0, s in pieces for z in range(z0, z0 + s.shape[1])] == list(range(37))
    assert torch.allclose(torch.cat([s for _, s in pieces], dim=1), whole, atol=1e-5)
    # every voxel's class sum is its window count, skipped or not
    count = np.zeros(image.shape)
    for z, y, x in starts:
        count[z:z + 8, y:y + 12, x:x + 10] += 1
    np.testing.assert_allclose(whole.sum(0).numpy(), count, atol=1e-4)


def test_a_mask_of_the_wrong_shape_is_refused():
    from spinect_core.errors import InputError

    p = Predictor(TinyNet().eval(), options=PredictorOptions(patch_size=PATCH, stride=STRIDE,
                                                             **CPU32), num_classes=3)
    with pytest.raises(InputError, match="body mask"):
        p.predict(np.zeros((20, 20, 20), np.float32), body_mask=np.ones((20, 20, 19), bool))


def test_auto_batch_size_follows_free_memory():
    gib = 2**30
    assert auto_batch_size(free_bytes=100 * gib, per_window_bytes=gib // 2, cap=32) == 32
    assert auto_batch_size(free_bytes=10 * gib, per_window_bytes=gib // 2, cap=32) == 12
    assert auto_batch_size(free_bytes=10 * gib, per_window_bytes=gib // 2,
                           reserved_bytes=4 * gib, cap=32) == 4
    assert auto_batch_size(free_bytes=gib, per_window_bytes=4 * gib) == 1


def test_auto_batch_on_the_cpu_is_the_cpu_batch():
    rng = np.random.default_rng(3)
    net = OOMNet(TinyNet().eval(), max_batch=99)
    pred = Predictor(net, options=PredictorOptions(patch_size=PATCH, stride=STRIDE, **CPU32),
                     num_classes=3).predict(rng.standard_normal((20, 30, 25)).astype(np.float32))
    assert pred.batch_size == CPU_BATCH and max(net.batch_sizes) == CPU_BATCH


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_auto_settings_give_the_cpu_result():
    rng = np.random.default_rng(4)
    image, mask = _body((40, 48, 44), rng)
    opts = dict(patch_size=PATCH, stride=STRIDE, channels_last=False, prob_dtype="float32")
    gpu = Predictor(TinyNet().eval(), options=PredictorOptions(device="cuda", **opts),
                    num_classes=3).predict(image, body_mask=mask)
    cpu = Predictor(TinyNet().eval(), options=PredictorOptions(device="cpu", precision="float32",
                                                               **opts),
                    num_classes=3).predict(image, body_mask=mask)
    assert gpu.batch_size >= 1 and any("batch size" in n for n in gpu.notes)
    agree = (gpu.labels == cpu.labels).mean()
    assert agree > (0.999 if gpu.precision_used == "float32" else 0.98)
