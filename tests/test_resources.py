"""Assets are found in a source checkout, a frozen bundle and a wheel install."""

from __future__ import annotations

import sys

import spinect_core.resources as resources


def test_source_checkout_uses_the_repository_assets() -> None:
    root = resources.assets_root()
    assert root.name == "assets" and (root / "icons" / "spinect.png").is_file()


def test_frozen_app_uses_the_bundle(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.asset_path("icons", "x.png") == tmp_path / "assets" / "icons" / "x.png"


def test_wheel_install_uses_prefix_share(tmp_path, monkeypatch) -> None:
    # A wheel puts the package in site-packages (no assets/ beside it) and the assets under
    # <prefix>/share/spinect/assets (pyproject data-files).
    package = tmp_path / "site-packages" / "spinect_core"
    package.mkdir(parents=True)
    monkeypatch.setattr(resources, "__file__", str(package / "resources.py"))
    shared = tmp_path / "prefix" / "share" / "spinect" / "assets"
    (shared / "icons").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert resources.assets_root() == shared
    assert resources.asset_path("icons", "spinect.png") == shared / "icons" / "spinect.png"
