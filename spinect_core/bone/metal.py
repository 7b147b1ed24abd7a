"""Metal in a CT: implants whose streaks corrupt the bone and roots found near them.

Pedicle screws and rods at L4-S1, sacroiliac screws and hip prostheses are common in the patients
who come for a transforaminal injection. Metal is far denser than bone: cortical bone stays under
about 2000 HU on clinical CT (the real scans in ``../shared/data`` reach 1961 HU without metal),
while metal reads 2500 HU or more, up to the scanner's ceiling (3071 HU on most, more with an
extended scale). Around it, streak artefacts add false bone and hide soft tissue: the CT bone
model, the network and the roots traced on the CT are all unreliable there (a real 3 mm CT with a
hip prosthesis: 1800 voxels of false bone in its streaks). :func:`find_metal` lists the dense
components and how far each lies from a point of interest (the planner's: the L5/S1 disc centre),
and says so in words when one lies near; the planner puts that warning in ``plan.json``, the
report and the app.

Dense contrast can read as high (undiluted contrast in the injected arm's veins, excreted contrast
in the bladder, barium), so the words name "metal or other very dense material".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spinect_core.bone.ct_model import _FULLY_CONNECTED, _bbox, _label
from spinect_core.volume import Volume

__all__ = ["MetalOptions", "MetalPiece", "MetalReport", "find_metal"]


@dataclass(frozen=True, kw_only=True)
class MetalOptions:
    """What counts as metal, and how near it matters.

    Attributes
    ----------
    metal_hu : float
        Voxels at or above this are metal (or other very dense material).
    min_ml : float
        Smaller components are left out (a stray voxel of a streak).
    near_mm : float
        A piece whose nearest voxel lies within this distance of the point of interest is
        *near*: its streaks reach that far into the anatomy around it (the L5/S1 foramina lie
        25-30 mm beside the disc centre; a pedicle screw's head 40-50 mm behind it).
    """

    metal_hu: float = 2500.0
    min_ml: float = 0.02
    near_mm: float = 50.0


@dataclass(frozen=True, kw_only=True)
class MetalPiece:
    """One connected component of metal.

    Attributes
    ----------
    volume_ml : float
    centroid_lps_mm : np.ndarray, shape (3,)
        LPS millimetres.
    distance_mm : float or None
        From its nearest voxel centre to the point of interest (None without one).
    """

    volume_ml: float
    centroid_lps_mm: np.ndarray
    distance_mm: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"volume_ml": round(float(self.volume_ml), 3),
                "centroid_lps_mm": [round(float(v), 2) for v in self.centroid_lps_mm],
                "distance_mm": None if self.distance_mm is None else round(self.distance_mm, 1)}


@dataclass(frozen=True, kw_only=True)
class MetalReport:
    """The metal of a CT, largest piece first.

    Attributes
    ----------
    pieces : tuple of MetalPiece
    options : MetalOptions
    point_lps_mm : np.ndarray or None
        The point of interest the distances are measured to (LPS mm), shape (3,).
    point_name : str
        Its name in the warning (e.g. "the L5/S1 disc centre").
    """

    pieces: tuple[MetalPiece, ...]
    options: MetalOptions
    point_lps_mm: np.ndarray | None = None
    point_name: str = ""

    @property
    def near(self) -> tuple[MetalPiece, ...]:
        """The pieces within ``options.near_mm`` of the point of interest, nearest first."""
        near = [p for p in self.pieces
                if p.distance_mm is not None and p.distance_mm <= self.options.near_mm]
        return tuple(sorted(near, key=lambda p: float(p.distance_mm or 0.0)))

    @property
    def warning(self) -> str:
        """The user's warning when metal lies near the point of interest, else ``""``."""
        near = self.near
        if not near:
            return ""
        ml = sum(p.volume_ml for p in near)
        what = "a piece" if len(near) == 1 else f"{len(near)} pieces"
        return (f"metal or other very dense material ({what}, {ml:.1f} ml at "
                f"{self.options.metal_hu:.0f} HU or more) lies {near[0].distance_mm:.0f} mm from "
                f"{self.point_name or 'the point of interest'}: its streak artefacts can add or "
                "hide bone and roots around it, so the windows, views and needle there may be "
                "wrong; check them on the CT (a metal-artefact-reduced reconstruction helps)")

    def to_dict(self) -> dict[str, Any]:
        """The ``metal`` block of ``plan.json`` (LPS mm, ml, HU)."""
        return {"threshold_hu": float(self.options.metal_hu),
                "near_mm": float(self.options.near_mm),
                "distances_to": self.point_name or None,
                "coordinate_system": "LPS",
                "pieces": [p.to_dict() for p in self.pieces],
                "near": len(self.near) > 0,
                "warning": self.warning}


def find_metal(ct: Volume, *, point_lps_mm: np.ndarray | None = None, point_name: str = "",
               options: MetalOptions | None = None) -> MetalReport:
    """Metal of a CT and its distance to a point.

    Parameters
    ----------
    ct : Volume
        HU, array (z, y, x), any spacing and orientation.
    point_lps_mm : array-like, shape (3,), optional
        Point of interest (LPS mm): each piece's distance is that of its nearest voxel centre.
    point_name : str
        How the warning names the point (e.g. "the L5/S1 disc centre").
    options : MetalOptions, optional

    Returns
    -------
    MetalReport
        Pieces of at least ``options.min_ml``, largest first.
    """
    options = options or MetalOptions()
    dense = np.asarray(ct.array) >= options.metal_hu
    point = None if point_lps_mm is None else np.asarray(point_lps_mm, float).reshape(3)
    box = _bbox(dense)
    if box is None:
        return MetalReport(pieces=(), options=options, point_lps_mm=point, point_name=point_name)
    # Labelled in the metal's box only (2-byte labels): a full-size label map of a thin-slice
    # CT would be about a GB for a few ml of metal.
    lab, n = _label(dense[box], _FULLY_CONNECTED)
    del dense
    idx = np.argwhere(lab)                                   # (N, 3) z, y, x: metal is small
    ids = lab[tuple(idx.T)]
    idx += [b.start for b in box]                            # back to the CT's indices
    voxel_ml = float(np.prod(ct.spacing_mm)) / 1000.0
    sizes = np.bincount(ids, minlength=n + 1)
    lps = ct.index_to_lps(idx[:, ::-1].astype(float))        # (N, 3) LPS mm
    pieces = []
    for k in np.flatnonzero(sizes * voxel_ml >= options.min_ml):
        if k == 0:
            continue
        mine = lps[ids == k]
        distance = None if point is None else float(np.min(np.linalg.norm(mine - point, axis=1)))
        pieces.append(MetalPiece(volume_ml=float(sizes[k] * voxel_ml),
                                 centroid_lps_mm=mine.mean(axis=0), distance_mm=distance))
    pieces.sort(key=lambda p: -p.volume_ml)
    return MetalReport(pieces=tuple(pieces), options=options, point_lps_mm=point,
                       point_name=point_name)
