"""3D Slicer markups line (.mrk.json): schema keys, LPS round trip, RAS input, no overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.io.markups import MARKUPS_SCHEMA, read_markups_line, write_markups_line

ENTRY = np.array([42.5, 88.25, -101.0])
TARGET = np.array([18.0, 31.5, -112.75])


def test_round_trip_and_schema_keys(tmp_path):
    path = write_markups_line(tmp_path / "needle.mrk.json", ENTRY, TARGET)
    doc = json.loads(path.read_text())
    assert doc["@schema"] == MARKUPS_SCHEMA and doc["@schema"].endswith("markups-schema-v1.0.3.json#")
    (line,) = doc["markups"]
    assert line["type"] == "Line" and line["coordinateSystem"] == "LPS"
    assert line["coordinateUnits"] == "mm" and line["name"] == "tESI needle L5/S1 left"
    cps = line["controlPoints"]
    assert [cp["label"] for cp in cps] == ["entry", "target"]
    assert [cp["id"] for cp in cps] == ["1", "2"]
    assert all(cp["positionStatus"] == "defined" and len(cp["orientation"]) == 9 for cp in cps)
    assert cps[0]["position"] == ENTRY.tolist() and cps[1]["position"] == TARGET.tolist()
    assert line["measurements"][0]["value"] == pytest.approx(np.linalg.norm(TARGET - ENTRY))
    back = read_markups_line(path)
    np.testing.assert_array_equal(back.entry_lps_mm, ENTRY)
    np.testing.assert_array_equal(back.target_lps_mm, TARGET)
    assert back.name == "tESI needle L5/S1 left"
    assert back.length_mm == pytest.approx(np.linalg.norm(TARGET - ENTRY))


def test_no_overwrite_unless_asked(tmp_path):
    path = write_markups_line(tmp_path / "n.mrk.json", ENTRY, TARGET)
    with pytest.raises(FileExistsRefusedError):
        write_markups_line(path, TARGET, ENTRY)
    assert read_markups_line(path).entry_lps_mm.tolist() == ENTRY.tolist()
    write_markups_line(path, TARGET, ENTRY, name="right", overwrite=True)
    assert read_markups_line(path).name == "right"


def test_reads_ras_files_and_labels_in_any_order(tmp_path):
    doc = {"@schema": MARKUPS_SCHEMA, "markups": [
        {"type": "Fiducial", "controlPoints": []},
        {"type": "Line", "coordinateSystem": "RAS", "coordinateUnits": "mm", "name": "n",
         "controlPoints": [{"label": "target", "position": [-18.0, -31.5, -112.75]},
                           {"label": "entry", "position": [-42.5, -88.25, -101.0]}]}]}
    p = tmp_path / "ras.mrk.json"
    p.write_text(json.dumps(doc))
    line = read_markups_line(p)
    np.testing.assert_allclose(line.entry_lps_mm, ENTRY)
    np.testing.assert_allclose(line.target_lps_mm, TARGET)


def test_invalid_files_and_arguments(tmp_path):
    bad = tmp_path / "bad.mrk.json"
    bad.write_text("{not json")
    with pytest.raises(InputError):
        read_markups_line(bad)
    bad.write_text(json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [
        {"type": "Line", "controlPoints": [{"position": [0, 0, 0]}]}]}))
    with pytest.raises(InputError, match="2 defined"):
        read_markups_line(bad)
    with pytest.raises(ValueError):
        write_markups_line(tmp_path / "x.txt", ENTRY, TARGET)
    with pytest.raises(ValueError):
        write_markups_line(tmp_path / "y.mrk.json", [1.0, np.nan, 0.0], TARGET)
