"""3D Slicer segmentations by segment name, label mappings (ready TotalSegmentator / MONAI Label
maps, patterns, refusals) and ``spinect plan --label-map``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io.labelmap import (DEFAULT_SEGMENT_MAPPING, LabelMapping, load_label_map,
                                      read_label_table, ready_label_mapping_names,
                                      resolve_label_mapping, save_label_map, write_image)
from spinect_core.io.slicer_seg import read_slicer_segmentation, write_slicer_segmentation
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.volume import Volume

from tests.training.test_cases import write_slicer_seg_nrrd

ORIGIN = (-12.0, 30.0, 5.0)
SPACING = (0.8, 0.9, 1.5)


def _classes() -> np.ndarray:
    """(z, y, x) ids of DEFAULT_LABELS: four non-overlapping boxes of bone, nerve, disc, dura."""
    arr = np.zeros((6, 9, 11), np.uint8)
    arr[0:3, 0:4, 0:5] = 1
    arr[3:6, 0:4, 0:5] = 2
    arr[0:3, 5:9, 6:11] = 3
    arr[3:6, 5:9, 6:11] = 4
    return arr


def _site_file(path, order, names) -> None:
    """A Slicer file whose label values follow ``order`` (class id -> value) with ``names``."""
    classes = _classes()
    site = np.zeros_like(classes)
    for cid, value in order.items():
        site[classes == cid] = value
    segments = [(names[cid], order[cid]) for cid in sorted(order, key=lambda c: order[c])]
    write_slicer_seg_nrrd(path, site, segments, spacing=SPACING, origin=ORIGIN)


def test_shuffled_segment_order_gives_the_same_classes(tmp_path):
    names = {1: "Bone", 2: "Nerve", 3: "Disc", 4: "Dura"}
    _site_file(tmp_path / "a.seg.nrrd", {1: 1, 2: 2, 3: 3, 4: 4}, names)
    # The same anatomy with the segments created in another order: 1 = dura, 2 = disc, ...
    _site_file(tmp_path / "b.seg.nrrd", {1: 4, 2: 3, 3: 2, 4: 1}, names)
    a, table_a = load_label_map(tmp_path / "a.seg.nrrd")
    b, table_b = load_label_map(tmp_path / "b.seg.nrrd")
    assert table_a == table_b == DEFAULT_LABELS
    np.testing.assert_array_equal(a.array, _classes())
    np.testing.assert_array_equal(b.array, _classes())
    np.testing.assert_allclose(b.origin_lps_mm, ORIGIN)
    np.testing.assert_allclose(b.spacing_mm, SPACING)
    assert read_label_table(tmp_path / "b.seg.nrrd") == DEFAULT_LABELS


def test_synonyms_map_site_names(tmp_path):
    names = {1: "Vertebra L5", 2: "L5 root left", 3: "Disc L5-S1", 4: "Dural sac"}
    _site_file(tmp_path / "s.seg.nrrd", {1: 7, 2: 3, 3: 9, 4: 1}, names)
    labels, _ = load_label_map(tmp_path / "s.seg.nrrd")
    np.testing.assert_array_equal(labels.array, _classes())


def test_unknown_names_are_refused_with_the_names_found(tmp_path):
    _site_file(tmp_path / "u.seg.nrrd", {1: 1, 2: 2}, {1: "Liver", 2: "Spleen"})
    with pytest.raises(InputError, match=r"names found: Liver, Spleen"):
        load_label_map(tmp_path / "u.seg.nrrd")
    # A ready mapping that sends unknown names to background still refuses a file of which
    # no name matches any class (the wrong tool's mapping).
    _site_file(tmp_path / "m.seg.nrrd", {1: 1, 2: 2}, {1: "foo", 2: "bar"})
    with pytest.raises(InputError, match=r"names found: foo, bar"):
        load_label_map(tmp_path / "m.seg.nrrd", mapping=resolve_label_mapping("totalsegmentator"))


def test_one_unmapped_name_among_known_ones_is_refused(tmp_path):
    _site_file(tmp_path / "x.seg.nrrd", {1: 1, 2: 2}, {1: "Bone", 2: "Kidney"})
    with pytest.raises(InputError, match="Kidney"):
        load_label_map(tmp_path / "x.seg.nrrd")


def test_written_segmentation_is_named_coloured_and_reads_back(tmp_path):
    vol = Volume(array=_classes(), spacing_mm=SPACING, origin_lps_mm=ORIGIN)
    path = save_label_map(vol, DEFAULT_LABELS, tmp_path / "seg.seg.nrrd")
    assert read_label_table(path) == DEFAULT_LABELS  # by name, whatever the sidecar says
    _layers, _geometry, segments = read_slicer_segmentation(path)
    assert [(s.name, s.label_value) for s in segments] == [
        ("bone", 1), ("nerve", 2), ("disc", 3), ("dura", 4)]
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    # Bone in the app's ivory, the one colour table's (spinect_core.vocabulary).
    assert image.GetMetaData("Segment0_Color") == "0.9333 0.8863 0.7686"
    assert image.GetMetaData("Segment3_Extent") == "6 10 5 8 3 5"  # x0 x1 y0 y1 z0 z1
    assert image.GetMetaData("Segmentation_MasterRepresentation") == "Binary labelmap"
    labels, _ = load_label_map(path)
    np.testing.assert_array_equal(labels.array, _classes())
    np.testing.assert_allclose(labels.origin_lps_mm, ORIGIN)
    with pytest.raises(Exception, match="exists"):
        write_slicer_segmentation(vol, DEFAULT_LABELS, path)


def _totalsegmentator_map(tmp_path):
    """A TotalSegmentator-style label map with a sidecar naming its ids."""
    names = {0: "background", 1: "liver", 2: "vertebrae_L5", 3: "sacrum", 4: "spinal_cord",
             5: "intervertebral_discs", 6: "hip_left", 7: "costal_cartilages", 8: "iliopsoas_left"}
    arr = np.zeros((4, 4, 9), np.uint8)
    for i in range(1, 9):
        arr[:, :, i] = i
    vol = Volume(array=arr, spacing_mm=(1, 1, 1), origin_lps_mm=(0, 0, 0))
    save_label_map(vol, LabelTable(names), tmp_path / "ts.nii.gz")
    expected = np.array([0, 0, 1, 1, 4, 3, 1, 0, 0], np.uint8)  # DEFAULT_LABELS ids per column
    return tmp_path / "ts.nii.gz", vol, names, expected


def test_totalsegmentator_names_map_onto_our_classes(tmp_path):
    path, _vol, _names, expected = _totalsegmentator_map(tmp_path)
    assert {"totalsegmentator", "monailabel"} <= set(ready_label_mapping_names())
    labels, table = load_label_map(path, mapping=resolve_label_mapping("totalsegmentator"))
    assert table == DEFAULT_LABELS
    np.testing.assert_array_equal(labels.array[0, 0], expected)
    # Its 3D Slicer extension's display names too
    ts = resolve_label_mapping("totalsegmentator")
    assert [ts.target_id(n) for n in ("L5 vertebra", "Sacrum", "Left hip bone", "Liver")] == [
        1, 1, 1, 0]


def test_source_labels_name_a_map_without_sidecar(tmp_path):
    path, vol, names, expected = _totalsegmentator_map(tmp_path)
    write_image(vol, tmp_path / "bare.nii.gz")
    mapping_file = tmp_path / "map.json"
    doc = {"segments": {"vertebrae_*": "bone", "sacrum": "bone", "hip_*": "bone",
                        "spinal_cord": "dura", "intervertebral_discs": "disc"},
           "unmapped": "background", "source_labels": {str(k): v for k, v in names.items()}}
    mapping_file.write_text(json.dumps(doc))
    labels, _ = load_label_map(tmp_path / "bare.nii.gz",
                               mapping=resolve_label_mapping(mapping_file))
    np.testing.assert_array_equal(labels.array[0, 0], expected)
    with pytest.raises(InputError, match="names of its ids are unknown"):
        load_label_map(tmp_path / "bare.nii.gz", mapping=DEFAULT_SEGMENT_MAPPING)


def test_monailabel_names(tmp_path):
    m = resolve_label_mapping("monailabel")
    assert [m.target_id(n) for n in ("L5", "Th12", "C1 Atlas", "Sacrum", "spleen")] == [
        1, 1, 1, 1, 0]


def test_mapping_refusals():
    with pytest.raises(InputError, match="ready mappings: .*totalsegmentator"):
        resolve_label_mapping("no-such-tool")
    with pytest.raises(InputError, match="does not have"):
        LabelMapping(table=DEFAULT_LABELS, segments={"x": "femur"})
    with pytest.raises(InputError, match="unknown keys"):
        LabelMapping.from_json({"segment": {}})


def test_plan_label_map_needs_a_segmentation(main, tmp_path, capsys):
    rc = main(["plan", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"),
               "--label-map", "totalsegmentator"])
    assert rc == 2
    assert "--label-map maps the names of a --segmentation file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def main(monkeypatch, tmp_path):
    import spinect_core.cli as cli

    monkeypatch.setenv("SPINECT_LOG_DIR", str(tmp_path / "logs"))
    return cli.main


@pytest.mark.slow
def test_shuffled_seg_nrrd_gives_the_same_plan(main, tmp_path):
    """The issue's case end to end: the phantom's labels as a Slicer file, and the same file with
    the segments in another order, plan to the same windows and needles."""
    from spinect_core.io import load_ct

    assert main(["phantom", "--seed", "1", str(tmp_path / "ph"), "--spacing", "2", "2", "2",
                 "--quiet"]) == 0
    labels, table = load_label_map(tmp_path / "ph" / "labels.nii.gz")
    assert [table.names[i] for i in (1, 2, 3, 4)] == ["bone", "nerve", "disc", "dura"]
    arr = labels.array
    docs = []
    for name, order in (("a", (1, 2, 3, 4)), ("b", (3, 4, 1, 2))):
        site = np.zeros_like(arr, dtype=np.uint8)
        for cid, value in zip((1, 2, 3, 4), order):
            site[arr == cid] = value
        segments = sorted(zip(("Bone", "Nerve", "Disc", "Dura"), order), key=lambda s: s[1])
        write_slicer_seg_nrrd(tmp_path / f"{name}.seg.nrrd", site, segments,
                              spacing=labels.spacing_mm, origin=labels.origin_lps_mm)
        out = tmp_path / f"plan_{name}"
        assert main(["plan", str(tmp_path / "ph" / "ct.nii.gz"), "-o", str(out),
                     "--segmentation", str(tmp_path / f"{name}.seg.nrrd"), "--no-meshes",
                     "--quiet"]) == 0
        docs.append(json.loads((out / "plan.json").read_text()))
    assert load_ct(tmp_path / "ph" / "ct.nii.gz").same_grid(labels, atol=1e-3)
    for side in ("left", "right"):
        a, b = docs[0]["sides"][side], docs[1]["sides"][side]
        for kind in ("kambin", "safe"):
            assert a[kind]["plateau_view"] == b[kind]["plateau_view"]
        assert a["trajectory"] == b["trajectory"]
