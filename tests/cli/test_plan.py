"""``spinect plan`` end to end on a small phantom, and its refusals, through
:func:`spinect_core.cli.main` (the real dispatcher with its error handling)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS


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
    # The printed document is the written one, with the CT's UIDs and the DICOM objects.
    assert printed == doc
    assert printed["source"]["format"] == "nifti" and printed["dicom"]["objects"]
    assert doc["segmentation_source"] == "label map file (nii.gz)"  # no file name
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


# --- the network's segmentation: bone source and the check against the CT's bone ---------------
@pytest.fixture(scope="module")
def phantom():
    from spinect_core.phantom import generate_phantom

    return generate_phantom(seed=1, spacing_mm=(2.0, 2.0, 2.0))


class _FakeSegmenter:
    """Stands in for the network: the phantom's true labels as the result, whose own
    (pre-fusion) bone lacks the L5 body; the "CT bone model" is the true bone (the check's
    wiring is under test here, not the CT bone model: tests/bone covers it)."""

    def __init__(self, phantom, bone: str) -> None:
        from types import SimpleNamespace

        self.phantom, self.bone = phantom, bone
        self.card = SimpleNamespace(name="fake-network", version="0")

    def segment(self, ct, progress=None):
        from spinect_core.segment import Segmentation
        from tests.bone.cases import truth_as_ct_bone, without_l5_body

        ph = self.phantom
        assert ct.array.shape == ph.ct.array.shape
        return Segmentation(labels=ct.with_array(ph.labels.array.copy()), table=DEFAULT_LABELS,
                            bone_source=self.bone, ct_bone=truth_as_ct_bone(ph),
                            network_bone=without_l5_body(ph))


def test_plan_from_the_network_records_the_bone_source_and_warns_at_l5(main, phantom, tmp_path,
                                                                        capsys, monkeypatch
                                                                        ) -> None:
    from spinect_core.io import write_image
    from spinect_core.segment import Segmenter

    ct_path = write_image(phantom.ct, tmp_path / "ct.nii.gz")
    asked = {}

    def from_weights(path, *, options=None):
        asked["bone"] = options.bone
        return _FakeSegmenter(phantom, options.bone)

    monkeypatch.setattr(Segmenter, "from_weights", staticmethod(from_weights))
    out = tmp_path / "out"
    rc = main(["plan", str(ct_path), "-o", str(out), "--side", "left", "--bone", "fused",
               "--coarse-step", "15", "--final-step", "3", "--no-meshes", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert asked["bone"] == "fused"
    warnings = [line for line in captured.err.splitlines() if "disagrees with the CT" in line]
    # Printed once (right after the check), not again with the plan's warnings.
    assert len(warnings) == 1 and " at L5 (bone Dice " in warnings[0]
    assert warnings[0].startswith("spinect: warning: the segmentation disagrees")
    doc = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert doc["segmentation"] == {"source": "fake-network 0", "bone_source": "fused"}
    assert doc["warnings"][0] == warnings[0].removeprefix("spinect: warning: ")
    assert doc["segmentation_check"]["agrees"] is False
    assert "DISAGREES" in (out / "report.html").read_text(encoding="utf-8")


def test_plan_bone_default_and_refusals(main, tmp_path, capsys, monkeypatch) -> None:
    from spinect_core.segment import DEFAULT_BONE_MODE, Segmenter

    asked = {}

    def from_weights(path, *, options=None):
        asked["bone"] = options.bone
        raise SystemExit(0)   # stop before loading anything

    monkeypatch.setattr(Segmenter, "from_weights", staticmethod(from_weights))
    with pytest.raises(SystemExit):
        main(["plan", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "o"), "--quiet"])
    assert asked["bone"] == DEFAULT_BONE_MODE
    # --bone with a label map given: refused in one line before any work.
    rc = main(["plan", str(tmp_path / "ct.nii.gz"), "--segmentation", "x.nii.gz", "--bone", "ct",
               "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("spinect: error: --bone") and len(err.splitlines()) == 1
    rc = main(["plan", "ct.nii.gz", "-o", "o", "--bone", "maybe"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("spinect: error: argument --bone: invalid choice")


@pytest.mark.slow
def test_a_label_map_on_another_grid_is_put_on_the_ct_grid(main, phantom_files, tmp_path,
                                                           capsys) -> None:
    """``--segmentation`` on another grid (here: the same map padded by 3 voxels) is resampled
    onto the CT's by the engine, as the app's is, with a note: the plan is the one of the map
    on the CT's grid (before, the anatomy refused it)."""
    from spinect_core.io import load_label_map, save_label_map
    from spinect_core.volume import Volume

    ct, labels_path = phantom_files
    labels, table = load_label_map(labels_path, default_table=DEFAULT_LABELS)
    pad = 3
    padded = Volume(array=np.pad(labels.array, pad), spacing_mm=labels.spacing_mm,
                    origin_lps_mm=labels.index_to_lps(np.full(3, -pad, float)),
                    direction=labels.direction)
    other = save_label_map(padded, table, tmp_path / "padded.nii.gz")
    args = ["--side", "left", "--coarse-step", "15", "--final-step", "3", "--quiet", "--roots",
            "network"]
    docs = []
    for name, seg in (("same", labels_path), ("other", other)):
        rc = main(["plan", str(ct), "--segmentation", str(seg), "-o", str(tmp_path / name), *args])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert ("resampled onto the CT grid" in err) == (name == "other"), err
        docs.append(json.loads((tmp_path / name / "plan.json").read_text(encoding="utf-8")))
    assert docs[1]["sides"] == docs[0]["sides"]


def test_a_refused_scan_keeps_its_segmentation_and_what_was_found(main, tmp_path, capsys,
                                                                   monkeypatch) -> None:
    """The network's segmentation of a scan the anatomy refuses (a lone bone block: no L5/S1)
    is not lost: refusal.json (the reason, LPS) and refused_segmentation.nii.gz (+ sidecar) are
    written, the error says where, and the folder counts as a plan's (not overwritten without
    --force; replaced whole with it)."""
    from types import SimpleNamespace

    from spinect_core.io import write_image
    from spinect_core.io.labelmap import load_label_map
    from spinect_core.segment import Segmentation, Segmenter
    from spinect_core.volume import Volume

    ct = np.full((30, 40, 40), -1000.0, np.float32)
    ct[5:25, 5:35, 5:35] = 40.0
    ct[10:20, 15:25, 15:25] = 700.0
    vol = Volume(array=ct, spacing_mm=np.array([2.0, 2.0, 2.0]), origin_lps_mm=np.zeros(3),
                 direction=np.eye(3))
    ct_path = write_image(vol, tmp_path / "ct.nii.gz")
    labels = np.zeros(ct.shape, np.uint8)
    labels[10:20, 15:25, 15:25] = 1

    class _Lone:
        card = SimpleNamespace(name="fake-network", version="0")

        def segment(self, ct, progress=None):
            return Segmentation(labels=ct.with_array(labels.copy()), table=DEFAULT_LABELS,
                                bone_source="network")

    monkeypatch.setattr(Segmenter, "from_weights", staticmethod(lambda path, *, options=None:
                                                                _Lone()))
    monkeypatch.setattr("spinect_core.bone.agreement.check_segmentation",
                        lambda seg, ct, progress=None: SimpleNamespace(warnings=["checked"]))
    out = tmp_path / "out"
    rc = main(["plan", str(ct_path), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("spinect: error:") and "L5/S1" in err[-1]
    assert "refused_segmentation.nii.gz, refusal.json" in err[-1]
    doc = json.loads((out / "refusal.json").read_text(encoding="utf-8"))
    assert doc["refused"] is True and doc["coordinate_system"] == "LPS"
    assert "L5/S1" in doc["reason"] and doc["warnings"] == ["checked"]
    assert doc["segmentation"] == {"source": "fake-network 0", "bone_source": "network",
                                   "file": "refused_segmentation.nii.gz"}
    kept, table = load_label_map(out / "refused_segmentation.nii.gz")
    assert np.array_equal(np.asarray(kept.array), labels) and table.id_of("bone") == 1
    assert sorted(p.name for p in out.iterdir()) == [
        "refusal.json", "refused_segmentation.labels.json", "refused_segmentation.nii.gz"]
    # Not overwritten without --force: refused before any work.
    rc = main(["plan", str(ct_path), "-o", str(out), "--quiet"])
    assert rc == 2 and "already holds files of a plan" in capsys.readouterr().err
    rc = main(["plan", str(ct_path), "-o", str(out), "--quiet", "--force"])
    assert rc == 2 and (out / "refusal.json").is_file()
    capsys.readouterr()
    # A write that fails leaves the refusal's reason the error, the failure said after it.
    from spinect_core.errors import OutputError

    def full(*args, **kwargs):
        raise OutputError("no space left")

    monkeypatch.setattr("spinect_core.report.exports.write_refusal_outputs", full)
    rc = main(["plan", str(ct_path), "-o", str(tmp_path / "other"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("spinect: error: ") and "L5/S1" in err
    assert err.endswith("(its segmentation could not be kept: no space left)")
