"""Soft occupancy fields of a planning scene: what a needle aims at and what it must not cross.

A :class:`SceneFields` holds two channels on one (cropped) voxel grid, both in [0, 1]:

* channel 0, **target**: occupancy of the structures a ray may end on (the "backstop");
* channel 1, **blocker**: occupancy of everything a needle must not cross.

A surface is the iso-level ``threshold`` (0.5 by default; 0.35 / 0.65 for the uncertainty band)
of a channel. Binary masks are smoothed with a Gaussian of ``sigma_voxels`` (~0.6 voxel) first,
because nearest-neighbour masks underestimate oblique windows by 14-25 % (``DESIGN.md`` section 4);
probabilities are used as they are.

The fields are cropped to the bounding box of their content (plus a margin), so casting rays
through empty space is cheap, and they carry a distance field (mm) to the nearest voxel that could
reach the lowest threshold, which lets rays skip empty space safely (sphere tracing). The corners
of the *uncropped* grid are kept so rays can start outside the whole scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume


@dataclass(frozen=True, kw_only=True)
class SceneOptions:
    """How occupancy fields are built.

    Attributes
    ----------
    sigma_voxels : float
        Gaussian sigma (in voxels of the source grid, per axis) applied to binary masks.
        0 disables smoothing (then the 0.5 iso-level lies half-way between voxel centres).
    min_threshold : float
        Lowest iso-level any query will use; voxels below it count as empty space for the
        distance field (0.35, the low end of the uncertainty band).
    pad_voxels : int
        Empty voxels kept around the content's bounding box (beyond the smoothing support).
    crop_center_lps, crop_radius_mm : (3,) LPS mm and mm, optional
        Keep only content inside a sphere (applied before the bounding box). Blockers outside
        are then ignored, so use it only when rays cannot meet anything relevant there.
    """

    sigma_voxels: float = 0.6
    min_threshold: float = 0.35
    pad_voxels: int = 2
    crop_center_lps: Sequence[float] | None = None
    crop_radius_mm: float | None = None


@dataclass(kw_only=True)
class SceneFields:
    """Target and blocker occupancy on a cropped voxel grid (LPS geometry).

    Attributes
    ----------
    occupancy : np.ndarray, shape (2, nz, ny, nx), float32
        Channel 0 target, channel 1 blocker; values in [0, 1]; axes (z, y, x) of the crop.
    distance_mm : np.ndarray, shape (nz, ny, nx), float32
        Euclidean distance (mm) from each voxel centre to the nearest voxel where either
        channel is >= ``min_threshold`` (0 there).
    affine_lps : np.ndarray, shape (4, 4)
        Maps homogeneous (x, y, z, 1) indices of the crop to LPS mm (as ``Volume.affine_lps``).
    spacing_mm : np.ndarray, shape (3,)
        Voxel size along x, y, z (mm).
    scene_corners_lps : np.ndarray, shape (8, 3)
        LPS corners (voxel edges) of the *uncropped* source grid: rays start beyond them.
    min_threshold : float
        The lowest iso-level for which the distance field is valid.
    description : dict
        Free-form provenance (label ids, names, options), JSON-ready.
    """

    occupancy: np.ndarray
    distance_mm: np.ndarray
    affine_lps: np.ndarray
    spacing_mm: np.ndarray
    scene_corners_lps: np.ndarray
    min_threshold: float = 0.35
    description: dict[str, Any] = field(default_factory=dict)
    _torch_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_masks(cls, grid: Volume, target: np.ndarray, blockers: np.ndarray, *,
                   options: SceneOptions = SceneOptions(),
                   description: dict[str, Any] | None = None) -> "SceneFields":
        """Fields from two boolean masks on ``grid`` (smoothed by ``options.sigma_voxels``).

        Parameters
        ----------
        grid : Volume
            Supplies the geometry; its array is not used.
        target, blockers : np.ndarray of bool, shape (nz, ny, nx)
            Voxels of the target and of the blockers (a voxel in both counts as a blocker).
        """
        target = np.asarray(target, dtype=bool)
        blockers = np.asarray(blockers, dtype=bool)
        _check_shape(grid, target, "target")
        _check_shape(grid, blockers, "blockers")
        target = target & ~blockers
        if not target.any():
            raise InputError("the target is empty: no voxel carries a target label")
        return cls._build(grid, [target, blockers], smooth=True, options=options,
                          description=description)

    @classmethod
    def from_label_map(cls, labels: Volume, table: LabelTable | None, *,
                       target: Iterable[int | str], blockers: Iterable[int | str],
                       options: SceneOptions = SceneOptions()) -> "SceneFields":
        """Fields from an integer label map and the ids (or names) of target and blocker classes.

        Parameters
        ----------
        labels : Volume
            Integer class ids, shape (nz, ny, nx).
        table : LabelTable or None
            Resolves names; with ``None`` only integer ids are accepted.
        target, blockers : iterable of int or str
            Class ids or names; they must not overlap.
        """
        target_ids = resolve_label_ids(target, table)
        blocker_ids = resolve_label_ids(blockers, table)
        if not target_ids:
            raise InputError("no target label given")
        both = sorted(set(target_ids) & set(blocker_ids))
        if both:
            raise InputError(f"labels {both} are both target and blocker")
        arr = labels.array
        t = np.isin(arr, target_ids)
        if not t.any():
            raise InputError(f"the target labels {target_ids} do not occur in the label map")
        b = np.isin(arr, blocker_ids) if blocker_ids else np.zeros(arr.shape, bool)
        desc = {"target_ids": target_ids, "blocker_ids": blocker_ids, "source": "label_map"}
        return cls.from_masks(labels, t, b, options=options, description=desc)

    @classmethod
    def from_probabilities(cls, grid: Volume, probabilities: np.ndarray, *,
                           target: Iterable[int], blockers: Iterable[int],
                           options: SceneOptions = SceneOptions()) -> "SceneFields":
        """Fields from per-class probabilities (softmax output), used without smoothing.

        Parameters
        ----------
        grid : Volume
            Geometry of the probability maps.
        probabilities : np.ndarray, shape (C, nz, ny, nx)
            Class probabilities in [0, 1] (channel = class id).
        target, blockers : iterable of int
            Channels summed into the target and the blocker occupancy.
        """
        probs = np.asarray(probabilities)
        if probs.ndim != 4 or probs.shape[1:] != grid.array.shape:
            raise InputError(f"probabilities of shape {probs.shape} do not match the grid "
                             f"{grid.array.shape} (expected (C, z, y, x))")
        t_ids = [int(i) for i in target]
        b_ids = [int(i) for i in blockers]
        for i in t_ids + b_ids:
            if not 0 <= i < probs.shape[0]:
                raise InputError(f"class {i} is not a channel of the probabilities")
        if set(t_ids) & set(b_ids):
            raise InputError("a class cannot be both target and blocker")
        t = np.clip(probs[t_ids].sum(0, dtype=np.float32), 0, 1) if t_ids else None
        if t is None or not (t >= 0.5).any():
            raise InputError("the target probability never reaches 0.5")
        b = (np.clip(probs[b_ids].sum(0, dtype=np.float32), 0, 1) if b_ids
             else np.zeros(grid.array.shape, np.float32))
        desc = {"target_ids": t_ids, "blocker_ids": b_ids, "source": "probabilities"}
        return cls._build(grid, [t, b], smooth=False, options=options, description=desc)

    @classmethod
    def from_occupancy(cls, grid: Volume, target: np.ndarray, blockers: np.ndarray, *,
                       options: SceneOptions = SceneOptions()) -> "SceneFields":
        """Fields from soft occupancies in [0, 1] (shape (nz, ny, nx) each), used as they are."""
        t = np.asarray(target, dtype=np.float32)
        b = np.asarray(blockers, dtype=np.float32)
        _check_shape(grid, t, "target")
        _check_shape(grid, b, "blockers")
        return cls._build(grid, [t, b], smooth=False, options=options,
                          description={"source": "occupancy"})

    @classmethod
    def _build(cls, grid: Volume, channels: list[np.ndarray], *, smooth: bool,
               options: SceneOptions, description: dict[str, Any] | None) -> "SceneFields":
        from scipy import ndimage

        shape = grid.array.shape
        corners = _grid_corners_lps(grid)
        content = np.zeros(shape, bool)
        for c in channels:
            content |= (c > 0) if c.dtype != bool else c
        if options.crop_radius_mm is not None and options.crop_center_lps is not None:
            content &= _sphere_mask(grid, np.asarray(options.crop_center_lps, float),
                                    float(options.crop_radius_mm))
        if not content.any():
            raise InputError("the scene is empty inside the crop")
        # Margin: the Gaussian's reach (3 sigma) plus padding so the field falls to 0 inside the
        # crop and the zero padding of the sampler is exact.
        margin = int(np.ceil(3 * options.sigma_voxels)) + int(options.pad_voxels) + 1
        lo, hi = _bbox(content, margin)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        crop_content = content[sl]
        occ = np.empty((len(channels),) + crop_content.shape, np.float32)
        for k, c in enumerate(channels):
            piece = c[sl]
            if piece.dtype == bool:
                piece = piece & crop_content
                f = piece.astype(np.float32)
                if smooth and options.sigma_voxels > 0:
                    f = ndimage.gaussian_filter(f, sigma=float(options.sigma_voxels),
                                                mode="constant", cval=0.0, truncate=3.0)
            else:
                f = np.where(crop_content, piece, 0).astype(np.float32)
            occ[k] = np.clip(f, 0.0, 1.0)
        # Voxels that may reach the lowest iso-level: anything trilinear interpolation could lift
        # to >= min_threshold lies within one voxel diagonal of such a voxel (see raycast).
        reach = (occ >= options.min_threshold).any(0)
        spacing_zyx = grid.spacing_mm[::-1]
        if reach.any():
            dist = ndimage.distance_transform_edt(~reach, sampling=spacing_zyx).astype(np.float32)
        else:
            dist = np.full(reach.shape, np.float32(1e6), np.float32)
        affine = grid.affine_lps.copy()
        offset_xyz = np.array([lo[2], lo[1], lo[0]], float)
        affine[:3, 3] = grid.index_to_lps(offset_xyz)
        desc = dict(description or {})
        desc.update({"sigma_voxels": float(options.sigma_voxels) if smooth else 0.0,
                     "crop_offset_zyx": [int(v) for v in lo]})
        return cls(occupancy=occ, distance_mm=dist, affine_lps=affine,
                   spacing_mm=grid.spacing_mm.copy(), scene_corners_lps=corners,
                   min_threshold=float(options.min_threshold), description=desc)

    # --- queries -----------------------------------------------------------------------------
    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Crop size (nz, ny, nx)."""
        return tuple(int(n) for n in self.occupancy.shape[1:])  # type: ignore[return-value]

    def lps_to_index(self, points_lps: np.ndarray) -> np.ndarray:
        """Continuous (x, y, z) crop indices of LPS points ``(..., 3)``."""
        m = self.affine_lps[:3, :3]
        return (np.asarray(points_lps, float) - self.affine_lps[:3, 3]) @ np.linalg.inv(m).T

    def target_centroid_lps(self, threshold: float = 0.5) -> np.ndarray:
        """LPS centroid (3,) of the voxels where the target occupancy >= ``threshold``."""
        zyx = np.argwhere(self.occupancy[0] >= threshold)
        if len(zyx) == 0:
            raise InputError("the target never reaches the surface threshold")
        xyz = zyx[:, ::-1].mean(0)
        return xyz @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3]

    def torch_fields(self) -> tuple[Any, Any]:
        """Cached torch tensors ``(occupancy (1, 2, nz, ny, nx), distance (1, 1, nz, ny, nx))``."""
        if "occ" not in self._torch_cache:
            import torch

            self._torch_cache["occ"] = torch.from_numpy(
                np.ascontiguousarray(self.occupancy, np.float32))[None]
            self._torch_cache["dist"] = torch.from_numpy(
                np.ascontiguousarray(self.distance_mm, np.float32))[None, None]
        return self._torch_cache["occ"], self._torch_cache["dist"]


def resolve_label_ids(items: Iterable[int | str], table: LabelTable | None) -> list[int]:
    """Class ids of a mixed list of ids and names (names need ``table``); raises InputError."""
    out: list[int] = []
    for item in items:
        if isinstance(item, (int, np.integer)):
            value = int(item)
        else:
            text = str(item).strip()
            if not text:
                continue
            if text.lstrip("-").isdigit():
                value = int(text)
            elif table is None:
                raise InputError(f"label name {text!r} given but the label map has no label table")
            else:
                try:
                    value = table.id_of(text)
                except KeyError:
                    names = ", ".join(table.foreground().values())
                    raise InputError(f"unknown label {text!r}; known labels: {names}") from None
        if value <= 0:
            raise InputError(f"label id {value} is not a foreground class")
        if table is not None and value not in table.ids:
            raise InputError(f"label id {value} is not in the label table")
        if value not in out:
            out.append(value)
    return out


def _check_shape(grid: Volume, arr: np.ndarray, name: str) -> None:
    if arr.shape != grid.array.shape:
        raise InputError(f"{name} mask of shape {arr.shape} does not match the grid "
                         f"{grid.array.shape}")


def _bbox(mask: np.ndarray, margin: int) -> tuple[list[int], list[int]]:
    """Bounding box [lo, hi) per axis of ``mask`` grown by ``margin`` (may leave the array:
    the caller pads, so voxels beyond the source grid are empty)."""
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.flatnonzero(mask.any(axis=other))
        lo.append(max(int(nz[0]) - margin, 0))
        hi.append(min(int(nz[-1]) + 1 + margin, mask.shape[axis]))
    return lo, hi


def _grid_corners_lps(grid: Volume) -> np.ndarray:
    """(8, 3) LPS corners of the grid's outer voxel edges."""
    nx, ny, nz = grid.size_xyz
    c = np.array([[x, y, z] for z in (-0.5, nz - 0.5) for y in (-0.5, ny - 0.5)
                  for x in (-0.5, nx - 0.5)], float)
    return grid.index_to_lps(c)


def _sphere_mask(grid: Volume, centre_lps: np.ndarray, radius_mm: float) -> np.ndarray:
    nz, ny, nx = grid.array.shape
    zz, yy, xx = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    pts = grid.index_to_lps(np.stack([xx, yy, zz], -1).reshape(-1, 3))
    inside = np.linalg.norm(pts - centre_lps, axis=1) <= radius_mm
    return inside.reshape(nz, ny, nx)
