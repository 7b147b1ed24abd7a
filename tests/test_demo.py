"""The quick start's main job, on a coarse demo case so it stays fast."""

from __future__ import annotations

import json

import pytest

import spinect_core.demo as demo
from spinect_core.demo import run_demo
from spinect_core.planning.plan import PlanOptions


@pytest.fixture()
def tiny_untrained_network(monkeypatch, tmp_path):
    """No bundled weights, and the demo's untrained stand-in shrunk (base 4, depth 3, patch
    16x32x32): exercises the whole chain in seconds."""
    import torch

    from spinect_core.model import weights as weights_module

    monkeypatch.setattr(weights_module, "default_weights_path",
                        lambda: tmp_path / "absent" / "spinect_default.safetensors")

    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.model import LoadedModel, ModelCard, UNet3D, UNetConfig
    from spinect_core.preprocess import CTNormalisation

    def tiny(ct_array, labels_array):
        torch.manual_seed(0)
        config = UNetConfig(num_classes=5, base_channels=4, depth=3)
        norm = CTNormalisation.fit([ct_array], masks=[labels_array > 0])
        card = ModelCard(name="untrained-demo", version="0", normalisation=norm.to_dict(),
                         architecture=config, labels=DEFAULT_LABELS, patch_size_zyx=(16, 32, 32))
        return LoadedModel(model=UNet3D(config).eval(), card=card, path=demo.Path("untrained"))

    monkeypatch.setattr(demo, "untrained_demo_model", tiny)


def test_demo_runs_end_to_end(tmp_path, tiny_untrained_network) -> None:
    result = run_demo(tmp_path / "demo", spacing_mm=(2.0, 2.0, 2.0),
                      plan_options=PlanOptions(coarse_step_deg=15.0, final_step_deg=3.0,
                                               report_pixel_mm=0.5))
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert summary["coordinate_system"] == "LPS"
    assert (result.dicom_dir).is_dir() and any(result.dicom_dir.iterdir())
    assert result.segmentation.exists()
    # Every class of the phantom is evaluated, with numbers in range.
    classes = summary["evaluation"]["classes"]
    assert set(classes) == {"bone", "nerve", "disc", "dura"}
    assert all(0.0 <= c["dice"] <= 1.0 for c in classes.values())
    # The plan found windows on both sides and wrote its report.
    assert (result.plan_dir / "plan.json").exists() and (result.plan_dir / "report.html").exists()
    for side in ("left", "right"):
        assert summary["plan"]["sides"][side]["kambin"]["found"]
    assert not result.trained
    assert "exact labels" in result.plan_labels
    assert any("untrained" in n for n in result.notes)


def test_demo_refuses_to_overwrite(tmp_path, tiny_untrained_network) -> None:
    from spinect_core.io.atomic import FileExistsRefusedError

    run_demo(tmp_path / "d", spacing_mm=(3.0, 3.0, 3.0), plan=False)
    with pytest.raises(FileExistsRefusedError):
        run_demo(tmp_path / "d", spacing_mm=(3.0, 3.0, 3.0), plan=False)


@pytest.mark.slow
def test_demo_with_the_bundled_weights(tmp_path) -> None:
    """The quick start's main job as shipped: bundled weights, the demo case's own spacing."""
    result = run_demo(tmp_path / "demo")
    assert result.trained
    classes = result.evaluation.to_dict()["classes"]
    assert classes["bone"]["dice"] > 0.9
    assert classes["nerve"]["dice"] > 0.7
    assert result.plan_labels.startswith("the network's segmentation")
    for side in ("left", "right"):
        for kind in ("kambin", "safe"):
            assert result.plan.sides[side].window(kind).found, (side, kind)
