"""The segmentation pipeline: preprocessing, sliding window and mapping back onto the input grid."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spinect_core.errors import Cancelled, InputError
from spinect_core.metrics.overlap import dice
from spinect_core.segment import DEFAULT_BONE_MODE, SegmentOptions, Segmenter
from spinect_core.volume import Volume
from tests.segment_helpers import NORMALISATION, sphere_ct, threshold_model, top_face_model


def test_known_answer_on_an_oblique_anisotropic_ct() -> None:
    ct, truth = sphere_ct()
    # The network's own bone (bone source "network"): the pipeline's geometry is under test.
    result = Segmenter(threshold_model(), options=SegmentOptions(precision="float32",
                                                                 bone="network")).segment(ct)
    assert result.labels.same_grid(ct)
    assert result.labels.array.dtype == np.uint8
    bone = result.labels.array == result.table.id_of("bone")
    # 1 mm model grid vs a 0.7 x 0.7 x 2.5 mm input: only boundary voxels may differ.
    assert dice(bone, truth) > 0.95
    assert not np.any(result.labels.array == result.table.id_of("nerve"))


def _block_ct() -> Volume:
    """A 700 HU block (z 4-9) in soft tissue, 1 mm voxels, stored head up (identity); its faces
    lie inside every sliding window of a 16-slice patch, away from the windows' borders."""
    array = np.full((24, 40, 40), 40, np.int16)
    array[4:10, 12:28, 12:28] = 700
    array[:, :6, :] = -1000                       # air in front, for the body crop
    return Volume(array=array, spacing_mm=[1.0, 1.0, 1.0], origin_lps_mm=[-20.0, 10.0, 200.0])


def test_the_network_sees_the_ct_on_the_patients_axes_however_it_is_stored() -> None:
    """The same CT stored feet first, or as sagittal slices, gives the same labels at the same
    places: the network is shown the array on the patient's axes (a real CT stored feet first
    was planned 12.8 mm from L5/S1 where as stored it was 2.6 mm). The test network marks the
    top faces of bright blocks as the array shows them."""
    ct = _block_ct()
    segmenter = Segmenter(top_face_model(), options=SegmentOptions(precision="float32",
                                                                   bone="network",
                                                                   keep_probabilities=True))
    head_up = segmenter.segment(ct)
    bone = head_up.labels.array == head_up.table.id_of("bone")
    assert set(np.nonzero(bone)[0]) == {9}                  # the block's superior face
    # Feet first: slice order reversed, the z axis pointing down.
    nz = ct.array.shape[0]
    feet_first = Volume(array=np.ascontiguousarray(ct.array[::-1]), spacing_mm=ct.spacing_mm,
                        origin_lps_mm=ct.index_to_lps(np.array([0.0, 0.0, nz - 1])),
                        direction=np.diag([1.0, 1.0, -1.0]))
    flipped = segmenter.segment(feet_first)
    assert flipped.labels.same_grid(feet_first)
    assert np.array_equal(flipped.labels.array[::-1], head_up.labels.array)
    assert np.allclose(flipped.probabilities[:, ::-1], head_up.probabilities, atol=1e-3)
    # Sagittal slices, top down: array axes (L, -S, P), so index x runs along P, y along -S and
    # z along L.
    sagittal_array = np.ascontiguousarray(np.transpose(ct.array, (2, 0, 1))[:, ::-1])
    sagittal = Volume(array=sagittal_array, spacing_mm=ct.spacing_mm,
                      origin_lps_mm=ct.index_to_lps(np.array([0.0, 0.0, nz - 1])),
                      direction=np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))
    side = segmenter.segment(sagittal)
    assert np.array_equal(np.transpose(side.labels.array[:, ::-1], (1, 2, 0)),
                          head_up.labels.array)


def test_probabilities_on_input_grid_sum_to_one_and_agree_with_labels() -> None:
    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    options = SegmentOptions(precision="float32", keep_probabilities=True, blend="gaussian",
                             bone="network")
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


# --- the bone source: network, CT bone model, or both fused ------------------------------------
class _SecondChoiceNet(torch.nn.Module):
    """Bone above 300 HU with nerve as its runner-up there; background below.

    Logits (1x1x1 convolution of the normalised HU x, threshold t): background 0, bone 40 (x - t),
    nerve 20 (x - t). Above t bone wins and nerve comes second, so a voxel that loses the bone
    class to the CT bone model must become nerve, not background.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 3, kernel_size=1)
        t = 300.0 / NORMALISATION["std_hu"]
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[1, 0], self.conv.bias[1] = 40.0, -40.0 * t
            self.conv.weight[2, 0], self.conv.bias[2] = 20.0, -20.0 * t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _second_choice_model():
    loaded = threshold_model()
    return dataclasses.replace(loaded, model=_SecondChoiceNet().eval())


@pytest.fixture(scope="module")
def bone_and_vessel_ct():
    """Soft tissue with a bone ball (cortex 1200 HU, 300 HU inside) and, 25 mm away, a
    homogeneous contrast-filled tube (350 HU, about 7 ml) that the CT bone model rejects."""
    shape = (48, 80, 96)
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    ct = np.full(shape, 40, np.int16)
    ct[:, :5, :] = -1000
    r = np.sqrt((zz - 24) ** 2 + (yy - 40) ** 2 + (xx - 30) ** 2)
    ct[r <= 11] = 300
    ct[(r <= 11) & (r > 9)] = 1200
    tube = (np.sqrt((yy - 40) ** 2 + (xx - 70) ** 2) <= 6.5) & (zz >= 4) & (zz < 44)
    ct[tube] = 350
    vol = Volume(array=ct, spacing_mm=np.array([1.0, 1.0, 1.0]), origin_lps_mm=np.zeros(3),
                 direction=np.eye(3))
    return vol, r <= 11, tube


def _segment(ct, bone: str, **kw):
    options = SegmentOptions(precision="float32", bone=bone, **kw)
    return Segmenter(_second_choice_model(), options=options).segment(ct)


def test_bone_source_network_is_the_networks_label_map(bone_and_vessel_ct) -> None:
    ct, ball, tube = bone_and_vessel_ct
    result = _segment(ct, "network")
    bone = result.labels.array == 1
    assert result.bone_source == "network" and result.ct_bone is None
    assert result.network_bone is None
    assert np.array_equal(result.network_bone_mask(), bone)
    assert bone[tube].mean() > 0.95        # the network calls the vessel bone
    assert "ct_bone" not in result.timings_s
    assert result.summary()["bone_source"] == "network" and result.summary()["ct_bone"] is None


def test_bone_source_ct_takes_the_ct_bone_model_and_keeps_the_runner_up(bone_and_vessel_ct) -> None:
    ct, ball, tube = bone_and_vessel_ct
    network = _segment(ct, "network").labels.array
    result = _segment(ct, "ct")
    labels = result.labels.array
    ct_bone = result.ct_bone.mask.array.astype(bool)
    assert result.bone_source == "ct"
    assert np.array_equal(labels == 1, ct_bone)             # bone is exactly the CT's
    assert ct_bone[ball].mean() > 0.99 and not ct_bone[tube].any()
    # The vessel the network called bone takes its runner-up class (nerve), not background.
    lost = (network == 1) & ~ct_bone
    assert lost[tube].all() and np.all(labels[lost] == 2)
    # The network's own bone is kept for the agreement check; the rest of its map is untouched.
    assert result.network_bone_bits is not None and result.network_bone_bits.nbytes * 8 < network.size + 8
    assert np.array_equal(result.network_bone_mask(), network == 1)
    assert np.array_equal(labels[(network != 1) & ~ct_bone], network[(network != 1) & ~ct_bone])
    summary = result.summary()
    assert summary["bone_source"] == "ct"
    assert set(summary["ct_bone"]["thresholds_hu"]) >= {"seed", "grow", "soft_tissue_peak"}
    assert result.timings_s["ct_bone"] > 0.0


def test_bone_source_fused_adds_network_bone_only_near_the_ct_bone(bone_and_vessel_ct) -> None:
    ct, ball, tube = bone_and_vessel_ct
    network = _segment(ct, "network").labels.array == 1
    result = _segment(ct, "fused", keep_probabilities=True)
    bone = result.labels.array == 1
    ct_bone = result.ct_bone.mask.array.astype(bool)
    assert result.bone_source == "fused"
    assert np.all(bone[ct_bone]) and np.all(bone <= (ct_bone | network))
    assert not bone[tube].any()                              # far from any CT bone: dropped
    assert np.all(result.labels.array[tube] == 2)
    assert result.probabilities is not None and result.probabilities.shape[0] == 3


@pytest.mark.parametrize("mode", ["ct", "fused"])
def test_the_network_once_then_combined_equals_segment(bone_and_vessel_ct, mode) -> None:
    """segment_network + combine gives segment's label map, leaves the network's untouched and
    combines again with other CT bone model options (what the benchmarks re-measure)."""
    from spinect_core.bone import CTBoneOptions

    ct, _, tube = bone_and_vessel_ct
    segmenter = Segmenter(_second_choice_model(),
                          options=SegmentOptions(precision="float32", bone=mode))
    whole = segmenter.segment(ct)
    network = segmenter.segment_network(ct)
    before = network.segmentation.labels.array.copy()
    combined = segmenter.combine(network, ct, mode=mode)
    assert combined.bone_source == mode and combined.ct_bone is not None
    assert np.array_equal(combined.labels.array, whole.labels.array)
    assert np.array_equal(combined.network_bone_mask(), whole.network_bone_mask())
    assert np.array_equal(network.segmentation.labels.array, before)
    assert (before == 1)[tube].all()                      # the network's own bone
    # Other options, same network run: components under a litre dropped, no CT bone is left.
    other = segmenter.combine(network, ct, mode=mode,
                              ct_bone=CTBoneOptions(min_component_ml=1000.0))
    assert not np.array_equal(other.labels.array, combined.labels.array)
    with pytest.raises(InputError, match="mode 'ct' or 'fused'"):
        segmenter.combine(network, ct, mode="network")  # type: ignore[arg-type]


def test_progress_with_the_ct_bone_model_is_monotone_and_names_it(bone_and_vessel_ct) -> None:
    ct, _, _ = bone_and_vessel_ct
    calls: list[tuple[float, str]] = []
    Segmenter(_second_choice_model(), options=SegmentOptions(bone="fused")).segment(
        ct, progress=lambda f, m: calls.append((f, m)) or True)
    fractions = [f for f, _ in calls]
    assert fractions[-1] == 1.0 and all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:]))
    ct_steps = [f for f, m in calls if m.startswith("CT bone model")]
    assert ct_steps and 0.8 <= min(ct_steps) and max(ct_steps) < 1.0


def test_cancel_during_the_ct_bone_model(bone_and_vessel_ct) -> None:
    ct, _, _ = bone_and_vessel_ct
    with pytest.raises(Cancelled):
        Segmenter(_second_choice_model(), options=SegmentOptions(bone="ct")).segment(
            ct, progress=lambda f, m: not m.startswith("CT bone model"))


def test_unknown_bone_source_is_refused() -> None:
    with pytest.raises(InputError, match="bone must be one of network, ct, fused"):
        SegmentOptions(bone="both")
    assert SegmentOptions().bone == DEFAULT_BONE_MODE in ("network", "ct", "fused")
