"""Kambin and safe windows at L5/S1 for one side, for any view (docs/ARCHITECTURE.md section 4).

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

import functools
import math
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from spinect_core.anatomy import LumbosacralAnatomy
from spinect_core.anatomy.geometry import bbox_slices
from spinect_core.errors import AnatomyError
from spinect_core.planning.optimise import LocalFrame, angles_of, view_direction
from spinect_core.planning.scene import SceneFields, SceneOptions
from spinect_core.planning.raycast import make_ray_grid
from spinect_core.planning.windows import (WindowOptions, WindowResult, compute_windows,
                                           zone_values)

from spinect_core.vectors import unit_or_zero
# re-exported: planning's callers import the sides, variants and window kinds from here
from spinect_core.vocabulary import SIDES, VARIANTS, WINDOW_KINDS, Side, Variant  # noqa: F401

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
        Slack around the foraminal zone (docs/ARCHITECTURE.md 4.2: 1-2 mm).
    zone_depth_mm : float or None
        How far in front of the L5 body's posterior wall a target hit may lie (local y, mm, before
        the slack): the foramen is 6-10 mm deep (AP) on CT, so a ray that meets the body's lateral
        surface further forward passes beside the foramen, not through it. ``None``: no limit.
    body_posterior_mm : float
        L5 voxels more than this far behind the body's posterior wall (the landmark below the
        pedicle, on the local frame's coronal plane) are posterior elements, i.e. blockers.
    sap_above_endplate_mm : float
        S1 bone this far above the S1 endplate plane counts as the superior articular process
        (made transparent by the ``neural`` variant).
    roi_size_mm : float
        Side of the square ray grid around the foramen (docs/ARCHITECTURE.md 4.2: ~40 mm).
    sac_half_width_mm : float or None
        The foraminal zone begins no nearer the mid-sagittal plane than this (mm, before the
        slack): the dural sac at L5/S1 is 13-18 mm wide (ANATOMY.md), and a target medial of its
        widest half lies in it. The zone's medial bound is the pedicle's medial wall, which the
        landmarks put 4-7 mm from the midline on most real-bone phantoms, so a label map without
        the sac (a network that found none on a real CT) offered windows through the canal:
        real-bone phantoms planned without their dura had 2 of 20 Kambin windows at 0-5 deg
        oblique through it (one 30 -> 39 mm^2); with this bound all 40 windows are those
        planned with the dura. ``None``: no bound.
    scene : SceneOptions
        Soft-boundary options of the scene.
    """

    zone_slack_mm: float = 1.5
    zone_depth_mm: float | None = 6.0
    body_posterior_mm: float = 1.0
    sap_above_endplate_mm: float = 2.0
    roi_size_mm: float = 40.0
    sac_half_width_mm: float | None = 9.0
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
        self._zone = _foraminal_zone(anatomy, side, self.options.zone_slack_mm,
                                     depth_mm=self.options.zone_depth_mm,
                                     sac_half_width_mm=self.options.sac_half_width_mm)
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

        Only the rays of the part of the ROI that can hold free pixels are traced
        (:func:`_windows_many`): the windows are those of the whole ROI, but its other rays
        read as hitting nothing (``hit_depth_mm`` NaN there).

        Parameters
        ----------
        view_direction_lps : (3,)
            Direction in which rays travel (LPS).
        pixel_mm : float
            Ray spacing: 0.25 mm for reported numbers, 0.5 mm while optimising.
        polygons : bool
            Trace outlines (for overlays and exports).
        """
        return _windows_many(self, [np.asarray(view_direction_lps, float)], pixel_mm=pixel_mm,
                             polygons=polygons)[0]

    def windows_many(self, views: Sequence[tuple[float, float]], *, pixel_mm: float,
                     polygons: bool = False, areas_only: bool = False) -> list[SideWindows]:
        """:meth:`windows_at` for several ``(alpha_deg, beta_deg)`` views, cast together (see
        :func:`_windows_many`)."""
        return _windows_many(self, [self.view_direction(a, b) for a, b in views],
                             pixel_mm=pixel_mm, polygons=polygons, areas_only=areas_only)

    def _split(self, free: WindowResult, *, skip_empty: bool = False) -> SideWindows:
        """Divide the free window by the projected exiting root (``skip_empty``: a view with no
        free pixel keeps the empty free window as both windows, without projecting the root)."""
        if self.root_lps is None:
            return SideWindows(free=free, kambin=None, safe=None,
                               reason=f"no exiting L5 root on the {self.side} side to divide the "
                               "foramen into the Kambin and safe windows")
        if skip_empty and not free.mask.any():
            return SideWindows(free=free, kambin=free, safe=free)
        safe, kambin = free.split(self._safe_side_mask(free))
        return SideWindows(free=free, kambin=kambin, safe=safe)

    def windows_at(self, alpha_deg: float, beta_deg: float, **kwargs: Any) -> SideWindows:
        return self.windows(self.view_direction(alpha_deg, beta_deg), **kwargs)

    def _safe_side_mask(self, window: WindowResult) -> np.ndarray:
        """(H, W) bool: pixels on the cranial/lateral side of the projected exiting root,
        decided within a margin's reach of the window's free pixels (True beyond).

        The side is decided per pixel against the nearest segment of the projected root, whose
        normal is oriented towards the projected cranial + lateral direction of the local frame:
        a root that curves in the image (it runs anterolaterally and caudally) then still splits
        the foramen into the part next to the pedicle (safe) and the part over the disc (Kambin).
        """
        grid = window.ray_grid
        root = grid.project(self.root_lps)[:, :2]  # (N, 2) (row, col)
        # Extend both ends so the dividing line crosses the whole ROI.
        span = 4.0 * window.mask.shape[0]
        start = root[0] - span * unit_or_zero(root[1] - root[0])
        end = root[-1] + span * unit_or_zero(root[-1] - root[-2])
        line = np.vstack([start, root, end])
        origin = grid.project(self.frame.origin_lps)[:2]
        cranial = grid.project(self.frame.origin_lps + self.frame.z_lps)[:2] - origin
        lateral = grid.project(self.frame.origin_lps + self.frame.x_lps)[:2] - origin
        towards_safe = unit_or_zero(unit_or_zero(cranial) + unit_or_zero(lateral))
        # Only the pixels around the free ones are decided (the rest count as safe): a free
        # pixel's margin is at most a margin's reach, so the cut of the split changes it, or
        # the value of a neighbour it is interpolated with, only through pixels within that
        # reach of it (the windows' pixels, margins around them and areas are those of
        # deciding every pixel: a test holds them to it).
        keep = np.ones(window.mask.shape, bool)
        pad = _margin_reach_px(WindowOptions(pixel_mm=window.pixel_mm)) + 1
        box = bbox_slices(window.mask, (pad, pad))
        if box is None:
            return keep
        (r0, r1), (c0, c1) = ((b.start, b.stop) for b in box)
        pixels = _pixel_centres((r1 - r0, c1 - c0)) + (r0, c0)
        keep[r0:r1, c0:c1] = (_side_of_polyline(pixels, line, towards_safe) > 0).reshape(
            r1 - r0, c1 - c0)
        return keep

    # --- triangles ------------------------------------------------------------------------------
    def triangle(self, windows: SideWindows, kind: str) -> Triangle | None:
        """The window's triangle, to compare with triangles drawn by hand on renderings.

        The triangle is the smallest one whose sides lie on edges of the window's convex hull
        and that encloses the window (what a reader draws around a visible window); each side
        is then named (base, height, hypotenuse) by the boundary class most of the boundary
        pixels nearest to it belong to (see :meth:`_boundary_classes`). ``None`` only when the
        window is empty or too small to have a hull.
        """
        window = windows.window(kind)
        if window is None or not window.mask.any():
            return None
        corners_px = _enclosing_triangle(window.mask)
        if corners_px is None:
            return None
        classes = self._boundary_classes(window, windows.free, kind)
        side_of, counts = _name_sides(corners_px, classes)
        # Vertices in the order base/height, height/hypotenuse, hypotenuse/base.
        pairs = (("base", "height"), ("height", "hypotenuse"), ("hypotenuse", "base"))
        corners_px = np.array([corners_px[_shared_corner(side_of[a], side_of[b])]
                               for a, b in pairs])
        v1, v2 = corners_px[1] - corners_px[0], corners_px[2] - corners_px[0]
        area = float(0.5 * abs(v1[0] * v2[1] - v1[1] * v2[0]) * window.pixel_mm ** 2)
        depth = float(np.nanmedian(window.hit_depth_mm[window.mask]))
        vertices = window.points_lps(corners_px[:, 0], corners_px[:, 1], np.full(3, depth))
        return Triangle(vertices_lps=vertices, area_mm2=area, sides=counts)

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
        # A target hit that is not free lies beyond an edge of the foraminal zone: the edge is
        # the triangle side there (the pedicle's lower margin, the body's lateral border, the
        # endplate), even where no blocking structure draws it.
        target_hit = hit & np.isin(names, ("L5", "disc_L5S1"))
        edge = np.full(len(rows), "", dtype=object)
        edge[target_hit] = self._zone.edge(points[target_hit])
        local = self.frame.point_to_local(np.where(hit[:, None], points, inside_points))
        endplate_z = float(self.frame.point_to_local(self.anatomy.s1_endplate_centre_lps)[2])
        root_name = f"root_L5_{self.side}"
        cls = np.full(len(rows), "", dtype=object)
        hypotenuse = (names == root_name) | (names == "other_window")
        if kind == "kambin":
            s1_low = (names == "S1") & (local[:, 2] < endplate_z + 2.0)
            base = s1_low | (edge == "bottom") | (
                np.isin(names, ("disc_L5S1", "L5")) & (edge == "") & (local[:, 2] < endplate_z))
            height = ((names == "S1") & ~s1_low) | np.isin(names, ("other_nerve", "dura")) | (
                edge == "medial")
        else:
            base = (edge == "top") | (
                (names == "L5") & (edge == "") & (local[:, 2] > endplate_z + 2.0))
            height = (names == "none") | (edge == "lateral") | (
                (names == "disc_L5S1") & (edge == ""))
        cls[base] = "base"
        cls[height] = "height"
        cls[hypotenuse] = "hypotenuse"
        pix = np.stack([rows, cols], 1).astype(float)
        return {c: pix[cls == c] for c in ("base", "height", "hypotenuse")}


# --- helpers --------------------------------------------------------------------------------------
def _windows_many(scene: "SideScene", directions: Sequence[np.ndarray], *,
                  pixel_mm: float, polygons: bool = False, areas_only: bool = False
                  ) -> list[SideWindows]:
    """:meth:`SideScene.windows` for several view directions (LPS, travel), cast together.

    Only the part of the ROI's ray grid that can hold free pixels is traced (:func:`_free_crops`;
    on the demo phantom 57-73 % of it): the windows' free pixels, their margins and areas are
    those of the whole ROI (a test holds them to it). The windows are returned on the whole
    ROI's grid, the rays outside the crop counted as hitting nothing; ``areas_only`` (an
    optimiser, which reads the areas alone) keeps each on its crop, and a view with no free
    pixel skips the Kambin / safe split (both windows are the empty free window). The rays of
    all views are cast together (:func:`~spinect_core.planning.windows.compute_windows`).

    Parameters
    ----------
    scene : SideScene
    directions : sequence of (3,)
        Directions in which the rays travel (LPS).
    pixel_mm : float
        Ray spacing (mm).
    polygons : bool
        Trace the outlines.
    areas_only : bool
        Only the windows' areas will be read.

    Returns
    -------
    list of SideWindows
        One per view, in order.
    """
    if not len(directions):
        return []
    options = WindowOptions(roi_size_mm=scene.options.roi_size_mm, pixel_mm=pixel_mm,
                            polygons=polygons, up_lps=tuple(scene.frame.z_lps))
    crops = _free_crops(scene, directions, options)
    keep_shape = not areas_only
    frees = compute_windows(scene.scene, directions, roi_center_lps=scene.roi_center_lps,
                            zone=scene._zone, options=options, crops=crops,
                            keep_shape=keep_shape)
    # A crop with free pixels near a border that cuts the ROI may have missed some: redo that
    # view on the whole ROI (never happened on the phantoms).
    reach = _margin_reach_px(options)
    n = _roi_pixels(options)
    redo = []
    for k, (free, box) in enumerate(zip(frees, crops)):
        if box is None:
            continue
        mask = free.mask[box[0]:box[1], box[2]:box[3]] if keep_shape else free.mask
        if _near_cut(mask, box, n, reach):
            redo.append(k)
    again = compute_windows(scene.scene, [directions[k] for k in redo],
                            roi_center_lps=scene.roi_center_lps, zone=scene._zone,
                            options=options)
    for k, free in zip(redo, again):
        frees[k] = free
    return [scene._split(free, skip_empty=areas_only) for free in frees]


#: Per scene: the convex hull's vertices (N, 3) LPS of the target voxel centres inside the
#: scene's zone (see _free_crops).
_ZONE_TARGET: "weakref.WeakKeyDictionary[SideScene, np.ndarray]" = weakref.WeakKeyDictionary()


def _zone_target_hull(scene: SideScene) -> np.ndarray:
    """LPS (N, 3) vertices of the convex hull of the target voxel centres inside the zone: the
    projections' bounding box in any view is that of the hull's vertices (tens of points
    instead of tens of thousands to project per view)."""
    from scipy.spatial import ConvexHull, QhullError

    fields = scene.scene
    ijk = np.argwhere(fields.sdf[0] <= 0)[:, ::-1]  # (x, y, z) crop indices
    centres = ijk @ fields.affine_lps[:3, :3].T + fields.affine_lps[:3, 3]
    centres = centres[zone_values(scene._zone, centres) >= 0.5]
    try:
        return centres[ConvexHull(centres).vertices]
    except (QhullError, ValueError):  # too few or coplanar points: keep them all
        return centres


def _roi_pixels(options: WindowOptions) -> int:
    return max(int(round(options.roi_size_mm / options.pixel_mm)), 1)


def _margin_reach_px(options: WindowOptions) -> int:
    """How far (pixels) a ray's number can influence a free pixel's area: the repair radius
    plus the largest positive margin (the 2 mm penetration cap of the ray caster)."""
    return int(options.repair_radius_px) + math.ceil(2.0 / options.pixel_mm - 1e-9) + 1


def _free_crops(scene: SideScene, directions: Sequence[np.ndarray], options: WindowOptions
                ) -> list[tuple[int, int, int, int] | None]:
    """Per view, the part of the ROI's ray grid (r0, r1, c0, c1) that can hold free pixels.

    A free ray meets the target first, inside the zone, within a voxel diagonal of a target
    voxel centre. The crop is the bounding box of the projected target voxel centres that lie
    inside the zone, grown by that diagonal (plus a pixel) and by :func:`_margin_reach_px`, so
    every number a free pixel's area depends on is measured as on the whole ROI. (A hit just
    inside the zone whose nearby voxel centres all lie outside it could escape: see the check
    in :meth:`SideScene.windows_many`. On every grid and refinement view of three phantoms the
    cropped areas equal the whole ROI's.) None: the whole ROI.
    """
    if scene not in _ZONE_TARGET:
        _ZONE_TARGET[scene] = _zone_target_hull(scene)
    centres = _ZONE_TARGET[scene]
    n = _roi_pixels(options)
    if len(centres) == 0:
        return [None] * len(directions)
    diagonal = float(np.linalg.norm(scene.scene.spacing_mm))
    pad = _margin_reach_px(options) + math.ceil(diagonal / options.pixel_mm) + 1
    out: list[tuple[int, int, int, int] | None] = []
    for d in directions:
        grid = make_ray_grid(scene.scene.scene_corners_lps, d, roi_center_lps=scene.roi_center_lps,
                             roi_size_mm=options.roi_size_mm, pixel_mm=options.pixel_mm,
                             up_lps=options.up_lps)
        rc = grid.project(centres)[:, :2]
        lo = np.clip(np.floor(rc.min(0)).astype(int) - pad, 0, n - 1)
        hi = np.clip(np.ceil(rc.max(0)).astype(int) + pad + 1, lo + 1, n)
        box = (int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1]))
        out.append(None if box == (0, n, 0, n) else box)
    return out


def _near_cut(mask: np.ndarray, box: tuple[int, int, int, int], n: int, reach: int) -> bool:
    """Free pixels of a cropped window within ``reach`` pixels of a border that cuts the ROI."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return False
    r0, r1, c0, c1 = box
    h, w = mask.shape
    return bool((r0 > 0 and rows[0] < reach) or (r1 < n and rows[-1] >= h - reach)
                or (c0 > 0 and cols[0] < reach) or (c1 < n and cols[-1] >= w - reach))


def _target_and_blockers(anatomy: LumbosacralAnatomy, side: Side, variant: Variant,
                         options: L5S1Options) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Boolean target and blocker masks (z, y, x) for one side and variant."""
    frame = anatomy.sides[side].frame
    l5 = anatomy.mask("L5")
    local_y = _local_coordinate(anatomy, frame, axis=1)
    # L5 bone behind the body's posterior wall is pedicle, lamina and processes.
    wall_y = float(frame.point_to_local(anatomy.sides[side].posterior_wall_lps)[1])
    posterior = l5 & (local_y > wall_y + options.body_posterior_mm)
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


@dataclass(frozen=True)
class _ForaminalZone:
    """The foraminal zone of one side: a box in the local frame, callable on points.

    ``x0..x1`` runs from the pedicle's medial wall to the body's lateral border (local x, mm),
    ``z0..z1`` from the S1 endplate to the L5 pedicle's lower margin (local z, mm), and a hit
    may lie at most to ``y0`` in front of the foramen (local y, mm; ``-inf``: no limit);
    ``slack_mm`` widens every limit.
    """

    frame: LocalFrame
    x0: float
    x1: float
    z0: float
    z1: float
    slack_mm: float
    y0: float = -math.inf

    def __call__(self, points_lps: np.ndarray) -> np.ndarray:
        """(N,) bool: LPS points (N, 3) inside the zone."""
        return self.edge(points_lps) == ""

    def edge(self, points_lps: np.ndarray) -> np.ndarray:
        """(N,) str: which edge a point lies beyond ("top", "bottom", "anterior", "medial",
        "lateral"), or "" inside. The vertical edges win over the others at the corners, and
        the medial and lateral edges over the anterior one."""
        local = self.frame.point_to_local(np.asarray(points_lps, float))
        q = local.reshape(-1, 3)
        s = self.slack_mm
        out = np.full(len(q), "", dtype=object)
        out[q[:, 2] > self.z1 + s] = "top"
        out[q[:, 2] < self.z0 - s] = "bottom"
        out[q[:, 1] < self.y0 - s] = "anterior"
        out[q[:, 0] < self.x0 - s] = "medial"
        out[q[:, 0] > self.x1 + s] = "lateral"
        return out.reshape(local.shape[:-1])


def _foraminal_zone(anatomy: LumbosacralAnatomy, side: Side, slack_mm: float, *,
                    depth_mm: float | None = None,
                    sac_half_width_mm: float | None = None) -> _ForaminalZone:
    """The foraminal zone of ``side`` (see :class:`_ForaminalZone`); ``depth_mm``: how far in
    front of the body's posterior wall a hit may lie (``None``: no limit);
    ``sac_half_width_mm``: the zone's medial bound lies at least this far from the
    mid-sagittal plane (``None``: the pedicle's medial wall alone)."""
    lm = anatomy.sides[side]
    frame = lm.frame
    z_low = float(frame.point_to_local(anatomy.s1_endplate_centre_lps)[2])
    z_high = float(frame.point_to_local(lm.pedicle_lower_margin_lps)[2])
    x_medial = float(frame.point_to_local(lm.pedicle_medial_wall_lps)[0])
    x_lateral = float(frame.point_to_local(lm.vertebral_body_lateral_border_lps)[0])
    z0, z1 = sorted((z_low, z_high))
    x0, x1 = sorted((x_medial, x_lateral))
    if sac_half_width_mm is not None:
        # The frame's x runs laterally on either side, so the sac ends at the midline's x + w.
        x_midline = float(frame.point_to_local(anatomy.midline_point_lps)[0])
        x0 = max(x0, x_midline + float(sac_half_width_mm))
    wall_y = float(frame.point_to_local(lm.posterior_wall_lps)[1])
    y0 = -math.inf if depth_mm is None else wall_y - float(depth_mm)
    return _ForaminalZone(frame=frame, x0=x0, x1=x1, z0=z0, z1=z1, slack_mm=float(slack_mm),
                          y0=y0)


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


@functools.lru_cache(maxsize=8)
def _pixel_centres(shape: tuple[int, int]) -> np.ndarray:
    """(H * W, 2) float64 (row, col) of every pixel of an (H, W) image, row-major; read-only
    (shared by every view of the same ray-grid size)."""
    rows, cols = np.indices(shape)
    pixels = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(float)
    pixels.flags.writeable = False
    return pixels


def _side_of_polyline(points: np.ndarray, line: np.ndarray, towards: np.ndarray) -> np.ndarray:
    """+1 where a 2D point lies on the ``towards`` side of the nearest segment of ``line``, -1
    on the other side (the segment normal is oriented to have a positive dot with ``towards``)."""
    a, b = line[:-1], line[1:]
    ab = b - a  # (S, 2)
    # Per axis (P, S) arrays: (P, S, 2) temporaries and np.linalg.norm cost several times more.
    # Four (P, S) buffers reused in place: the same operations in the same order as with fresh
    # temporaries (so the same numbers, and near-ties between segments resolve the same way),
    # at a third of the allocations.
    apr = points[:, :1] - a[:, 0]
    apc = points[:, 1:] - a[:, 1]
    t = apr * ab[:, 0]
    tmp = apc * ab[:, 1]
    t += tmp
    t /= np.maximum((ab * ab).sum(-1), 1e-12)
    np.clip(t, 0, 1, out=t)
    # The point minus its nearest point on each segment (into apr / apc), and its length.
    offr, offc = apr, apc
    np.multiply(t, ab[:, 0], out=offr)
    offr += a[:, 0]
    np.subtract(points[:, :1], offr, out=offr)
    np.multiply(t, ab[:, 1], out=offc)
    offc += a[:, 1]
    np.subtract(points[:, 1:], offc, out=offc)
    np.multiply(offr, offr, out=tmp)
    np.multiply(offc, offc, out=t)
    tmp += t
    seg = np.sqrt(tmp, out=tmp).argmin(1)
    normal = np.stack([-ab[:, 1], ab[:, 0]], axis=1)  # (S, 2), perpendicular to each segment
    normal *= np.where(normal @ towards >= 0, 1.0, -1.0)[:, None]
    rows = np.arange(len(points))
    return np.sign(offr[rows, seg] * normal[seg, 0] + offc[rows, seg] * normal[seg, 1])


def _enclosing_triangle(mask: np.ndarray, *, tolerance_px: float = 0.75, max_edges: int = 16
                        ) -> np.ndarray | None:
    """Smallest triangle enclosing a 2D mask (sides along hull edges or every 3 degrees).

    Parameters
    ----------
    mask : np.ndarray, bool, shape (H, W)
    tolerance_px : float
        Douglas-Peucker tolerance that simplifies the hull first (pixels).
    max_edges : int
        Hull edges (the longest) whose lines are candidates besides the 5-degree fan.

    Returns
    -------
    np.ndarray, shape (3, 2), or None
        Corners (row, col) in pixels; side ``i`` joins corners ``i`` and ``i + 1``. ``None``
        when the mask is degenerate (fewer than 3 hull vertices).
    """
    from scipy.spatial import ConvexHull, QhullError
    from skimage.measure import approximate_polygon

    rows, cols = np.nonzero(mask)
    # Pixel corners, so a pixel's whole area is inside the hull.
    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    points = (np.stack([rows, cols], 1)[:, None, :] + offsets[None]).reshape(-1, 2)
    try:
        hull = ConvexHull(points)
    except QhullError:
        return None
    ring = points[hull.vertices]
    simplified = approximate_polygon(np.vstack([ring, ring[:1]]), tolerance_px)[:-1]
    if len(simplified) >= 3:  # a tiny window would collapse: keep its exact hull
        ring = simplified
    # Candidate side lines: supporting lines of the hull (n . x <= c with c = max over the hull)
    # along every hull edge and every 3 degrees; any three of them that close a triangle
    # enclose the window, and the smallest such triangle is kept.
    d = np.roll(ring, -1, axis=0) - ring
    edge_normals = np.stack([d[:, 1], -d[:, 0]], 1)
    edge_normals /= np.linalg.norm(edge_normals, axis=1, keepdims=True)
    outward = np.einsum("ij,ij->i", edge_normals, ring + 0.5 * d - ring.mean(0)) > 0
    edge_normals[~outward] *= -1.0
    # The longest edges only: the short ones of a pixel staircase add cost, not candidates.
    edge_normals = edge_normals[np.argsort(-np.linalg.norm(d, axis=1))[:max_edges]]
    phi = np.deg2rad(np.arange(0.0, 360.0, 5.0))
    normals = np.vstack([edge_normals, np.stack([np.cos(phi), np.sin(phi)], 1)])
    c = (ring @ normals.T).max(axis=0)
    from itertools import combinations
    n = len(normals)
    i, j, k = np.fromiter(combinations(range(n), 3), dtype=np.dtype((np.int32, 3)),
                          count=n * (n - 1) * (n - 2) // 6).T
    # Three half-planes close a triangle around the hull only when their normals positively
    # span the plane: sorted by angle, no gap between neighbours reaches 180 degrees.
    ang = np.sort(np.arctan2(normals[:, 1], normals[:, 0])[np.stack([i, j, k], 1)], axis=1)
    gaps = np.diff(np.hstack([ang, ang[:, :1] + 2 * np.pi]), axis=1)
    ok = gaps.max(axis=1) < np.pi - 1e-3
    i, j, k = i[ok], j[ok], k[ok]
    corners = np.stack([_meet(normals[a], c[a], normals[b], c[b])
                        for a, b in ((i, j), (j, k), (k, i))], 1)  # (T, 3, 2)
    ok = np.isfinite(corners).all(axis=(1, 2))
    if not ok.any():
        return None
    v1 = corners[:, 1] - corners[:, 0]
    v2 = corners[:, 2] - corners[:, 0]
    area = 0.5 * np.abs(v1[:, 0] * v2[:, 1] - v1[:, 1] * v2[:, 0])
    area[~ok] = np.inf
    return corners[int(np.argmin(area))]


def _meet(n1: np.ndarray, c1: np.ndarray, n2: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Intersections (T, 2) of lines n1 . x = c1 and n2 . x = c2 (NaN when parallel)."""
    det = n1[:, 0] * n2[:, 1] - n1[:, 1] * n2[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (c1 * n2[:, 1] - c2 * n1[:, 1]) / det
        y = (n1[:, 0] * c2 - n2[:, 0] * c1) / det
    bad = np.abs(det) < 1e-9
    return np.where(bad[:, None], np.nan, np.stack([x, y], 1))


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def _name_sides(corners: np.ndarray, classes: dict[str, np.ndarray]
                ) -> tuple[dict[str, int], dict[str, int]]:
    """Name the triangle's sides by the boundary classes nearest to them.

    Returns ``({class: side index}, {class: boundary pixels of that class nearest its side})``;
    the assignment (a permutation) maximises the pixels that agree.
    """
    from itertools import permutations

    names = ("base", "height", "hypotenuse")
    votes = np.zeros((3, 3), int)  # votes[class, side]
    for ci, name in enumerate(names):
        pts = classes.get(name, np.zeros((0, 2)))
        if len(pts):
            dist = np.stack([_segment_distance(pts, corners[m], corners[(m + 1) % 3])
                             for m in range(3)], 1)
            votes[ci] = np.bincount(np.argmin(dist, axis=1), minlength=3)
    best = max(permutations(range(3)), key=lambda p: sum(votes[ci, p[ci]] for ci in range(3)))
    side_of = {name: int(best[ci]) for ci, name in enumerate(names)}
    counts = {name: int(votes[ci, best[ci]]) for ci, name in enumerate(names)}
    return side_of, counts


def _shared_corner(side_a: int, side_b: int) -> int:
    """Index of the corner shared by two sides (side ``m`` joins corners ``m`` and ``m + 1``)."""
    shared = {side_a, (side_a + 1) % 3} & {side_b, (side_b + 1) % 3}
    return shared.pop()
