"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

import spinect_core.cli as cli


@pytest.fixture
def main(monkeypatch, tmp_path):
    """``spinect_core.cli.main`` with crash logs under ``tmp_path`` (never in the user's log
    folder)."""
    monkeypatch.setenv("SPINECT_LOG_DIR", str(tmp_path / "logs"))
    return cli.main
