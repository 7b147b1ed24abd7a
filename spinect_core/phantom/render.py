"""Rasterise the SDF parts onto the scanner grid (labels, instances, tissues, clean CT) and add
the scanner's look (tissue texture, blur, beam-hardening-like streaks, noise).

Partial volume: a part covers the fraction ``f = clip(0.5 - d / w, 0, 1)`` of a voxel, where
``w = sum_k |dd/di_k|`` is the voxel's extent along the surface normal (finite differences of the
distance in index space, so anisotropic voxels such as 1 x 1 x 3 mm and non-metric approximate
distances are both handled). This is the exact covered fraction of a box cut by a plane, to first
order. Tissues are composited in paint order: ``ct <- ct + f (hu - ct)``. The label of a voxel is
the last part whose surface contains the voxel *centre* (``d < 0``), so labels and CT agree.

Parts are evaluated only inside their bounding boxes, in z-chunks of bounded size so that a
0.6 mm volume does not need gigabytes of temporaries. Chunks overlap by one slice so the
finite differences do not depend on the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from spinect_core.phantom.anatomy import Anatomy, Part
from spinect_core.progress import ProgressCallback, report

#: Tissue classes of the phantom (tissue map ids), in id order.
TISSUES = ("air", "skin", "subcutaneous_fat", "fat", "muscle", "bowel", "vessel", "ligament",
           "disc", "disc_nucleus", "cortical", "cancellous", "nerve", "dura", "csf",
           # patient-like phantoms only (``torso.py``); appended so earlier ids keep their values
           "lung", "liver", "spleen", "kidney_cortex", "kidney_medulla", "artery", "vein",
           "bowel_wall", "bowel_fluid", "oral_contrast", "colon_content", "gas", "urine",
           "cartilage", "plaque", "table", "table_core", "metal", "polyethylene", "marrow")
TISSUE_ID = {name: i for i, name in enumerate(TISSUES)}

#: Instance ids written to ``instances.nii.gz`` (names also in ``labels.json``).
INSTANCES = ("background", "L4", "L5", "S1", "ilium_left", "ilium_right", "disc_L4L5", "disc_L5S1",
             "dura", "root_L4_left", "root_L4_right", "root_L5_left", "root_L5_right",
             "root_S1_left", "root_S1_right")
_UPPER = ("L3", "L2", "L1", "T12", "T11", "T10", "T9")
#: Instances of patient-like phantoms: :data:`INSTANCES` followed by the levels above L4, their
#: discs and roots, ribs, femora, arm bones and metal (ids of :data:`INSTANCES` unchanged).
PATIENT_INSTANCES = INSTANCES + _UPPER + tuple(
    f"disc_{a}{b}" for a, b in zip(_UPPER, ("L4",) + _UPPER[:-1])) + tuple(
    f"root_{lv}_{side}" for lv in _UPPER for side in ("left", "right")) + tuple(
    f"rib_{lv}_{side}" for lv in ("T9", "T10", "T11", "T12") for side in ("left", "right")) + (
    "femur_left", "femur_right", "humerus_left", "humerus_right", "forearm_left",
    "forearm_right", "metal")
INSTANCE_ID = {name: i for i, name in enumerate(PATIENT_INSTANCES)}

_CHUNK_VOXELS = 1_500_000


@dataclass(frozen=True)
class Grid:
    """Axial scanner grid (direction = identity): ``world = origin + spacing * (i, j, k)``.

    Attributes
    ----------
    shape : tuple (nz, ny, nx)
    spacing_mm : ndarray (3,)
        x, y, z voxel size, mm.
    origin_lps_mm : ndarray (3,)
        LPS of the centre of voxel (0, 0, 0).
    """

    shape: tuple[int, int, int]
    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray


@dataclass(frozen=True)
class Pose:
    """Patient placement: ``world_lps = R @ patient + T`` (mm)."""

    R: np.ndarray
    T: np.ndarray

    def to_world(self, p) -> np.ndarray:
        """LPS of patient-frame points ``(..., 3)``."""
        return np.asarray(p, float) @ self.R.T + self.T

    def vector_to_world(self, v) -> np.ndarray:
        return np.asarray(v, float) @ self.R.T


def _index_box(part_bbox, grid: Grid, pose: Pose) -> tuple[slice, slice, slice] | None:
    """Index slices (z, y, x) of the grid covering a patient-frame box, or None if outside."""
    lo, hi = part_bbox
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])
    w = pose.to_world(corners)
    i_lo = np.floor((w.min(axis=0) - grid.origin_lps_mm) / grid.spacing_mm).astype(int) - 2
    i_hi = np.ceil((w.max(axis=0) - grid.origin_lps_mm) / grid.spacing_mm).astype(int) + 3
    nx_y_z = np.array([grid.shape[2], grid.shape[1], grid.shape[0]])
    i_lo = np.clip(i_lo, 0, nx_y_z)
    i_hi = np.clip(i_hi, 0, nx_y_z)
    if np.any(i_hi <= i_lo):
        return None
    return (slice(i_lo[2], i_hi[2]), slice(i_lo[1], i_hi[1]), slice(i_lo[0], i_hi[0]))


def _patient_coords(grid: Grid, pose: Pose, zs: slice, ys: slice, xs: slice):
    """Patient-frame coordinate arrays (float64, shape of the sub-box) of voxel centres."""
    o, sp = grid.origin_lps_mm, grid.spacing_mm
    wx = o[0] + sp[0] * np.arange(xs.start, xs.stop) - pose.T[0]
    wy = o[1] + sp[1] * np.arange(ys.start, ys.stop) - pose.T[1]
    wz = o[2] + sp[2] * np.arange(zs.start, zs.stop) - pose.T[2]
    wx, wy, wz = wx[None, None, :], wy[None, :, None], wz[:, None, None]
    R = pose.R  # patient = R^T (w - T)
    return (R[0, 0] * wx + R[1, 0] * wy + R[2, 0] * wz,
            R[0, 1] * wx + R[1, 1] * wy + R[2, 1] * wz,
            R[0, 2] * wx + R[1, 2] * wy + R[2, 2] * wz)


def _normal_width(d: np.ndarray) -> np.ndarray:
    """Voxel extent along the surface normal, in distance units (see module docstring)."""
    w = np.zeros_like(d)
    for axis in range(3):
        if d.shape[axis] > 1:
            w += np.abs(np.gradient(d, axis=axis))
    return np.maximum(w, 1e-6)


@dataclass
class Rendered:
    """Output of :func:`rasterise`: arrays (nz, ny, nx) on the grid."""

    ct: np.ndarray          # float32 HU, noiseless and unblurred
    labels: np.ndarray      # uint8, default table
    instances: np.ndarray   # uint8, INSTANCES
    tissues: np.ndarray     # uint8, TISSUES


def rasterise(anatomy: Anatomy, grid: Grid, pose: Pose, hu: dict[str, float],
              label_ids: dict[str, int], progress: ProgressCallback | None = None) -> Rendered:
    """Paint every part of ``anatomy`` onto ``grid``.

    Parameters
    ----------
    anatomy : Anatomy
        Parts in paint order (patient frame).
    grid, pose : Grid, Pose
        Scanner grid and patient placement.
    hu : dict
        HU of every tissue in :data:`TISSUES`.
    label_ids : dict
        Class name -> id of the label table (``bone``, ``nerve``, ``disc``, ``dura``).
    """
    shape = grid.shape
    ct = np.full(shape, hu["air"], dtype=np.float32)
    labels = np.zeros(shape, np.uint8)
    instances = np.zeros(shape, np.uint8)
    tissues = np.zeros(shape, np.uint8)
    cache: dict[str, tuple[tuple[slice, slice, slice], dict[str, np.ndarray]]] = {}
    nz_all = shape[0]
    n_parts = len(anatomy.parts)
    for ip, part in enumerate(anatomy.parts):
        report(progress, ip / n_parts, f"rendering {part.name}")
        if part.from_cache is not None:
            if part.from_cache not in cache:
                continue
            box = cache[part.from_cache][0]
        else:
            box = _index_box(part.bbox, grid, pose)
            if box is None:
                continue
        zs, ys, xs = box
        plane = (ys.stop - ys.start) * (xs.stop - xs.start)
        step = max(4, _CHUNK_VOXELS // max(plane, 1))
        stored: dict[str, np.ndarray] | None = None
        if part.cache:
            stored = {}
            cache[part.name] = (box, stored)
        for z0 in range(zs.start, zs.stop, step):
            z1 = min(z0 + step, zs.stop)
            # One slice of overlap each side for the finite differences.
            e0, e1 = max(z0 - 1, 0), min(z1 + 1, nz_all)
            ez = slice(e0, e1)
            if part.from_cache is not None:
                cbox, cfields = cache[part.from_cache]
                off = cbox[0].start
                lo, hi = max(e0, cbox[0].start), min(e1, cbox[0].stop)
                ez = slice(lo, hi)
                fields = {k: v[lo - off:hi - off].astype(np.float64) for k, v in cfields.items()}
            else:
                X, Y, Z = _patient_coords(grid, pose, ez, ys, xs)
                fields = part.fields(X, Y, Z)
                del X, Y, Z
                for cname, clear, extra in part.carve:
                    if cname not in cache:
                        continue
                    _carve(fields, (ez, ys, xs), cache[cname], clear, extra)
            if stored is not None:
                for k, v in fields.items():
                    if k not in stored:
                        stored[k] = np.empty((zs.stop - zs.start,) + v.shape[1:], np.float32)
                    stored[k][z0 - zs.start:z1 - zs.start] = v[z0 - ez.start:z1 - ez.start]
            widths: dict[str, np.ndarray] = {}
            inner = slice(z0 - ez.start, z1 - ez.start)
            target = (slice(z0, z1), ys, xs)
            ct_t, lab_t, ins_t, tis_t = ct[target], labels[target], instances[target], tissues[target]
            for layer in part.layers:
                d = fields[layer.key]
                if layer.key not in widths:
                    widths[layer.key] = _normal_width(d)[inner]
                dd = d[inner] + layer.offset_mm
                frac = np.clip(0.5 - dd / widths[layer.key], 0.0, 1.0).astype(np.float32)
                ct_t += frac * (np.float32(hu[layer.tissue]) - ct_t)
                inside = dd < 0
                lab_t[inside] = label_ids[layer.label] if layer.label else 0
                ins_t[inside] = INSTANCE_ID[layer.instance] if layer.instance else 0
                tis_t[inside] = TISSUE_ID[layer.tissue]
    report(progress, 1.0, "rendered")
    return Rendered(ct=ct, labels=labels, instances=instances, tissues=tissues)


def _carve(fields: dict[str, np.ndarray], box, cached, clear: float, extra: float) -> None:
    """Remove a cached object (dilated by ``clear`` mm) from every field, in place."""
    (cz, cy, cx), cfields = cached
    ez, ys, xs = box
    ov = []
    for a, b in ((ez, cz), (ys, cy), (xs, cx)):
        lo, hi = max(a.start, b.start), min(a.stop, b.stop)
        if hi <= lo:
            return
        ov.append((lo, hi, a.start, b.start))
    sl_f = tuple(slice(lo - a0, hi - a0) for lo, hi, a0, _ in ov)
    sl_c = tuple(slice(lo - b0, hi - b0) for lo, hi, _, b0 in ov)
    obj = next(iter(cfields.values()))[sl_c]   # the cached part's first field ("d"/"outer")
    for key, d in fields.items():
        c = clear + (extra if key == "inner" else 0.0)
        np.maximum(d[sl_f], c - obj, out=d[sl_f])


# --- scanner effects ------------------------------------------------------------------------------
#: Texture amplitude (HU, SD of a ~1 mm correlated field) per tissue: trabecular bone is grainy.
TEXTURE_HU = {"cancellous": 45.0, "cortical": 60.0, "fat": 6.0, "subcutaneous_fat": 5.0,
              "muscle": 6.0, "bowel": 15.0, "disc": 4.0, "disc_nucleus": 4.0,
              # patient-like tissues (never present in the default phantom)
              "lung": 35.0, "liver": 6.0, "spleen": 8.0, "kidney_cortex": 8.0,
              "kidney_medulla": 8.0, "bowel_fluid": 5.0, "oral_contrast": 40.0,
              "colon_content": 70.0, "marrow": 15.0, "artery": 5.0, "vein": 5.0, "urine": 3.0}


def add_texture(ct: np.ndarray, tissues: np.ndarray, spacing_mm: np.ndarray,
                rng: np.random.Generator) -> None:
    """Add a smooth random texture (in place) whose amplitude depends on the tissue."""
    amp = np.zeros(len(TISSUES), np.float32)
    for name, a in TEXTURE_HU.items():
        amp[TISSUE_ID[name]] = a
    field = rng.standard_normal(ct.shape, dtype=np.float32)
    sigma = 0.6 / spacing_mm[::-1]
    field = ndimage.gaussian_filter(field, sigma=sigma, mode="nearest")
    field *= np.float32(1.0 / max(float(field.std()), 1e-6))
    ct += field * amp[tissues]


def blur(ct: np.ndarray, spacing_mm: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Gaussian reconstruction blur of ``fwhm_mm`` (isotropic in mm), axes (z, y, x)."""
    sigma = fwhm_mm / 2.3548 / spacing_mm[::-1]
    return ndimage.gaussian_filter(ct, sigma=sigma, mode="nearest")


def add_streaks(ct: np.ndarray, tissues: np.ndarray, grid: Grid, anchors_world: np.ndarray,
                amplitude_hu: float) -> None:
    """Dark beam-hardening-like bands between dense bones, per axial slice (in place).

    Bands join pairs of ``anchors_world`` (LPS, e.g. the L5 body and the iliac wings) in the
    axial plane; their strength in a slice grows with the amount of cortical bone in it, and they
    are confined to the body (not painted into air).
    """
    if amplitude_hu <= 0 or len(anchors_world) < 2:
        return
    nz, ny, nx = ct.shape
    o, sp = grid.origin_lps_mm, grid.spacing_mm
    X = o[0] + sp[0] * np.arange(nx)[None, :]
    Y = o[1] + sp[1] * np.arange(ny)[:, None]
    prof = np.zeros((ny, nx), np.float32)
    for i in range(len(anchors_world)):
        for j in range(i + 1, len(anchors_world)):
            a, b = anchors_world[i][:2], anchors_world[j][:2]
            ab = b - a
            L2 = float(ab @ ab) + 1e-9
            t = np.clip(((X - a[0]) * ab[0] + (Y - a[1]) * ab[1]) / L2, 0.0, 1.0)
            dist = np.hypot(X - a[0] - t * ab[0], Y - a[1] - t * ab[1])
            prof += np.exp(-0.5 * (dist / 2.5) ** 2).astype(np.float32)
    bone = (tissues == TISSUE_ID["cortical"]).reshape(nz, -1).mean(axis=1)
    scale = bone / max(float(bone.max()), 1e-6)
    body = tissues != TISSUE_ID["air"]
    ct -= np.float32(amplitude_hu) * scale[:, None, None].astype(np.float32) * prof[None] * body


def add_noise(ct: np.ndarray, sd_hu: float, correlation_vox: float,
              rng: np.random.Generator) -> None:
    """Gaussian noise of standard deviation ``sd_hu``, optionally correlated in-plane (in place)."""
    n = rng.standard_normal(ct.shape, dtype=np.float32)
    if correlation_vox > 0.05:
        n = ndimage.gaussian_filter(n, sigma=(0.0, correlation_vox, correlation_vox), mode="wrap")
        n *= np.float32(1.0 / max(float(n.std()), 1e-6))
    ct += np.float32(sd_hu) * n
