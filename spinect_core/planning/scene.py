"""Signed distance fields of a planning scene: what a needle aims at and what it must not cross.

A :class:`SceneFields` holds two channels on one (cropped) voxel grid, in millimetres, negative
inside:

* channel 0, **target**: signed distance to the structures a ray may end on (the "backstop");
* channel 1, **blocker**: signed distance to everything a needle must not cross.

The surface is the zero level. From a binary mask the distance of a voxel centre is measured to
the nearest voxel of the other class with the boundary placed half-way between the two voxel
centres (``distance to the neighbour's centre minus the half-extent of its voxel in that
direction``), so an axis-aligned face lies exactly on the voxel faces and a staircase of voxels
reads as the smooth surface through its steps once sampled trilinearly (``surface="smooth"``,
the default). Trilinear sampling alone would round a sharp 90-degree rim (cut by ~0.31 voxel:
windows seen past sharp rims at 45 degrees 4-6 % too large), so around rims found in the mask
(:func:`rim_weights`: corners of flat 3-voxel faces, which no staircase of a smooth surface has)
the smooth surface reads the exact distance to the voxel cubes instead; elsewhere, i.e. on
smooth anatomy, it is the plain trilinear reading. ``surface="voxel"`` uses the exact distance
to the union of the mask's voxel cubes everywhere (evaluated per query through the feature
transform, nearest voxel of the other class). No pre-smoothing is applied in either case.
Probabilities are thresholded at 0.5 first (no sub-voxel correction yet: see
:meth:`SceneFields.from_probabilities`).

Ray casting samples both channels trilinearly and sphere-traces on their minimum
(:mod:`spinect_core.planning.raycast`), on torch: :class:`TorchFields` holds the fields on the
scene's device (``SceneOptions.device``: CUDA when present, else the CPU) with their samplers. The minimum of a channel's distance along a ray that
misses it is the distance between the ray and the structure, i.e. the in-plane distance between
the pixel and the structure's projection: that is what makes window edges sub-pixel accurate.

The fields are cropped to the bounding box of their content (optionally inside a sphere) plus a
pad, and clamped to ``+-clamp_mm`` so the arrays stay small; the corners of the *uncropped* grid
are kept so rays can start outside the whole scene.

Uncertainty band: a binary mask carries about ``sigma_voxels`` of boundary uncertainty; the
occupancy levels 0.35 / 0.65 of a Gaussian edge of that sigma lie ``Phi^-1(0.65) sigma = 0.385
sigma`` on either side of the 0.5 level, so the band moves every boundary by ``band_mm`` =
0.385 sigma_voxels * (smallest voxel size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

#: Phi^-1(0.65): offset (in sigmas) of the 0.65 / 0.35 levels of a Gaussian edge from its 0.5 level.
BAND_Z = 0.3853


@dataclass(frozen=True, kw_only=True)
class SceneOptions:
    """How the distance fields are built.

    Attributes
    ----------
    surface : {"smooth", "voxel"}
        How the distance is read between voxel centres. ``"smooth"`` (default): trilinear
        interpolation of the voxel-centre distances, so a staircase of voxels reads as the smooth
        surface through its steps, and with ``sharp_rims`` the exact voxel-cube distance around
        the sharp rims of the mask (:func:`rim_weights`). ``"voxel"``: the exact distance to the
        union of the mask's voxel cubes everywhere; rims stay sharp, but oblique staircases
        project a shadow up to ~0.35 voxel too wide (measured on the Visible Human L5 voxelised
        at 1 mm, oblique views: silhouette edges 0.2-0.37 mm too far out, against 0.04-0.06 mm
        for the smooth surface).
    sharp_rims : bool
        ``"smooth"`` only: read sharp rims with the exact voxel-cube distance (without it a
        90-degree rim is cut by ~0.31 voxel: the analytic triangle's window at 45 degrees +5.8 %
        instead of -1.4 %). Costs the feature transforms (kept: 2 int32 channels), the weights
        (2 float32 channels and a flag per cell on the device), the rim search when the scene
        is built, and the exact distance of samples in cells next to rims (on the boxy
        procedural phantom about 1 % of the samples).
    rim_face_voxels : int
        A rim's two faces must be flat for this many voxels (:func:`rim_weights`).
    rim_length_voxels : int
        A rim must run on for this many voxels along an array axis (shorter corners are steps).
    rim_reach_voxels : int
        Rim voxels are grown by this many voxels (26-connected): rays passing that close to a
        rim read its exact distance (their margins place the window's edge).
    sigma_voxels : float
        Boundary uncertainty of the masks (voxels of the smallest spacing) for the uncertainty
        band (``band_mm = 0.385 sigma``, the 0.35 / 0.65 levels of a Gaussian edge). It no longer
        smooths the masks: smoothing rounds sharp rims and biases oblique windows.
    clamp_mm : float
        Distances are clamped to ``+-clamp_mm`` (sphere-tracing step cap; smaller arrays).
    pad_voxels : int
        Empty voxels kept around the content's bounding box.
    crop_center_lps, crop_radius_mm : (3,) LPS mm and mm, optional
        Keep only content inside a sphere (applied before the bounding box). Structures outside
        are ignored, so use it only when rays through the ROI cannot meet anything relevant there.
    device : str
        Where the fields live and rays are cast (:func:`resolve_device`): ``"auto"`` (CUDA when
        available, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. The numbers are the same
        on every device up to float rounding.
    """

    surface: str = "smooth"
    sigma_voxels: float = 0.6
    clamp_mm: float = 10.0
    pad_voxels: int = 3
    crop_center_lps: Sequence[float] | None = None
    crop_radius_mm: float | None = None
    sharp_rims: bool = True
    rim_face_voxels: int = 3
    rim_length_voxels: int = 3
    rim_reach_voxels: int = 1
    device: str = "auto"


@dataclass(kw_only=True)
class SceneFields:
    """Target and blocker signed distance fields on a cropped voxel grid (LPS geometry).

    Attributes
    ----------
    sdf : np.ndarray, shape (2, nz, ny, nx), float32
        Signed distance (mm, negative inside, clamped to ``+-clamp_mm``) of channel 0 target and
        channel 1 blocker; axes (z, y, x) of the crop.
    affine_lps : np.ndarray, shape (4, 4)
        Maps homogeneous (x, y, z, 1) indices of the crop to LPS mm (as ``Volume.affine_lps``).
    spacing_mm : np.ndarray, shape (3,)
        Voxel size along x, y, z (mm).
    scene_corners_lps : np.ndarray, shape (8, 3)
        LPS corners (voxel edges) of the *uncropped* source grid: rays start beyond them.
    band_mm : float
        Half-width (mm) of the uncertainty band (boundaries moved by +-band_mm).
    features : np.ndarray, shape (2, nz, ny, nx), int32, optional
        ``"voxel"`` surfaces, and ``"smooth"`` ones with sharp rims: flat crop index of the
        nearest voxel of the other class.
    rim_weight : np.ndarray, shape (2, nz, ny, nx), float32, optional
        ``"smooth"`` surfaces with sharp rims (:func:`rim_weights`): per channel, the weight of
        the exact voxel-cube distance against the trilinear one (0 almost everywhere; None when
        there is no sharp rim at all).
    description : dict
        Free-form provenance (label ids, names, options), JSON-ready.
    device : str
        Torch device of the ray caster (:class:`SceneOptions`); the arrays above stay numpy.
    """

    sdf: np.ndarray
    affine_lps: np.ndarray
    spacing_mm: np.ndarray
    scene_corners_lps: np.ndarray
    band_mm: float = 0.0
    features: np.ndarray | None = None
    rim_weight: np.ndarray | None = None
    description: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    # Built on first use: the fields on the device (TorchFields), max |distance|.
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_masks(cls, grid: Volume, target: np.ndarray, blockers: np.ndarray, *,
                   options: SceneOptions = SceneOptions(),
                   description: dict[str, Any] | None = None) -> "SceneFields":
        """Fields from two boolean masks on ``grid``.

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
        return cls._build(grid, target, blockers, options=options, description=description)

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
        """Fields from per-class probabilities (softmax output).

        The target (blocker) occupancy is the sum of its channels, clipped to [0, 1]; the surface
        is the boundary of the voxels where it is >= 0.5, placed half-way between voxel centres
        (no sub-voxel correction from the probability values yet: it would move each boundary
        by at most half a voxel and needs a consistent redistancing step).

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
        t = probs[t_ids].sum(0, dtype=np.float32) >= 0.5 if t_ids else None
        if t is None or not t.any():
            raise InputError("the target probability never reaches 0.5")
        b = (probs[b_ids].sum(0, dtype=np.float32) >= 0.5 if b_ids
             else np.zeros(grid.array.shape, bool))
        desc = {"target_ids": t_ids, "blocker_ids": b_ids, "source": "probabilities"}
        return cls.from_masks(grid, t, b, options=options, description=desc)

    @classmethod
    def _build(cls, grid: Volume, target: np.ndarray, blockers: np.ndarray, *,
               options: SceneOptions, description: dict[str, Any] | None) -> "SceneFields":
        corners = _grid_corners_lps(grid)
        content = target | blockers
        if options.crop_radius_mm is not None and options.crop_center_lps is not None:
            inside = _sphere_mask(grid, np.asarray(options.crop_center_lps, float),
                                  float(options.crop_radius_mm))
            content &= inside
            target, blockers = target & inside, blockers & inside
        if not content.any():
            raise InputError("the scene is empty inside the crop")
        # Pad beyond the source grid too: voxels outside it are empty, and the crop border must
        # be clearly outside every structure for the sampler's border padding to be harmless.
        pad = int(options.pad_voxels) + 1
        lo, hi = _bbox(content)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        spacing_zyx = np.asarray(grid.spacing_mm, float)[::-1]
        clamp = float(options.clamp_mm)
        if options.surface not in ("smooth", "voxel"):
            raise InputError(f"surface must be 'smooth' or 'voxel', got {options.surface!r}")
        resolve_device(options.device)  # a bad device name fails here, not at the first cast
        voxel = options.surface == "voxel"
        sharp = not voxel and bool(options.sharp_rims)
        masks = [np.pad(m[sl], pad) for m in (target, blockers)]
        parts = [signed_distance_mm(m, spacing_zyx, clamp, features=voxel or sharp)
                 for m in masks]
        sdf = np.stack([p[0] if voxel or sharp else p for p in parts])
        features = np.stack([p[1] for p in parts]) if voxel or sharp else None
        rim_weight = None
        if sharp:
            weights = [rim_weights(m, options) for m in masks]
            if any(w.any() for w in weights):
                rim_weight = np.stack(weights)
            else:
                features = None
        affine = grid.affine_lps.copy()
        offset_xyz = np.array([lo[2], lo[1], lo[0]], float) - pad
        affine[:3, 3] = grid.index_to_lps(offset_xyz)
        band = BAND_Z * float(options.sigma_voxels) * float(np.min(grid.spacing_mm))
        desc = dict(description or {})
        desc.update({"surface": options.surface, "sigma_voxels": float(options.sigma_voxels),
                     "sharp_rims": sharp, "band_mm": band,
                     "crop_offset_zyx": [int(v) - pad for v in lo]})
        return cls(sdf=sdf, affine_lps=affine, spacing_mm=np.asarray(grid.spacing_mm, float).copy(),
                   scene_corners_lps=corners, band_mm=band, features=features,
                   rim_weight=rim_weight, description=desc, device=str(options.device))

    # --- queries -----------------------------------------------------------------------------
    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Crop size (nz, ny, nx)."""
        return tuple(int(n) for n in self.sdf.shape[1:])  # type: ignore[return-value]

    def max_abs_distance_mm(self) -> float:
        """Largest ``|signed distance|`` (mm) in the fields (computed once: a full pass)."""
        if "max_abs" not in self._cache:
            self._cache["max_abs"] = float(np.max(np.abs(self.sdf)))
        return self._cache["max_abs"]

    def lps_to_index(self, points_lps: np.ndarray) -> np.ndarray:
        """Continuous (x, y, z) crop indices of LPS points ``(..., 3)``."""
        m = self.affine_lps[:3, :3]
        return (np.asarray(points_lps, float) - self.affine_lps[:3, 3]) @ np.linalg.inv(m).T

    def target_centroid_lps(self) -> np.ndarray:
        """LPS centroid (3,) of the target voxels (signed distance < 0)."""
        zyx = np.argwhere(self.sdf[0] < 0)
        if len(zyx) == 0:
            raise InputError("the target is empty")
        xyz = zyx[:, ::-1].mean(0)
        return xyz @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3]

    def sample_index(self, xyz: np.ndarray) -> np.ndarray:
        """Signed distances (m, 2) float32 (mm; target, blocker) at crop indices ``xyz`` (m, 3).

        Points outside the crop read the border (the pad keeps it outside every structure).
        A convenience for single queries: it runs :meth:`TorchFields.sample` on the scene's
        device (:meth:`torch_fields`), which the ray caster calls directly.
        """
        import torch

        tf = self.torch_fields()
        q = torch.from_numpy(np.ascontiguousarray(np.asarray(xyz, np.float32).reshape(-1, 3).T))
        return tf.sample(q.to(tf.device)).T.cpu().numpy()

    def torch_fields(self) -> "TorchFields":
        """The fields as torch tensors on :attr:`device` with their samplers (built on first use,
        then cached; about 4x the bytes of :attr:`sdf` on the device)."""
        if "torch" not in self._cache:
            self._cache["torch"] = TorchFields(self, resolve_device(self.device))
        return self._cache["torch"]


def resolve_device(name: Any = "auto") -> Any:
    """The torch device the planner runs on: ``"auto"`` is CUDA when available, else the CPU.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    InputError
        CUDA is named but not available, or the name is not a device.
    """
    import torch

    if isinstance(name, torch.device):
        dev = name
    elif str(name).strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(str(name).strip().lower())
        except (RuntimeError, ValueError):
            raise InputError(f"unknown planning device {name!r} (auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"planning device {str(dev)!r} was requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"planning device {str(dev)!r}: only cpu and cuda are supported")
    return dev


class TorchFields:
    """A :class:`SceneFields` as torch tensors on one device, and its samplers.

    Everything the ray caster reads per sample lives here, so a whole ray cast stays on the
    device (CUDA when present, else the CPU) without a numpy round trip per step.

    Layout: torch's 3D ``grid_sample`` on the CPU is a plain per-point loop (~90 ns per point
    for two channels, measured), its 2D kernel is vectorised, so the two distance channels are
    stored as a 2D image of the crop's slices, tiled ``columns`` per row (near square), with
    slice ``z + 1`` as two more channels: one bilinear lookup in slice z0's tile gives both
    slices around a point, a linear blend in z completes the trilinear reading (~40 ns per
    point; the same numbers up to float rounding: image coordinates below ~2000 resolve about
    1e-4 pixel, against ~1e-5 voxel for crop indices below ~250). A fifth
    channel flags the cells (lower corner z0, y0, x0) that touch a voxel of non-zero rim
    weight; only samples where it reads > 0 look up the rim weights and, where those are
    non-zero, the exact voxel-cube distance (:meth:`cube_distance`).

    Attributes
    ----------
    device : torch.device
    shape_zyx : (int, int, int)
    image : torch.Tensor, shape (1, 4 or 5, rows * ny, columns * nx), float32
        Channels (target z, blocker z, target z + 1, blocker z + 1[, rim cell flag]); slice z in
        the tile ``divmod(z, columns)``.
    columns : int
        Slices per image row.
    rim : torch.Tensor, shape (1, 2, nz, ny, nx), float32, or None
        Per channel weight of the exact distance (:func:`rim_weights`).
    sdf_flat : torch.Tensor, shape (2, nz * ny * nx), float32
    features : torch.Tensor, shape (2, nz * ny * nx), int64, or None
        Flat index of the nearest voxel of the other class (-1: none).
    exact_everywhere : bool
        ``"voxel"`` surfaces: every sample is the exact voxel-cube distance.
    """

    def __init__(self, fields: "SceneFields", device: Any) -> None:
        import torch

        self.device = device
        nz, ny, nx = fields.shape_zyx
        self.shape_zyx = (nz, ny, nx)
        sdf = torch.from_numpy(np.ascontiguousarray(fields.sdf, np.float32))
        rims = fields.rim_weight is not None
        # Slices are tiled in a grid of ``columns`` per image row, near square, so the image
        # coordinates stay small: a float32 coordinate near 14000 (the demo's slices stacked
        # in one column) resolves only 1e-3 pixel, near 1700 (tiled) 1e-4.
        columns = min(range(1, nz + 1),
                      key=lambda c: (max(-(-nz // c) * ny, c * nx), c))
        self.columns = columns
        rows = -(-nz // columns)
        n_channels = 5 if rims else 4
        # (channels, rows * columns slices (the last ones empty), ny, nx), then one transpose
        # into the tiles.
        stack = np.zeros((n_channels, rows * columns, ny, nx), np.float32)
        stack[:2, :nz] = fields.sdf
        stack[2:4, :nz - 1] = fields.sdf[:, 1:]  # slice z + 1 (the last slice repeats)
        stack[2:4, nz - 1] = fields.sdf[:, -1]
        self.rim = None
        if rims:
            w = np.ascontiguousarray(fields.rim_weight, np.float32)
            self.rim = torch.from_numpy(w)[None].to(device)
            # The flag's own bilinear reading is > 0 in every flagged cell (its weight
            # (1 - fx)(1 - fy) > 0), so no sample near a rim is missed.
            stack[4, :nz] = rim_cells(w)
        image = torch.from_numpy(np.ascontiguousarray(
            stack.reshape(n_channels, rows, columns, ny, nx).transpose(0, 1, 3, 2, 4)
        ).reshape(1, n_channels, rows * ny, columns * nx))
        self.image = image.to(device)
        self.sdf_flat = sdf.reshape(2, -1).to(device)
        self.exact_everywhere = fields.features is not None and not rims
        #: Blend the rims into every sample rather than find the samples near rims first: on a
        #: GPU finding them is a host sync per sample, and the arithmetic is cheap there.
        self.dense_rims = device.type != "cpu"
        self.features = (None if fields.features is None else
                         torch.from_numpy(fields.features.reshape(2, -1).astype(np.int64))
                         .to(device))
        self.spacing = torch.tensor(np.asarray(fields.spacing_mm, np.float32), device=device)
        self.spacing4 = self.spacing.view(3, 1, 1, 1)
        self.spacing_zyx_mm = tuple(float(v) for v in np.asarray(fields.spacing_mm)[::-1])
        self.max_spacing = float(np.max(np.asarray(fields.spacing_mm, np.float32)))
        self._near = torch.tensor(2.0 * self.max_spacing, dtype=torch.float32, device=device)
        # Index -> grid_sample's [-1, 1] (align_corners=True); 0 for a single voxel.
        self.image_scale = torch.tensor([2.0 / max(columns * nx - 1, 1),
                                         2.0 / max(rows * ny - 1, 1)],
                                        dtype=torch.float32, device=device)
        self.volume_scale = torch.tensor([[2.0 / max(nx - 1, 1)], [2.0 / max(ny - 1, 1)],
                                          [2.0 / max(nz - 1, 1)]], dtype=torch.float32,
                                         device=device)
        self.minus_one = torch.tensor(-1.0, dtype=torch.float32, device=device)
        self._half = torch.tensor(0.5, dtype=torch.float32, device=device)
        self._zero_f = torch.tensor(0.0, dtype=torch.float32, device=device)
        self._tiny = torch.tensor(1e-4, dtype=torch.float32, device=device)  # (rim weight)
        self._zero_i = torch.tensor(0, dtype=torch.int64, device=device)
        self._inf = torch.tensor(torch.inf, dtype=torch.float32, device=device)
        # The sampler's clamp of crop indices (x, y, z) to the crop, the largest lower slice of
        # a z cell, and each slice's tile offset (x, y) in image pixels.
        self.index_lo = torch.zeros((3, 1), dtype=torch.float32, device=device)
        self.index_hi = torch.tensor([[nx - 1.0], [ny - 1.0], [nz - 1.0]], dtype=torch.float32,
                                     device=device)
        self.z0_max = float(max(nz - 2, 0))
        self.tile_offset = torch.tensor([[(z % columns) * nx, (z // columns) * ny]
                                         for z in range(nz)], dtype=torch.float32, device=device)
        self.hi = torch.tensor([[nx - 1], [ny - 1], [nz - 1]], dtype=torch.int64, device=device)
        # (3, 8) offsets (x, y, z) of a cell's corners from its lower corner: corner k has
        # offset bit i = (k >> i) & 1 along axis i (x, y, z).
        self.corners = torch.tensor([[(k >> i) & 1 for k in range(8)] for i in range(3)],
                                    dtype=torch.int64, device=device)
        # (Their broadcast views made once: each view is an operation per call.)
        self.corners3 = self.corners[:, :, None]
        self.hi3 = self.hi[:, :, None]
        self.bits = torch.tensor([[1], [2], [4]], dtype=torch.int64, device=device)
        self.strides = torch.tensor([1, nx, nx * ny], dtype=torch.int64,
                                    device=device).view(3, 1, 1)
        self.coords = None
        if self.features is not None:
            # (x, y, z) of every flat voxel index: a candidate cube's position in one lookup.
            zz, yy, xx = np.indices((nz, ny, nx), dtype=np.float32)
            self.coords = torch.from_numpy(np.stack([xx.ravel(), yy.ravel(), zz.ravel()])
                                           ).to(device)  # (3, nz * ny * nx)

    #: Cells per block side of :meth:`skip_field`'s coarse grid.
    SKIP_BLOCK = 2

    def skip_field(self) -> Any:
        """The empty-space skip of the ray caster: ``(lower_bound, strides, block, value)`` or
        None (no open space, or ``"voxel"`` surfaces).

        Far from every surface both channels read their clamp ``value`` (the fields' largest
        distance), so sphere tracing there steps exactly ``value`` mm per sample and every
        sample reads ``value``. The coarse grid says how many such steps a ray may take at
        once: per block of :attr:`SKIP_BLOCK` cells a side, ``lower_bound`` (mm) is a lower
        bound of the distance from any point of the block to the nearest block holding a cell
        with a corner voxel below ``value`` (the distance between block centres, from a
        distance transform of the coarse grid, minus two block half-diagonals). Within that
        distance every sample reads ``value``.

        Built on first use and rebuilt when the fields' tensors change in place (root edits,
        :func:`root_edit._sync_torch`, patch them: their version counters tell).

        Returns
        -------
        tuple or None
            ``lower_bound`` : torch.Tensor, shape (nbz * nby * nbx,), float32, on the device
            (block flat index ``(bz * nby + by) * nbx + bx``); ``strides`` : torch.Tensor,
            shape (3, 1), int64, of block x, y, z; ``block`` : int (cells a side); ``value`` :
            float (mm); ``last`` : torch.Tensor, shape (3, 1), float32, the largest block x,
            y, z.
        """
        import torch

        if self.exact_everywhere:
            return None  # (the exact voxel-cube distance is not clamped: no constant steps)
        key = (self.sdf_flat._version, self.image._version)
        cached = getattr(self, "_skip", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        from scipy import ndimage

        nz, ny, nx = self.shape_zyx
        b = int(self.SKIP_BLOCK)
        sdf = self.sdf_flat.view(2, nz, ny, nx).amin(0).cpu().numpy()
        value = float(sdf.max())
        out = None
        closed = sdf < value
        if not closed.all() and min(nz, ny, nx) > 1:
            # A cell (lower corner) is closed when one of its 8 voxels is.
            cells = closed[:-1, :-1, :-1].copy()
            for dz, dy, dx in np.ndindex(2, 2, 2):
                if dz or dy or dx:
                    cells |= closed[dz:nz - 1 + dz, dy:ny - 1 + dy, dx:nx - 1 + dx]
            # Blocks of b cells a side; cells past the crop (the last block's) count as closed
            # only if the crop's last cells are (a sample there reads the border).
            nb = [-(-n // b) for n in cells.shape]
            cells = np.pad(cells, [(0, k * b - n) for k, n in zip(nb, cells.shape)], mode="edge")
            blocks = cells.reshape(nb[0], b, nb[1], b, nb[2], b).any(axis=(1, 3, 5))
            if not blocks.all():
                size_zyx = b * np.asarray(self.spacing_zyx_mm, float)
                # Distance (mm) between each open block's centre and the nearest closed one's;
                # a point of the block is within a half-diagonal of its centre, and a closed
                # block's cells within a half-diagonal of that one's.
                centre = ndimage.distance_transform_edt(~blocks, sampling=size_zyx)
                bound = np.maximum(centre - float(np.linalg.norm(size_zyx)) - 1e-3, 0.0)
                out = (torch.from_numpy(bound.astype(np.float32).ravel()).to(self.device),
                       torch.tensor([[1], [nb[2]], [nb[1] * nb[2]]], dtype=torch.int64,
                                    device=self.device),
                       b, value,
                       torch.tensor([[nb[2] - 1], [nb[1] - 1], [nb[0] - 1]],
                                    dtype=torch.float32, device=self.device))
        self._skip = (key, out)
        return out

    def sample(self, q: Any) -> Any:
        """Signed distances (2, m) float32 (mm; target, blocker) at crop indices ``q``.

        Parameters
        ----------
        q : torch.Tensor, shape (3, m), float32, on :attr:`device`
            Continuous crop indices (x, y, z); outside the crop the border is read.
        """
        import torch
        import torch.nn.functional as F

        if self.exact_everywhere:
            return self.cube_distance(q)
        m = q.shape[1]
        # Few operations per call: the caster calls this ~100 times per view, mostly on a few
        # hundred points, where each torch operation's fixed cost (~1-2 us) is what counts.
        qc = torch.clamp(q, min=self.index_lo, max=self.index_hi)
        z = qc[2]
        z0 = z.floor().clamp_(max=self.z0_max)
        # Slice z0's tile: its (x, y) pixel offsets in the image (whole numbers, exact in float32).
        xy = qc[:2].T + self.tile_offset.index_select(0, z0.to(torch.int64))
        out = F.grid_sample(self.image, torch.addcmul(self.minus_one, xy, self.image_scale)
                            .view(1, 1, m, 2), mode="bilinear", padding_mode="border",
                            align_corners=True).view(-1, m)
        values = torch.lerp(out[:2], out[2:4], z - z0)
        if self.rim is None:
            return values
        # Near sharp rims: blend in the exact distance to the voxel cubes (rim_weights).
        if self.dense_rims:
            # Every sample (no host sync to find the few near rims; same numbers).
            weights = F.grid_sample(self.rim, torch.addcmul(self.minus_one, q, self.volume_scale)
                                    .T.reshape(1, 1, 1, -1, 3), mode="bilinear",
                                    padding_mode="border", align_corners=True).view(2, -1)
            blend = torch.lerp(values, self.cube_distance(q), weights)
            return torch.where(torch.gt(weights, self._tiny), blend, values)
        # (The flag's reading is never negative: != 0 is > 0, one operation fewer.)
        near = out[4].nonzero().squeeze(1)
        if near.numel() == 0:
            return values
        qn = q.index_select(1, near)
        g3 = torch.addcmul(self.minus_one, qn, self.volume_scale)
        weights = F.grid_sample(self.rim, g3.T.reshape(1, 1, 1, -1, 3), mode="bilinear",
                                padding_mode="border", align_corners=True).view(2, -1)
        old = values.index_select(1, near)
        blend = torch.lerp(old, self.cube_distance(qn), weights)
        return values.index_copy_(1, near, torch.where(torch.gt(weights, self._tiny), blend,
                                                       old))

    def cube_distance(self, q: Any) -> Any:
        """Exact signed distance (2, m) of crop indices ``q`` (3, m) to each channel's voxel cubes.

        The nearest cube of the other class is found through the feature transform: for points
        near the surface (within two voxels) the candidates of the 8 voxels around the point
        are compared (a voxel of the other class is itself a candidate, else its feature is),
        so ties and off-centre points are resolved exactly; farther away the nearest voxel's
        feature is enough (an upper bound by less than a voxel, fine for stepping). The
        nearest voxel (rounded half up) is one of the 8 and decides inside / outside.
        """
        import torch

        assert self.features is not None
        # (Constants as tensors made once: a Python number costs each operation a conversion.)
        m = q.shape[1]
        base = q.floor()
        own = torch.ge(q - base, self._half).to(torch.int64).mul_(self.bits).sum(0)  # corner 0-7
        corners = torch.clamp(base.to(torch.int64)[:, None, :] + self.corners3,
                              min=self._zero_i, max=self.hi3)  # (3, 8, m)
        flat = (corners * self.strides).sum(0).view(-1)  # (8 m,)
        sdf = self.sdf_flat.index_select(1, flat).view(2, 8, m)
        feat = self.features.index_select(1, flat).view(2, 8, m)
        pick = own.view(1, 1, m).expand(2, 1, m)
        sdf_own = sdf.gather(1, pick)  # (2, 1, m)
        inside = torch.lt(sdf_own, self._zero_f)
        cube = torch.where(torch.lt(sdf, self._zero_f) != inside, flat.view(1, 8, m), feat)
        valid = torch.ge(cube, self._zero_i)  # (2, 8, m)
        # (x, y, z) first: q needs no transpose and the sum runs over the outer axis.
        xyz = self.coords.index_select(1, torch.where(valid, cube, self._zero_i).view(-1)
                                       ).view(3, 2, 8, m)
        e = (q.view(3, 1, 1, m) - xyz).abs_().sub_(self._half).clamp_(min=self._zero_f
                                                                      ).mul_(self.spacing4)
        d = torch.where(valid, e.mul_(e).sum(0).sqrt_(), self._inf)  # (2, 8, m)
        has = torch.ge(feat.gather(1, pick), self._zero_i)
        d_own = torch.where(has, d.gather(1, pick), sdf_own.abs())
        near = has & torch.lt(d_own, self._near)
        d = torch.where(near, d.amin(1, keepdim=True), d_own).view(2, m)
        return torch.where(inside.view(2, m), -d, d)

def rim_cells(rim_weight: np.ndarray) -> np.ndarray:
    """(nz, ny, nx) bool: the cells (by lower corner z0, y0, x0) that touch a voxel of non-zero
    rim weight, the flag channel of :class:`TorchFields`.

    A cell reads a non-zero trilinear weight only if one of its 8 voxels (upper ones clamped to
    the array) has one. On a sub-block the last row of each axis clamps to itself, so a caller
    passes one voxel more than the cells it needs (:func:`root_edit._sync_torch`).

    Parameters
    ----------
    rim_weight : np.ndarray, shape (2, nz, ny, nx)
        Per channel weights (:func:`rim_weights`).
    """
    cells = rim_weight.max(0) > 0
    for axis in range(3):
        n = cells.shape[axis]
        cells = cells | np.take(cells, np.minimum(np.arange(n) + 1, n - 1), axis=axis)
    return cells


def rim_weights(mask: np.ndarray, options: "SceneOptions") -> np.ndarray:
    """Per-voxel weight (nz, ny, nx) float32 in [0, 1] of the exact voxel-cube distance in the
    smooth surface: 1 around sharp rims, 0 elsewhere (staircases of smooth surfaces included).

    Trilinear interpolation of voxel-centre distances cannot hold a sharp rim: at the cell
    centre on a 90-degree rim it reads ``(f_in + 2 f_face + f_diagonal) / 4 > 0``, so the rim is
    cut by ~0.31 voxel and a window seen past such rims at 45 degrees comes out 4-6 % too large.
    The exact distance to the voxel cubes keeps rims sharp, but it would keep the step corners of
    an oblique staircase too (shadows ~0.35 voxel too wide), where the trilinear surface through
    the steps is the better reading. A rim is told from a step by its faces: in a section along
    two array axes, a rim voxel is the corner of a solid k x k quadrant (k =
    ``rim_face_voxels``) whose two faces stay flat for k voxels (the k + k + 1 voxels across
    them empty), for a convex rim in the mask and a concave one in its complement. A staircase
    of a smooth surface does not match: its risers or treads are one voxel long (a slope under
    ~70 degrees to an axis has one-voxel risers, a steeper one one-voxel treads), and a curved
    surface's sections have no flat k-voxel faces meeting at a right angle. A rim must also run
    on for ``rim_length_voxels`` slices along the third axis, its corner moving by at most one
    voxel per slice (an oblique wall's rim, e.g. the analytic triangle's hypotenuse, drifts so):
    single matching corners are curved bone (on the Visible Human L5 voxelised at 1 mm, keeping
    them made oblique silhouettes 0.1 mm wider). The matched voxels are grown by
    ``rim_reach_voxels`` so that rays grazing a rim read its exact distance; the sampler
    interpolates the weights trilinearly, so the blend ramps over one voxel. A larger reach
    would read the staircase of a smooth wall next to a sharp rim as cubes too (a drilled
    tunnel's mouth: its area down the axis 0.81 -> 0.77 of the true one at a reach of 3).

    Parameters
    ----------
    mask : np.ndarray, shape (nz, ny, nx), bool
    options : SceneOptions

    Returns
    -------
    np.ndarray, shape (nz, ny, nx), float32
    """
    from scipy import ndimage

    k = int(options.rim_face_voxels)
    run = int(options.rim_length_voxels) // 2
    pad = k + run + 1
    shape = np.array(mask.shape)
    rims = np.zeros(tuple(shape + 2 * pad), bool)  # padded like the solids
    for solid, beyond in ((mask, False), (~mask, True)):
        # Beyond the array is empty: outside the mask, inside its complement.
        padded = np.pad(solid, pad, constant_values=beyond)
        # Candidates: voxels of the solid inside the array with a 6-neighbour outside it (a
        # corner has two); the templates are then tested on them only.
        core = tuple(slice(pad, pad + n) for n in shape)
        open_side = np.zeros(solid.shape, bool)
        for axis in range(3):
            for step in (-1, 1):
                sl = [slice(pad, pad + n) for n in shape]
                sl[axis] = slice(pad + step, pad + step + shape[axis])
                open_side |= ~padded[tuple(sl)]
        candidates = np.argwhere(padded[core] & open_side) + pad  # (N, 3) padded indices
        for p, q in ((0, 1), (0, 2), (1, 2)):
            r = 3 - p - q
            for sp in (-1, 1):
                for sq in (-1, 1):
                    # Outside first (they reject most candidates): the k + k + 1 voxels in front
                    # of the two faces; then inside: the k x k quadrant behind the corner.
                    cells = [((sp, -j * sq), False) for j in range(k)]
                    cells += [((-i * sp, sq), False) for i in range(k)]
                    cells += [((sp, sq), False)]
                    cells += [((-i * sp, -j * sq), True) for i in range(k) for j in range(k)]
                    v = candidates
                    for (dp, dq), inside in cells:
                        offset = np.zeros(3, np.int64)
                        offset[p], offset[q] = dp, dq
                        w = v + offset
                        v = v[padded[w[:, 0], w[:, 1], w[:, 2]] == inside]
                        if not len(v):
                            break
                    if not len(v):
                        continue
                    if run > 0:
                        # A rim runs on along the third axis for >= rim_length_voxels slices,
                        # its corner drifting by at most a voxel across the section per slice
                        # (an oblique wall's rim).
                        hit = np.zeros(rims.shape, bool)
                        hit[v[:, 0], v[:, 1], v[:, 2]] = True
                        keep = np.ones(len(v), bool)
                        for m in range(-run, run + 1):
                            if m == 0:
                                continue
                            found = np.zeros(len(v), bool)
                            for dp in (-1, 0, 1):
                                for dq in (-1, 0, 1):
                                    offset = np.zeros(3, np.int64)
                                    offset[p], offset[q], offset[r] = dp, dq, m
                                    w = v + offset
                                    found |= hit[w[:, 0], w[:, 1], w[:, 2]]
                            keep &= found
                        v = v[keep]
                    rims[v[:, 0], v[:, 1], v[:, 2]] = True
    rims = rims[tuple(slice(pad, pad + n) for n in shape)]
    if not rims.any():
        return np.zeros(mask.shape, np.float32)
    reach = int(options.rim_reach_voxels)
    if reach > 0:  # (iterations=0 would dilate until nothing changes)
        rims = ndimage.binary_dilation(rims, structure=np.ones((3, 3, 3), bool), iterations=reach)
    return rims.astype(np.float32)


def signed_distance_mm(mask: np.ndarray, spacing_zyx: Sequence[float], clamp_mm: float, *,
                       features: bool = False) -> Any:
    """Signed distance (mm, negative inside) of a boolean mask's boundary at its voxel centres.

    Each voxel's distance is measured to the nearest voxel of the other class (Euclidean feature
    transform) minus the part of that vector inside the neighbour's voxel, i.e. the boundary lies
    on the voxel faces: exact for axis-aligned faces and for distances to voxel edges.

    Parameters
    ----------
    mask : np.ndarray, shape (nz, ny, nx), bool
    spacing_zyx : (3,)
        Voxel size (mm) along z, y, x.
    clamp_mm : float
        Result clamped to ``[-clamp_mm, clamp_mm]``.
    features : bool
        Also return the flat index of each voxel's nearest voxel of the other class.

    Returns
    -------
    np.ndarray, shape (nz, ny, nx), float32
        (and with ``features`` the int32 flat indices, same shape).
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    s = np.asarray(spacing_zyx, float)
    out = np.full(mask.shape, np.float32(clamp_mm), np.float32)
    feat = np.full(mask.shape, -1, np.int32)
    if not mask.any() or mask.all():
        # No boundary: one class only (feature -1: read the clamped distance).
        out = out if not mask.any() else -out
        return (out, feat) if features else out
    s32 = s.astype(np.float32)
    for inside, sign in ((False, 1.0), (True, -1.0)):
        sel = mask == inside
        # Feature transform of the other class (zeros of the input are the features).
        idx = ndimage.distance_transform_edt(sel, sampling=s, return_distances=False,
                                             return_indices=True)
        length2 = np.zeros(mask.shape, np.float32)
        longest = np.zeros(mask.shape, np.float32)  # max_i |v_i| in voxels of axis i
        for axis in range(3):
            shape = [1, 1, 1]
            shape[axis] = mask.shape[axis]
            comp = np.abs(idx[axis] - np.arange(mask.shape[axis], dtype=idx.dtype).reshape(shape))
            comp = comp.astype(np.float32)
            length2 += (comp * s32[axis]) ** 2
            np.maximum(longest, comp, out=longest)
        length = np.sqrt(length2)
        # The part of the vector v inside the neighbour's voxel: its half-extent along v / |v|,
        # min_i (s_i / 2) |v| / |v_i| = |v| / (2 max_i (|v_i| / s_i)).
        half = length / np.maximum(2.0 * longest, np.float32(1e-12))
        np.copyto(out, np.float32(sign) * np.minimum(length - half, clamp_mm), where=sel)
        if features:
            flat = np.ravel_multi_index(tuple(idx), mask.shape).astype(np.int32)
            np.copyto(feat, flat, where=sel)
    return (out, feat) if features else out


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


def _bbox(mask: np.ndarray) -> tuple[list[int], list[int]]:
    """Bounding box [lo, hi) per axis (z, y, x) of a non-empty ``mask``."""
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nz = np.flatnonzero(mask.any(axis=other))
        lo.append(int(nz[0]))
        hi.append(int(nz[-1]) + 1)
    return lo, hi


def _grid_corners_lps(grid: Volume) -> np.ndarray:
    """(8, 3) LPS corners of the grid's outer voxel edges."""
    nx, ny, nz = grid.size_xyz
    c = np.array([[x, y, z] for z in (-0.5, nz - 0.5) for y in (-0.5, ny - 0.5)
                  for x in (-0.5, nx - 0.5)], float)
    return grid.index_to_lps(c)


def _sphere_mask(grid: Volume, centre_lps: np.ndarray, radius_mm: float) -> np.ndarray:
    """(nz, ny, nx) bool: voxel centres within ``radius_mm`` of ``centre_lps`` (evaluated only
    inside the sphere's index bounding box, so large grids stay cheap)."""
    shape = grid.array.shape
    box = centre_lps + radius_mm * np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    idx = grid.lps_to_index(box)  # (8, 3) x, y, z
    lo = np.clip(np.floor(idx.min(0)).astype(int), 0, np.array(shape[::-1]))
    hi = np.clip(np.ceil(idx.max(0)).astype(int) + 1, 0, np.array(shape[::-1]))
    out = np.zeros(shape, bool)
    if np.any(hi <= lo):
        return out
    zz, yy, xx = np.meshgrid(*(np.arange(lo[a], hi[a]) for a in (2, 1, 0)), indexing="ij")
    pts = grid.index_to_lps(np.stack([xx, yy, zz], -1).reshape(-1, 3))
    inside = np.linalg.norm(pts - centre_lps, axis=1) <= radius_mm
    out[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] = inside.reshape(zz.shape)
    return out
