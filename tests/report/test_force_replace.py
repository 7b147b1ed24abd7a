"""``overwrite`` (``--force``) replaces a plan folder whole; a failed or interrupted export leaves
nothing behind (issue 16, cases 4 and 6).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from spinect_core.errors import Cancelled, OutputError
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.report import check_output_dir, write_plan_outputs
from spinect_core.report.exports import ExportOptions

FAST = ExportOptions(dicom=False, pdf=False)


def files_under(folder) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def leftovers(parent) -> list[str]:
    return sorted(n for n in os.listdir(parent) if ".spinect-" in n)


@pytest.fixture()
def earlier_plan(outputs, tmp_path):
    """A copy of the both-sides plan (meshes LPS + RAS, DICOM planes) in ``tmp_path/plan``."""
    out, written, _ = outputs
    target = tmp_path / "plan"
    shutil.copytree(out, target)
    assert {"needle_right.mrk.json", "meshes/bone_ras.stl", "planes_right/needle_plane.png"} \
        <= files_under(target)
    return target


def left_only(plan):
    return dataclasses.replace(plan, sides={"left": plan.sides["left"]})


def test_force_with_fewer_outputs_leaves_only_the_new_files(planned, earlier_plan):
    ct, ph, plan, engine = planned
    before = files_under(earlier_plan)
    written = write_plan_outputs(left_only(plan), engine, earlier_plan, ct=ct, labels=ph.labels,
                                 table=DEFAULT_LABELS, meshes=False, overwrite=True, options=FAST)
    after = files_under(earlier_plan)
    new = {p.relative_to(earlier_plan).as_posix() for files in written.values() for p in files}
    assert after == new  # nothing else survives
    for stale in ("needle_right.mrk.json", "screenshot_right_kambin.png", "meshes/bone_lps.stl",
                  "planes_right/needle_plane.nii.gz", "dicom/planes_left_needle/IM00001.dcm",
                  "dicom/seg.dcm"):
        assert stale in before and stale not in after
    assert '"right"' not in (earlier_plan / "plan.json").read_text(encoding="utf-8")
    assert leftovers(earlier_plan.parent) == []


def test_force_keeps_files_that_are_not_a_plans(planned, earlier_plan):
    ct, ph, plan, engine = planned
    (earlier_plan / "segmentation.nii.gz").write_bytes(b"the app's label map")
    (earlier_plan / "notes.txt").write_text("mine")
    write_plan_outputs(left_only(plan), engine, earlier_plan, ct=ct, labels=ph.labels,
                       table=DEFAULT_LABELS, meshes=False, overwrite=True, options=FAST)
    after = files_under(earlier_plan)
    assert {"segmentation.nii.gz", "notes.txt", "plan.json", "needle_left.mrk.json"} <= after
    assert not any(n.startswith(("meshes/", "planes_right/")) or "right" in n for n in after)
    assert (earlier_plan / "notes.txt").read_text() == "mine"
    assert leftovers(earlier_plan.parent) == []


def test_without_force_an_earlier_plan_is_refused_before_any_write(planned, earlier_plan):
    ct, ph, plan, engine = planned
    before = {p: p.stat().st_mtime_ns for p in earlier_plan.rglob("*")}
    with pytest.raises(FileExistsRefusedError, match="already holds a plan"):
        write_plan_outputs(left_only(plan), engine, earlier_plan, ct=ct, labels=ph.labels,
                           table=DEFAULT_LABELS, meshes=False, options=FAST)
    (earlier_plan / "plan.json").unlink()
    (earlier_plan / "report.html").unlink()
    with pytest.raises(FileExistsRefusedError, match="files of a plan"):
        check_output_dir(earlier_plan)
    assert {p for p in before if p.exists()} == set(earlier_plan.rglob("*"))


def test_a_cancelled_export_leaves_the_folder_as_it_was(planned, earlier_plan, tmp_path):
    ct, ph, plan, engine = planned
    before = {p.relative_to(earlier_plan): p.read_bytes() for p in earlier_plan.rglob("*")
              if p.is_file()}

    def cancel_at_screenshots(fraction, message):
        return "screenshots" not in message

    with pytest.raises(Cancelled):
        write_plan_outputs(left_only(plan), engine, earlier_plan, ct=ct, labels=ph.labels,
                           table=DEFAULT_LABELS, meshes=False, overwrite=True, options=FAST,
                           progress=cancel_at_screenshots)
    assert {p.relative_to(earlier_plan): p.read_bytes() for p in earlier_plan.rglob("*")
            if p.is_file()} == before
    assert leftovers(earlier_plan.parent) == []
    # Into a new folder: it is not created at all.
    fresh = tmp_path / "fresh"
    with pytest.raises(Cancelled):
        write_plan_outputs(left_only(plan), engine, fresh, ct=ct, labels=ph.labels,
                           table=DEFAULT_LABELS, meshes=False, options=FAST,
                           progress=cancel_at_screenshots)
    assert not fresh.exists() and leftovers(tmp_path) == []


def test_an_interrupt_while_writing_leaves_nothing(planned, tmp_path, monkeypatch):
    import spinect_core.report.exports as exports

    ct, ph, plan, engine = planned

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exports, "_write_area_maps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_plan_outputs(left_only(plan), engine, tmp_path / "out", ct=ct, labels=ph.labels,
                           table=DEFAULT_LABELS, meshes=False, options=FAST)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_location_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    # A file where a folder is needed: refused for every user, root included.
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_dir(blocker / "plan")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the file case above covers root")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write the plan into"):
            check_output_dir(ro / "plan")
    finally:
        ro.chmod(0o755)


def test_too_little_free_space_is_refused(tmp_path, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: usage(10**9, 10**9 - 5_000_000,
                                                                     5_000_000))
    with pytest.raises(OutputError, match=r"not enough free space .* 5 MB free, about 200 MB"):
        check_output_dir(tmp_path / "plan")
