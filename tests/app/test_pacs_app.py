"""The app's PACS parts: nodes in the settings, Open from PACS (search on a worker, choose a
series, retrieve with progress and open it like a dropped folder) and Send to PACS on export,
against the real Orthanc of tests/pacs/conftest.py."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import InputError

from tests.app.conftest import wait_idle
from tests.pacs.conftest import orthanc  # noqa: F401 - the module-scoped Orthanc fixture

PATIENT_ID = "APP-0001"


@pytest.fixture(scope="module")
def app_series(orthanc, tmp_path_factory):  # noqa: F811 - the imported fixture
    """The app's phantom (seed 7, 2 mm) with a patient ID, stored on the Orthanc."""
    import pydicom

    from spinect_core.pacs import connect, parse_node
    from spinect_core.phantom import generate_phantom, write_phantom

    out = tmp_path_factory.mktemp("pacs_phantom")
    phantom = generate_phantom(seed=7, spacing_mm=(2.0, 2.0, 2.0))
    write_phantom(phantom, out, dicom=True)
    series = out / "with_id"
    series.mkdir()
    for f in sorted((out / "dicom").iterdir()):
        ds = pydicom.dcmread(f)
        ds.PatientID = PATIENT_ID
        ds.save_as(series / f.name)
    orthanc.clear()
    connect(parse_node(orthanc.node)).store([series])
    first = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    return {"phantom": phantom, "series": series, "study": str(first.StudyInstanceUID),
            "series_uid": str(first.SeriesInstanceUID)}


def _node(orthanc, **kw):  # noqa: F811
    from app.pacs_nodes import PacsNodeConfig

    return PacsNodeConfig(name="Test PACS", ae_title=orthanc.aet, host=orthanc.host,
                          port=orthanc.dicom_port, **kw)


def test_pacs_nodes_live_in_the_settings(settings, tmp_path):
    from app.pacs_nodes import PacsNodeConfig
    from app.settings import AppSettings

    assert settings.pacs_nodes == [] and settings.pacs_aet == "SPINECT"
    nodes = [PacsNodeConfig(name="Radiology", ae_title="RAD", host="pacs.local", port=4242,
                            move=True),
             PacsNodeConfig(name="Web", url="http://pacs.local:8042/dicom-web")]
    settings.pacs_nodes = nodes
    settings.pacs_aet = "PLANNER1"
    settings.pacs_scp_port = 11200
    settings.sync()
    again = AppSettings.from_file(tmp_path / "settings.ini")
    assert again.pacs_nodes == nodes
    assert (again.pacs_aet, again.pacs_scp_port) == ("PLANNER1", 11200)
    assert str(again.pacs_nodes[1].node()) == "http://pacs.local:8042/dicom-web"
    with pytest.raises(InputError, match="AE title"):
        settings.pacs_aet = "MUCH_TOO_LONG_AE_TITLE"
    with pytest.raises(InputError, match="AET@HOST:PORT|port"):
        PacsNodeConfig(name="x", ae_title="A", host="h", port=0).validate()
    # A hand-edited entry that is not valid is dropped, not fatal.
    settings.store.setValue("pacs/nodes", '[{"name": "bad", "port": "x"}, {"nonsense": 1}]')
    assert settings.pacs_nodes == []


def test_nodes_dialog_adds_and_saves(qtbot, settings):
    from app.pacs_dialog import PacsNodesDialog

    dialog = PacsNodesDialog(settings)
    qtbot.addWidget(dialog)
    dialog.name.setText("Test")
    dialog.aet.setText("BAD AE TITLE THAT IS TOO LONG")
    dialog.host.setText("127.0.0.1")
    assert not dialog._add()
    assert "AE title" in dialog.message.text()
    dialog.aet.setText("ORTHANC")
    dialog.port.setValue(4242)
    assert dialog._add()
    dialog.our_aet.setText("PLANNER")
    assert dialog.save()
    assert [(n.name, n.ae_title, n.port) for n in settings.pacs_nodes] == [("Test", "ORTHANC",
                                                                           4242)]
    assert settings.pacs_aet == "PLANNER"


def test_open_from_pacs_searches_retrieves_and_loads(qtbot, window, settings, dialogs,
                                                     orthanc, app_series):  # noqa: F811
    from app.pacs_dialog import OpenFromPacsDialog

    settings.pacs_nodes = [_node(orthanc)]
    dialog = OpenFromPacsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.patient_id.setText(PATIENT_ID)
    assert dialog.search()
    qtbot.waitUntil(lambda: not dialog.runner.busy, timeout=30_000)
    assert [s.study_uid for s in dialog.studies] == [app_series["study"]]
    # No identifier, date or description is shown unless asked for
    top = dialog.tree.topLevelItem(0)
    texts = [top.child(0).text(c) for c in range(6)]
    assert texts[1] == "CT" and texts[5] == "" and PATIENT_ID not in " ".join(texts)
    dialog.show_descriptions.setChecked(True)
    assert dialog.tree.topLevelItem(0).child(0).text(5) != ""
    assert dialog.select(app_series["study"], app_series["series_uid"])
    assert dialog.open_button.isEnabled()
    choice = dialog.choice()
    assert (choice.study_uid, choice.series_uid) == (app_series["study"],
                                                     app_series["series_uid"])
    dialogs.open_from_pacs = lambda _settings: choice
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert window.open_from_pacs()
    wait_idle(qtbot, window)
    ct = window.controller.session.ct
    expected = app_series["phantom"].ct
    assert ct.same_grid(expected, atol=1e-3)
    np.testing.assert_allclose(ct.array, expected.array, atol=1.0)
    assert dialogs.errors == []


def test_search_failure_is_shown_in_the_dialog(qtbot, settings):
    from app.pacs_dialog import OpenFromPacsDialog
    from app.pacs_nodes import PacsNodeConfig
    from tests.pacs.conftest import free_port

    settings.pacs_nodes = [PacsNodeConfig(name="Closed", ae_title="X", host="127.0.0.1",
                                          port=free_port())]
    dialog = OpenFromPacsDialog(settings)
    qtbot.addWidget(dialog)
    assert not dialog.search()  # no search key
    assert "patient ID" in dialog.message.text()
    dialog.date.setText("20260101")
    assert dialog.search()
    qtbot.waitUntil(lambda: not dialog.runner.busy, timeout=30_000)
    assert "nothing answers at 127.0.0.1" in dialog.message.text()
    assert dialog.search_button.isEnabled() and dialog.studies == []


def test_export_dialog_offers_the_nodes(qtbot, tmp_path):
    from app.widgets.export_dialog import ExportDialog

    dialog = ExportDialog(str(tmp_path), has_labels=True, has_meshes=False, has_plan=True,
                          pacs_nodes=["Test PACS", "Other"])
    qtbot.addWidget(dialog)
    assert dialog.request().send_to == ""
    dialog.send_to.setCurrentIndex(1)
    assert dialog.request().send_to == "Test PACS"
    without = ExportDialog(str(tmp_path), has_labels=True, has_meshes=False, has_plan=False,
                           pacs_nodes=["Test PACS"])
    qtbot.addWidget(without)
    without.send_to.setCurrentIndex(1)
    assert without.request().send_to == ""  # nothing to send without a plan


def test_export_sends_its_dicom_objects(orthanc, app_series, tmp_path):  # noqa: F811
    """The send step of an export: the DICOM objects it wrote reach the PACS; an export that
    wrote none says so."""
    from app.export import ExportRequest, _send
    from app.pacs_nodes import client_for

    client = client_for(_node(orthanc))
    files = sorted(app_series["series"].iterdir())[:3]
    renamed = []
    for i, f in enumerate(files):  # as an export names them
        target = tmp_path / f"IM{i:05d}.dcm"
        target.write_bytes(f.read_bytes())
        renamed.append(target)
    before = len(orthanc.rest("/instances"))
    request = ExportRequest(folder=tmp_path, send_to="Test PACS", send_client=client)
    assert _send(request, renamed + [tmp_path / "plan.json"], None) == 3
    assert len(orthanc.rest("/instances")) == before  # the same instances: stored again
    with pytest.raises(InputError, match="nothing to send"):
        _send(request, [tmp_path / "plan.json"], None)


def test_open_segmentation_reads_slicer_files_by_name(tmp_path):
    """The app's "Open segmentation" goes through the same reader: segment order is irrelevant."""
    from app.pipeline import load_segmentation_file
    from spinect_core.volume import Volume
    from tests.io.test_slicer_seg import ORIGIN, SPACING, _classes, _site_file

    names = {1: "Bone", 2: "Nerve", 3: "Disc", 4: "Dura"}
    _site_file(tmp_path / "a.seg.nrrd", {1: 1, 2: 2, 3: 3, 4: 4}, names)
    _site_file(tmp_path / "b.seg.nrrd", {1: 2, 2: 1, 3: 4, 4: 3}, names)
    ct = Volume(array=np.zeros(_classes().shape, np.int16), spacing_mm=SPACING,
                origin_lps_mm=ORIGIN)
    a = load_segmentation_file(tmp_path / "a.seg.nrrd", ct)
    b = load_segmentation_file(tmp_path / "b.seg.nrrd", ct)
    np.testing.assert_array_equal(a.labels.array, _classes())
    np.testing.assert_array_equal(b.labels.array, _classes())
    assert a.notes == b.notes == []  # no "assumed ids" note: the names are in the file
