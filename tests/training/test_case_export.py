"""A reviewed case exported as a training case: layout, no identifiers, Slicer round trip, and
``spinect train``'s discovery and loop take it."""

import dataclasses
import gzip
import json

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io.labelmap import LabelMapping
from spinect_core.io.slicer_seg import slicer_to_labels
from spinect_core.labels import STUDY_LABELS
from spinect_core.training import discover_cases, load_cases, train
from spinect_core.training.case_export import (CASE_NAME_PATTERN, export_training_case)
from spinect_core.volume import CTMetadata

from tests.training.synthetic import make_case, tiny_options

#: Stands for what a source CT's description could hold; it must reach no exported byte.
IDENTIFIER = "DOE^JOHN 0123456"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    cases = []
    for i in range(2):
        case = make_case(f"{IDENTIFIER}-{i}", i)
        ct = dataclasses.replace(case.ct, metadata=CTMetadata(series_description=IDENTIFIER,
                                                              source_format="dicom"))
        cases.append((case, export_training_case(ct, case.labels, case.table, site,
                                                 edited=["nerve"])))
    return site, cases


def test_layout_names_and_no_identifiers(exported):
    site, cases = exported
    for case, out in cases:
        assert CASE_NAME_PATTERN.match(out.name) and out.folder.parent == site
        names = sorted(p.name for p in out.folder.iterdir())
        assert names == ["case.json", "ct.nii.gz", "labels.labels.json", "labels.nii.gz",
                         "segmentation.seg.nrrd"]
        for p in out.folder.iterdir():
            data = p.read_bytes()
            if p.name.endswith(".gz"):
                data = gzip.decompress(data)
            assert b"DOE" not in data and b"0123456" not in data, p.name
        doc = json.loads((out.folder / "case.json").read_text())
        assert doc["source"] == "operator-reviewed" and doc["edited"] == ["nerve"]
        assert doc["coordinate_system"] == "LPS" and doc["case_name"] == out.name
        assert [e["name"] for e in doc["labels"]] == ["background", "bone", "nerve"]
        # the Slicer file reads back, by segment name, to the same labels
        back = slicer_to_labels(out.files["slicer_segmentation"], LabelMapping(table=STUDY_LABELS))
        assert np.array_equal(back.array, case.labels.array)
    assert not [p for p in site.iterdir() if p.name.startswith(".")]  # no temporary left


def test_refuses_overwrite_and_bad_labels(exported, tmp_path):
    site, cases = exported
    case, out = cases[0]
    with pytest.raises(InputError, match="already exists"):
        export_training_case(case.ct, case.labels, case.table, site, name=out.name)
    with pytest.raises(InputError, match="case-<12 hex"):
        export_training_case(case.ct, case.labels, case.table, site, name="patient-smith")
    shifted = dataclasses.replace(case.labels, origin_lps_mm=np.array([5.0, 0.0, 0.0]))
    with pytest.raises(InputError, match="grid"):
        export_training_case(case.ct, shifted, case.table, tmp_path)
    bad = case.labels.with_array(np.full(case.labels.array.shape, 7, np.uint8))
    with pytest.raises(InputError, match="does not name"):
        export_training_case(case.ct, bad, case.table, tmp_path)
    assert not list(tmp_path.iterdir())


def test_exported_cases_train(exported, tmp_path):
    site, cases = exported
    files = discover_cases(site)
    assert sorted(f.case_id for f in files) == sorted(out.name for _, out in cases)
    assert all(f.labels.name == "labels.nii.gz" for f in files)
    loaded = load_cases(files)
    originals = {out.name: case for case, out in cases}
    for c in loaded:
        assert np.array_equal(c.labels.array, originals[c.case_id].labels.array)
        assert np.allclose(c.ct.array, originals[c.case_id].ct.array, atol=0.5)
    # No validation cases: a sliding-window validation would cost more than the training.
    result = train(loaded, val_cases=[], out_dir=tmp_path / "run",
                   options=tiny_options(iterations=2, val_every=2))
    assert result.iterations == 2 and (tmp_path / "run" / "model.safetensors").is_file()


def test_cli_export_case(tmp_path, capsys):
    from spinect_core.cli import main
    from spinect_core.io import save_label_map, write_image

    case = make_case("x", 5)
    write_image(case.ct, tmp_path / "Smith_John_ct.nii.gz")
    save_label_map(case.labels, case.table, tmp_path / "Smith_John_seg.nii.gz")
    code = main(["export-case", str(tmp_path / "Smith_John_ct.nii.gz"),
                 str(tmp_path / "Smith_John_seg.nii.gz"), str(tmp_path / "site"),
                 "--edited", "nerve,bone"])
    assert code == 0
    (folder,) = (tmp_path / "site").iterdir()
    assert CASE_NAME_PATTERN.match(folder.name) and folder.name in capsys.readouterr().out
    assert json.loads((folder / "case.json").read_text())["edited"] == ["nerve", "bone"]
    assert "Smith" not in "".join(p.read_text(errors="ignore") for p in folder.glob("*.json"))
