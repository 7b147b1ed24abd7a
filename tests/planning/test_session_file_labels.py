"""The planning session file's label edits: the edited map beside it, saved and reopened.

A small synthetic CT grid and label map (no phantom, no plan engine): the session of label
edits only, its round trip through the files, a 1.0 file still read, and the refusals.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.errors import InputError, SpinectError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.label_edit import LabelEditor
from spinect_core.planning.session_file import (LABEL_EDITS_FILE_NAME, SESSION_FILE_NAME,
                                                SESSION_SCHEMA_VERSION, add_label_edits,
                                                check_ct, load_label_edits, load_session,
                                                parse_session, save_label_edits, save_session)
from spinect_core.volume import Volume

BONE = DEFAULT_LABELS.id_of("bone")


@pytest.fixture()
def case():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # a rotated grid
    a = np.zeros((24, 32, 40), np.uint8)
    a[6:18, 8:24, 10:30] = BONE
    labels = Volume(array=a, spacing_mm=(0.7, 0.7, 1.5), origin_lps_mm=(10.0, -40.0, 200.0),
                    direction=rot)
    ct = labels.with_array(np.where(a > 0, 700, -50).astype(np.int16))
    ed = LabelEditor(labels, DEFAULT_LABELS)
    with ed.stroke():
        ed.paint(labels.index_to_lps(np.array([32.0, 12.0, 12.0])), 2.0, "nerve")
        ed.paint(labels.index_to_lps(np.array([33.0, 12.0, 12.0])), 2.0, "nerve")
    ed.erase(labels.index_to_lps(np.array([20.0, 16.0, 10.0])), 3.0, "bone", plane="coronal")
    return ct, labels, ed


def test_label_edits_round_trip(case, tmp_path) -> None:
    ct, labels, ed = case
    record = save_label_edits(tmp_path, ed)
    assert (tmp_path / LABEL_EDITS_FILE_NAME).is_file()
    assert (tmp_path / "labels_edited.labels.json").is_file()  # its table, LPS
    path = save_session(tmp_path / SESSION_FILE_NAME, None, label_edits=record, ct=ct)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SESSION_SCHEMA_VERSION and doc["roots"] == []
    assert doc["label_edits"]["file"] == LABEL_EDITS_FILE_NAME
    assert doc["label_edits"]["coordinate_system"] == "LPS"
    assert doc["notes"] == ed.summary().lines()
    assert any(n.startswith("nerve edited by the operator") for n in doc["notes"])
    assert any(n.startswith("bone edited by the operator") for n in doc["notes"])
    session = load_session(path)
    check_ct(session, ct)
    assert session.label_edits.summary.to_dict() == ed.summary().to_dict()
    volume, table = load_label_edits(session, tmp_path)
    assert table == DEFAULT_LABELS and volume.same_grid(labels, atol=1e-4)
    assert np.array_equal(volume.array, ed.volume.array)
    # Reopened: a new editor on the original map with the saved one applied has the same edits.
    again = LabelEditor(labels, DEFAULT_LABELS)
    again.replace_all(volume.array)
    assert again.counts() == ed.counts()
    assert again.summary().lines() == ed.summary().lines()
    # Never silently overwritten.
    with pytest.raises(SpinectError, match="already exists"):
        save_label_edits(tmp_path, ed)
    with pytest.raises(SpinectError, match="already exists"):
        save_session(path, None, label_edits=record, ct=ct)


def test_label_edits_join_a_session_of_root_corrections(case, tmp_path) -> None:
    ct, _labels, ed = case
    # A 1.0 document as the root corrections wrote it before label edits existed.
    old = {"format": "spinect-planning-session", "schema_version": "1.0",
           "coordinate_system": "LPS", "units": {"length": "mm"}, "ct": ct.geometry_dict(),
           "plan_options": {"roots": "ct", "variant": "feasible", "sides": ["left"]},
           "roots": [{"side": "left", "name": "exiting_l5", "original_source": "ct",
                      "control_points_lps_mm": [[0, 0, 0], [1, 2, 3]], "radius_mm": [2, 2]}],
           "needle_targets": {}, "notes": ["exiting L5 root on the left: corrected by the "
                                           "operator"]}
    path = tmp_path / SESSION_FILE_NAME
    path.write_text(json.dumps(old))
    read = load_session(path)
    assert read.label_edits is None and len(read.roots) == 1  # 1.0 still read
    record = save_label_edits(tmp_path, ed)
    add_label_edits(path, record)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SESSION_SCHEMA_VERSION
    assert doc["notes"][0] == "exiting L5 root on the left: corrected by the operator"
    assert doc["notes"][1:] == ed.summary().lines()
    session = parse_session(doc)
    assert len(session.roots) == 1 and session.label_edits.file == LABEL_EDITS_FILE_NAME
    add_label_edits(path, record)  # again: the notes are not repeated
    assert json.loads(path.read_text())["notes"] == doc["notes"]


def test_label_edit_refusals(case, tmp_path) -> None:
    ct, labels, ed = case
    with pytest.raises(InputError, match="not edited"):
        save_label_edits(tmp_path, LabelEditor(labels, DEFAULT_LABELS))
    with pytest.raises(InputError, match="needs the CT"):
        save_session(tmp_path / "s.json", None)
    record = save_label_edits(tmp_path, ed)
    path = save_session(tmp_path / SESSION_FILE_NAME, None, label_edits=record, ct=ct)
    doc = json.loads(path.read_text())
    for bad in ("../labels_edited.nii.gz", "/tmp/x.nii.gz", ""):
        with pytest.raises(InputError, match="names no file beside the session"):
            parse_session(dict(doc, label_edits=dict(doc["label_edits"], file=bad)))
    with pytest.raises(InputError, match="summary"):
        parse_session(dict(doc, label_edits=dict(doc["label_edits"], summary=None)))
    session = load_session(path)
    # Another CT grid, a changed file, a missing file.
    moved = ct.with_array(ct.array)
    moved.origin_lps_mm = ct.origin_lps_mm + 5.0
    with pytest.raises(InputError, match="another size or position"):
        check_ct(session, moved)
    edited = tmp_path / LABEL_EDITS_FILE_NAME
    blob = edited.read_bytes()
    edited.write_bytes(blob[:-8] + b"\0" * 8)
    with pytest.raises(InputError, match="changed after"):
        load_label_edits(session, tmp_path)
    edited.unlink()
    with pytest.raises(InputError, match="is not beside"):
        load_label_edits(session, tmp_path)
