"""3D Slicer markups line files (``.mrk.json``) for the planned needle, in LPS millimetres.

We write the Slicer 5 markups JSON schema v1.0.3: one ``Line`` markup with two control points,
``entry`` then ``target``, ``coordinateSystem`` "LPS" (Slicer converts to its RAS scene on
load) and ``coordinateUnits`` "mm". Reading accepts LPS or RAS files (RAS is converted to LPS by
negating x and y) and any labels (then the first point is the entry).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.atomic import write_text_atomic

__all__ = ["MARKUPS_SCHEMA", "MarkupsLine", "write_markups_line", "read_markups_line"]

MARKUPS_SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/"
                  "Markups/Resources/Schema/markups-schema-v1.0.3.json#")


@dataclass(frozen=True, kw_only=True)
class MarkupsLine:
    """A line read from a markups file.

    Attributes
    ----------
    name : str
    entry_lps_mm, target_lps_mm : np.ndarray, shape (3,)
        LPS millimetres.
    """

    name: str
    entry_lps_mm: np.ndarray
    target_lps_mm: np.ndarray

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(self.target_lps_mm - self.entry_lps_mm))


def _point(v: Sequence[float], what: str) -> list[float]:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be 3 finite LPS coordinates, got {a.tolist()}")
    return [float(x) for x in a]


def _control_point(index: int, label: str, position: list[float], description: str) -> dict[str, Any]:
    return {
        "id": str(index + 1), "label": label, "description": description, "associatedNodeID": "",
        "position": position, "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
        "selected": True, "locked": True, "visibility": True, "positionStatus": "defined",
    }


def write_markups_line(path: str | os.PathLike, entry_lps: Sequence[float],
                       target_lps: Sequence[float], *, name: str = "tESI needle L5/S1 left",
                       description: str = "", overwrite: bool = False) -> Path:
    """Write a needle as a 3D Slicer markups line (``.mrk.json``, LPS, mm).

    Parameters
    ----------
    path : path-like
        Should end with ``.mrk.json`` (Slicer recognises markups by it); must end with ``.json``.
    entry_lps, target_lps : (3,)
        Skin entry and needle tip, LPS mm (control points "entry" and "target").
    name : str
        Node name shown in Slicer.
    description : str
        Optional text stored with the entry point (never a patient identifier).
    overwrite : bool
        Replace an existing file (refused by default).

    Returns
    -------
    Path
    """
    target = Path(path)
    if not target.name.lower().endswith(".json"):
        raise ValueError(f"a markups file must end with .mrk.json, got {target.name}")
    entry = _point(entry_lps, "entry_lps")
    tip = _point(target_lps, "target_lps")
    length = float(np.linalg.norm(np.subtract(tip, entry)))
    doc = {
        "@schema": MARKUPS_SCHEMA,
        "markups": [{
            "type": "Line",
            "name": str(name),
            "coordinateSystem": "LPS",
            "coordinateUnits": "mm",
            "locked": True,
            "fixedNumberOfControlPoints": True,
            "labelFormat": "%N-%d",
            "lastUsedControlPointNumber": 2,
            "controlPoints": [_control_point(0, "entry", entry, description),
                              _control_point(1, "target", tip, "")],
            "measurements": [{"name": "length", "enabled": True, "value": length, "units": "mm",
                              "printFormat": "%-#4.4g%s"}],
            "display": {"visibility": True, "opacity": 1.0, "color": [1.0, 0.16, 0.16],
                        "selectedColor": [1.0, 0.16, 0.16], "activeColor": [0.4, 1.0, 0.0],
                        "propertiesLabelVisibility": True, "pointLabelsVisibility": True,
                        "textScale": 3.0, "glyphType": "Sphere3D", "glyphScale": 1.0,
                        "glyphSize": 2.0, "useGlyphScale": False, "sliceProjection": True,
                        "lineThickness": 0.2},
        }],
    }
    return write_text_atomic(target, json.dumps(doc, indent=2) + "\n", overwrite=overwrite)


def read_markups_line(path: str | os.PathLike) -> MarkupsLine:
    """Read the first ``Line`` markup of a ``.mrk.json`` file, positions in LPS mm.

    Raises
    ------
    InputError
        Unreadable JSON, no line markup, not two defined points, or unknown units/system.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read markups file {p.name}: {exc}") from exc
    markups = doc.get("markups") if isinstance(doc, dict) else None
    lines = [m for m in (markups or []) if isinstance(m, dict) and m.get("type") == "Line"]
    if not lines:
        raise InputError(f"{p.name} holds no markups line")
    line = lines[0]
    system = line.get("coordinateSystem", "LPS")
    if system not in ("LPS", "RAS"):
        raise InputError(f"{p.name}: unknown coordinateSystem {system!r}")
    units = line.get("coordinateUnits", "mm")
    units = units[0] if isinstance(units, list) and units else units
    scale = {"mm": 1.0, "um": 1e-3}.get(units)
    if scale is None:
        raise InputError(f"{p.name}: unknown coordinateUnits {units!r}")
    points = [cp for cp in line.get("controlPoints", [])
              if cp.get("positionStatus", "defined") == "defined" and "position" in cp]
    if len(points) != 2:
        raise InputError(f"{p.name}: a needle line needs 2 defined control points, found {len(points)}")
    by_label = {str(cp.get("label", "")).lower(): cp for cp in points}
    if "entry" in by_label and "target" in by_label:
        points = [by_label["entry"], by_label["target"]]
    xyz = []
    for cp in points:
        try:
            v = np.asarray(cp["position"], dtype=np.float64).reshape(3) * scale
        except (TypeError, ValueError) as exc:
            raise InputError(f"{p.name}: invalid control point position {cp.get('position')}") from exc
        if system == "RAS":
            v = v * np.array([-1.0, -1.0, 1.0])
        xyz.append(v)
    return MarkupsLine(name=str(line.get("name", "")), entry_lps_mm=xyz[0], target_lps_mm=xyz[1])
