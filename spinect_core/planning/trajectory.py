"""Needle trajectory through a free window: target, skin entry, clearance, angles (DESIGN section 4).

Geometry (all LPS millimetres):

* ``u`` is the *entry direction*: the unit vector from the target out towards the skin (for a
  prone patient it points mostly posteriorly). The needle travels along ``d = -u``, which is the
  window's ``view_direction_lps``. :attr:`Trajectory.direction_lps` is ``d`` (entry -> target).
* **Target**: for a window, the free pixel deepest inside it (maximum of the 2D distance
  transform of ``window.mask``, ties broken towards the window centroid) at its first-hit depth,
  then backed off ``back_off_mm`` along ``u`` so the tip stops short of the surface it aims at.
  An explicit target point is used as given.
* **Entry**: walking from the target along ``u``, the *last* exit from the body (CT above
  ``body_threshold_hu`` and in the body's largest connected component), refined to the
  threshold crossing of the trilinearly interpolated CT.
* **Clearance**: distance from the needle *axis* to the surface of each structure, sampled along
  the segment every <= 0.25 mm on the trilinearly interpolated signed distance of each class
  with the windows' surface definition (:func:`spinect_core.planning.scene.signed_distance_mm`:
  the boundary on the voxel faces, exact for axis-aligned faces; anisotropic spacing honoured),
  so a window's edge and the needle's clearance read the same surface. The path is safe when
  it crosses nothing, stays >= needle radius + ``safety_margin_mm`` from nerve and dura, and
  >= needle radius from bone except within ``bone_exempt_last_mm`` of the target (the tip may
  rest near the endplate or pedicle it was aimed past).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from scipy import ndimage

from spinect_core.errors import InputError, SpinectError
from spinect_core.labels import LabelTable
# The C-arm functions live in spinect_core.planning.carm (one C-arm language for every surface);
# re-exported here so existing imports (PlanEngine, the app) keep working.
from spinect_core.planning.carm import carm_angles, carm_view_direction
from spinect_core.planning.scene import signed_distance_mm
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import Volume
from spinect_core.vectors import unit as _unit

if TYPE_CHECKING:  # the windows module is another engineer's; we only read its contract fields
    from spinect_core.planning.windows import WindowResult

__all__ = [
    "NEEDLE_OUTER_DIAMETER_MM", "TrajectoryError", "TrajectoryOptions", "ClearanceReport",
    "Trajectory", "deepest_window_point", "find_skin_entry", "check_clearance",
    "trajectory_angles", "plan_trajectory", "carm_angles", "carm_view_direction",
]

#: Nominal outer diameter (mm) of a hypodermic / spinal needle by Birmingham gauge (ISO 9626).
NEEDLE_OUTER_DIAMETER_MM: dict[int, float] = {
    18: 1.270, 19: 1.067, 20: 0.908, 21: 0.819, 22: 0.718, 23: 0.642, 24: 0.566, 25: 0.515,
}


class TrajectoryError(SpinectError):
    """No acceptable needle path: it crosses or grazes a structure, or has no target / entry."""


@dataclass(frozen=True, kw_only=True)
class TrajectoryOptions:
    """How a trajectory is planned and judged.

    Attributes
    ----------
    needle_gauge : int
        18-25 G; the outer diameter comes from :data:`NEEDLE_OUTER_DIAMETER_MM` (22 G: 0.72 mm).
    safety_margin_mm : float
        Required gap between the needle surface and nerve / dura, mm.
    back_off_mm : float
        The window target stops this far short of the first-hit surface (along ``u``), mm.
    body_threshold_hu : float
        Tissue is above this (the skin is where the CT drops below it), HU.
    bone_exempt_last_mm : float
        Bone clearance and bone crossing are not checked this close to the target, mm.
    sample_step_mm : float
        Spacing of the samples along the path (at most 0.25 mm), mm.
    clearance_horizon_mm : float
        Structures farther than this from the path are not measured; clearances are capped at
        this value, mm.
    """

    needle_gauge: int = 22
    safety_margin_mm: float = 2.0
    back_off_mm: float = 1.0
    body_threshold_hu: float = -500.0
    bone_exempt_last_mm: float = 1.0
    sample_step_mm: float = 0.25
    clearance_horizon_mm: float = 15.0

    def __post_init__(self) -> None:
        if int(self.needle_gauge) not in NEEDLE_OUTER_DIAMETER_MM:
            raise ValueError(f"needle gauge {self.needle_gauge} G is not one of "
                             f"{sorted(NEEDLE_OUTER_DIAMETER_MM)}")
        if not 0.0 < self.sample_step_mm <= 0.25:
            raise ValueError(f"sample_step_mm must be in (0, 0.25], got {self.sample_step_mm}")
        for name in ("safety_margin_mm", "back_off_mm", "bone_exempt_last_mm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.clearance_horizon_mm <= self.needle_radius_mm + self.safety_margin_mm:
            raise ValueError("clearance_horizon_mm must exceed the required nerve clearance")

    @property
    def needle_diameter_mm(self) -> float:
        """Outer diameter of the needle, mm."""
        return NEEDLE_OUTER_DIAMETER_MM[int(self.needle_gauge)]

    @property
    def needle_radius_mm(self) -> float:
        """Outer radius of the needle, mm."""
        return 0.5 * self.needle_diameter_mm


# --- small vector helpers ---------------------------------------------------------------------------
def _spans(t: np.ndarray, hit: np.ndarray) -> list[tuple[float, float]]:
    """Contiguous runs of ``hit`` as ``(t_start, t_stop)`` in the units of ``t``."""
    if not hit.any():
        return []
    edges = np.diff(np.concatenate([[0], hit.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, stops)]


def _zyx_indices(volume: Volume, points_lps: np.ndarray) -> np.ndarray:
    """Continuous (z, y, x) array indices of LPS points ``(n, 3)`` -> ``(3, n)``."""
    return volume.lps_to_index(points_lps)[:, ::-1].T


# --- target ------------------------------------------------------------------------------------------
def _deepest_pixel(window: "WindowResult") -> tuple[int, int, float]:
    """Row, column and distance to the edge (mm) of the window pixel farthest from its edge."""
    mask = np.asarray(window.mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"window.mask must be 2D (H, W), got shape {mask.shape}")
    if not mask.any():
        raise TrajectoryError("the window is empty: there is no free pixel to aim the needle at")
    # Pad so that free pixels on the image border count as next to the edge (the window may be
    # cut by the ray grid's field of view; we must not aim at what we did not see).
    dt = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    best = float(dt.max())
    candidates = np.argwhere(np.isclose(dt, best, rtol=0.0, atol=1e-6))
    centroid = np.argwhere(mask).mean(axis=0)
    r, c = candidates[int(np.argmin(((candidates - centroid) ** 2).sum(axis=1)))]
    # EDT measures to the nearest non-free pixel *centre*; the window's edge is half a pixel nearer.
    return int(r), int(c), (best - 0.5) * float(window.pixel_mm)


def _window_pixel_lps(window: "WindowResult", row: float, col: float, depth_mm: float) -> np.ndarray:
    """LPS mm of pixel ``(row, col)`` of the window's ray grid at ``depth_mm`` along the rays."""
    pix = float(window.pixel_mm)
    return (np.asarray(window.plane_origin_lps, float).reshape(3)
            + col * pix * np.asarray(window.axis_col_lps, float).reshape(3)
            + row * pix * np.asarray(window.axis_row_lps, float).reshape(3)
            + depth_mm * np.asarray(window.view_direction_lps, float).reshape(3))


def deepest_window_point(window: "WindowResult") -> np.ndarray:
    """The point of a free window farthest from its edge, on the surface its ray hits.

    Parameters
    ----------
    window : WindowResult
        Needs ``mask`` (H, W) bool, ``hit_depth_mm`` (H, W) float (NaN: no hit),
        ``plane_origin_lps``, ``axis_col_lps``, ``axis_row_lps``, ``view_direction_lps`` (3,)
        and ``pixel_mm``.

    Returns
    -------
    np.ndarray, shape (3,)
        LPS mm of the pixel with the largest 2D Euclidean distance to the window's edge (pixels
        outside the image count as edge), ties broken towards the centroid of the free pixels,
        at that pixel's first-hit depth. Not backed off (see :func:`plan_trajectory`).

    Raises
    ------
    TrajectoryError
        The window is empty, or its rays hit nothing near the deepest pixel.
    """
    r, c, _ = _deepest_pixel(window)
    depth = np.asarray(window.hit_depth_mm, dtype=np.float64)
    t = float(depth[r, c])
    if not np.isfinite(t):
        # A free pixel should always hit the target; fall back to its free 3x3 neighbours.
        mask = np.asarray(window.mask, dtype=bool)
        patch = depth[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        ok = np.isfinite(patch) & mask[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        if not ok.any():
            raise TrajectoryError("the window's deepest pixel has no hit depth; cannot place a target")
        t = float(np.mean(patch[ok]))
    return _window_pixel_lps(window, r, c, t)


# --- entry ------------------------------------------------------------------------------------------
def _ray_length_in_volume(volume: Volume, start_lps: np.ndarray, u: np.ndarray) -> float:
    """Distance (mm) along ``u`` from ``start_lps`` to where the ray leaves the voxel box."""
    i0 = volume.lps_to_index(start_lps)
    i1 = volume.lps_to_index(start_lps + u) - i0  # index change per mm
    lo = -0.5 * np.ones(3)
    hi = np.asarray(volume.size_xyz, float) - 0.5
    t_exit = np.inf
    for a in range(3):
        if abs(i1[a]) < 1e-12:
            continue
        bound = hi[a] if i1[a] > 0 else lo[a]
        t_exit = min(t_exit, (bound - i0[a]) / i1[a])
    return max(float(t_exit), 0.0) if np.isfinite(t_exit) else 0.0


def find_skin_entry(target_lps: Sequence[float], entry_direction_lps: Sequence[float], ct: Volume,
                    *, threshold_hu: float = -500.0, body_mask: np.ndarray | None = None,
                    step_mm: float = 0.25) -> tuple[np.ndarray, list[str]]:
    """The skin point where a ray from the target along ``u`` last leaves the body.

    Parameters
    ----------
    target_lps : (3,) LPS mm
        Start of the ray (inside the body).
    entry_direction_lps : (3,)
        ``u``, pointing from the target out towards the skin (normalised here).
    ct : Volume
        HU, shape (z, y, x).
    threshold_hu : float
        Body = CT strictly above this, HU.
    body_mask : np.ndarray of bool, shape (z, y, x), optional
        Precomputed body mask on ``ct``'s grid (e.g. cached by the app); default: voxels above
        the threshold in the largest 6-connected component
        (:func:`spinect_core.preprocess.crop.body_mask`).
    step_mm : float
        Ray sampling step, mm; the crossing is then refined by bisection to < 0.01 mm.

    Returns
    -------
    entry : np.ndarray, shape (3,)
        LPS mm of the last body exit along ``u``.
    warnings : list of str
        E.g. the body reaches the edge of the field of view along the ray (entry at the edge).

    Raises
    ------
    TrajectoryError
        No body tissue along the ray (the target lies outside the body).
    """
    from spinect_core.preprocess.crop import BodyCropOptions, body_mask as _body_mask

    u = _unit(entry_direction_lps, "entry_direction_lps")
    start = np.asarray(target_lps, dtype=np.float64).reshape(3)
    if body_mask is None:
        body_mask = _body_mask(ct.array, BodyCropOptions(threshold_hu=threshold_hu))
    elif body_mask.shape != ct.array.shape:
        raise ValueError(f"body_mask shape {body_mask.shape} differs from the CT {ct.array.shape}")
    body_mask = np.asarray(body_mask, dtype=bool)
    length = _ray_length_in_volume(ct, start, u)
    n = max(int(math.ceil(length / step_mm)), 1) + 1
    t = np.linspace(0.0, length, n)
    pts = start[None, :] + t[:, None] * u[None, :]
    zyx = _zyx_indices(ct, pts)
    # Sample the original array (int16 or float): no full-volume float copy of a large CT.
    hu = ndimage.map_coordinates(ct.array, zyx, order=1, mode="nearest", output=np.float64)
    # A sample belongs to the body when any voxel of its trilinear support does: near the skin the
    # interpolated CT and the nearest voxel may disagree by up to one voxel.
    shape = np.array(ct.array.shape)[:, None]
    base = np.floor(zyx).astype(int)
    in_body = np.zeros(n, dtype=bool)
    for corner in np.ndindex(2, 2, 2):
        c = np.clip(base + np.array(corner)[:, None], 0, shape - 1)
        in_body |= body_mask[c[0], c[1], c[2]]
    inside = (hu > threshold_hu) & in_body
    if not inside.any():
        raise TrajectoryError("no body tissue along the needle path: the target lies outside the body")
    k = int(np.flatnonzero(inside)[-1])
    if k == n - 1:
        return pts[k], ["the body reaches the edge of the CT field of view along the needle path; "
                        "the entry is placed at the edge and the needle length is a lower bound"]

    def hu_at(s: float) -> float:
        p = start + s * u
        return float(ndimage.map_coordinates(ct.array, _zyx_indices(ct, p[None, :]), order=1,
                                             mode="nearest", output=np.float64)[0])

    a, b = float(t[k]), float(t[k + 1])
    if hu_at(b) <= threshold_hu:  # a genuine threshold crossing: bisect it
        for _ in range(30):
            m = 0.5 * (a + b)
            if hu_at(m) > threshold_hu:
                a = m
            else:
                b = m
            if b - a < 1e-3:
                break
    return start + 0.5 * (a + b) * u, []


# --- clearance --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ClearanceReport:
    """What a straight segment passes through or near.

    Clearances are distances from the needle *axis* to the structure surface, mm, capped at
    ``clearance_horizon_mm``; negative inside a structure. Positions along the path are mm from
    the entry.

    Attributes
    ----------
    min_nerve_clearance_mm, min_bone_clearance_mm : float
        Minimum over the path for the nerve group (nerve, dura, ...) and the bone group (bone
        excluding the last ``bone_exempt_last_mm`` before the target).
    clearance_by_structure_mm : dict of str to float
        Minimum per class name.
    closest_at_mm : dict of str to float
        Where along the path (from the entry) each minimum occurs.
    crosses : list of str
        Class names whose voxels the path passes through (nearest voxel), in path order.
    crossing_spans_mm : dict of str to list of (float, float)
        Stretches (from, to) of the path inside each crossed structure.
    safe : bool
    reason : str
        Empty when safe; otherwise one sentence naming what is crossed or too close.
    warnings : list of str
    """

    min_nerve_clearance_mm: float
    min_bone_clearance_mm: float
    clearance_by_structure_mm: dict[str, float]
    closest_at_mm: dict[str, float]
    crosses: list[str]
    crossing_spans_mm: dict[str, list[tuple[float, float]]]
    safe: bool
    reason: str
    warnings: list[str] = field(default_factory=list)


def check_clearance(entry_lps: Sequence[float], target_lps: Sequence[float], labels: Volume,
                    table: LabelTable, *, nerve_names: Sequence[str] = ("nerve", "dura"),
                    bone_names: Sequence[str] = ("bone",),
                    options: TrajectoryOptions | None = None) -> ClearanceReport:
    """Distances from the segment entry -> target to nerve/dura and bone, and what it crosses.

    Parameters
    ----------
    entry_lps, target_lps : (3,) LPS mm
        Ends of the needle axis.
    labels : Volume
        Integer class ids, shape (z, y, x), any LPS grid (need not match the CT).
    table : LabelTable
        Names of the ids; names in ``nerve_names`` / ``bone_names`` absent from it are skipped.
    nerve_names, bone_names : sequence of str
        Class names of the nerve group (needs needle radius + safety margin) and of the bone
        group (needs the needle radius, except near the target).
    options : TrajectoryOptions, optional

    Returns
    -------
    ClearanceReport

    Raises
    ------
    InputError
        The table names none of ``nerve_names`` or none of ``bone_names``.
    """
    opts = options or TrajectoryOptions()
    entry = np.asarray(entry_lps, dtype=np.float64).reshape(3)
    target = np.asarray(target_lps, dtype=np.float64).reshape(3)
    groups = {"nerve": [n for n in nerve_names if table.has(n)],
              "bone": [n for n in bone_names if table.has(n)]}
    for group, names in groups.items():
        if not names:
            wanted = nerve_names if group == "nerve" else bone_names
            raise InputError(f"the label table {list(table.names.values())} names none of "
                             f"{list(wanted)}; cannot check {group} clearance")
    length = float(np.linalg.norm(target - entry))
    n = max(int(math.ceil(length / opts.sample_step_mm)), 1) + 1
    t = np.linspace(0.0, length, n)
    direction = (target - entry) / length if length > 0 else np.zeros(3)
    pts = entry[None, :] + t[:, None] * direction[None, :]
    zyx = _zyx_indices(labels, pts)  # (3, n)
    shape = np.array(labels.array.shape)
    spacing_zyx = labels.spacing_mm[::-1].copy()
    horizon = float(opts.clearance_horizon_mm)
    clamp = horizon + 2.0 * float(np.linalg.norm(spacing_zyx))
    warnings: list[str] = []

    in_grid = np.all((zyx >= -0.5) & (zyx <= (shape - 0.5)[:, None]), axis=0)
    if not in_grid.all():
        outside_mm = float((~in_grid).sum() * (length / max(n - 1, 1)))
        warnings.append(f"{outside_mm:.1f} mm of the path lie outside the label map and were not checked")
    # Only a box around the path matters: structures beyond the horizon are reported as the horizon.
    # Direction matrices may rotate the grid, so pad by the horizon in voxels along every axis.
    pad = np.ceil(horizon / spacing_zyx).astype(int) + 2
    lo = np.clip(np.floor(zyx[:, in_grid].min(axis=1)).astype(int) - pad, 0, shape) if in_grid.any() \
        else np.zeros(3, int)
    hi = np.clip(np.ceil(zyx[:, in_grid].max(axis=1)).astype(int) + pad + 1, 0, shape) if in_grid.any() \
        else np.zeros(3, int)
    sub = labels.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    local = zyx - lo[:, None]
    nearest = np.zeros(n, dtype=np.int64)
    if sub.size and in_grid.any():
        rz = np.clip(np.rint(local).astype(int), 0, np.array(sub.shape)[:, None] - 1)
        nearest[in_grid] = sub[rz[0], rz[1], rz[2]][in_grid]

    tip_zone = t > length - opts.bone_exempt_last_mm  # bone is allowed here (exempt)
    by_name: dict[str, float] = {}
    where: dict[str, float] = {}
    spans: dict[str, list[tuple[float, float]]] = {}
    crossing_first: dict[str, float] = {}
    group_min = {"nerve": horizon, "bone": horizon}
    for group, names in groups.items():
        considered = in_grid & ~tip_zone if group == "bone" else in_grid
        for name in names:
            label_id = table.id_of(name)
            inside = (nearest == label_id) & considered
            values = np.full(n, horizon, dtype=np.float64)
            mask = sub == label_id if sub.size else np.zeros((0, 0, 0), bool)
            if mask.any() and considered.any():
                # The windows' surface definition (scene.signed_distance_mm): the boundary on the
                # voxel faces, so the needle's clearance and a window's edge read one surface.
                # Clamped beyond the horizon by a voxel diagonal: a sample read below the
                # horizon interpolates unclamped corners only.
                dist = signed_distance_mm(mask, spacing_zyx, clamp)
                values[in_grid] = ndimage.map_coordinates(dist, local[:, in_grid], order=1,
                                                          mode="nearest")
                values = np.minimum(values, horizon)
            values[~considered] = horizon
            k = int(np.argmin(values))
            by_name[name] = float(values[k])
            where[name] = float(t[k])
            group_min[group] = min(group_min[group], by_name[name])
            if inside.any():
                spans[name] = _spans(t, inside)
                crossing_first[name] = spans[name][0][0]

    crosses = sorted(crossing_first, key=crossing_first.get)
    need_nerve = opts.needle_radius_mm + opts.safety_margin_mm
    need_bone = opts.needle_radius_mm
    problems: list[str] = []
    if crosses:
        parts = [f"{name} ({', '.join(f'{a:.1f}-{b:.1f} mm' for a, b in spans[name])} from the entry)"
                 for name in crosses]
        problems.append("the path crosses " + " and ".join(parts))
    for name in groups["nerve"]:
        if name not in crosses and by_name[name] < need_nerve:
            problems.append(f"it passes {by_name[name]:.2f} mm from {name} at {where[name]:.1f} mm "
                            f"from the entry (needs >= {need_nerve:.2f} mm: needle radius "
                            f"{opts.needle_radius_mm:.2f} + margin {opts.safety_margin_mm:.2f})")
    for name in groups["bone"]:
        if name not in crosses and by_name[name] < need_bone:
            problems.append(f"it grazes {name} ({by_name[name]:.2f} mm from the axis at "
                            f"{where[name]:.1f} mm from the entry; needs >= {need_bone:.2f} mm)")
    reason = ""
    if problems:
        reason = "; ".join(problems)
        reason = reason[0].upper() + reason[1:]
    return ClearanceReport(
        min_nerve_clearance_mm=float(group_min["nerve"]),
        min_bone_clearance_mm=float(group_min["bone"]),
        clearance_by_structure_mm=by_name, closest_at_mm=where, crosses=crosses,
        crossing_spans_mm=spans, safe=not problems, reason=reason, warnings=warnings)


# --- angles ------------------------------------------------------------------------------------------
def trajectory_angles(direction_lps: Sequence[float],
                      midline_normal_lps: Sequence[float] = (1.0, 0.0, 0.0)) -> tuple[float, float]:
    """Angles of a needle to the axial and to the mid-sagittal plane, degrees in [0, 90].

    ``angle_to_axial = asin(|d_z|)`` (the axial plane is the LPS x-y plane);
    ``angle_to_sagittal = asin(|d . n|)`` with ``n`` the mid-sagittal plane's normal.
    """
    d = _unit(direction_lps, "direction_lps")
    n = _unit(midline_normal_lps, "midline_normal_lps")
    axial = math.degrees(math.asin(min(abs(float(d[2])), 1.0)))
    sagittal = math.degrees(math.asin(min(abs(float(d @ n)), 1.0)))
    return axial, sagittal


# --- the trajectory ----------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Trajectory:
    """A planned straight needle path (LPS mm, degrees).

    Attributes
    ----------
    entry_lps_mm, target_lps_mm : np.ndarray, shape (3,)
        Skin entry and needle tip, LPS mm.
    direction_lps : np.ndarray, shape (3,)
        Unit vector from entry to target (the window's view direction ``d = -u``).
    length_mm : float
        Entry-to-target distance (needle length inside the body), mm.
    angle_to_axial_deg : float
        Angle between the needle and the axial (LPS x-y) plane, ``asin(|d_z|)``.
    angle_to_sagittal_deg : float
        Angle between the needle and the mid-sagittal plane, ``asin(|d . n_mid|)``.
    skin_entry_from_midline_mm : float
        Distance of the entry from the mid-sagittal plane (NaN when no midline point was given).
    min_nerve_clearance_mm, min_bone_clearance_mm : float
        See :class:`ClearanceReport`.
    crosses : list of str
        Structures the path crosses (empty when none).
    safe : bool
    reason : str
        Why it is not safe (empty when safe).
    needle_gauge : int
    needle_diameter_mm : float
    clearance : ClearanceReport
        The full clearance report.
    target_source : str
        ``"window"`` or ``"point"``.
    window_hit_lps_mm : np.ndarray or None, shape (3,)
        The window's deepest point before backing off (window targets only).
    target_window_radius_mm : float or None
        Distance of the aimed pixel's centre from the window's edge (radius of the largest
        inscribed circle centred there, to half a pixel), mm.
    warnings : list of str
    """

    entry_lps_mm: np.ndarray
    target_lps_mm: np.ndarray
    direction_lps: np.ndarray
    length_mm: float
    angle_to_axial_deg: float
    angle_to_sagittal_deg: float
    skin_entry_from_midline_mm: float
    min_nerve_clearance_mm: float
    min_bone_clearance_mm: float
    crosses: list[str]
    safe: bool
    reason: str
    needle_gauge: int = 22
    needle_diameter_mm: float = NEEDLE_OUTER_DIAMETER_MM[22]
    clearance: ClearanceReport | None = None
    target_source: str = "point"
    window_hit_lps_mm: np.ndarray | None = None
    target_window_radius_mm: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def entry_direction_lps(self) -> np.ndarray:
        """``u``: unit vector from the target towards the entry."""
        return -np.asarray(self.direction_lps, float)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (``coordinate_system`` "LPS", mm, deg; NaN -> None)."""
        def num(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else float(v)

        def vec(v: np.ndarray | None) -> list[float] | None:
            return None if v is None else [float(x) for x in np.asarray(v).reshape(3)]

        c = self.clearance
        return {
            "coordinate_system": "LPS",
            "units": {"length": "mm", "angle": "deg"},
            "entry_lps_mm": vec(self.entry_lps_mm),
            "target_lps_mm": vec(self.target_lps_mm),
            "direction_lps": vec(self.direction_lps),
            "length_mm": num(self.length_mm),
            "angle_to_axial_deg": num(self.angle_to_axial_deg),
            "angle_to_sagittal_deg": num(self.angle_to_sagittal_deg),
            "skin_entry_from_midline_mm": num(self.skin_entry_from_midline_mm),
            "min_nerve_clearance_mm": num(self.min_nerve_clearance_mm),
            "min_bone_clearance_mm": num(self.min_bone_clearance_mm),
            "clearance_by_structure_mm": ({k: num(v) for k, v in c.clearance_by_structure_mm.items()}
                                          if c else {}),
            "crossing_spans_mm": ({k: [[a, b] for a, b in v] for k, v in c.crossing_spans_mm.items()}
                                  if c else {}),
            "crosses": list(self.crosses),
            "safe": bool(self.safe),
            "reason": self.reason,
            "needle_gauge": int(self.needle_gauge),
            "needle_diameter_mm": float(self.needle_diameter_mm),
            "target_source": self.target_source,
            "window_hit_lps_mm": vec(self.window_hit_lps_mm),
            "target_window_radius_mm": num(self.target_window_radius_mm),
            "warnings": list(self.warnings),
        }


def _is_window(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("mask", "hit_depth_mm", "view_direction_lps", "pixel_mm"))


def plan_trajectory(
    window_or_target: "WindowResult | Sequence[float] | np.ndarray",
    *,
    ct: Volume,
    labels: Volume,
    table: LabelTable,
    entry_direction_lps: Sequence[float] | None = None,
    midline_point_lps: Sequence[float] | None = None,
    midline_normal_lps: Sequence[float] | None = None,
    nerve_names: Sequence[str] = ("nerve", "dura"),
    bone_names: Sequence[str] = ("bone",),
    options: TrajectoryOptions | None = None,
    refuse_unsafe: bool = False,
    body_mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> Trajectory:
    """Plan a straight needle from the skin to a window (or a given target) and check it.

    Parameters
    ----------
    window_or_target : WindowResult or (3,) LPS mm
        A window: the target is :func:`deepest_window_point` backed off
        ``options.back_off_mm`` along ``u``. A point: used as the target as given.
    ct : Volume
        HU (z, y, x); finds the skin.
    labels : Volume
        Class ids (z, y, x), any grid; clearance and crossings.
    table : LabelTable
        Names of ``labels``' ids.
    entry_direction_lps : (3,), optional
        ``u`` (target -> skin). Default for a window: ``-window.view_direction_lps``; required
        for a point. For a window both must agree within 1 degree.
    midline_point_lps, midline_normal_lps : (3,), optional
        The mid-sagittal plane. Normal default: LPS x (left). Without a point the skin entry's
        distance from the midline is NaN.
    nerve_names, bone_names : sequence of str
        See :func:`check_clearance`.
    options : TrajectoryOptions, optional
    refuse_unsafe : bool
        Raise :class:`TrajectoryError` instead of returning an unsafe trajectory.
    body_mask : np.ndarray of bool (z, y, x), optional
        Precomputed body mask on ``ct``'s grid.
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    Trajectory
    """
    opts = options or TrajectoryOptions()
    report(progress, 0.0, "placing the target")
    warnings: list[str] = []
    hit = None
    radius = None
    if _is_window(window_or_target):
        window = window_or_target
        d_view = _unit(window.view_direction_lps, "window.view_direction_lps")
        u = -d_view
        if entry_direction_lps is not None:
            given = _unit(entry_direction_lps, "entry_direction_lps")
            if float(given @ u) < math.cos(math.radians(1.0)):
                raise ValueError("entry_direction_lps disagrees with the window's view direction "
                                 "(u must be -view_direction_lps)")
            u = given
        _, _, radius = _deepest_pixel(window)
        hit = deepest_window_point(window)
        target = hit + opts.back_off_mm * u
        source = "window"
    else:
        if entry_direction_lps is None:
            raise ValueError("entry_direction_lps (u, target -> skin) is required with a target point")
        u = _unit(entry_direction_lps, "entry_direction_lps")
        target = np.asarray(window_or_target, dtype=np.float64).reshape(3)
        source = "point"
    report(progress, 0.1, "finding the skin entry")
    entry, entry_warnings = find_skin_entry(target, u, ct, threshold_hu=opts.body_threshold_hu,
                                            body_mask=body_mask, step_mm=opts.sample_step_mm)
    warnings += entry_warnings
    length = float(np.linalg.norm(target - entry))
    if length < 1e-6:
        raise TrajectoryError("the target lies on the skin: no needle path to plan")
    report(progress, 0.5, "checking clearance along the path")
    clearance = check_clearance(entry, target, labels, table, nerve_names=nerve_names,
                                bone_names=bone_names, options=opts)
    warnings += clearance.warnings
    direction = (target - entry) / length
    normal = _unit(midline_normal_lps if midline_normal_lps is not None else (1.0, 0.0, 0.0),
                   "midline_normal_lps")
    axial, sagittal = trajectory_angles(direction, normal)
    if midline_point_lps is None:
        from_midline = float("nan")
        warnings.append("no midline point given: skin entry distance from the midline not computed")
    else:
        from_midline = abs(float((entry - np.asarray(midline_point_lps, float).reshape(3)) @ normal))
    traj = Trajectory(
        entry_lps_mm=entry, target_lps_mm=target, direction_lps=direction, length_mm=length,
        angle_to_axial_deg=axial, angle_to_sagittal_deg=sagittal,
        skin_entry_from_midline_mm=from_midline,
        min_nerve_clearance_mm=clearance.min_nerve_clearance_mm,
        min_bone_clearance_mm=clearance.min_bone_clearance_mm,
        crosses=list(clearance.crosses), safe=clearance.safe, reason=clearance.reason,
        needle_gauge=int(opts.needle_gauge), needle_diameter_mm=opts.needle_diameter_mm,
        clearance=clearance, target_source=source, window_hit_lps_mm=hit,
        target_window_radius_mm=radius, warnings=warnings)
    report(progress, 1.0, "trajectory planned")
    if refuse_unsafe and not traj.safe:
        what = f" crosses {', '.join(traj.crosses)}" if traj.crosses else " is too close to a structure"
        raise TrajectoryError(f"unsafe needle path: it{what}. {traj.reason}")
    return traj
