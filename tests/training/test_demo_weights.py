"""The bundled demonstration weights: present, honest about what they are, and accurate.

The default run checks the shipped file and one small unseen phantom; the slow test measures the
issue's accuracy targets on the ten test phantoms and the chest CT's held-out slab, and that the
numbers in the model card are the ones measured.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.model import default_weights_path, load_default_weights, load_weights
from spinect_core.training import demo_weights
from spinect_core.training.demo_weights import (TEST_SEEDS, TRAIN_SEEDS, VAL_SEEDS,
                                                evaluate_on_phantoms, package_weights)
from tests.segment_helpers import tiny_unet_weights

#: Floors of the CT bone model's bone Dice on real CT (issue #11; the lead raises them as the
#: model improves; the issue's targets are 0.85 lumbar and 0.90 chest).
CT_MODEL_LUMBAR_DICE_FLOOR = 0.70  # lumbar crop, within 3 mm of the labelled vertebrae
CT_MODEL_CHEST_DICE_FLOOR = 0.60  # chest CT, held-out caudal slab


@pytest.fixture(scope="module")
def bundled():
    return load_default_weights()


def test_seed_sets_are_disjoint() -> None:
    assert not set(TRAIN_SEEDS) & set(TEST_SEEDS)
    assert not set(VAL_SEEDS) & set(TEST_SEEDS)
    assert not set(TRAIN_SEEDS) & set(VAL_SEEDS)
    assert len(TEST_SEEDS) >= 10


def test_bundled_weights_are_small_and_say_they_are_a_demonstration(bundled) -> None:
    path = default_weights_path()
    assert path.stat().st_size <= 50 * 1024 * 1024
    card = bundled.card
    assert card.labels == DEFAULT_LABELS
    assert "DEMONSTRATION" in card.description and "synthetic" in card.description
    assert card.tensors_dtype == "float16"
    # The card reports the study's Table 2 metrics per class on the unseen phantoms.
    summary = card.metrics["test_phantoms"]["summary"]
    for name in ("bone", "nerve", "disc", "dura"):
        for metric in ("dice", "iou", "pixel_accuracy"):
            assert 0.0 <= summary[name][metric]["mean"] <= 1.0
    assert card.metrics["test_phantoms"]["seeds"] == list(TEST_SEEDS)
    assert 0.0 <= card.metrics["real_ct_chest_bone"]["bone"]["dice"] <= 1.0


def test_bundled_weights_segment_an_unseen_phantom_far_above_chance() -> None:
    from spinect_core.phantom import generate_phantom
    from spinect_core.phantom.params import PhantomOptions
    from spinect_core.metrics.evaluate import compare_label_maps
    from spinect_core.segment import Segmenter

    phantom = generate_phantom(seed=TEST_SEEDS[3], spacing_mm=(1.0, 1.0, 1.0),
                               options=PhantomOptions(crop_mm=72.0))
    seg = Segmenter.from_weights(None).segment(phantom.ct)
    metrics = compare_label_maps(seg.labels, seg.table, phantom.labels, DEFAULT_LABELS)
    # Chance level is each class's voxel share (a few per cent for nerve): far above it.
    assert metrics["bone"].dice > 0.85
    assert metrics["nerve"].dice > 0.6


def test_evaluate_and_package_round_trip(tmp_path) -> None:
    weights = tiny_unet_weights(tmp_path / "tiny.safetensors")
    result = evaluate_on_phantoms(weights, seeds=[TEST_SEEDS[0]], spacing_mm=(3.0, 3.0, 3.0))
    assert result["seeds"] == [TEST_SEEDS[0]]
    case = result["per_case"][0]["classes"]
    # The tiny test network outputs the study's 3 classes: bone and nerve are compared.
    assert {"bone", "nerve"} <= set(case)
    assert 0.0 <= result["summary"]["bone"]["dice"]["mean"] <= 1.0

    metrics = {"test_phantoms": {"seeds": result["seeds"], "summary": result["summary"]}}
    out = package_weights(weights, tmp_path / "pkg" / "demo.safetensors", metrics=metrics)
    loaded = load_weights(out)
    assert loaded.card.tensors_dtype == "float16"
    assert loaded.card.description == demo_weights.DEMO_DESCRIPTION
    assert loaded.card.metrics["test_phantoms"]["seeds"] == [TEST_SEEDS[0]]
    with pytest.raises(Exception, match="exists"):
        package_weights(weights, out, metrics=metrics)


def test_table2_formatting() -> None:
    summary = {"bone": {m: {"mean": 0.9, "sd": 0.01} for m in ("dice", "iou", "pixel_accuracy")}}
    text = demo_weights.format_table2(summary)
    assert "| bone | 0.900 +- 0.010 | 0.900 +- 0.010 | 0.900 +- 0.010 |" in text


@pytest.mark.slow
def test_bundled_weights_reach_the_targets_on_ten_unseen_phantoms(bundled) -> None:
    """Issue #3: Dice bone >= 0.95 and nerve >= 0.90 on >= 10 phantoms never used in training."""
    result = evaluate_on_phantoms(None, seeds=TEST_SEEDS)
    summary = result["summary"]
    recorded = bundled.card.metrics["test_phantoms"]["summary"]
    for name in ("bone", "nerve", "disc", "dura"):
        # What the card says is what this code measures (float16 storage included).
        assert summary[name]["dice"]["mean"] == pytest.approx(recorded[name]["dice"]["mean"],
                                                              abs=0.005)
    assert summary["bone"]["dice"]["mean"] >= 0.95, json.dumps(summary["bone"]["dice"])
    assert summary["nerve"]["dice"]["mean"] >= 0.90, json.dumps(summary["nerve"]["dice"])


@pytest.mark.slow
def test_bundled_weights_bone_dice_on_the_real_chest_ct(bundled, shared_data) -> None:
    result = demo_weights.evaluate_bone_on_chest(None, shared_data / "real_ct_chest")
    recorded = bundled.card.metrics["real_ct_chest_bone"]["bone"]["dice"]
    assert result["bone"]["dice"] == pytest.approx(recorded, abs=0.005)
    assert np.isfinite(result["bone"]["dice"])


def test_decision_weights_fit_undoes_an_over_predicted_class() -> None:
    """A class predicted too thick (its probability inflated on a shell around it) gets a factor
    below 1 that restores the reference, and the Dice goes up."""
    from spinect_core.labels import LabelTable
    from spinect_core.training.calibration import fit_decision_weights, mean_dice

    table = LabelTable({0: "background", 1: "nerve"})
    zz, yy, xx = np.indices((8, 40, 40))
    r = np.hypot(yy - 20, xx - 20)
    reference = (r <= 6).astype(np.uint8)
    p_nerve = np.clip(1.2 - r / 10.0, 0.0, 1.0)  # > 0.5 out to r = 7: one voxel too thick
    probs = np.stack([1.0 - p_nerve, p_nerve]).astype(np.float32)
    weights, before, after = fit_decision_weights([probs], [reference], table)
    assert weights["nerve"] < 1.0
    assert after > before
    assert mean_dice([probs], [reference], np.array([1.0, weights["nerve"]])) == pytest.approx(after)


def test_segmenter_applies_the_cards_decision_weights(tmp_path) -> None:
    import dataclasses

    from spinect_core.segment import Segmenter
    from tests.segment_helpers import sphere_ct

    weights = tiny_unet_weights(tmp_path / "tiny.safetensors")
    ct, _ = sphere_ct(shape_zyx=(12, 64, 64))
    plain = Segmenter.from_weights(weights)
    labels = plain.segment(ct).labels.array
    # A factor that makes bone win everywhere it has any probability.
    biased = Segmenter.from_weights(weights)
    biased.card = dataclasses.replace(biased.card, decision_weights={"bone": 1e6})
    assert (biased.segment(ct).labels.array == 1).sum() > (labels == 1).sum()


# --- real-CT bone per bone source (issue #11) ------------------------------------------------
def test_lumbar_band_metric_known_answers() -> None:
    from spinect_core.training.demo_weights import bone_metrics_near_reference

    sp = (2.5, 1.0, 1.0)  # z, y, x mm
    ref = np.zeros((12, 30, 30), bool)
    ref[4:8, 10:20, 10:20] = True
    far = np.zeros_like(ref)
    far[:, 26:, 26:] = True  # unlabelled bone at the crop's edge, > 3 mm from the reference
    # the reference plus bone outside the 3 mm band: a perfect score
    m = bone_metrics_near_reference(ref | far, ref, sp)
    assert m["dice"] == 1.0 and m["recall"] == 1.0 and m["precision"] == 1.0
    assert m["n_pred_outside_band"] == far.sum() and m["band_mm"] == 3.0
    # over-segmentation inside the band counts: one slice above (2.5 mm away) is in the band,
    # two slices above (5 mm) are not
    thick = ref.copy()
    thick[8:10, 10:20, 10:20] = True
    m = bone_metrics_near_reference(thick, ref, sp)
    assert m["n_pred"] == ref.sum() + 100 and m["n_pred_outside_band"] == 100
    assert m["dice"] == pytest.approx(2 * 400 / (500 + 400))
    assert m["precision"] == pytest.approx(0.8) and m["recall"] == 1.0
    # half the reference missed: recall 0.5, precision 1
    half = ref.copy()
    half[4:6] = False
    m = bone_metrics_near_reference(half, ref, sp)
    assert m["recall"] == 0.5 and m["precision"] == 1.0 and m["dice"] == pytest.approx(2 / 3)
    assert bone_metrics_near_reference(np.zeros_like(ref), ref, sp)["precision"] is None


def test_threshold_baseline_fills_holes_slice_by_slice() -> None:
    from spinect_core.training.demo_weights import threshold_bone_baseline
    from spinect_core.volume import Volume

    hu = np.full((6, 20, 20), 40, np.int16)
    hu[1:5, 5:15, 5:15] = 500
    hu[1:5, 8:12, 8:12] = 60  # a cancellous-like hole inside each slice's ring
    hu[0, 8:12, 8:12] = 300  # dense but only in one slice: no hole to fill there
    mask = threshold_bone_baseline(Volume(array=hu, spacing_mm=(1, 1, 1),
                                          origin_lps_mm=(0, 0, 0)))
    expected = np.zeros(hu.shape, bool)
    expected[1:5, 5:15, 5:15] = True
    expected[0, 8:12, 8:12] = True
    np.testing.assert_array_equal(mask, expected)


def _real_ct_folders(root):
    """A tiny 'chest' and 'lumbar crop' pair: soft tissue with a bone sphere (the labelled
    vertebra) and, in the crop, a second bone far from it that the crop does not label."""
    import SimpleITK as sitk

    from spinect_core.io import write_image
    from tests.segment_helpers import sphere_ct

    ct, sphere = sphere_ct(shape_zyx=(16, 64, 64), radius_mm=8.0)
    chest, lumbar = root / "chest", root / "lumbar"
    chest.mkdir()
    lumbar.mkdir()
    write_image(ct, chest / "ct.nii.gz")
    write_image(ct.with_array(sphere.astype(np.uint8)), chest / "labels.nii.gz")
    (chest / "structures.csv").write_text("id,structure\n1,vertebrae_T1\n")
    arr = ct.array.copy()
    arr[:, 50:60, 50:60] = 700
    write_image(ct.with_array(arr), lumbar / "ct.nii.gz")
    write_image(ct.with_array((sphere * 22).astype(np.uint8)), lumbar / "vertebrae.nii.gz")
    assert sitk.ReadImage(str(lumbar / "vertebrae.nii.gz")).GetSize() == (64, 64, 16)
    return chest, lumbar, sphere


def test_real_ct_evaluation_runs_every_source_and_the_card_records_it(tmp_path, capsys) -> None:
    from spinect_core.training.demo_weights import (BASELINE, evaluate_bone_on_real_ct,
                                                    format_real_ct_table)

    weights = tiny_unet_weights(tmp_path / "tiny.safetensors")
    chest, lumbar, _ = _real_ct_folders(tmp_path)
    result = evaluate_bone_on_real_ct(weights, chest_dir=chest, lumbar_dir=lumbar,
                                      chest_z_range=(0.0, 1.0))
    assert result["modes"] == ["network", "ct", "fused"]
    for name in ("real_ct_chest", "real_ct_lumbar_crop"):
        rows = result[name]["bone"]
        assert set(rows) == {"network", "ct", "fused", BASELINE}
        for row in rows.values():
            assert 0.0 <= row["dice"] <= 1.0 and row["recall"] == row["pixel_accuracy"]
    # the yardstick finds the sphere exactly; in the crop the second bone lies outside the band
    assert result["real_ct_chest"]["bone"][BASELINE]["dice"] == 1.0
    crop = result["real_ct_lumbar_crop"]["bone"][BASELINE]
    assert crop["dice"] == 1.0 and crop["n_pred_outside_band"] == 16 * 10 * 10
    # the CT bone model finds that sphere too
    assert result["real_ct_chest"]["bone"]["ct"]["dice"] > 0.8
    table = format_real_ct_table(result)
    assert "| HU > 120 + hole filling | 1.000 |" in table and "| fused |" in table

    out = package_weights(weights, tmp_path / "pkg" / "demo.safetensors",
                          real_ct_metrics=json.loads(json.dumps(result)))
    card = load_weights(out).card
    recorded = card.metrics["real_ct_bone"]
    assert recorded["real_ct_lumbar_crop"]["bone"][BASELINE]["dice"] == 1.0
    assert set(recorded["real_ct_chest"]["bone"]["fused"]) == {
        "dice", "iou", "precision", "recall", "pixel_accuracy"}
    # the command line: the same table, the JSON, and `package --real-ct` records it
    assert demo_weights.main(["real-ct", str(weights), "--chest", str(chest), "--lumbar",
                              str(lumbar), "--modes", "ct", "--json",
                              str(tmp_path / "real.json")]) == 0
    assert "| ct |" in capsys.readouterr().out
    saved = json.loads((tmp_path / "real.json").read_text())
    assert saved["modes"] == ["ct"] and set(saved["real_ct_lumbar_crop"]["bone"]) == {
        "ct", BASELINE}
    assert demo_weights.main(["package", str(weights), str(tmp_path / "cli.safetensors"),
                              "--real-ct", str(tmp_path / "real.json")]) == 0
    assert "real_ct_bone" in load_weights(tmp_path / "cli.safetensors").card.metrics
    with pytest.raises(ValueError, match="modes"):
        evaluate_bone_on_real_ct(weights, modes=("bone",), lumbar_dir=lumbar)


def _ct_model_on_lumbar_crop(shared_data):
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.io import load_ct
    from spinect_core.io.labelmap import read_label_image

    src = shared_data / "real_ct_lumbar_crop"
    if not (src / "ct.nii.gz").is_file():
        pytest.skip(f"{src} is absent")
    ct = load_ct(src / "ct.nii.gz")
    reference = read_label_image(src / "vertebrae.nii.gz", exact_integers=True).array > 0
    return ct, reference, segment_bone_from_ct(ct).mask.array


def test_ct_bone_model_on_the_real_lumbar_crop(shared_data) -> None:
    from spinect_core.training.demo_weights import (bone_metrics_near_reference,
                                                    threshold_bone_baseline)

    ct, reference, bone = _ct_model_on_lumbar_crop(shared_data)
    sp = ct.spacing_mm[::-1]
    model = bone_metrics_near_reference(bone, reference, sp)
    assert model["dice"] >= CT_MODEL_LUMBAR_DICE_FLOOR, model
    # the harness reproduces the yardstick on this crop (Dice 0.75, recall 0.74)
    base = bone_metrics_near_reference(threshold_bone_baseline(ct), reference, sp)
    assert base["dice"] == pytest.approx(0.75, abs=0.01)
    assert base["recall"] == pytest.approx(0.74, abs=0.01)


def test_ct_bone_model_on_the_real_chest_ct_held_out_slab(shared_data) -> None:
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.io import load_ct
    from spinect_core.training.demo_weights import CHEST_TEST_Z, bone_metrics
    from spinect_core.training.real_ct import axial_slab, bone_mask_reference

    src = shared_data / "real_ct_chest"
    if not (src / "ct.nii.gz").is_file():
        pytest.skip(f"{src} is absent")
    slab = axial_slab(load_ct(src / "ct.nii.gz"), CHEST_TEST_Z)
    reference = bone_mask_reference(src / "labels.nii.gz", src / "structures.csv",
                                    z_range=CHEST_TEST_Z)
    model = bone_metrics(segment_bone_from_ct(slab).mask.array, reference)
    assert model["dice"] >= CT_MODEL_CHEST_DICE_FLOOR, model


@pytest.mark.slow
def test_bundled_weights_on_real_ct_match_the_card(bundled, shared_data) -> None:
    """The real-CT harness with the bundled weights: its network row is the chest Dice the card
    records, and what the card records under real_ct_bone (once packaged) is what it measures."""
    from spinect_core.training.demo_weights import evaluate_bone_on_real_ct

    result = evaluate_bone_on_real_ct(None, chest_dir=shared_data / "real_ct_chest",
                                      lumbar_dir=shared_data / "real_ct_lumbar_crop")
    chest = result["real_ct_chest"]["bone"]
    assert chest["network"]["dice"] == pytest.approx(
        bundled.card.metrics["real_ct_chest_bone"]["bone"]["dice"], abs=0.005)
    recorded = bundled.card.metrics.get("real_ct_bone")
    if recorded is not None:
        for name in ("real_ct_chest", "real_ct_lumbar_crop"):
            for mode, row in recorded[name]["bone"].items():
                assert result[name]["bone"][mode]["dice"] == pytest.approx(row["dice"], abs=0.005)


def test_seed_lists_parse_ranges_and_refuse_what_is_not_a_seed() -> None:
    """The command lines' seed lists (demo_weights, bundled_recipe and the benchmarks share
    ``parse_seeds``)."""
    from spinect_core.training.demo_weights import parse_seeds

    assert parse_seeds("0-2,5,7-8") == (0, 1, 2, 5, 7, 8)
    assert parse_seeds(" 3 , ,100-101") == (3, 100, 101)
    assert parse_seeds("") == ()
    for bad in ("x", "5-3", "-2", "1-2-3"):
        with pytest.raises(ValueError, match="not a seed"):
            parse_seeds(bad)
