"""Where bundled read-only assets (icons, demo weights, demo case) live.

One function so that every asset lookup works in all three ways the software is installed:

* a source checkout or editable install: ``assets/`` beside the ``spinect_core`` package;
* a frozen PyInstaller app: data files unpacked under ``sys._MEIPASS`` (the spec copies
  ``assets/`` to ``assets/`` there);
* a wheel (pip or the offline wheelhouse): ``<prefix>/share/spinect/assets`` (pyproject's
  ``data-files``), with ``prefix`` the environment's or, for ``pip install --user``, the user base.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path


def assets_root() -> Path:
    """The folder that holds the assets (the first candidate that exists, else the checkout's)."""
    bundle = getattr(sys, "_MEIPASS", None)  # set only inside a PyInstaller-frozen app
    if bundle:
        return Path(bundle) / "assets"
    checkout = Path(__file__).resolve().parent.parent / "assets"
    candidates = [checkout, Path(sys.prefix) / "share" / "spinect" / "assets"]
    user_base = getattr(site, "USER_BASE", None)
    if user_base:
        candidates.append(Path(user_base) / "share" / "spinect" / "assets")
    return next((c for c in candidates if c.is_dir()), checkout)


def asset_path(*parts: str) -> Path:
    """Absolute path of ``assets/<parts...>``; it is not checked for existence.

    Examples
    --------
    >>> asset_path("weights", "spinect_default.safetensors").name
    'spinect_default.safetensors'
    """
    return assets_root().joinpath(*parts)
