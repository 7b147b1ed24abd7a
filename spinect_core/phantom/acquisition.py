"""Scanner look of patient-like phantoms: kernel, slice thickness, noise, streaks, metal.

Applied to the clean rasterised HU (:func:`~.render.rasterise`) in this order, each step a
physical stage of a CT acquisition seen in image space:

1. tissue texture (:func:`~.render.add_texture`, trabecular grain, bowel content, lung);
2. beam-hardening bands between dense bones (:func:`~.render.add_streaks`, with the femoral heads
   as extra anchors) and metal artefacts (:func:`add_metal_streaks`: bright and dark lines
   radiating from every metal cross-section, dark bands between metal objects);
3. reconstruction kernel: Gaussian blur in-plane (FWHM ``blur_fwhm_mm``), slice sensitivity
   profile along z (Gaussian of FWHM ``slice_thickness_mm``, less the voxel the renderer already
   averaged over), and for sharp kernels edge enhancement ``x + g (x - G_s x)`` in-plane (the
   overshoot of bone kernels);
4. noise of standard deviation ``noise_sd_hu``: correlated in-plane (``noise_corr_mm``) and along
   z over the slice thickness, stronger in slices with much bone or metal (fewer photons).

Ranges are drawn in :mod:`.patient`. :func:`mark_metal` turns metal voxels (and a rim of about
the blur width around them, where metal blooms) into 255, unlabelled.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spinect_core.phantom import render as R
from spinect_core.phantom.patient import PatientParams

UNLABELLED = 255   # = spinect_core.training.loss.UNLABELLED (not imported: no torch needed)


def _fwhm_to_sigma(fwhm_mm: float) -> float:
    return float(fwhm_mm) / 2.3548


def add_metal_streaks(ct: np.ndarray, tissues: np.ndarray, grid: R.Grid, amplitude_hu: float,
                      rng: np.random.Generator) -> None:
    """Metal artefacts per axial slice, in place (only where the body is, not in air).

    Every connected metal cross-section of a slice sends ``n`` lines of random angle and signed
    amplitude (bright and dark streaks, falling off with distance); every pair of metal
    cross-sections is joined by a dark band (photon starvation along the line between them).
    The strength grows with the metal area of the slice.
    """
    metal_id = R.TISSUE_ID["metal"]
    metal = tissues == metal_id
    zs = np.nonzero(metal.reshape(metal.shape[0], -1).any(axis=1))[0]
    if len(zs) == 0 or amplitude_hu <= 0:
        return
    ny, nx = ct.shape[1:]
    sx, sy = float(grid.spacing_mm[0]), float(grid.spacing_mm[1])
    X = (np.arange(nx, dtype=np.float32) * sx)[None, :]
    Y = (np.arange(ny, dtype=np.float32) * sy)[:, None]
    n_bins = 1440
    phis = np.linspace(-np.pi, np.pi, n_bins, endpoint=False, dtype=np.float32)
    air = R.TISSUE_ID["air"]
    for k in zs:
        lab, n = ndimage.label(metal[k])
        idx = list(range(1, n + 1))
        cents = ndimage.center_of_mass(metal[k], lab, idx)
        areas = ndimage.sum_labels(metal[k], lab, idx) * sx * sy
        pattern = np.zeros((ny, nx), np.float32)
        pts = []
        for (cy, cx), area in zip(cents, areas):
            w = float(min(1.0, area / 60.0))
            px, py = cx * sx, cy * sy
            pts.append((px, py, w))
            n_lines = int(rng.integers(10, 30))
            theta = rng.uniform(-np.pi, np.pi, n_lines)
            amp = rng.normal(0.0, 1.0, n_lines)
            width = np.deg2rad(rng.uniform(0.6, 2.0, n_lines))
            table = np.zeros(n_bins, np.float32)
            for t, a, wd in zip(theta, amp, width):
                for t2 in (t, t + np.pi):
                    dphi = np.angle(np.exp(1j * (phis - t2)))
                    table += (a * np.exp(-0.5 * (dphi / wd) ** 2)).astype(np.float32)
            dx, dy = X - np.float32(px), Y - np.float32(py)
            r = np.sqrt(dx * dx + dy * dy)
            phi = np.arctan2(dy, dx)
            line = np.interp(phi.ravel(), phis, table, period=2 * np.pi).reshape(ny, nx)
            pattern += np.float32(w) * line.astype(np.float32) / (1.0 + r / 25.0)
        for i in range(len(pts)):
            for j in range(i + 1, len(pts)):
                (ax, ay, wa), (bx, by, wb) = pts[i], pts[j]
                abx, aby = bx - ax, by - ay
                L2 = abx * abx + aby * aby + 1e-9
                t = np.clip(((X - ax) * abx + (Y - ay) * aby) / L2, 0.0, 1.0)
                dist = np.hypot(X - ax - t * abx, Y - ay - t * aby)
                pattern -= np.float32(2.0 * wa * wb) * np.exp(-0.5 * (dist / 5.0) ** 2).astype(
                    np.float32)
        body = tissues[k] != air
        ct[k] += np.float32(amplitude_hu) * pattern * body


def apply_acquisition(ct: np.ndarray, tissues: np.ndarray, grid: R.Grid, q: PatientParams,
                      anchors_world: np.ndarray, rng: np.random.Generator, *, texture: bool = True,
                      streaks: bool = True, blur: bool = True, noise: bool = True) -> np.ndarray:
    """The scanner look of a patient-like case (see the module docstring); returns float32 HU.

    Parameters
    ----------
    ct : np.ndarray, float32, shape (nz, ny, nx)
        Clean HU (modified in place where possible).
    tissues : np.ndarray, uint8, same shape
        Tissue ids (:data:`~.render.TISSUES`).
    grid : Grid
    q : PatientParams
    anchors_world : np.ndarray, shape (k, 3)
        LPS points between which beam-hardening bands run (spine, iliac crests, femoral heads).
    rng : numpy.random.Generator
        The acquisition stream.
    texture, streaks, blur, noise : bool
        ``PhantomOptions`` switches.
    """
    sp = np.asarray(grid.spacing_mm, float)        # x, y, z
    if texture:
        R.add_texture(ct, tissues, sp, rng)
    if streaks:
        if q.streak_hu > 0:
            R.add_streaks(ct, tissues, grid, anchors_world, q.streak_hu)
        add_metal_streaks(ct, tissues, grid, q.metal_streak_hu, rng)
    if blur:
        s_xy = _fwhm_to_sigma(q.blur_fwhm_mm)
        extra_z = np.sqrt(max(q.slice_thickness_mm ** 2 - sp[2] ** 2, 0.0))
        s_z = np.hypot(s_xy, _fwhm_to_sigma(extra_z))
        ct = ndimage.gaussian_filter(ct, sigma=(s_z / sp[2], s_xy / sp[1], s_xy / sp[0]),
                                     mode="nearest")
        if q.edge_gain > 0:
            s_e = q.edge_sigma_mm
            smooth = ndimage.gaussian_filter(ct, sigma=(0.0, s_e / sp[1], s_e / sp[0]),
                                             mode="nearest")
            ct += np.float32(q.edge_gain) * (ct - smooth)
            del smooth
    if noise:
        n = rng.standard_normal(ct.shape, dtype=np.float32)
        s_c = q.noise_corr_mm
        s_nz = _fwhm_to_sigma(np.sqrt(max(q.slice_thickness_mm ** 2 - sp[2] ** 2, 0.0)))
        sig = (s_nz / sp[2], s_c / sp[1], s_c / sp[0])
        if max(sig) > 0.05:
            n = ndimage.gaussian_filter(n, sigma=sig, mode="wrap")
            n *= np.float32(1.0 / max(float(n.std()), 1e-6))
        # Fewer photons where there is much bone or any metal: more noise in those slices.
        dense = (tissues == R.TISSUE_ID["cortical"]).reshape(ct.shape[0], -1).mean(axis=1)
        metal = (tissues == R.TISSUE_ID["metal"]).reshape(ct.shape[0], -1).any(axis=1)
        factor = 1.0 + 0.3 * dense / max(float(dense.max()), 1e-6) + 0.4 * metal
        ct += (np.float32(q.noise_sd_hu) * factor.astype(np.float32)[:, None, None]) * n
    return ct.astype(np.float32, copy=False)


def mark_metal(labels: np.ndarray, tissues: np.ndarray, spacing_mm, rim_mm: float = 1.5) -> int:
    """Set metal voxels and a rim of ``rim_mm`` around them to 255 (unlabelled), in place.

    The rim covers the blooming of metal through the reconstruction blur, where a voxel is
    neither clean bone nor clean background. Returns the number of voxels set.
    """
    metal = tissues == R.TISSUE_ID["metal"]
    if not metal.any():
        return 0
    sp = np.asarray(spacing_mm, float)[::-1]        # z, y, x
    it = np.maximum(np.round(rim_mm / sp).astype(int), 1)
    # Work on the metal's bounding box (plus the rim) only.
    idx = np.argwhere(metal)
    lo = np.maximum(idx.min(axis=0) - it, 0)
    hi = np.minimum(idx.max(axis=0) + it + 1, metal.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    out = metal[box]
    # Anisotropic dilation: one pass per axis with a line structure of the axis's reach.
    for axis in range(3):
        size = [1, 1, 1]
        size[axis] = 2 * int(it[axis]) + 1
        out = ndimage.binary_dilation(out, structure=np.ones(size, bool))
    labels[box][out] = UNLABELLED
    return int(out.sum())
