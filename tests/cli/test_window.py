"""``spinect window``: JSON output on a small plate scene and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import spinect_core.cli as cli
from spinect_core.io.labelmap import save_label_map, sidecar_path
from tests.planning.plates import TABLE, plate_scene, rectangle_area, rectangle_hole, tilted_view


@pytest.fixture(autouse=True)
def only_window(monkeypatch):
    # Other subcommands belong to others; the real dispatcher is tested with `window` alone.
    monkeypatch.setattr(cli, "COMMANDS", ("window",))


def _main(argv: list[str]) -> int:
    return cli.main(["window", *argv])


@pytest.fixture(scope="module")
def plate_file(tmp_path_factory):
    vol, centre = plate_scene(rectangle_hole, thickness=3.0, half=7.0)
    path = tmp_path_factory.mktemp("window") / "plate.nii.gz"
    save_label_map(vol, TABLE, path)
    return path, centre


def _argv(path, centre, *extra: str) -> list[str]:
    d = tilted_view(15)
    return [str(path), "--target", "target", "--blockers", "plate", "--view-direction",
            *(f"{v:.9f}" for v in d), "--roi-center", *(f"{v}" for v in centre),
            "--roi-size-mm", "12", *extra]


def test_json_output(plate_file, capsys) -> None:
    path, centre = plate_file
    assert _main(_argv(path, centre, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["area_mm2"] == pytest.approx(rectangle_area(15), rel=0.02)
    assert out["inscribed_diameter_mm"] == pytest.approx(6.0, abs=0.35)
    assert out["usable_area_mm2"] < out["area_mm2"]
    assert set(out["area_band_mm2"]) == {"0.35", "0.65"}
    assert out["target_ids"] == [2] and out["blocker_ids"] == [1]
    assert out["coordinate_system"] == "LPS"
    assert np.allclose(out["view_direction_lps"], tilted_view(15))
    assert len(out["polygons_lps"]) == 1


def test_voxel_surface_keeps_sharp_rims_at_oblique_views(plate_file, capsys) -> None:
    """``--surface voxel`` reads the plate's rims sharp: the 45 deg area meets the analytic value
    within 2 %, where the default smooth surface rounds the rims and reads it larger."""
    path, centre = plate_file
    d = tilted_view(45)
    argv = [str(path), "--target", "target", "--blockers", "plate", "--view-direction",
            *(f"{v:.9f}" for v in d), "--roi-center", *(f"{v}" for v in centre),
            "--roi-size-mm", "12", "--json"]
    assert _main(argv + ["--surface", "voxel"]) == 0
    voxel = json.loads(capsys.readouterr().out)["area_mm2"]
    assert _main(argv) == 0
    smooth = json.loads(capsys.readouterr().out)["area_mm2"]
    assert voxel == pytest.approx(rectangle_area(45), rel=0.02)
    assert smooth > voxel


def test_ids_work_without_a_sidecar(plate_file, tmp_path, capsys) -> None:
    path, centre = plate_file
    copy = tmp_path / "plain.nii.gz"
    copy.write_bytes(path.read_bytes())
    assert not sidecar_path(copy).exists()
    argv = _argv(copy, centre, "--json")
    argv[argv.index("target")] = "2"
    argv[argv.index("plate")] = "1,"
    assert _main(argv) == 0
    by_id = json.loads(capsys.readouterr().out)["area_mm2"]
    assert by_id == pytest.approx(rectangle_area(15), rel=0.02)
    argv[argv.index("2")] = "target"
    assert _main(argv) == 2
    assert "no label table" in capsys.readouterr().err


def test_default_roi_centre_is_the_target_centroid(plate_file, capsys) -> None:
    path, _ = plate_file
    assert _main([str(path), "--target", "2", "--blockers", "1", "--view-direction", "0", "0",
                  "1", "--roi-size-mm", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # The slab's centroid lies on the hole's axis, so the whole 10 x 6 mm hole is in the ROI.
    assert out["area_mm2"] == pytest.approx(60.0, rel=0.02)


def test_human_readable_output(plate_file, capsys) -> None:
    path, centre = plate_file
    assert _main(_argv(path, centre)) == 0
    text = capsys.readouterr().out
    assert "area:" in text and "mm^2" in text and "inscribed diameter" in text


@pytest.mark.parametrize("change,message", [
    (("target", "bone"), "unknown label 'bone'"),
    (("plate", "target"), "both target and blocker"),
])
def test_bad_labels_exit_2_with_one_line(plate_file, capsys, change, message) -> None:
    path, centre = plate_file
    argv = _argv(path, centre, "--json")
    argv[argv.index(change[0])] = change[1]
    assert _main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_zero_direction_exits_2(plate_file, capsys) -> None:
    path, _ = plate_file
    assert _main([str(path), "--target", "target", "--view-direction", "0", "0", "0"]) == 2
    err = capsys.readouterr().err
    assert "non-zero 3-vector" in err and err.count("\n") == 1


def test_missing_file_exits_2(tmp_path, capsys) -> None:
    assert _main([str(tmp_path / "none.nii.gz"), "--target", "1", "--view-direction",
                  "0", "0", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
