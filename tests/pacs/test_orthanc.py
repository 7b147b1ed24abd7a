"""``spinect pacs`` and ``spinect plan --send`` against a real Orthanc (tests/pacs/conftest.py).

One phantom (2 mm voxels, so small) is given a patient ID, accession number and study date,
stored, found, retrieved by C-GET, C-MOVE and WADO-RS, planned and the plan sent back; the
failures (closed port, wrong called AE title, unknown calling AE title, a non-empty output
folder, a cancel) give their documented one-line messages and leave nothing behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spinect_core.cli as cli
from spinect_core.errors import Cancelled
from spinect_core.io import load_ct

PATIENT_ID = "SPX-0001"
PATIENT_NAME = "Testperson^Phantom"
ACCESSION = "ACC0001"
STUDY_DATE = "20260102"


@pytest.fixture
def main(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINECT_LOG_DIR", str(tmp_path / "logs"))
    return cli.main


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """The seed-1 phantom at 2 mm with its DICOM series given patient and study identifiers."""
    import pydicom

    root = tmp_path_factory.mktemp("phantom")
    subprocess.run([sys.executable, "-m", "spinect_core", "phantom", "--seed", "1", str(root),
                    "--dicom", "--spacing", "2", "2", "2", "--quiet"], check=True,
                   capture_output=True)
    series = root / "pacs_input"
    series.mkdir()
    for f in sorted((root / "dicom").iterdir()):
        ds = pydicom.dcmread(f)
        ds.PatientID = PATIENT_ID
        ds.PatientName = PATIENT_NAME
        ds.AccessionNumber = ACCESSION
        ds.StudyDate = STUDY_DATE
        ds.save_as(series / f.name)
    first = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    return {"root": root, "series": series, "study": str(first.StudyInstanceUID),
            "series_uid": str(first.SeriesInstanceUID),
            "frame": str(first.FrameOfReferenceUID), "count": len(list(series.iterdir()))}


@pytest.fixture(scope="module")
def stored(orthanc, phantom):
    """The phantom series on the PACS (sent with ``spinect pacs send``)."""
    orthanc.clear()
    rc = cli.main(["pacs", "send", "--pacs", orthanc.node, str(phantom["series"]), "--quiet"])
    assert rc == 0
    return phantom


def _no_identifiers(text: str) -> None:
    for secret in (PATIENT_ID, "Testperson", ACCESSION):
        assert secret not in text


def test_echo(orthanc, main, capsys):
    assert main(["pacs", "echo", "--pacs", orthanc.node]) == 0
    assert "answers" in capsys.readouterr().out


def test_send_stores_the_series(orthanc, stored):
    (study,) = orthanc.rest("/studies")
    info = orthanc.rest(f"/studies/{study}")
    assert info["MainDicomTags"]["StudyInstanceUID"] == stored["study"]
    assert len(orthanc.rest("/instances")) == stored["count"]


def test_find_study_and_series_levels_json(orthanc, stored, main, capsys):
    capsys.readouterr()
    assert main(["pacs", "find", "--pacs", orthanc.node, "--patient-id", PATIENT_ID,
                 "--json"]) == 0
    out = capsys.readouterr().out
    studies = json.loads(out)
    assert [s["StudyInstanceUID"] for s in studies] == [stored["study"]]
    (series,) = studies[0]["series"]
    assert series["SeriesInstanceUID"] == stored["series_uid"]
    assert series["Modality"] == "CT"
    assert series["NumberOfSeriesRelatedInstances"] == stored["count"]
    assert studies[0]["ModalitiesInStudy"] == ["CT"]
    # Dates and descriptions only on request; identifiers never
    assert "StudyDate" not in studies[0] and "SeriesDescription" not in series
    _no_identifiers(out)
    assert main(["pacs", "find", "--pacs", orthanc.node, "--accession", ACCESSION,
                 "--date", "20260101-20260131", "--json", "--show-descriptions"]) == 0
    out = capsys.readouterr().out
    (study,) = json.loads(out)
    assert study["StudyDate"] == STUDY_DATE and "SeriesDescription" in study["series"][0]
    _no_identifiers(out)
    assert main(["pacs", "find", "--pacs", orthanc.node, "--date", "19990101",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["pacs", "find", "--pacs", orthanc.node, "--patient-id", PATIENT_ID]) == 0
    text = capsys.readouterr().out
    assert f"study {stored['study']} CT, 1 series" in text
    _no_identifiers(text)


def _same_ct(folder: Path, phantom) -> None:
    got = load_ct(folder)
    want = load_ct(phantom["root"] / "ct.nii.gz")
    np.testing.assert_array_equal(got.array, want.array)
    np.testing.assert_allclose(got.origin_lps_mm, want.origin_lps_mm, atol=1e-3)
    np.testing.assert_allclose(got.spacing_mm, want.spacing_mm, atol=1e-4)
    np.testing.assert_allclose(got.direction, want.direction, atol=1e-6)


@pytest.mark.parametrize("how", ["get", "move"])
def test_retrieve_equals_the_phantom_ct(orthanc, stored, main, tmp_path, capsys, how):
    out = tmp_path / "case"
    args = ["pacs", "get", "--pacs", orthanc.node, "--study", stored["study"], "-o", str(out),
            "--quiet"]
    if how == "move":
        args += ["--move", "--scp-port", str(orthanc.scp_port)]
    assert main(args) == 0
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == stored["count"]
    assert {f.parent.name for f in files} == {stored["series_uid"]}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    _same_ct(out, stored)
    _no_identifiers(capsys.readouterr().out)


def test_retrieve_refuses_a_folder_with_files(orthanc, stored, main, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    rc = main(["pacs", "get", "--pacs", orthanc.node, "--study", stored["study"],
               "--series", stored["series_uid"], "-o", str(out), "--quiet"])
    assert rc == 2
    assert "is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_cancelled_retrieve_leaves_nothing(orthanc, stored, tmp_path):
    from spinect_core.pacs import connect, parse_node

    client = connect(parse_node(orthanc.node))
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        return len(calls) < 4  # cancel after a few instances

    with pytest.raises(Cancelled):
        client.retrieve(stored["study"], tmp_path / "case", progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_node(main, capsys):
    from tests.pacs.conftest import free_port

    rc = main(["pacs", "echo", "--pacs", f"ORTHANC@127.0.0.1:{free_port()}", "--timeout", "5"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spinect: error: nothing answers at 127.0.0.1:")
    assert "connection refused" in err and len(err.splitlines()) == 1


def test_wrong_called_ae_title_is_refused(orthanc, main, capsys):
    rc = main(["pacs", "echo", "--pacs", f"NOT_ORTHANC@127.0.0.1:{orthanc.dicom_port}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "refused the association: it is not called 'NOT_ORTHANC'" in err
    assert "called AE title not recognised" in err


def test_unknown_calling_ae_title_is_refused(orthanc, stored, main, tmp_path, capsys):
    rc = main(["pacs", "find", "--pacs", orthanc.node, "--aet", "STRANGER", "--patient-id",
               PATIENT_ID, "--timeout", "10"])
    assert rc == 2
    assert "does not accept it from our AE title 'STRANGER'" in capsys.readouterr().err
    rc = main(["pacs", "get", "--pacs", orthanc.node, "--aet", "STRANGER", "--study",
               stored["study"], "-o", str(tmp_path / "m"), "--move", "--scp-port",
               str(orthanc.scp_port), "--quiet", "--timeout", "10"])
    assert rc == 2
    assert "our AE title 'STRANGER'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dicomweb_find_get_send(orthanc, stored, main, tmp_path, capsys):
    if not orthanc.has_dicomweb:
        pytest.skip("Orthanc's DICOMweb plugin is not installed")
    url = orthanc.dicomweb
    capsys.readouterr()
    assert main(["pacs", "echo", "--dicomweb", url]) == 0
    assert "answers" in capsys.readouterr().out
    assert main(["pacs", "find", "--dicomweb", url, "--patient-id", PATIENT_ID, "--json"]) == 0
    (study,) = json.loads(capsys.readouterr().out)
    assert study["StudyInstanceUID"] == stored["study"]
    assert study["series"][0]["NumberOfSeriesRelatedInstances"] == stored["count"]
    out = tmp_path / "web"
    assert main(["pacs", "get", "--dicomweb", url, "--study", stored["study"], "--series",
                 stored["series_uid"], "-o", str(out), "--quiet"]) == 0
    _same_ct(out, stored)
    # STOW-RS: send the retrieved copy into an emptied PACS
    orthanc.clear()
    try:
        assert main(["pacs", "send", "--dicomweb", url, str(out), "--quiet"]) == 0
        assert len(orthanc.rest("/instances")) == stored["count"]
    finally:  # the module's other tests expect the series stored by DIMSE
        orthanc.clear()
        assert cli.main(["pacs", "send", "--pacs", orthanc.node, str(stored["series"]),
                         "--quiet"]) == 0


def test_plan_send_files_derived_objects_with_their_ct(orthanc, stored, main, tmp_path,
                                                        capsys):
    """Retrieve, plan, send back: every object we stored sits in the CT's patient and study,
    and those with a frame of reference share the CT's."""
    case = tmp_path / "case"
    assert main(["pacs", "get", "--pacs", orthanc.node, "--study", stored["study"], "-o",
                 str(case), "--quiet"]) == 0
    before = set(orthanc.rest("/instances"))
    out = tmp_path / "plan"
    rc = main(["plan", str(case), "-o", str(out), "--segmentation",
               str(stored["root"] / "labels.nii.gz"), "--no-meshes", "--quiet",
               "--send", orthanc.node])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    sent = sorted(out.rglob("*.dcm"))
    assert sent, "the plan wrote no DICOM objects"
    assert f"sent {len(sent)} DICOM objects" in captured.out
    new = set(orthanc.rest("/instances")) - before
    assert len(new) == len(sent)
    (patient,) = orthanc.rest("/patients")  # nothing filed under a second (empty) patient
    (study,) = orthanc.rest("/studies")
    assert orthanc.rest(f"/studies/{study}")["ParentPatient"] == patient
    with_frame = 0
    for instance in new:
        tags = orthanc.rest(f"/instances/{instance}/tags?simplify")
        assert tags["StudyInstanceUID"] == stored["study"]
        assert tags["PatientID"] == PATIENT_ID
        series = orthanc.rest(f"/instances/{instance}")["ParentSeries"]
        assert orthanc.rest(f"/series/{series}")["ParentStudy"] == study
        if "FrameOfReferenceUID" in tags:
            assert tags["FrameOfReferenceUID"] == stored["frame"]
            with_frame += 1
    modalities = {orthanc.rest(f"/instances/{i}/tags?simplify").get("Modality") for i in new}
    assert {"CT", "SEG"} <= modalities  # the planes and the segmentation
    assert with_frame >= 2
    _no_identifiers(captured.out + captured.err)


def test_plan_send_failure_says_the_plan_is_written(stored, tmp_path):
    """A send that fails after the plan is written says so (cheap: a stand-in plan folder)."""
    import shutil

    from spinect_core.cli.pacs import client_from_args
    from spinect_core.cli.plan import send_plan
    from spinect_core.pacs import PacsUnreachableError
    from tests.pacs.conftest import free_port

    out = tmp_path / "plan"
    (out / "dicom").mkdir(parents=True)
    shutil.copy(next(stored["series"].iterdir()), out / "dicom" / "x.dcm")
    client = client_from_args(None, node_text=f"ORTHANC@127.0.0.1:{free_port()}")
    with pytest.raises(PacsUnreachableError, match="the plan itself is written"):
        send_plan(client, out, quiet=True)


@pytest.mark.parametrize("move", [False, True])
def test_partial_retrieve_keeps_nothing(orthanc, stored, tmp_path, monkeypatch, move):
    """Every third instance fails to arrive (our storage refuses it, as a full disk would): the
    PACS reports failed sub-operations, the retrieve says so and keeps nothing."""
    import spinect_core.pacs.dimse as dimse
    from spinect_core.pacs import PartialRetrieveError, connect, parse_node

    real = dimse.instance_path
    calls = []

    def flaky(root, series_uid, sop_uid):
        calls.append(sop_uid)
        if len(calls) % 3 == 0:
            raise OSError(28, "No space left on device")
        return real(root, series_uid, sop_uid)

    monkeypatch.setattr(dimse, "instance_path", flaky)
    client = connect(parse_node(orthanc.node), scp_port=orthanc.scp_port)
    with pytest.raises(PartialRetrieveError, match="nothing was kept"):
        client.retrieve(stored["study"], tmp_path / "case", move=move)
    assert len(calls) >= 3
    assert list(tmp_path.iterdir()) == []
