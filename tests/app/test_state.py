"""The app's one typed, observable state: frozen values replaced (never edited) and announced once,
one settings source, the dialogs protocol, and the header scan and the network reused."""

from __future__ import annotations

import dataclasses
import inspect
import os
from types import SimpleNamespace

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.planning.plan import Plan, SidePlan, WindowPlan
from spinect_core.segment import Segmenter, SegmentOptions

from app import pipeline, planning
from app.dialogs import ConsoleDialogs, Dialogs, QtDialogs
from app.settings import AppSettings
from app.state import AppState, Session, frozen_map
from app.store import StateStore
from tests.app.conftest import wait_idle
from tests.app.helpers import RecordingDialogs


# --- the store -----------------------------------------------------------------------------------
def test_replacing_the_state_emits_once_with_old_and_new(qtbot) -> None:
    store = StateStore()
    seen: list[tuple[AppState, AppState]] = []
    store.changed.connect(lambda old, new: seen.append((old, new)))
    first = store.state
    new = store.replace_session(notes=("a note",), series_uid="1.2.3")
    assert len(seen) == 1                                # both fields, one announcement
    old, announced = seen[0]
    assert old is first and announced is new is store.state
    assert new.session.notes == ("a note",) and new.session.series_uid == "1.2.3"
    assert old.session.notes == () and old.session.series_uid is None   # the old one as it was
    store.replace_view(picking=True)
    assert len(seen) == 2 and seen[1][0] is new and seen[1][1].view.picking
    assert seen[1][1].session is new.session            # the session was not copied
    store.set(store.state)                              # nothing new: nothing announced
    assert len(seen) == 2


def test_state_values_cannot_be_edited_in_place() -> None:
    session = Session(meshes=frozen_map({"bone": None}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.plan = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        session.meshes["nerve"] = None  # type: ignore[index]
    cleared = session.without_segmentation()
    assert cleared is not session and not cleared.meshes and "bone" in session.meshes


def _side(side: str) -> SidePlan:
    return SidePlan(side=side, kambin=WindowPlan(kind="kambin", side=side, found=True),
                    safe=WindowPlan(kind="safe", side=side, found=True),
                    trajectory=SimpleNamespace(reason="first", target_lps_mm=np.zeros(3)),
                    trajectory_window="kambin")


def test_a_replanned_needle_gives_a_new_plan_and_leaves_the_old_one(qtbot, settings) -> None:
    from app.controller import SessionController

    controller = SessionController(settings, RecordingDialogs())
    plan = Plan(sides={"left": _side("left"), "right": _side("right")}, ct_geometry={},
                segmentation_source="test", anatomy={})
    before = plan.sides["left"].trajectory
    controller.store.replace_session(plan=plan)
    changes: list[tuple[AppState, AppState]] = []
    sides: list[str] = []
    controller.store.changed.connect(lambda old, new: changes.append((old, new)))
    controller.trajectory_changed.connect(sides.append)
    new_traj = SimpleNamespace(reason="moved", target_lps_mm=np.ones(3))
    controller._on_replanned(("window", "left", "safe"), planning.ReplanResult(
        side="left", kind="safe", trajectory=new_traj, in_window=True))
    assert sides == ["left"] and len(changes) == 1
    new_plan = controller.session.plan
    assert changes[0][0].session.plan is plan and changes[0][1].session.plan is new_plan
    assert new_plan is not plan and list(new_plan.sides) == ["left", "right"]
    assert new_plan.sides["left"].trajectory is new_traj
    assert new_plan.sides["left"].trajectory_window == "safe"
    assert new_plan.sides["left"].trajectory_reason == "moved"
    assert new_plan.sides["right"] is plan.sides["right"]
    # Whoever held the plan before (an export, a widget) still reads it whole and unchanged.
    assert plan.sides["left"].trajectory is before and plan.sides["left"].trajectory_window \
        == "kambin"
    assert controller.replans["left"].trajectory is new_traj
    controller.shutdown()


# --- one settings source -------------------------------------------------------------------------
def test_run_only_overrides_are_in_every_snapshot_and_never_stored(tmp_path) -> None:
    path = tmp_path / "s.ini"
    s = AppSettings.from_file(path)
    s.set_overrides(weights_path="/run/only.safetensors", auto_plan=False)
    assert s.snapshot().weights_path == "/run/only.safetensors" and not s.snapshot().auto_plan
    assert s.snapshot() is s.snapshot()                 # read from the store once
    s.device = "cpu"                                    # a set value is read again ...
    assert s.snapshot().device == "cpu"
    assert s.snapshot().weights_path == "/run/only.safetensors"   # ... the overrides stay
    s.sync()
    stored = AppSettings.from_file(path).snapshot()
    assert stored.device == "cpu" and stored.weights_path == "" and stored.auto_plan
    with pytest.raises(ValueError, match="unknown settings"):
        s.set_overrides(weigths_path="typo")


# --- the dialogs protocol ------------------------------------------------------------------------
def _protocol_methods() -> list[str]:
    return [name for name, value in vars(Dialogs).items()
            if callable(value) and not name.startswith("_")]


@pytest.mark.parametrize("impl", [QtDialogs, ConsoleDialogs, RecordingDialogs])
def test_every_dialog_provider_has_the_protocols_methods(impl) -> None:
    names = _protocol_methods()
    assert {"choose_series", "export_request", "open_from_pacs", "error"} <= set(names)
    for name in names:
        want = inspect.signature(getattr(Dialogs, name))
        have = inspect.signature(getattr(impl, name))
        w = [(p.name, p.kind) for p in want.parameters.values()]
        h = [(p.name, p.kind) for p in have.parameters.values()]
        assert h == w, (impl.__name__, name)
        for p in want.parameters.values():  # optional in the protocol: optional here too
            if p.default is not inspect.Parameter.empty:
                assert have.parameters[p.name].default is not inspect.Parameter.empty, \
                    (impl.__name__, name, p.name)


# --- the loaded network and the header scan, reused ----------------------------------------------
def test_the_segmenter_is_loaded_once_per_weights_file_and_options(weights_file,
                                                                   monkeypatch) -> None:
    loads = []
    real = Segmenter.from_weights.__func__

    def counting(cls, path, *, options=None):
        loads.append(path)
        return real(cls, path, options=options)

    monkeypatch.setattr(Segmenter, "from_weights", classmethod(counting))
    # The network's run and the bone check are not what is measured here.
    monkeypatch.setattr(Segmenter, "segment", lambda self, ct, progress=None: SimpleNamespace())
    import spinect_core.bone.agreement as agreement

    monkeypatch.setattr(agreement, "check_segmentation", lambda *a, **k: None)
    from app.state import SettingsValues

    cache = pipeline.SegmenterCache()
    settings = SettingsValues(weights_path=str(weights_file), device="cpu", bone="network")
    pipeline.segment_volume(None, settings, segmenters=cache)
    first = cache.get(str(weights_file), SegmentOptions(device="cpu", bone="network"))
    pipeline.segment_volume(None, settings, segmenters=cache)
    assert len(loads) == 1 and cache.loads == 1
    assert cache.get(str(weights_file), SegmentOptions(device="cpu", bone="network")) is first
    # Other options, or the file replaced: loaded again.
    pipeline.segment_volume(None, dataclasses.replace(settings, blend="gaussian"),
                            segmenters=cache)
    assert len(loads) == 2
    pipeline.segment_volume(None, settings, segmenters=cache)
    assert len(loads) == 3
    stat = weights_file.stat()
    os.utime(weights_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        pipeline.segment_volume(None, settings, segmenters=cache)
    finally:
        os.utime(weights_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(loads) == 4
    # Without a cache (the CLI's way) every call loads.
    pipeline.segment_volume(None, settings)
    assert len(loads) == 5


def test_the_window_scans_the_headers_once_and_keeps_one_network(qtbot, window, phantom_case,
                                                                monkeypatch) -> None:
    import spinect_core.io.dicom as dicom
    import spinect_core.io.dicom_scan as dicom_scan

    scans = []
    real_scan = dicom_scan.scan

    def counting_scan(path, *, progress=None):
        scans.append(path)
        return real_scan(path, progress=progress)

    monkeypatch.setattr(dicom_scan, "scan", counting_scan)
    monkeypatch.setattr(dicom, "scan", counting_scan)
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert window.open_path(phantom_case["dicom"])
    wait_idle(qtbot, window)
    session = window.controller.session
    assert session.ct is not None and session.ct.metadata.source_format == "dicom"
    assert len(scans) == 1                              # listed and loaded from one scan
    assert session.scan is not None and session.series == session.scan.series
    assert window.controller.settings is window.settings  # one settings source

    # Each segmentation is handed the controller's one network cache.
    handed = []

    def spy(ct, settings, *, progress=None, segmenters=None):
        handed.append(segmenters)
        raise InputError("stopped by the test")

    monkeypatch.setattr(pipeline, "segment_volume", spy)
    for _ in range(2):
        with qtbot.waitSignal(window.controller.pipeline_finished, timeout=30_000):
            assert window.controller.segment()
        wait_idle(qtbot, window)
    assert len(handed) == 2 and handed[0] is handed[1] is window.controller.segmenters
    assert isinstance(handed[0], pipeline.SegmenterCache)
