"""Atomic writes give their files the mode a new file gets under the umask, not mkstemp's 0600."""

from __future__ import annotations

import os

import pytest

from spinect_core.io.atomic import atomic_path, current_umask, file_mode, write_bytes_atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_results_follow_the_umask(tmp_path, umask_027) -> None:
    assert current_umask() == 0o027 and file_mode() == 0o640
    path = write_bytes_atomic(tmp_path / "a.bin", b"x")
    assert path.stat().st_mode & 0o777 == 0o640
    os.umask(0o022)
    with atomic_path(tmp_path / "b.nii.gz") as tmp:
        tmp.write_bytes(b"y")
    assert (tmp_path / "b.nii.gz").stat().st_mode & 0o777 == 0o644
    # A plain open() gets the same mode: atomic writes no longer differ from it.
    (tmp_path / "c").write_bytes(b"z")
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o644
