"""Records passed between the phantom's builders: paintable parts, vertebra geometry, the anatomy.

Everything lives in the *patient frame*: millimetres, LPS axes (x = patient left, y = posterior,
z = superior), origin at the centre of the S1 superior endplate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from spinect_core.phantom import shapes as S

#: ``fields(x, y, z) -> {key: signed distance (mm)}`` for patient-frame coordinate arrays (mm).
FieldFn = Callable[[np.ndarray, np.ndarray, np.ndarray], dict]
#: Per-side value ``(left, right)``.
Pair = tuple[float, float]
#: ``(index, name, sign of x)``: left = +x in LPS.
SIDES = ((0, "left", 1.0), (1, "right", -1.0))


@dataclass(frozen=True)
class Layer:
    """One tissue painted from a part's distance array ``key`` (inside where ``d + offset < 0``)."""

    tissue: str
    key: str = "d"
    offset_mm: float = 0.0
    label: str | None = None       # default-table class ("bone", "nerve", "disc", "dura")
    instance: str | None = None    # instance name (instance table)


@dataclass
class Part:
    """A paintable object of the phantom.

    Attributes
    ----------
    name : str
        Unique name (also the cache key of its fields when ``cache`` is set).
    fields : callable or None
        ``fields(x, y, z) -> {key: distance array}`` for patient-frame coordinate arrays (mm).
        ``None`` reuses the cached fields of the part named ``from_cache``.
    bbox : (ndarray (3,), ndarray (3,))
        Conservative patient-frame axis-aligned box containing every surface of the part.
    layers : list of Layer
        Painted in order.
    cache : bool
        Keep the evaluated fields for carving / later painting.
    carve : list of (str, float, float)
        ``(cached part name, clearance mm, extra for key "inner" mm)``: remove the cached
        object dilated by the clearance from every field of this part (roots, canal, sacrum).
    """

    name: str
    fields: FieldFn | None
    bbox: tuple[np.ndarray, np.ndarray]
    layers: list[Layer]
    cache: bool = False
    from_cache: str | None = None
    carve: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass
class Anatomy:
    """Parts in paint order, vertebra frames and analytic landmarks (patient frame, mm)."""

    parts: list[Part]
    frames: dict[str, S.Frame]
    landmarks: dict[str, object]
    fov_lo: np.ndarray
    fov_hi: np.ndarray
    body_centre: np.ndarray
    derived: dict[str, float]
    #: Building blocks for extensions (``torso.py``): vertebrae, canal and sac sizes, soft-tissue
    #: geometry, the sacrum and ilium field functions. Not part of the phantom's output.
    internals: dict[str, object] = field(default_factory=dict)


#: ``outline(x, y, width, depth) -> 2D signed distance (mm)`` of a vertebral body's axial outline
#: scaled to ``width`` x ``depth``, body centre at the origin, vertebra-local x, y.
OutlineFn = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]
#: ``surface(x, y) -> local z (mm)`` of an endplate surface, vertebra-local x, y.
SurfaceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class VertebraGeometry:
    """What the soft-tissue builders need to know about one vertebra: geometry, not shape recipe.

    All local quantities are in the vertebra's own frame: origin at the body centre, local z
    along the body axis (cranial), local y posterior, local x to the patient's left, mm.

    Attributes
    ----------
    name : str
        ``"L4"``, ``"L5"``, ``"S1"``, ...
    frame : Frame
        Vertebra frame in the patient frame.
    body_width_mm, body_depth_mm, body_height_mm : float
        Body size (mid-height): the posterior wall lies at local y = depth / 2, the superior
        and inferior endplate centres at local z = +-height / 2.
    canal_width_mm : float
        Interpedicular distance: the medial pedicle walls are at local x = +-width / 2.
    canal_depth_mm : float
        Sagittal depth of the canal behind the posterior body wall.
    pedicle_width_mm, pedicle_height_mm : (float, float)
        Per side (left, right).
    pedicle_bottom_mm : (float, float)
        Local z of each pedicle's lower margin (the foramen's roof).
    pedicle_centre : (ndarray (3,), ndarray (3,))
        Local centre of each pedicle.
    transverse_tip : (ndarray (3,), ndarray (3,)) or None
        Local tip of each transverse process (None for the sacrum).
    superior_endplate, inferior_endplate : callable
        ``surface(x, y) -> local z`` of the endplate surfaces (discs are filled between them).
    outline : callable
        ``outline(x, y, width, depth) -> 2D signed distance`` of the body's axial outline scaled
        to the given size (the disc's outline and the root's posterolateral rim use it).
    """

    name: str
    frame: S.Frame
    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    canal_width_mm: float
    canal_depth_mm: float
    pedicle_width_mm: Pair
    pedicle_height_mm: Pair
    pedicle_bottom_mm: Pair
    pedicle_centre: tuple[np.ndarray, np.ndarray]
    transverse_tip: tuple[np.ndarray, np.ndarray] | None
    superior_endplate: SurfaceFn
    inferior_endplate: SurfaceFn
    outline: OutlineFn

    def point(self, local_xyz) -> np.ndarray:
        """Patient-frame point of vertebra-local coordinates (mm), shape (3,)."""
        return self.frame.point(local_xyz)

    def outline_radius(self, theta: float) -> float:
        """Distance (mm) from the body centre to the outline along local (sin theta, cos theta)."""
        return outline_radius(self.outline, self.body_width_mm, self.body_depth_mm, theta)


def outline_radius(outline: OutlineFn, W: float, D: float, theta: float) -> float:
    """Distance from the body centre to ``outline`` (W x D) along (sin theta, cos theta) (bisection)."""
    lo, hi = 0.0, max(W, D)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        d = outline(np.array(mid * np.sin(theta)), np.array(mid * np.cos(theta)), W, D)
        lo, hi = (mid, hi) if d < 0 else (lo, mid)
    return 0.5 * (lo + hi)


# --- small geometric helpers ---------------------------------------------------------------------
def box_of_points(points, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box (lo, hi) of points (n, 3) grown by ``margin`` mm."""
    P = np.asarray(points, float).reshape(-1, 3)
    return P.min(axis=0) - margin, P.max(axis=0) + margin


def local_box(frame: S.Frame, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Patient AABB of a box given in a frame's local coordinates."""
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])], float)
    return box_of_points(corners @ frame.R.T + frame.t, 0.0)


def ellipsoid(frame: S.Frame, radii) -> Callable:
    """``f(x, y, z)``: distance to an ellipsoid of ``radii`` (mm) in ``frame``."""
    return lambda x, y, z: S.sd_ellipsoid(*frame.to_local(x, y, z), radii)


def axis_frame(origin, axis_y, up=(0.0, 0.0, 1.0)) -> S.Frame:
    """Frame with local y along ``axis_y`` and local z as close to ``up`` as possible."""
    yv = np.asarray(axis_y, float)
    yv = yv / np.linalg.norm(yv)
    zv = np.asarray(up, float) - np.dot(up, yv) * yv
    zv = zv / np.linalg.norm(zv)
    xv = np.cross(yv, zv)
    return S.Frame(np.column_stack([xv, yv, zv]), np.asarray(origin, float))


@dataclass(frozen=True, kw_only=True)
class Spine:
    """The typed record the soft-tissue builders read: bones as geometry only.

    Attributes
    ----------
    vertebrae : dict of str to VertebraGeometry
        At least ``"L4"``, ``"L5"`` and ``"S1"`` (patient frame, mm).
    disc_bulge_mm : float
        How far the discs' annulus bulges past the bodies' outline (also where the sac lies).
    disc_posterior_height_mm : dict of str to float
        Posterior height of each disc, ``"L5S1"`` and ``"L4L5"`` (mm).
    """

    vertebrae: dict[str, VertebraGeometry]
    disc_bulge_mm: float
    disc_posterior_height_mm: dict[str, float]

    def __getitem__(self, name: str) -> VertebraGeometry:
        return self.vertebrae[name]
