"""Kambin and safe windows at L5/S1 for one side, for any view (DESIGN.md section 4).

For one side and one variant, :class:`SideScene` builds the soft scene once (target = L5 body +
L5/S1 disc; blockers = everything a needle must not cross) and then, for any view direction,
casts one ray grid and splits the free pixels into the two windows:

* free = the first surface a ray meets is the target, inside the foraminal zone (between the S1
  endplate and the L5 pedicle's lower margin, between the pedicle's medial wall and the body's
  lateral border, with ``zone_slack_mm``);
* the exiting L5 root, projected into the view, divides the free area: the cranial/lateral part
  next to the pedicle is the **safe** (subpedicular) window, the caudal/medial part over the disc
  the **Kambin** window.

Variants (which structures block):

* ``feasible``: everything except the target blocks, ilia and transverse processes included
  (what a needle can really reach from the skin);
* ``bony``: the traversing root and the dural sac are transparent (the bony Kambin triangle);
* ``neural``: the S1 superior articular process is transparent (the neural Kambin triangle).

Triangle vertices (to compare with hand measurements on renderings) come from classifying the
window's boundary by what lies just outside it (base, height, hypotenuse), fitting a line to each
class and intersecting them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from spinect_core.anatomy import LumbosacralAnatomy
from spinect_core.errors import AnatomyError
from spinect_core.planning.optimise import LocalFrame, angles_of, view_direction
from spinect_core.planning.scene import SceneFields, SceneOptions
from spinect_core.planning.windows import WindowOptions, WindowResult, compute_window

Side = Literal["left", "right"]
Variant = Literal["feasible", "bony", "neural"]
SIDES: tuple[Side, ...] = ("left", "right")
VARIANTS: tuple[Variant, ...] = ("feasible", "bony", "neural")
WINDOW_KINDS = ("kambin", "safe")

#: Parts that make the target (the needle's backstop).
TARGET_PARTS = ("L5", "disc_L5S1")
#: Blockers that each variant makes transparent.
TRANSPARENT = {"feasible": (), "bony": ("other_nerve", "dura"), "neural": ("S1_SAP",)}


@dataclass(frozen=True, kw_only=True)
class L5S1Options:
    """How the L5/S1 windows are measured.

    Attributes
    ----------
    zone_slack_mm : float
        Slack around the foraminal zone (DESIGN.md: 1-2 mm).
    body_posterior_mm : float
        L5 voxels more than this far posterior of the foramen centre's coronal plane minus 3 mm
        (the posterior wall of the body) are posterior elements, i.e. blockers.
    sap_above_endplate_mm : float
        S1 bone this far above the S1 endplate plane counts as the superior articular process
        (made transparent by the ``neural`` variant).
    roi_size_mm : float
        Side of the square ray grid around the foramen (DESIGN.md: ~40 mm).
    scene : SceneOptions
        Soft-boundary options of the scene.
    """

    zone_slack_mm: float = 1.5
    body_posterior_mm: float = 1.0
    sap_above_endplate_mm: float = 2.0
    roi_size_mm: float = 40.0
    scene: SceneOptions = field(default_factory=SceneOptions)


@dataclass(kw_only=True)
class Triangle:
    """A fitted window triangle in the view plane.

    Attributes
    ----------
    vertices_lps : np.ndarray, shape (3, 3)
        Vertices (rows) in LPS mm on the plane through the window's median hit depth.
    area_mm2 : float
        Area of the triangle (projected on the view plane).
    sides : dict
        Which boundary class each side is fitted to (``base``, ``height``, ``hypotenuse``) ->
        number of boundary pixels used.
    """

    vertices_lps: np.ndarray
    area_mm2: float
    sides: dict[str, int]


@dataclass(kw_only=True)
class SideWindows:
    """The windows of one side seen along one view.

    Attributes
    ----------
    free : WindowResult
        All free pixels (both windows together).
    kambin, safe : WindowResult or None
        The two windows; ``None`` when the split is impossible (no exiting root label).
    reason : str
        Why the split failed, empty otherwise.
    """

    free: WindowResult
    kambin: WindowResult | None
    safe: WindowResult | None
    reason: str = ""

    def window(self, kind: str) -> WindowResult | None:
        return {"kambin": self.kambin, "safe": self.safe}[kind]

    def area(self, kind: str) -> float:
        w = self.window(kind)
        return 0.0 if w is None else float(w.area_mm2)


class SideScene:
    """The precomputed scene of one side and variant; windows for any view.

    Parameters
    ----------
    anatomy : LumbosacralAnatomy
    side : {"left", "right"}
    variant : {"feasible", "bony", "neural"}
    options : L5S1Options, optional
    """

    def __init__(self, anatomy: LumbosacralAnatomy, side: Side, *, variant: Variant = "feasible",
                 options: L5S1Options | None = None) -> None:
        if side not in SIDES:
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.anatomy = anatomy
        self.side = side
        self.variant = variant
        self.options = options or L5S1Options()
        self.landmarks = anatomy.sides[side]
        self.frame: LocalFrame = self.landmarks.frame
        target, blockers, self.structures = _target_and_blockers(anatomy, side, variant,
                                                                 self.options)
        self.scene = SceneFields.from_masks(anatomy.parts, target, blockers,
                                            options=self._scene_options())
        self.roi_center_lps = np.asarray(self.landmarks.foramen_centre_lps, float)
        self._zone = _foraminal_zone(anatomy, side, self.options.zone_slack_mm)
        root = self.landmarks.root_centreline_lps
        self.root_lps = None if root is None or len(root) < 2 else np.asarray(root, float)

    def _scene_options(self) -> SceneOptions:
        # Crop the scene to a sphere around the foramen that holds every ray's path through the
        # ROI: the ROI diagonal plus the distance from the foramen to the skin-side structures is
        # not needed, because structures outside the sphere can only block rays outside the ROI
        # or far behind the target; the sphere keeps the fields small (fast per view).
        radius = 0.75 * self.options.roi_size_mm * np.sqrt(2) + 40.0
        return replace(self.options.scene,
                       crop_center_lps=tuple(float(v) for v in
                                             self.anatomy.sides[self.side].foramen_centre_lps),
                       crop_radius_mm=float(radius))

    # --- views ----------------------------------------------------------------------------------
    def view_direction(self, alpha_deg: float, beta_deg: float) -> np.ndarray:
        """View direction d (LPS) of the local angles (alpha lateral oblique, beta tilt)."""
        return view_direction(self.frame, alpha_deg, beta_deg)

    def angles(self, view_direction_lps: np.ndarray) -> tuple[float, float]:
        """Local (alpha, beta) of a view direction d (LPS)."""
        return angles_of(self.frame, -np.asarray(view_direction_lps, float))

    def windows(self, view_direction_lps: np.ndarray, *, pixel_mm: float = 0.25,
                polygons: bool = False) -> SideWindows:
        """Free, Kambin and safe windows seen along ``view_direction_lps``.

        Parameters
        ----------
        view_direction_lps : (3,)
            Direction in which rays travel (LPS).
        pixel_mm : float
            Ray spacing: 0.25 mm for reported numbers, 0.5 mm while optimising.
        polygons : bool
            Trace outlines (for overlays and exports).
        """
        options = WindowOptions(roi_size_mm=self.options.roi_size_mm, pixel_mm=pixel_mm,
                                polygons=polygons, up_lps=tuple(self.frame.z_lps))
        free = compute_window(self.scene, view_direction_lps, roi_center_lps=self.roi_center_lps,
                              zone=self._zone, options=options)
        if self.root_lps is None:
            return SideWindows(free=free, kambin=None, safe=None,
                               reason=f"no exiting L5 root on the {self.side} side to divide the "
                               "foramen into the Kambin and safe windows")
        safe_side = self._safe_side_mask(free)
        return SideWindows(free=free, kambin=free.restricted(~safe_side),
                           safe=free.restricted(safe_side))

    def windows_at(self, alpha_deg: float, beta_deg: float, **kwargs: Any) -> SideWindows:
        return self.windows(self.view_direction(alpha_deg, beta_deg), **kwargs)

    def _safe_side_mask(self, window: WindowResult) -> np.ndarray:
        """(H, W) bool: pixels on the cranial/lateral side of the projected exiting root.

        The side is decided per pixel against the nearest segment of the projected root, whose
        normal is oriented towards the projected cranial + lateral direction of the local frame:
        a root that curves in the image (it runs anterolaterally and caudally) then still splits
        the foramen into the part next to the pedicle (safe) and the part over the disc (Kambin).
        """
        grid = window.ray_grid
        root = grid.project(self.root_lps)[:, :2]  # (N, 2) (row, col)
        # Extend both ends so the dividing line crosses the whole ROI.
        span = 4.0 * window.mask.shape[0]
        start = root[0] - span * _unit(root[1] - root[0])
        end = root[-1] + span * _unit(root[-1] - root[-2])
        line = np.vstack([start, root, end])
        origin = grid.project(self.frame.origin_lps)[:2]
        cranial = grid.project(self.frame.origin_lps + self.frame.z_lps)[:2] - origin
        lateral = grid.project(self.frame.origin_lps + self.frame.x_lps)[:2] - origin
        towards_safe = _unit(_unit(cranial) + _unit(lateral))
        rows, cols = np.indices(window.mask.shape)
        pixels = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(float)
        return (_side_of_polyline(pixels, line, towards_safe) > 0).reshape(window.mask.shape)

    # --- triangles ------------------------------------------------------------------------------
    def triangle(self, windows: SideWindows, kind: str) -> Triangle | None:
        """Fit the window's triangle from its boundary classes; None when a side is missing."""
        window = windows.window(kind)
        if window is None or not window.mask.any():
            return None
        classes = self._boundary_classes(window, windows.free, kind)
        lines = {}
        for name, pts in classes.items():
            if len(pts) >= 3 and np.ptp(pts, axis=0).max() >= 1.0:
                lines[name] = _fit_line(pts)
        if len(lines) < 3:
            return None
        names = ("base", "height", "hypotenuse")
        corners = []
        for a, b in ((0, 1), (1, 2), (2, 0)):
            p = _intersect(lines[names[a]], lines[names[b]])
            if p is None:
                return None
            corners.append(p)
        corners_px = np.array(corners)  # (3, 2) (row, col)
        v1, v2 = corners_px[1] - corners_px[0], corners_px[2] - corners_px[0]
        area_px = 0.5 * abs(v1[0] * v2[1] - v1[1] * v2[0])
        area = float(area_px * window.pixel_mm ** 2)
        # A triangle far larger than the window means the fitted lines are nearly parallel.
        if not np.isfinite(area) or area > 4.0 * max(window.area_mm2, 1.0):
            return None
        depth = float(np.nanmedian(window.hit_depth_mm[window.mask]))
        vertices = window.points_lps(corners_px[:, 0], corners_px[:, 1], np.full(3, depth))
        return Triangle(vertices_lps=vertices, area_mm2=area,
                        sides={n: int(len(classes[n])) for n in names})

    def _boundary_classes(self, window: WindowResult, free: WindowResult, kind: str
                          ) -> dict[str, np.ndarray]:
        """Window boundary pixels (row, col) grouped by what lies just outside them."""
        from scipy import ndimage

        mask = window.mask
        outside = ~mask & ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool))
        rows, cols = np.nonzero(outside)
        points = window.points_lps(rows, cols, np.nan_to_num(window.hit_depth_mm[rows, cols],
                                                              nan=-1.0))
        hit = np.isfinite(window.hit_depth_mm[rows, cols])
        # Look up the part just behind the hit surface.
        inside_points = points + 0.5 * window.view_direction_lps
        part_ids = _lookup(self.anatomy.parts, inside_points)
        names = np.array([self.anatomy.parts_table.names.get(int(i), "background")
                          for i in part_ids])
        names = np.where(hit, names, "none")
        names = np.where(free.mask[rows, cols], "other_window", names)  # the split line (root)
        local = self.frame.point_to_local(np.where(hit[:, None], points, inside_points))
        endplate_z = float(self.frame.point_to_local(self.anatomy.s1_endplate_centre_lps)[2])
        root_name = f"root_L5_{self.side}"
        cls = np.full(len(rows), "", dtype=object)
        if kind == "kambin":
            cls[(names == root_name) | (names == "other_window")] = "hypotenuse"
            s1_low = (names == "S1") & (local[:, 2] < endplate_z + 2.0)
            cls[s1_low | ((names == "disc_L5S1") | (names == "L5")) & (local[:, 2] < endplate_z)] = \
                "base"
            cls[((names == "S1") & ~s1_low) | (names == "other_nerve") | (names == "dura")] = \
                "height"
        else:
            cls[(names == root_name) | (names == "other_window")] = "hypotenuse"
            cls[(names == "L5") & (local[:, 2] > endplate_z + 2.0)] = "base"
            cls[(names == "none") | np.isin(names, ("disc_L5S1",))] = "height"
        pix = np.stack([rows, cols], 1).astype(float)
        return {c: pix[cls == c] for c in ("base", "height", "hypotenuse")}


# --- helpers --------------------------------------------------------------------------------------
def _target_and_blockers(anatomy: LumbosacralAnatomy, side: Side, variant: Variant,
                         options: L5S1Options) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Boolean target and blocker masks (z, y, x) for one side and variant."""
    frame = anatomy.sides[side].frame
    l5 = anatomy.mask("L5")
    local_y = _local_coordinate(anatomy, frame, axis=1)
    # The foramen centre lies 3 mm behind the body's posterior wall (anatomy.landmarks), so the
    # wall sits at local y = -3 mm; L5 bone behind it is pedicle, lamina and processes.
    posterior = l5 & (local_y > -3.0 + options.body_posterior_mm)
    target = (l5 & ~posterior) | anatomy.mask("disc_L5S1")
    if not target.any():
        raise AnatomyError("the L5 body and the L5/S1 disc are empty: cannot measure windows")
    everything = anatomy.parts.array > 0
    blockers = everything & ~target
    transparent = np.zeros_like(blockers)
    for name in TRANSPARENT[variant]:
        if name == "S1_SAP":
            local_z = _local_coordinate(anatomy, frame, axis=2)
            endplate_z = float(frame.point_to_local(anatomy.s1_endplate_centre_lps)[2])
            transparent |= anatomy.mask("S1") & (local_z > endplate_z + options.sap_above_endplate_mm)
        else:
            transparent |= anatomy.mask(name)
    blockers &= ~transparent
    return target, blockers, {"target": list(TARGET_PARTS) + ["(L5 body only)"],
                              "transparent": list(TRANSPARENT[variant])}


def _local_coordinate(anatomy: LumbosacralAnatomy, frame: LocalFrame, *, axis: int) -> np.ndarray:
    """One local-frame coordinate (mm) of every voxel centre, (z, y, x) float32."""
    parts = anatomy.parts
    axis_lps = (frame.x_lps, frame.y_lps, frame.z_lps)[axis]
    # coordinate = (origin_vol + M @ ijk - origin_frame) . axis, separable in i, j, k.
    m = parts.direction * parts.spacing_mm[None, :]
    step = m.T @ axis_lps  # per unit index along x, y, z
    base = float((parts.origin_lps_mm - frame.origin_lps) @ axis_lps)
    nz, ny, nx = parts.array.shape
    return (base + step[0] * np.arange(nx)[None, None, :] + step[1] * np.arange(ny)[None, :, None]
            + step[2] * np.arange(nz)[:, None, None]).astype(np.float32)


def _foraminal_zone(anatomy: LumbosacralAnatomy, side: Side, slack_mm: float):
    """A zone callable: LPS points (N, 3) -> bool, inside the foraminal zone of ``side``."""
    lm = anatomy.sides[side]
    frame = lm.frame
    z_low = float(frame.point_to_local(anatomy.s1_endplate_centre_lps)[2])
    z_high = float(frame.point_to_local(lm.pedicle_lower_margin_lps)[2])
    x_medial = float(frame.point_to_local(lm.pedicle_medial_wall_lps)[0])
    x_lateral = float(frame.point_to_local(lm.vertebral_body_lateral_border_lps)[0])
    z0, z1 = sorted((z_low, z_high))
    x0, x1 = sorted((x_medial, x_lateral))

    def zone(points_lps: np.ndarray) -> np.ndarray:
        q = frame.point_to_local(np.asarray(points_lps, float))
        return ((q[..., 2] >= z0 - slack_mm) & (q[..., 2] <= z1 + slack_mm)
                & (q[..., 0] >= x0 - slack_mm) & (q[..., 0] <= x1 + slack_mm))

    return zone


def _lookup(volume: Any, points_lps: np.ndarray) -> np.ndarray:
    """Nearest-voxel values of ``volume`` at LPS points (N, 3); 0 outside."""
    index = volume.lps_to_index(points_lps)
    finite = np.isfinite(index).all(1)
    idx = np.rint(np.where(finite[:, None], index, -1)).astype(int)  # (N, 3) x, y, z
    nz, ny, nx = volume.array.shape
    ok = finite & ((idx >= 0) & (idx < np.array([nx, ny, nz]))).all(1)
    out = np.zeros(len(points_lps), volume.array.dtype)
    out[ok] = volume.array[idx[ok, 2], idx[ok, 1], idx[ok, 0]]
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else v


def _side_of_polyline(points: np.ndarray, line: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """+1 where a 2D point lies on the ``towards`` side of the nearest segment of ``line``, -1
    on the other side (the segment normal is oriented to have a positive dot with ``towards``)."""
    a, b = line[:-1], line[1:]
    ab = b - a  # (S, 2)
    ap = points[:, None, :] - a[None]  # (P, S, 2)
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    seg = np.linalg.norm(points[:, None, :] - nearest, axis=-1).argmin(1)
    normal = np.stack([-ab[:, 1], ab[:, 0]], axis=1)  # (S, 2), perpendicular to each segment
    normal *= np.where(normal @ towards >= 0, 1.0, -1.0)[:, None]
    offset = points - nearest[np.arange(len(points)), seg]
    return np.sign((offset * normal[seg]).sum(-1))


def _fit_line(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total-least-squares line through 2D points: (point, unit direction)."""
    c = points.mean(0)
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    return c, vt[0]


def _intersect(l1: tuple[np.ndarray, np.ndarray], l2: tuple[np.ndarray, np.ndarray]
               ) -> np.ndarray | None:
    (p1, d1), (p2, d2) = l1, l2
    m = np.array([d1, -d2]).T
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    s, _ = np.linalg.solve(m, p2 - p1)
    return p1 + s * d1
