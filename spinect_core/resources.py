"""Where bundled read-only assets (icons, demo weights, demo case) live.

One function so that every asset lookup works both from a source checkout (``assets/`` beside the
``spinect_core`` package) and from a frozen PyInstaller app, which unpacks data files under
``sys._MEIPASS`` (the spec must copy ``assets/`` to ``assets/`` there).
"""

from __future__ import annotations

import sys
from pathlib import Path


def asset_path(*parts: str) -> Path:
    """Absolute path of ``assets/<parts...>``; it is not checked for existence.

    Examples
    --------
    >>> asset_path("weights", "spinect_default.safetensors").name
    'spinect_default.safetensors'
    """
    bundle = getattr(sys, "_MEIPASS", None)  # set only inside a PyInstaller-frozen app
    root = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return root.joinpath("assets", *parts)
