"""Persistent user settings (QSettings): recent files, folders, device, weights, planning inputs.

Values are read through typed properties with defaults, so a missing or hand-edited settings file
never breaks start-up. :meth:`AppSettings.snapshot` gives an immutable copy that workers and the
session use, so a worker never reads QSettings from its thread.

One source: the window, the controller and the dialogs share one :class:`AppSettings`. Its
snapshot is read from the store once and kept until a value is set; values given on the command
line for one run (:meth:`AppSettings.set_overrides`) are part of every snapshot and never written.

Privacy: CT folders and files are often named after the patient, so paths are kept on disk only
when the user opts in (``remember_recent_paths``, off by default). Until then the recent-files list
stays empty and the last open/export folders are remembered for this session only (in memory);
paths an earlier version stored are removed from the store when the settings are opened.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from spinect_core.bone import BONE_MODES
from spinect_core.segment import DEFAULT_BONE_MODE
from spinect_core.vocabulary import TRAJECTORY_WINDOWS, VARIANTS

from app.state import SettingsValues

__all__ = ["AppSettings", "SettingsValues", "DEVICES", "BLENDS", "BONE_SOURCES", "VARIANTS",
           "TRAJECTORY_WINDOWS", "PLAN_SEARCHES", "MAX_RECENT"]

#: Device choices offered in the settings dialog (passed to ``SegmentOptions.device``).
DEVICES = ("auto", "cpu", "cuda")
#: Sliding-window blend modes of ``SegmentOptions.blend``.
BLENDS = ("sum", "gaussian")
#: Sources of the segmentation's bone (``SegmentOptions.bone``, ``--bone``).
BONE_SOURCES = tuple(BONE_MODES)
#: Planning variants (``PlanOptions.variant``), needle windows and view-search grids.
PLAN_SEARCHES = ("standard", "quick")
MAX_RECENT = 10


class AppSettings:
    """Typed access to a :class:`QSettings` store.

    Parameters
    ----------
    store : QSettings, optional
        Defaults to the per-user store of organisation "SPINECT", application "SPINECT planner".
        Tests and ``--settings FILE`` pass an INI-file store (see :meth:`from_file`).
    """

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else QSettings("SPINECT", "SPINECT planner")
        #: Paths kept for this session only while ``remember_recent_paths`` is off.
        self._session_paths: dict[str, object] = {}
        #: Values for this run only (command line), applied to every snapshot, never stored.
        self._overrides: dict[str, Any] = {}
        self._snapshot: SettingsValues | None = None
        if not self.remember_recent_paths:
            self._forget_stored_paths()

    @classmethod
    def from_file(cls, path: str | Path) -> "AppSettings":
        """Settings kept in an INI file (portable installs, tests)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    # --- typed helpers ---------------------------------------------------------------------------
    def _set(self, key: str, value: object) -> None:
        self.store.setValue(key, value)
        self._snapshot = None  # read again at the next snapshot

    def _str(self, key: str, default: str) -> str:
        value = self.store.value(key, default)
        return default if value is None else str(value)

    def _choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._str(key, default)
        return value if value in choices else default

    def _float(self, key: str, default: float, lo: float, hi: float) -> float:
        try:
            value = float(self.store.value(key, default))
        except (TypeError, ValueError):
            return default
        return min(max(value, lo), hi)

    def _bool(self, key: str, default: bool) -> bool:
        value = self.store.value(key, default)
        if isinstance(value, str):  # INI files store booleans as text
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)

    # --- properties ------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return self._choice("segmentation/device", "auto", DEVICES)

    @device.setter
    def device(self, value: str) -> None:
        if value not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {value!r}")
        self._set("segmentation/device", value)

    @property
    def weights_path(self) -> str:
        return self._str("segmentation/weights_path", "")

    @weights_path.setter
    def weights_path(self, value: str | Path | None) -> None:
        self._set("segmentation/weights_path", str(value) if value else "")

    @property
    def blend(self) -> str:
        return self._choice("segmentation/blend", "sum", BLENDS)

    @blend.setter
    def blend(self, value: str) -> None:
        if value not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {value!r}")
        self._set("segmentation/blend", value)

    @property
    def bone(self) -> str:
        return self._choice("segmentation/bone", DEFAULT_BONE_MODE, BONE_SOURCES)

    @bone.setter
    def bone(self, value: str) -> None:
        if value not in BONE_SOURCES:
            raise ValueError(f"bone must be one of {BONE_SOURCES}, got {value!r}")
        self._set("segmentation/bone", value)

    @property
    def auto_segment(self) -> bool:
        return self._bool("segmentation/auto_segment", True)

    @auto_segment.setter
    def auto_segment(self, value: bool) -> None:
        self._set("segmentation/auto_segment", bool(value))

    @property
    def needle_gauge(self) -> int:
        return int(self._float("planning/needle_gauge", 22, 18, 25))

    @needle_gauge.setter
    def needle_gauge(self, value: int) -> None:
        self._set("planning/needle_gauge", int(value))

    @property
    def safety_margin_mm(self) -> float:
        return self._float("planning/safety_margin_mm", 2.0, 0.0, 10.0)

    @safety_margin_mm.setter
    def safety_margin_mm(self, value: float) -> None:
        self._set("planning/safety_margin_mm", float(value))

    @property
    def auto_plan(self) -> bool:
        return self._bool("planning/auto_plan", True)

    @auto_plan.setter
    def auto_plan(self, value: bool) -> None:
        self._set("planning/auto_plan", bool(value))

    @property
    def variant(self) -> str:
        return self._choice("planning/variant", "feasible", VARIANTS)

    @variant.setter
    def variant(self, value: str) -> None:
        if value not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {value!r}")
        self._set("planning/variant", value)

    @property
    def trajectory_window(self) -> str:
        return self._choice("planning/trajectory_window", "auto", TRAJECTORY_WINDOWS)

    @trajectory_window.setter
    def trajectory_window(self, value: str) -> None:
        if value not in TRAJECTORY_WINDOWS:
            raise ValueError(f"trajectory_window must be one of {TRAJECTORY_WINDOWS}, "
                             f"got {value!r}")
        self._set("planning/trajectory_window", value)

    @property
    def plan_search(self) -> str:
        return self._choice("planning/search", "standard", PLAN_SEARCHES)

    @plan_search.setter
    def plan_search(self, value: str) -> None:
        if value not in PLAN_SEARCHES:
            raise ValueError(f"plan_search must be one of {PLAN_SEARCHES}, got {value!r}")
        self._set("planning/search", value)

    # --- paths (privacy: on disk only when the user opts in) -----------------------------------
    _PATH_KEYS = ("paths/recent_files", "paths/last_open_dir", "paths/last_export_dir")

    @property
    def remember_recent_paths(self) -> bool:
        """Keep the recent files and the last folders in the settings file (off by default:
        folder and file names of CTs often carry the patient's name)."""
        return self._bool("privacy/remember_recent_paths", False)

    @remember_recent_paths.setter
    def remember_recent_paths(self, value: bool) -> None:
        value = bool(value)
        if value and not self.remember_recent_paths:
            # From now on on disk: what this session remembered goes there too.
            for key, v in self._session_paths.items():
                self._set(key, v)
            self._session_paths.clear()
        self._set("privacy/remember_recent_paths", value)
        if not value:
            for key in self._PATH_KEYS:
                if self.store.contains(key):
                    self._session_paths.setdefault(key, self.store.value(key))
            self._forget_stored_paths()

    def _forget_stored_paths(self) -> None:
        for key in self._PATH_KEYS:
            self.store.remove(key)
        self._snapshot = None

    def _path_value(self, key: str, default: object) -> object:
        if self.remember_recent_paths:
            return self.store.value(key, default)
        return self._session_paths.get(key, default)

    def _set_path_value(self, key: str, value: object) -> None:
        if self.remember_recent_paths:
            self._set(key, value)
        else:
            self._session_paths[key] = value
            self._snapshot = None

    @property
    def last_export_dir(self) -> str:
        value = self._path_value("paths/last_export_dir", "")
        return "" if value is None else str(value)

    @last_export_dir.setter
    def last_export_dir(self, value: str | Path) -> None:
        self._set_path_value("paths/last_export_dir", str(value))

    @property
    def last_open_dir(self) -> str:
        value = self._path_value("paths/last_open_dir", "")
        return "" if value is None else str(value)

    @last_open_dir.setter
    def last_open_dir(self, value: str | Path) -> None:
        self._set_path_value("paths/last_open_dir", str(value))

    @property
    def recent_files(self) -> list[str]:
        """The recent inputs, newest first; empty unless ``remember_recent_paths`` (the list
        is offered again at the next start, so it is not kept for the session alone)."""
        if not self.remember_recent_paths:
            return []
        value = self.store.value("paths/recent_files", [])
        if isinstance(value, str):  # QSettings returns a bare string for a one-item list
            value = [value] if value else []
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent(self, path: str | Path) -> list[str]:
        """Put ``path`` first in the recent list (no duplicates, at most :data:`MAX_RECENT`);
        does nothing unless ``remember_recent_paths``."""
        if not self.remember_recent_paths:
            return []
        p = str(Path(path))
        items = [p] + [r for r in self.recent_files if r != p]
        self._set("paths/recent_files", items[:MAX_RECENT])
        return items[:MAX_RECENT]

    def clear_recent(self) -> None:
        self._set("paths/recent_files", [])
        self._session_paths.pop("paths/recent_files", None)

    # --- PACS (nodes the user configured; the app talks to no other) -----------------------------
    @property
    def pacs_nodes(self) -> list:
        """Configured PACS nodes (:class:`app.pacs_nodes.PacsNodeConfig`), in the user's order."""
        from app.pacs_nodes import nodes_from_json

        return nodes_from_json(self._str("pacs/nodes", "[]"))

    @pacs_nodes.setter
    def pacs_nodes(self, nodes) -> None:
        from app.pacs_nodes import nodes_to_json

        self._set("pacs/nodes", nodes_to_json(n.validate() for n in nodes))

    @property
    def pacs_aet(self) -> str:
        """Our AE title towards the PACS (default SPINECT)."""
        from spinect_core.errors import InputError
        from spinect_core.pacs import DEFAULT_AET, check_ae_title

        try:
            return check_ae_title(self._str("pacs/our_aet", DEFAULT_AET))
        except InputError:  # a hand-edited settings file
            return DEFAULT_AET

    @pacs_aet.setter
    def pacs_aet(self, value: str) -> None:
        from spinect_core.pacs import check_ae_title

        self._set("pacs/our_aet", check_ae_title(value, what="our AE title"))

    @property
    def pacs_scp_port(self) -> int:
        """Port of our storage SCP for C-MOVE retrieves (default 11113)."""
        from spinect_core.pacs import DEFAULT_SCP_PORT

        return int(self._float("pacs/scp_port", DEFAULT_SCP_PORT, 1, 65535))

    @pacs_scp_port.setter
    def pacs_scp_port(self, value: int) -> None:
        if not 0 < int(value) < 65536:
            raise ValueError(f"port must be in 1-65535, got {value}")
        self._set("pacs/scp_port", int(value))

    def sync(self) -> None:
        self.store.sync()

    def set_overrides(self, **values: Any) -> None:
        """Values for this run only (``spinect-app --weights ...``): every snapshot carries them,
        the settings file keeps what it had. Names are :class:`SettingsValues` fields."""
        known = {f.name for f in dataclasses.fields(SettingsValues)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        self._overrides = dict(values)
        self._snapshot = None

    def snapshot(self) -> SettingsValues:
        """An immutable copy of every value (run-only overrides applied); read from the store
        once, again after a value was set."""
        if self._snapshot is None:
            self._snapshot = dataclasses.replace(self._read(), **self._overrides)
        return self._snapshot

    def _read(self) -> SettingsValues:
        return SettingsValues(
            device=self.device, weights_path=self.weights_path, blend=self.blend, bone=self.bone,
            needle_gauge=self.needle_gauge, safety_margin_mm=self.safety_margin_mm,
            auto_segment=self.auto_segment, auto_plan=self.auto_plan, variant=self.variant,
            trajectory_window=self.trajectory_window, plan_search=self.plan_search,
            recent_files=tuple(self.recent_files),
            last_export_dir=self.last_export_dir, last_open_dir=self.last_open_dir,
            remember_recent_paths=self.remember_recent_paths)
