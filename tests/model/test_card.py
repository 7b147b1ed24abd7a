"""ModelCard: validation and JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from spinect_core.errors import WeightsError
from spinect_core.labels import DEFAULT_LABELS, STUDY_LABELS
from spinect_core.model import ModelCard, UNetConfig

NORM = {"scheme": "ct_percentile_zscore", "clip_hu": [-1000.0, 2000.0], "mean_hu": 200.0,
        "std_hu": 400.0}


def make_card(**kw) -> ModelCard:
    base = dict(name="test", version="0.1.0", normalisation=NORM, created="2025-01-31")
    return ModelCard(**{**base, **kw})


def test_defaults_follow_the_study() -> None:
    card = make_card()
    assert card.architecture == UNetConfig.study()
    assert card.labels == STUDY_LABELS
    assert card.patch_size_zyx == (32, 64, 64)
    assert card.spacing_mm == (1.0, 1.0, 1.0)
    assert card.tensors_dtype == "float32"
    assert "not a certified" in card.intended_use.lower()
    assert card.format_version == 1


def test_json_round_trip() -> None:
    card = make_card(
        architecture=UNetConfig(base_channels=8, depth=3, num_classes=5, norm="instance"),
        labels=DEFAULT_LABELS, patch_size_zyx=[16, 32, 32], spacing_mm=(0.8, 0.8, 1),
        training={"cases": {"train": 32, "val": 8, "test": 10}, "recipe": {"lr": 5e-4, "batch": 4}},
        metrics={"test": {"bone": {"dice": 0.945, "iou": 0.897}, "nerve": {"dice": None}}},
        tensors_dtype="float16", tensors_sha256="ab" * 32,
    )
    assert card.patch_size_zyx == (16, 32, 32) and card.spacing_mm == (0.8, 0.8, 1.0)
    text = card.dumps()
    assert json.loads(text)["labels"][3] == {"id": 3, "name": "disc"}
    assert ModelCard.from_json(text) == card
    assert ModelCard.from_json(card.to_json()) == card
    assert ModelCard.from_json(text.encode()) == card


def test_tuples_in_dicts_compare_equal_after_round_trip() -> None:
    card = make_card(normalisation={**NORM, "clip_hu": (-1000, 2000)})
    assert card.normalisation["clip_hu"] == [-1000, 2000]
    assert ModelCard.from_json(card.dumps()) == card


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"labels": DEFAULT_LABELS}, "5 classes.*outputs 3"),
        ({"normalisation": {"clip_hu": [0, 1]}}, "scheme"),
        ({"normalisation": {"scheme": "ct_percentile_zscore", "clip_hu": [0, 1]}}, "mean_hu"),
        ({"patch_size_zyx": (32, 64)}, "3 numbers"),
        ({"patch_size_zyx": (32, 64, 40)}, "multiples of 16"),
        ({"spacing_mm": (1, 0, 1)}, "positive"),
        ({"tensors_dtype": "int8"}, "tensors_dtype"),
        ({"tensors_sha256": "xyz"}, "hex"),
        ({"created": "yesterday"}, "ISO"),
        ({"metrics": {"dice": float("nan")}}, "NaN"),
        ({"training": {"x": object()}}, "JSON"),
        ({"format_version": 2}, "format_version"),
        ({"name": ""}, "non-empty"),
    ],
)
def test_invalid_cards_are_refused(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_card(**kw)


def test_unknown_normalisation_scheme_is_stored_as_given() -> None:
    card = make_card(normalisation={"scheme": "ct_window", "window_hu": [-200, 1200]})
    assert card.normalisation == {"scheme": "ct_window", "window_hu": [-200, 1200]}


def test_from_json_errors_name_the_problem() -> None:
    good = make_card().to_json()
    with pytest.raises(WeightsError, match="not valid JSON"):
        ModelCard.from_json("{nope")
    with pytest.raises(WeightsError, match=r"missing fields \['normalisation'\]"):
        ModelCard.from_json({k: v for k, v in good.items() if k != "normalisation"})
    with pytest.raises(WeightsError, match=r"missing fields \['architecture'\]"):
        ModelCard.from_json({k: v for k, v in good.items() if k != "architecture"})
    with pytest.raises(WeightsError, match=r"unknown fields \['colour'\]"):
        ModelCard.from_json({**good, "colour": "blue"})
    with pytest.raises(WeightsError, match="architecture is invalid.*dropout"):
        ModelCard.from_json({**good, "architecture": {**good["architecture"], "dropout": 0.5}})
    with pytest.raises(WeightsError, match="labels are invalid"):
        ModelCard.from_json({**good, "labels": [{"id": 1, "name": "bone"}]})
    with pytest.raises(WeightsError, match="tensors_dtype"):
        ModelCard.from_json({**good, "tensors_dtype": "float64"})
    with pytest.raises(WeightsError, match="JSON object"):
        ModelCard.from_json("[1, 2]")


def test_differing_fields() -> None:
    a = make_card()
    b = dataclasses.replace(a, tensors_sha256="0" * 64)
    assert a.differing_fields(b) == [] and a.same_except_sha(b)
    c = dataclasses.replace(a, architecture=UNetConfig.fast())
    assert a.differing_fields(c) == ["architecture"]


def test_decision_weights_round_trip_and_validation() -> None:
    card = make_card(decision_weights={"nerve": 0.5})
    assert ModelCard.from_json(card.dumps()).decision_weights == {"nerve": 0.5}
    # Older cards without the field read as "plain argmax".
    data = json.loads(card.dumps())
    del data["decision_weights"]
    assert ModelCard.from_json(data).decision_weights == {}
    with pytest.raises(ValueError, match="not in the labels"):
        make_card(decision_weights={"liver": 2.0})
    with pytest.raises(ValueError, match="positive"):
        make_card(decision_weights={"nerve": 0.0})
