import numpy as np
import pytest
import torch

from spinect_core.errors import Cancelled, InputError, SpinectError
from spinect_core.inference import Predictor, PredictorOptions
from spinect_core.inference import tiling

from .conftest import OOMNet, SoftmaxWrapper, TinyNet

CPU32 = dict(device="cpu", precision="float32", channels_last=False, prob_dtype="float32")


def _monai_overlap(patch, stride):
    """An overlap for which MONAI's ``int(roi * (1 - overlap))`` is exactly ``stride``.

    ``(p - s - 0.5) / p`` puts ``roi * (1 - overlap)`` at ``s + 0.5``, safely away from the
    float rounding that ``(p - s) / p`` could push to ``s - 1``.
    """
    return tuple(max(0.0, (p - s - 0.5) / p) for p, s in zip(patch, stride))


def _monai(net, image, patch, stride, mode):
    from monai.inferers import sliding_window_inference

    with torch.inference_mode():
        out = sliding_window_inference(
            torch.from_numpy(image)[None, None], roi_size=patch, sw_batch_size=4,
            predictor=SoftmaxWrapper(net), overlap=_monai_overlap(patch, stride), mode=mode,
            sigma_scale=0.125, padding_mode="constant", cval=0.0)
    return out[0].numpy()


CASES = [
    # (shape, patch, stride): odd sizes, exact fits, an axis shorter than the patch
    ((23, 29, 31), (8, 12, 10), (5, 7, 6)),
    ((16, 24, 20), (8, 12, 10), (5, 7, 6)),
    ((6, 29, 9), (8, 12, 10), (5, 7, 6)),
    ((33, 65, 71), (32, 64, 64), (20, 40, 40)),
]


@pytest.mark.parametrize("shape,patch,stride", CASES)
def test_sum_blend_equals_monai_constant(tiny_net, rng, shape, patch, stride):
    image = rng.standard_normal(shape).astype(np.float32)
    ref = _monai(tiny_net, image, patch, stride, "constant")
    opts = PredictorOptions(patch_size=patch, stride=stride, blend="sum", pad_value=0.0, **CPU32)
    pred = Predictor(tiny_net, options=opts).predict(image)
    assert pred.probabilities.shape == ref.shape
    np.testing.assert_allclose(pred.probabilities, ref, atol=1e-5)
    np.testing.assert_array_equal(pred.labels, ref.argmax(0))


@pytest.mark.parametrize("shape,patch,stride", CASES)
def test_gaussian_blend_equals_monai_gaussian(tiny_net, rng, shape, patch, stride):
    image = rng.standard_normal(shape).astype(np.float32)
    ref = _monai(tiny_net, image, patch, stride, "gaussian")
    opts = PredictorOptions(patch_size=patch, stride=stride, blend="gaussian", pad_value=0.0,
                            **CPU32)
    pred = Predictor(tiny_net, options=opts).predict(image)
    np.testing.assert_allclose(pred.probabilities, ref, atol=1e-4)
    # argmax may differ only where MONAI's two best classes tie within float rounding
    top2 = np.sort(ref, axis=0)[-2:]
    differ = pred.labels != ref.argmax(0)
    assert np.all(top2[1][differ] - top2[0][differ] < 1e-5)


def test_sum_blend_is_algorithm_1(tiny_net, rng):
    """Labels = argmax of the plain per-voxel sum of window softmax outputs."""
    shape, patch, stride = (13, 17, 15), (6, 8, 8), (4, 5, 5)
    image = rng.standard_normal(shape).astype(np.float32)
    total = np.zeros((3, *shape))
    with torch.no_grad():
        for z, y, x in tiling.tile_starts(shape, patch, stride):
            win = torch.from_numpy(image[z:z + 6, y:y + 8, x:x + 8].copy())[None, None]
            total[:, z:z + 6, y:y + 8, x:x + 8] += torch.softmax(tiny_net(win), 1)[0].numpy()
    pred = Predictor(tiny_net, options=PredictorOptions(patch_size=patch, stride=stride,
                                                        **CPU32)).predict(image)
    np.testing.assert_array_equal(pred.labels, total.argmax(0))
    np.testing.assert_allclose(pred.probabilities, total / total.sum(0), atol=1e-5)


def test_output_dtypes_and_shapes(tiny_net, rng):
    image = rng.standard_normal((19, 21, 23)).astype(np.float32)
    opts = PredictorOptions(patch_size=(8, 8, 8), stride=(5, 5, 5), device="cpu",
                            precision="float32")
    pred = Predictor(tiny_net, options=opts).predict(image)
    assert pred.labels.shape == (19, 21, 23) and pred.labels.dtype == np.uint8
    assert pred.probabilities.shape == (3, 19, 21, 23)
    assert pred.probabilities.dtype == np.float16
    np.testing.assert_allclose(pred.probabilities.astype(np.float32).sum(0), 1.0, atol=3e-3)
    assert pred.device_used == "cpu" and pred.precision_used == "float32"
    assert pred.num_windows == tiling.num_windows((19, 21, 23), (8, 8, 8), (5, 5, 5))
    assert pred.notes == []
    assert set(np.unique(pred.labels)) <= {0, 1, 2}


def test_labels_only(tiny_net, rng):
    image = rng.standard_normal((12, 14, 16)).astype(np.float32)
    base = dict(patch_size=(8, 8, 8), stride=(5, 5, 5), **CPU32)
    full = Predictor(tiny_net, options=PredictorOptions(**base)).predict(image)
    lean = Predictor(tiny_net, options=PredictorOptions(keep_probabilities=False, **base)).predict(image)
    assert lean.probabilities is None
    np.testing.assert_array_equal(lean.labels, full.labels)


def test_small_volume_is_padded_with_minimum_and_cropped(tiny_net, rng):
    image = rng.standard_normal((5, 9, 20)).astype(np.float32)
    opts = PredictorOptions(patch_size=(8, 12, 10), stride=(5, 7, 6), **CPU32)
    pred = Predictor(tiny_net, options=opts).predict(image)
    assert pred.labels.shape == (5, 9, 20)
    assert pred.probabilities.shape == (3, 5, 9, 20)
    assert any("padded" in n for n in pred.notes)
    # same as padding by hand with the minimum (centred) and cropping
    pads = tiling.padding_for(image.shape, (8, 12, 10))
    assert pads == ((1, 2), (1, 2), (0, 0))
    padded = np.pad(image, pads, constant_values=image.min())
    ref = Predictor(tiny_net, options=opts).predict(padded)
    np.testing.assert_allclose(pred.probabilities, ref.probabilities[:, 1:6, 1:10, :], atol=1e-6)


def test_pad_value_zero_differs_from_minimum(tiny_net, rng):
    image = rng.standard_normal((5, 12, 10)).astype(np.float32) + 3.0
    base = dict(patch_size=(8, 12, 10), stride=(5, 7, 6), **CPU32)
    a = Predictor(tiny_net, options=PredictorOptions(**base)).predict(image)
    b = Predictor(tiny_net, options=PredictorOptions(pad_value=0.0, **base)).predict(image)
    assert not np.allclose(a.probabilities, b.probabilities)


def test_deterministic(tiny_net, rng):
    image = rng.standard_normal((17, 26, 21)).astype(np.float32)
    p = Predictor(tiny_net, options=PredictorOptions(patch_size=(8, 12, 10), stride=(5, 7, 6),
                                                     device="cpu", precision="float32"))
    a, b = p.predict(image), p.predict(image)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_channels_last_and_batch_size_do_not_change_the_result(tiny_net, rng):
    image = rng.standard_normal((17, 26, 21)).astype(np.float32)
    base = dict(patch_size=(8, 12, 10), stride=(5, 7, 6), device="cpu", precision="float32",
                prob_dtype="float32")
    ref = Predictor(TinyNet().eval(), options=PredictorOptions(channels_last=False, batch_size=1,
                                                               **base)).predict(image)
    got = Predictor(TinyNet().eval(), options=PredictorOptions(channels_last=True, batch_size=3,
                                                               **base)).predict(image)
    np.testing.assert_allclose(got.probabilities, ref.probabilities, atol=1e-5)


def test_bfloat16_runs_and_mostly_agrees(rng):
    image = rng.standard_normal((16, 24, 20)).astype(np.float32)
    base = dict(patch_size=(8, 12, 10), stride=(5, 7, 6), device="cpu")
    ref = Predictor(TinyNet().eval(), options=PredictorOptions(precision="float32", **base)).predict(image)
    bf = Predictor(TinyNet().eval(), options=PredictorOptions(precision="bfloat16", **base)).predict(image)
    assert bf.precision_used == "bfloat16"
    assert bf.probabilities.dtype == np.float16
    assert (bf.labels == ref.labels).mean() > 0.95


def test_progress_is_monotone_and_ends_at_one(tiny_net, rng):
    image = rng.standard_normal((20, 26, 21)).astype(np.float32)
    calls = []
    opts = PredictorOptions(patch_size=(8, 12, 10), stride=(5, 7, 6), batch_size=2, **CPU32)
    pred = Predictor(tiny_net, options=opts).predict(
        image, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    # one report per batch of windows, plus start and end
    assert len(calls) == -(-pred.num_windows // 2) + 2
    assert all(isinstance(m, str) and m for _, m in calls)


def test_cancel_stops_promptly(rng):
    image = rng.standard_normal((30, 40, 40)).astype(np.float32)
    net = OOMNet(TinyNet().eval(), max_batch=10**6)  # just counts the forward calls
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        return len(calls) < 3  # cancel at the third report

    opts = PredictorOptions(patch_size=(8, 12, 10), stride=(5, 7, 6), batch_size=2, **CPU32)
    with pytest.raises(Cancelled):
        Predictor(net, options=opts).predict(image, progress=progress)
    assert len(net.batch_sizes) == 2  # no batch ran after the cancelling report


def test_num_classes_mismatch_is_an_error(tiny_net, rng):
    opts = PredictorOptions(patch_size=(8, 8, 8), stride=(5, 5, 5), **CPU32)
    with pytest.raises(SpinectError, match="classes"):
        Predictor(tiny_net, options=opts, num_classes=5).predict(
            rng.standard_normal((8, 8, 8)).astype(np.float32))


def test_bad_images_are_rejected(tiny_net):
    p = Predictor(tiny_net, options=PredictorOptions(patch_size=(8, 8, 8), stride=(5, 5, 5), **CPU32))
    with pytest.raises(InputError):
        p.predict(np.zeros((8, 8), np.float32))
    bad = np.zeros((8, 8, 8), np.float32)
    bad[1, 2, 3] = np.nan
    with pytest.raises(InputError):
        p.predict(bad)


def test_options_validation():
    with pytest.raises(ValueError, match="stride"):
        PredictorOptions(patch_size=(8, 8, 8), stride=(9, 5, 5))
    with pytest.raises(ValueError):
        PredictorOptions(blend="median")
    with pytest.raises(ValueError):
        PredictorOptions(batch_size=0)
    with pytest.raises(ValueError):
        PredictorOptions(prob_dtype="int8")
    with pytest.raises(TypeError):
        PredictorOptions((32, 64, 64))  # keyword-only
    with pytest.raises(ValueError, match="float16"):
        Predictor(TinyNet(), options=PredictorOptions(device="cpu", precision="float16"))


def test_non_float32_input_is_accepted(tiny_net, rng):
    image = (rng.standard_normal((12, 12, 12)) * 100).astype(np.int16)
    opts = PredictorOptions(patch_size=(8, 8, 8), stride=(5, 5, 5), **CPU32)
    a = Predictor(tiny_net, options=opts).predict(image)
    b = Predictor(tiny_net, options=opts).predict(image.astype(np.float32))
    np.testing.assert_array_equal(a.probabilities, b.probabilities)


def test_float32_probabilities_are_the_normalised_sums_of_the_float16_path(tiny_net, rng):
    # The same numbers in both dtypes, to float16's resolution, summing to 1.
    image = rng.standard_normal((6, 29, 9)).astype(np.float32)     # padded: the view is a crop
    base = dict(patch_size=(8, 12, 10), stride=(5, 7, 6), device="cpu", precision="float32",
                channels_last=False)
    p32 = Predictor(tiny_net, options=PredictorOptions(**base, prob_dtype="float32")).predict(image)
    p16 = Predictor(tiny_net, options=PredictorOptions(**base, prob_dtype="float16")).predict(image)
    assert p32.probabilities.dtype == np.float32 and p32.probabilities.shape == (3, 6, 29, 9)
    np.testing.assert_allclose(p32.probabilities.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(p32.probabilities, p16.probabilities.astype(np.float32), atol=1e-3)
    assert np.array_equal(p32.labels, p16.labels)
    assert np.array_equal(p32.labels, np.argmax(p32.probabilities, axis=0))


@pytest.mark.parametrize("batch_size", [1, 4, 40])
def test_rolling_sums_equal_the_whole_volume_accumulator(tiny_net, rng, batch_size):
    # With emit() the sums of each slice are handed over once, when no later window reaches it;
    # together they are the whole-volume accumulator. A batch of 40 spans several z rows.
    from spinect_core.inference.predictor import _plan_stages, _sliding_window_sum

    image = torch.from_numpy(rng.standard_normal((37, 20, 18)).astype(np.float32))
    patch, stride = (8, 12, 10), (5, 7, 6)
    starts = tiling.tile_starts(tuple(image.shape), patch, stride)
    stages = _plan_stages(device=torch.device("cpu"), precision="float32",
                          batch_size=batch_size, channels_last_option=False, stitch_on_cpu=True,
                          cpu_fallback=False, cpu_precision="float32")
    kw = dict(starts=starts, patch_size=patch, stages=stages, prepare=lambda st: tiny_net,
              weight=None, num_classes=3, progress=None, notes=[])
    with torch.inference_mode():
        whole, _ = _sliding_window_sum(image, **kw)
        pieces = []
        _, _ = _sliding_window_sum(image, **kw, emit=lambda sums, z0: pieces.append(
            (z0, sums.clone())))
    covered = [z for z0, sums in pieces for z in range(z0, z0 + sums.shape[1])]
    assert covered == list(range(37))                    # every slice once, in order
    rolled = torch.cat([sums for _, sums in pieces], dim=1)
    assert torch.allclose(rolled, whole, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("batch_size", [4, 32])
def test_cuda_rolling_accumulator_equals_the_cpu(tiny_net, rng, batch_size):
    # The rolling accumulator on the GPU (stitching there, slabs handed to the host per z row)
    # gives the CPU's labels and probabilities.
    image = rng.standard_normal((45, 70, 66)).astype(np.float32)
    base = dict(patch_size=(16, 24, 24), stride=(10, 15, 15), precision="float32",
                channels_last=False, prob_dtype="float32", batch_size=batch_size)
    cpu = Predictor(tiny_net, options=PredictorOptions(device="cpu", **base)).predict(image)
    gpu = Predictor(tiny_net, options=PredictorOptions(device="cuda", **base)).predict(image)
    assert gpu.device_used.startswith("cuda")
    np.testing.assert_allclose(gpu.probabilities, cpu.probabilities, atol=1e-4)
    assert (gpu.labels == cpu.labels).mean() > 0.999
