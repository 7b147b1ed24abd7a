import json

import numpy as np
import pytest
import torch

from spinect_core.errors import Cancelled, SpinectError
from spinect_core.model import load_weights
from spinect_core.training import AugmentOptions, TrainOptions, train
from spinect_core.training.checkpoint import latest_checkpoint, load_checkpoint, load_tensors

from tests.training.synthetic import make_case, tiny_options


@pytest.fixture(scope="module")
def data():
    return [make_case("a", 1), make_case("b", 2)], [make_case("v", 5)]


def test_loss_falls_and_weights_load(tmp_path, data):
    cases, val = data
    result = train(cases, val_cases=val, out_dir=tmp_path,
                   options=tiny_options(iterations=30, val_every=15))
    first, last = np.mean(result.losses[:6]), np.mean(result.losses[-6:])
    assert len(result.losses) == 30
    assert last < 0.8 * first, (first, last)

    loaded = load_weights(tmp_path / "model.safetensors")
    card = loaded.card
    assert card.labels.names == {0: "background", 1: "bone", 2: "nerve"}
    assert card.patch_size_zyx == (16, 32, 32)
    assert card.normalisation["scheme"] == "ct_percentile_zscore"
    assert set(card.metrics["validation"]) == {"bone", "nerve"}
    for m in card.metrics["validation"].values():
        assert set(m) == {"dice", "iou", "pixel_accuracy"}
        assert 0.0 <= m["dice"] <= 1.0
    assert card.metrics["best_iteration"] in (15, 30)
    assert card.training["recipe"]["iterations"] == 30
    assert card.training["data"]["train"]["case_ids"] == ["a", "b"]
    # the weights written are the best validated model
    best = load_tensors(tmp_path / "checkpoints" / "best_model.safetensors")
    for k, v in loaded.model.state_dict().items():
        torch.testing.assert_close(v, best[k], rtol=0, atol=0)
    for name in ("training_log.csv", "training_log.json", "training_curves.png"):
        assert (tmp_path / name).is_file()
    # the output folder is not overwritten by accident
    with pytest.raises(SpinectError):
        train(cases, out_dir=tmp_path, options=tiny_options(iterations=1))


def _model_tensors(path):
    return {k: v for k, v in load_checkpoint(path).tensors.items() if k.startswith("model.")}


def test_resume_continues_identically(tmp_path, data):
    cases, val = data
    opts = dict(augment=AugmentOptions(noise_p=0.5, flip_p=0.5, flip_axes="all"),
                foreground_fraction=0.3, loss="dice_ce")
    straight = train(cases, val_cases=val, out_dir=tmp_path / "straight",
                     options=tiny_options(iterations=8, **opts))
    first = train(cases, val_cases=val, out_dir=tmp_path / "resumed",
                  options=tiny_options(iterations=4, **opts))
    assert first.iterations == 4
    resumed = train(cases, val_cases=val, out_dir=tmp_path / "resumed", resume=True,
                    options=tiny_options(iterations=8, **opts))
    assert resumed.start_iteration == 4 and resumed.iterations == 8
    np.testing.assert_allclose(resumed.losses, straight.losses[4:], rtol=1e-5)
    a = _model_tensors(latest_checkpoint(tmp_path / "straight" / "checkpoints"))
    b = _model_tensors(latest_checkpoint(tmp_path / "resumed" / "checkpoints"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert straight.best_iteration == resumed.best_iteration
    wa = load_weights(tmp_path / "straight" / "model.safetensors").model.state_dict()
    wb = load_weights(tmp_path / "resumed" / "model.safetensors").model.state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    # the log continues rather than restarting
    rows = json.loads((tmp_path / "resumed" / "training_log.json").read_text())["rows"]
    assert [r["iteration"] for r in rows if r["kind"] == "train"] == list(range(1, 9))
    # options that change the iterations already done are refused
    with pytest.raises(SpinectError, match="foreground_fraction"):
        train(cases, val_cases=val, out_dir=tmp_path / "resumed", resume=True,
              options=tiny_options(iterations=9, **{**opts, "foreground_fraction": 0.5}))


def test_cancel_writes_a_checkpoint(tmp_path, data):
    cases, _ = data
    calls = []

    def progress(fraction, message):
        calls.append(message)
        return "iteration 3/" not in message

    with pytest.raises(Cancelled):
        train(cases, out_dir=tmp_path, options=tiny_options(iterations=8), progress=progress)
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))
    assert ckpt.iteration == 3
    result = train(cases, out_dir=tmp_path, options=tiny_options(iterations=5), resume=True)
    assert result.start_iteration == 3 and len(result.losses) == 2
    assert result.best_iteration is None and (tmp_path / "model.safetensors").is_file()


def test_options_roundtrip_and_presets():
    for opts in (TrainOptions(), TrainOptions.improved(), TrainOptions.fast(), tiny_options()):
        assert TrainOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts
    assert TrainOptions().stride == (20, 40, 40)
    assert TrainOptions.improved().foreground_fraction == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        TrainOptions(patch_size=(30, 64, 64))


# --- learning-rate schedule -------------------------------------------------------------------
def _rows(out, kind="train"):
    return [r for r in json.loads((out / "training_log.json").read_text())["rows"]
            if r["kind"] == kind]


def test_learning_rate_schedules():
    const = TrainOptions(learning_rate=1e-3, iterations=1000)
    assert const.learning_rate_at(0) == const.learning_rate_at(999) == 1e-3
    poly = TrainOptions(learning_rate=1e-3, iterations=1000, lr_schedule="poly")
    lrs = [poly.learning_rate_at(i) for i in range(1000)]
    assert lrs[0] == 1e-3
    assert lrs[500] == pytest.approx(1e-3 * 0.5 ** 0.9)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] < 0.002 * 1e-3 and poly.learning_rate_at(1000) == 0.0  # ~0 at the end
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainOptions(lr_schedule="cosine")
    # JSON written before the field existed (old checkpoints, option files) still loads
    old = TrainOptions().to_dict()
    del old["lr_schedule"]
    assert TrainOptions.from_dict(old) == TrainOptions()
    assert TrainOptions.from_dict(poly.to_dict()) == poly


def test_poly_schedule_in_training_and_log(tmp_path, data):
    cases, _ = data
    opts = tiny_options(iterations=6, lr_schedule="poly")
    train(cases, out_dir=tmp_path, options=opts)
    logged = [r["lr"] for r in _rows(tmp_path)]
    np.testing.assert_allclose(logged, [opts.learning_rate_at(i) for i in range(6)], rtol=1e-12)
    assert logged[-1] < 0.25 * logged[0]
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))
    assert ckpt.meta["optimizer"]["param_groups"][0]["lr"] == pytest.approx(logged[-1])
    card = load_weights(tmp_path / "model.safetensors").card
    assert card.training["recipe"]["lr_schedule"] == "poly"


def test_resume_takes_the_new_learning_rate(tmp_path, data):
    cases, _ = data
    train(cases, out_dir=tmp_path / "a", options=tiny_options(iterations=4, learning_rate=3e-3))
    train(cases, out_dir=tmp_path / "b", options=tiny_options(iterations=4, learning_rate=3e-3))
    new = train(cases, out_dir=tmp_path / "a", resume=True,
                options=tiny_options(iterations=6, learning_rate=1e-4))
    same = train(cases, out_dir=tmp_path / "b", resume=True,
                 options=tiny_options(iterations=6, learning_rate=3e-3))
    assert new.start_iteration == 4
    assert [r["lr"] for r in _rows(tmp_path / "a")] == [3e-3] * 4 + [1e-4] * 2
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "a" / "checkpoints"))
    assert ckpt.meta["optimizer"]["param_groups"][0]["lr"] == 1e-4
    assert ckpt.state["options"]["learning_rate"] == 1e-4
    # the optimizer really stepped with it: the same first resumed loss, different weights
    assert new.losses[0] == pytest.approx(same.losses[0], rel=1e-6)
    wa = _model_tensors(latest_checkpoint(tmp_path / "a" / "checkpoints"))
    wb = _model_tensors(latest_checkpoint(tmp_path / "b" / "checkpoints"))
    assert any(not torch.allclose(wa[k], wb[k]) for k in wa)


def test_checkpoint_without_lr_schedule_resumes(tmp_path, data):
    cases, _ = data
    train(cases, out_dir=tmp_path, options=tiny_options(iterations=3))
    path = latest_checkpoint(tmp_path / "checkpoints")
    meta = json.loads(path.read_text())
    del meta["state"]["options"]["lr_schedule"]  # as written before the field existed
    path.write_text(json.dumps(meta))
    result = train(cases, out_dir=tmp_path, resume=True,
                   options=tiny_options(iterations=5, lr_schedule="poly"))
    assert result.start_iteration == 3 and len(result.losses) == 2
    lrs = [r["lr"] for r in _rows(tmp_path)]
    assert lrs[3:] == pytest.approx([tiny_options(iterations=5, lr_schedule="poly")
                                     .learning_rate_at(i) for i in (3, 4)])


# --- partial labels ---------------------------------------------------------------------------
def test_training_with_unlabelled_voxels(tmp_path):
    from spinect_core.training import UNLABELLED

    from tests.training.synthetic import make_case

    partial = make_case("p", 7)
    arr = partial.labels.array.copy()
    arr[(arr == 2)] = UNLABELLED  # nerve not annotated in this case: unknown, not background
    arr[:, 30:, :] = np.where(arr[:, 30:, :] == 1, 1, UNLABELLED)
    partial.labels = partial.labels.with_array(arr)
    val = make_case("v", 8)
    varr = val.labels.array.copy()
    varr[:, :6] = UNLABELLED
    val.labels = val.labels.with_array(varr)
    result = train([make_case("a", 1), partial], val_cases=[val], out_dir=tmp_path,
                   options=tiny_options(iterations=4, val_every=4, loss="dice_ce",
                                        foreground_fraction=0.5, lr_schedule="poly"))
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    assert result.best_mean_dice is not None and np.isfinite(result.best_mean_dice)
    card = load_weights(tmp_path / "model.safetensors").card
    assert card.training["data"]["train"]["unlabelled_voxels"] == int((arr == UNLABELLED).sum())
    weights = card.training["recipe"]["class_weights"]["values"]
    assert len(weights) == 3 and all(np.isfinite(weights))
