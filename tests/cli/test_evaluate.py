"""``spinect evaluate`` on label maps written with save_label_map (files and folders)."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from spinect_core.errors import SpinectError
from spinect_core.io.labelmap import save_label_map
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

GT_TABLE = LabelTable({0: "background", 1: "bone", 2: "nerve"})
PRED_TABLE = LabelTable({0: "background", 1: "nerve", 2: "bone"})  # other numbering


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``spinect evaluate ...`` through the real dispatcher when all subcommands exist,
    else through a parser with only this subcommand (same error handling)."""
    try:
        from spinect_core.cli import main

        for name in importlib.import_module("spinect_core.cli").COMMANDS:
            importlib.import_module(f"spinect_core.cli.{name}")
        code = main(["evaluate", *argv])
    except ModuleNotFoundError:
        from spinect_core.cli import evaluate

        parser = argparse.ArgumentParser(prog="spinect")
        evaluate.register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["evaluate", *argv])
        try:
            code = args.handler(args)
        except SpinectError as exc:
            print(f"spinect: error: {exc}", file=__import__("sys").stderr)
            code = 2
    out = capsys.readouterr()
    return code, out.out, out.err


def make_case(seed: int) -> tuple[Volume, Volume]:
    """(prediction in PRED_TABLE ids, reference in GT_TABLE ids) on an anisotropic grid."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((12, 24, 24), np.uint8)
    gt[3:9, 4:18, 4:18] = 1
    gt[5:7, 18:22, 8:12] = 2
    pred = gt.copy()
    pred[rng.random(gt.shape) < 0.05] = 0  # a few misses
    renumbered = np.choose(pred, [0, 2, 1]).astype(np.uint8)
    geom = dict(spacing_mm=[0.7, 0.7, 2.5], origin_lps_mm=[-30.0, 12.5, 100.0])
    return Volume(array=renumbered, **geom), Volume(array=gt, **geom)


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    pred, gt = make_case(0)
    return (save_label_map(pred, PRED_TABLE, tmp_path / "pred.nii.gz"),
            save_label_map(gt, GT_TABLE, tmp_path / "gt.nrrd"))


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    for i, name in enumerate(["case01", "case02"]):
        pred, gt = make_case(i)
        save_label_map(pred, PRED_TABLE, tmp_path / "pred" / f"{name}.nii.gz")
        save_label_map(gt, GT_TABLE, tmp_path / "gt" / f"{name}.nii.gz")
    # Only in one folder: reported, not evaluated.
    save_label_map(make_case(5)[0], PRED_TABLE, tmp_path / "pred" / "extra.nii.gz")
    return tmp_path / "pred", tmp_path / "gt"


def test_files_text_table(files, capsys):
    code, out, err = run_cli([str(files[0]), str(files[1])], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "Dice" in lines[1] and "HD95 (mm)" in lines[1] and "Surface Dice 1 mm" in lines[1]
    bone = next(line for line in lines if line.startswith("bone"))
    assert float(bone.split()[1]) == pytest.approx(0.97, abs=0.02)
    assert any(line.startswith("nerve") for line in lines)


def test_files_json(files, capsys):
    code, out, _ = run_cli([str(files[0]), str(files[1]), "--json", "--classes", "nerve"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["coordinate_system"] == "LPS" and doc["n_cases"] == 1
    assert list(doc["classes"]) == ["nerve"]
    assert set(doc["classes"]["nerve"]) == {"dice", "iou", "pixel_accuracy", "hd95_mm",
                                            "surface_dice_1mm"}
    # Check against the library on the arrays themselves.
    from spinect_core.metrics import dice

    pred, gt = make_case(0)
    assert doc["classes"]["nerve"]["dice"] == pytest.approx(dice(pred.array == 1, gt.array == 2))


def test_folders_text_and_json(folders, capsys):
    code, out, _ = run_cli([str(folders[0]), str(folders[1])], capsys)
    assert code == 0
    assert out.startswith("2 cases; mean ± SD [min-max]")
    assert "±" in next(line for line in out.splitlines() if line.startswith("bone"))
    assert "'extra' has no reference label map" in out
    code, out, _ = run_cli([str(folders[0]), str(folders[1]), "--json"], capsys)
    doc = json.loads(out)
    assert doc["n_cases"] == 2 and doc["mode"] == "folders"
    assert [c["name"] for c in doc["cases"]] == ["case01", "case02"]
    per_case = [c["classes"]["bone"]["dice"] for c in doc["cases"]]
    assert doc["classes"]["bone"]["dice"] == pytest.approx(np.mean(per_case))
    s = doc["summary"]["bone"]["dice"]
    assert s["sd"] == pytest.approx(np.std(per_case, ddof=1))
    assert (s["min"], s["max"], s["n"]) == (min(per_case), max(per_case), 2)


def test_user_errors_exit_2(files, tmp_path, capsys):
    code, _, err = run_cli([str(files[0]), str(tmp_path / "missing.nii.gz")], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli([str(files[0]), str(tmp_path)], capsys)
    assert code == 2 and "file and a folder" in err
    code, _, err = run_cli([str(files[0]), str(files[1]), "--classes", "dura"], capsys)
    assert code == 2 and "no class in common" in err
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code, _, err = run_cli([str(tmp_path / "a"), str(tmp_path / "b")], capsys)
    assert code == 2 and "no label maps" in err
