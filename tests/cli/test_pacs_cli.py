"""``spinect pacs`` argument and node errors that need no PACS: one line, exit code 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, message", [
    (["echo", "--pacs", "ORTHANC"], "is not AET@HOST:PORT"),
    (["echo", "--pacs", "MUCH_TOO_LONG_AE_TITLE@h:104"], "is not a DICOM AE title"),
    (["echo", "--pacs", "A@h:70000"], "not in 1-65535"),
    (["echo", "--dicomweb", "ftp://pacs/dicom-web"], "must start with http"),
    (["echo", "--pacs", "A@h:104", "--aet", "BAD\\AET"], "our AE title"),
    (["find", "--pacs", "A@127.0.0.1:1"], "give a patient ID, an accession number"),
    (["find", "--pacs", "A@127.0.0.1:1", "--date", "2026-01-01"], "is not YYYYMMDD"),
    (["find", "--pacs", "A@127.0.0.1:1", "--date", "20261301"], "no valid month"),
    (["get", "--dicomweb", "http://127.0.0.1:1", "--study", "1.2", "-o", "x", "--move"],
     "--move is a DICOM (C-MOVE) option"),
    (["echo", "--pacs", "A@no-such-host.invalid:104", "--timeout", "5"],
     "the PACS host 'no-such-host.invalid' is unknown"),
    (["echo"], "one of the arguments --pacs --dicomweb is required"),
])
def test_refused_with_one_line(main, capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["pacs", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spinect: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_send_refuses_a_file_that_is_not_dicom(main, capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["pacs", "send", "--pacs", "A@127.0.0.1:1", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt is not a DICOM file" in capsys.readouterr().err
    assert main(["pacs", "send", "--pacs", "A@127.0.0.1:1", str(tmp_path)]) == 2
    assert "no DICOM files to send" in capsys.readouterr().err


def test_plan_send_node_is_checked_before_planning(main, capsys, tmp_path):
    rc = main(["plan", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "out"),
               "--send", "not-a-node"])
    assert rc == 2
    assert "is not AET@HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
