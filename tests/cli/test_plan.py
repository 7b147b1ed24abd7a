"""``spinect plan`` end to end on a small phantom, and its refusals.

"plan" is not yet in the dispatcher's COMMANDS (the lead registers it), so the tests add it for
their own run of :func:`spinect_core.cli.main`, the real dispatcher with its error handling.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import spinect_core.cli as cli
from spinect_core.labels import DEFAULT_LABELS


@pytest.fixture
def main(monkeypatch):
    if "plan" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", cli.COMMANDS + ("plan",))
    return cli.main


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    from spinect_core.phantom import generate_phantom, write_phantom

    folder = tmp_path_factory.mktemp("case")
    paths = write_phantom(generate_phantom(seed=1, spacing_mm=(2.0, 2.0, 2.0)), folder)
    return paths["ct"], paths["labels"]


def test_plan_end_to_end_left_side(main, phantom_files, tmp_path, capsys) -> None:
    ct, labels = phantom_files
    out = tmp_path / "out"
    rc = main(["plan", str(ct), "--segmentation", str(labels), "-o", str(out), "--side", "left",
               "--coarse-step", "15", "--final-step", "3", "--quiet", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1  # --json: exactly the plan document, one line
    printed = json.loads(lines[0])
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert list(doc["sides"]) == ["left"]
    assert printed["sides"] == doc["sides"]
    assert doc["segmentation_source"] == "file labels.nii.gz"
    assert doc["anatomy"]["source"] in ("labels", "bone+nerve")  # derived: no instances given
    left = doc["sides"]["left"]
    assert left["kambin"]["found"] or left["safe"]["found"]
    assert left["trajectory"] is not None
    for name in ("report.html", "needle_left.mrk.json", "screenshot_left_kambin.png",
                 "area_map_left_safe.png", "planes_left/needle_plane.nii.gz",
                 "meshes/bone_lps.stl"):
        assert (out / name).is_file(), name
    assert not (out / "needle_right.mrk.json").exists()


def test_plan_without_l5_s1_exits_2_with_one_line(main, tmp_path, capsys) -> None:
    from spinect_core.io.labelmap import save_label_map, write_image
    from spinect_core.volume import Volume

    ct = np.full((30, 40, 40), -1000.0, np.float32)
    ct[5:25, 5:35, 5:35] = 40.0
    ct[10:20, 15:25, 15:25] = 700.0
    labels = np.zeros(ct.shape, np.uint8)
    labels[10:20, 15:25, 15:25] = 1  # one bone block
    vol = Volume(array=ct, spacing_mm=np.array([2.0, 2.0, 2.0]), origin_lps_mm=np.zeros(3),
                 direction=np.eye(3))
    write_image(vol, tmp_path / "ct.nii.gz")
    save_label_map(vol.with_array(labels), DEFAULT_LABELS, tmp_path / "labels.nii.gz")
    out = tmp_path / "out"
    rc = main(["plan", str(tmp_path / "ct.nii.gz"), "--segmentation",
               str(tmp_path / "labels.nii.gz"), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("spinect: error:")
    assert "L5/S1" in err
    assert not out.exists()


def test_plan_refuses_a_folder_with_a_plan_before_loading(main, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text("{}")
    # The input does not even exist: the refusal comes first, in no time.
    rc = main(["plan", str(tmp_path / "missing.nii.gz"), "--segmentation", "x.nii.gz",
               "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "already holds a plan" in err and "--force" in err
    assert (out / "plan.json").read_text() == "{}"


def test_options_from_the_command_line(main) -> None:
    import argparse

    from spinect_core.cli import plan as plan_cli
    from spinect_core.errors import InputError

    parser = argparse.ArgumentParser()
    plan_cli.register(parser.add_subparsers())
    args = parser.parse_args(["plan", "ct", "-o", "o", "--variant", "bony", "--window", "safe",
                              "--coarse-step", "10"])
    o = plan_cli.plan_options(args)
    assert o.sides == ("left", "right") and o.variant == "bony"
    assert o.trajectory_window == "safe" and o.coarse_step_deg == 10.0
    assert o.final_step_deg == 0.5  # default kept
    args = parser.parse_args(["plan", "ct", "-o", "o", "--side", "right", "--coarse-step", "0"])
    with pytest.raises(InputError, match="coarse-step"):
        plan_cli.plan_options(args)
    assert plan_cli.plan_options(parser.parse_args(["plan", "ct", "-o", "o", "--side", "right"])
                                 ).sides == ("right",)
