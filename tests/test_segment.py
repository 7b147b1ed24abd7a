"""The segmentation pipeline: preprocessing, sliding window and mapping back onto the input grid."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import Cancelled, InputError
from spinect_core.metrics.overlap import dice
from spinect_core.segment import SegmentOptions, Segmenter
from tests.segment_helpers import sphere_ct, threshold_model


def test_known_answer_on_an_oblique_anisotropic_ct() -> None:
    ct, truth = sphere_ct()
    result = Segmenter(threshold_model(), options=SegmentOptions(precision="float32")).segment(ct)
    assert result.labels.same_grid(ct)
    assert result.labels.array.dtype == np.uint8
    bone = result.labels.array == result.table.id_of("bone")
    # 1 mm model grid vs a 0.7 x 0.7 x 2.5 mm input: only boundary voxels may differ.
    assert dice(bone, truth) > 0.95
    assert not np.any(result.labels.array == result.table.id_of("nerve"))


def test_probabilities_on_input_grid_sum_to_one_and_agree_with_labels() -> None:
    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    options = SegmentOptions(precision="float32", keep_probabilities=True, blend="gaussian")
    result = Segmenter(threshold_model(), options=options).segment(ct)
    probs = result.probabilities
    assert probs is not None and probs.dtype == np.float16
    assert probs.shape == (3, *ct.array.shape)
    np.testing.assert_allclose(probs.astype(np.float32).sum(axis=0), 1.0, atol=2e-3)
    # argmax of the stored (rounded) probabilities agrees with the labels except at float16 ties
    agree = np.mean(np.argmax(probs, axis=0) == result.labels.array)
    assert agree > 0.999


def test_cancel_stops_the_run() -> None:
    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    calls = []

    def cancel_when_segmenting(fraction: float, message: str) -> bool:
        calls.append(message)
        return "segmenting" not in message

    with pytest.raises(Cancelled):
        Segmenter(threshold_model()).segment(ct, progress=cancel_when_segmenting)
    assert any("segmenting" in m for m in calls)


def test_progress_is_monotone_and_complete() -> None:
    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    fractions: list[float] = []
    Segmenter(threshold_model()).segment(ct, progress=lambda f, m: fractions.append(f) or True)
    assert fractions[-1] == 1.0
    assert all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:]))


def test_stride_larger_than_patch_is_refused() -> None:
    with pytest.raises(InputError, match="stride"):
        Segmenter(threshold_model(), options=SegmentOptions(stride_zyx=(40, 40, 40)))
