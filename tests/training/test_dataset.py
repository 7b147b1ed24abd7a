import numpy as np
import pytest

from spinect_core.labels import STUDY_LABELS
from spinect_core.preprocess import CTNormalisation
from spinect_core.training import PatchSampler, PreparedCase, prepare_case

from tests.training.synthetic import make_case


def _contains_rate(sampler: PatchSampler, n: int) -> float:
    hits = 0
    for _ in range(n):
        _, lab = sampler.sample_patch()
        hits += bool((lab == 2).any())
    return hits / n


def _sparse_case() -> PreparedCase:
    # a 1-voxel-thick "nerve" line in a corner: random 16x32x32 patches of a 32x96x96 case
    # contain it only ~3 % of the time
    labels = np.zeros((32, 96, 96), np.uint8)
    labels[:, 10, 10] = 2
    case = PreparedCase(case_id="s", image=np.zeros(labels.shape, np.float32), labels=labels)
    case.index_locations([2])
    return case


@pytest.mark.parametrize("fraction", [0.0, 1 / 3, 1.0])
def test_foreground_oversampling_rate(fraction):
    sampler = PatchSampler([_sparse_case()], patch_size=(16, 32, 32), batch_size=1,
                           table=STUDY_LABELS, foreground_fraction=fraction, oversample_ids=[2],
                           rng=np.random.default_rng(0))
    rate = _contains_rate(sampler, 1500)
    base = (11 / 65) ** 2  # chance that a uniformly placed patch covers (y=10, x=10)
    expected = fraction + (1 - fraction) * base
    assert abs(rate - expected) < 0.045, (rate, expected)
    if fraction == 1.0:
        assert rate == 1.0


def test_sampler_batches_and_state_roundtrip():
    case = prepare_case(make_case("a", 1), spacing_mm=(1, 1, 1),
                        normalisation=CTNormalisation(scheme="zscore"), patch_size=(16, 32, 32),
                        oversample_ids=[2])
    sampler = PatchSampler([case], patch_size=(16, 32, 32), batch_size=3, table=STUDY_LABELS,
                           foreground_fraction=0.5, oversample_ids=[2],
                           rng=np.random.default_rng(4))
    state = sampler.get_state()
    x1, y1 = sampler.sample()
    assert x1.shape == (3, 1, 16, 32, 32) and x1.dtype == np.float32
    assert y1.shape == (3, 16, 32, 32) and y1.dtype == np.int64
    sampler.set_state(state)
    x2, y2 = sampler.sample()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_prepare_case_pads_small_cases():
    case = prepare_case(make_case("a", 1), spacing_mm=(2, 2, 2),
                        normalisation=CTNormalisation(scheme="zscore"), patch_size=(32, 32, 32))
    assert case.image.shape == (32, 32, 32) and case.labels.shape == (32, 32, 32)
    assert case.labels.max() == 2


def test_unlabelled_is_never_a_sampling_target_and_survives_preparation():
    from spinect_core.training import UNLABELLED

    labels = np.full((32, 96, 96), UNLABELLED, np.uint8)
    labels[:, 10, 10] = 2
    case = PreparedCase(case_id="u", image=np.zeros(labels.shape, np.float32), labels=labels)
    case.index_locations([2, UNLABELLED])
    assert set(case.class_locations) == {2}
    sampler = PatchSampler([case], patch_size=(16, 32, 32), batch_size=1, table=STUDY_LABELS,
                           foreground_fraction=1.0, oversample_ids=[UNLABELLED, 2],
                           rng=np.random.default_rng(0))
    assert sampler.oversample_ids == (2,)
    assert _contains_rate(sampler, 50) == 1.0
    # resampling onto the model grid is nearest neighbour: 255 stays 255, nothing in between
    src = make_case("a", 1)
    arr = src.labels.array.copy()
    arr[10:20, 5:40, 5:40] = UNLABELLED
    src.labels = src.labels.with_array(arr)
    prepared = prepare_case(src, spacing_mm=(1.5, 1.5, 2.0),
                            normalisation=CTNormalisation(scheme="zscore"),
                            patch_size=(16, 32, 32), oversample_ids=[2])
    assert set(np.unique(prepared.labels).tolist()) == {0, 1, 2, UNLABELLED}
