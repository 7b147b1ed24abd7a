"""Simulated fluoroscopy: a perspective digitally reconstructed radiograph (DRR) of a CT.

The C-arm is modelled as a point source and a flat detector. A view is given by

* ``view_direction_lps``: unit vector in LPS along which the operator *looks*, from the
  detector through the patient (the planner's view direction: into a prone patient's back, the
  needle's direction in a tunnel view; :mod:`spinect_core.planning.carm`),
* ``isocentre_lps_mm``: the point the central ray passes through (LPS, mm),
* :class:`DRROptions`: source-to-detector distance (SDD), source-to-isocentre distance (SID),
  where the tube is, detector size and pixel count, the detector's "up" vector, the ray step and
  the attenuation.

Where the tube is (``DRROptions.tube``). A C-arm for a prone patient normally has its X-ray tube
under the table and the detector above the back (``"below"``, the default): the rays travel
against the view direction (anterior -> posterior in a straight PA view, "AP rays"), the source
is ``S = iso + SID * d`` and the detector centre ``C = S - SDD * d`` lies behind the patient's
back. ``"above"`` puts the tube above the back (rays along ``d``, posterior -> anterior):
``S = iso - SID * d``, ``C = S + SDD * d``. The tube's side changes the magnification of what is
near the back (the spine is closer to a detector above the back), never the picture's
orientation.

Display convention (the same for both tubes). The image is shown as the operator looks along
``d`` at the prone patient's back with the head at the top of the screen, as the app's 3D view
shows it: columns grow along ``right = d x up`` and rows grow along ``-up`` (row 0 at the top).
In a straight PA view the patient's left is on the image's left. ``up`` defaults to patient
superior (LPS +z) projected onto the detector, or anterior (LPS -y) when the view looks along the
body axis. (Radiographs of a supine patient are conventionally shown the other way round, the
patient's right on the left; the C-arm's own left-right flip gives that if a department prefers
it.)

Each pixel's value is the line integral ``sum(mu) * step`` (dimensionless) of the linear
attenuation ``mu = mu_water * (1 + HU / 1000)`` (clipped at 0, so air and outside the CT add
nothing) along the ray from the source to the pixel centre, sampled trilinearly with
``torch.nn.functional.grid_sample`` at ``step_mm`` intervals, a chunk of detector rows at a time
to bound memory. The transmitted intensity would be ``exp(-L)``; :func:`drr_to_uint8` windows
``L`` (the log attenuation) into a grey picture, dense structures dark as on a fluoroscopy monitor.

No Qt here: the app and the plan exports draw the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.progress import ProgressCallback, report
from spinect_core.vectors import unit
from spinect_core.vocabulary import NEEDLE_COLOUR, WINDOW_COLOURS
from spinect_core.volume import Volume

__all__ = [
    "DRROptions", "DetectorGeometry", "DRRResult", "DRROverlay", "compute_drr",
    "detector_geometry", "drr_to_uint8", "render_drr_overlay", "render_plan_drr", "write_drr_png",
    "attenuation_volume", "MU_WATER_PER_MM", "TUBE_POSITIONS",
]

#: Linear attenuation coefficient of water near the effective energy of a fluoroscopy beam
#: (about 60-70 keV: 0.20 /cm), per millimetre.
MU_WATER_PER_MM = 0.020
#: Where the X-ray tube is for a prone patient: under the table (AP rays; the usual C-arm set-up)
#: or above the back (PA rays).
TUBE_POSITIONS = ("below", "above")


@dataclass(frozen=True, kw_only=True)
class DRROptions:
    """Geometry and sampling of a simulated radiograph.

    Attributes
    ----------
    sdd_mm : float
        Source-to-detector distance, mm (C-arms: about 1000 mm).
    sid_mm : float
        Source-to-isocentre distance, mm. 600 mm puts the isocentre at 60 % of the SDD, a
        typical C-arm (magnification 1000 / 600 = 1.67 at the isocentre).
    tube : {"below", "above"}
        The X-ray tube under the table (default: rays travel against the view direction, the
        detector is above the prone patient's back) or above the back (rays along the view).
    detector_size_mm : (float, float)
        Detector extent along rows (height) and columns (width), mm, in the detector plane.
    detector_pixels : (int, int)
        Number of detector rows and columns.
    up_lps : (3,) floats or None
        Direction in LPS that points to the top of the image (projected onto the detector).
        None: patient superior (+z), or anterior (-y) when the view runs along the body axis.
    step_mm : float
        Distance between samples along each ray, mm.
    mu_water_per_mm : float
        Linear attenuation of water, 1/mm.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or any torch device.
    max_samples_per_chunk : int
        Bound on rays x samples evaluated at once (memory: about 16 bytes each on top of the
        attenuation volume as float32).
    """

    sdd_mm: float = 1000.0
    sid_mm: float = 600.0
    tube: str = "below"
    detector_size_mm: tuple[float, float] = (300.0, 300.0)
    detector_pixels: tuple[int, int] = (512, 512)
    up_lps: tuple[float, float, float] | None = None
    step_mm: float = 1.0
    mu_water_per_mm: float = MU_WATER_PER_MM
    device: str = "auto"
    max_samples_per_chunk: int = 4_000_000

    def __post_init__(self) -> None:
        if not (self.sdd_mm > 0 and 0 < self.sid_mm < self.sdd_mm):
            raise InputError("need 0 < source-to-isocentre distance < source-to-detector distance")
        if min(self.detector_size_mm) <= 0 or min(int(n) for n in self.detector_pixels) < 1:
            raise InputError("detector size and pixel counts must be positive")
        if self.tube not in TUBE_POSITIONS:
            raise InputError(f"tube must be one of {TUBE_POSITIONS}, got {self.tube!r}")
        if not self.step_mm > 0:
            raise InputError("step_mm must be positive")
        if not self.mu_water_per_mm > 0:
            raise InputError("mu_water_per_mm must be positive")


@dataclass(frozen=True, kw_only=True)
class DetectorGeometry:
    """Where a DRR's pixels lie in LPS, and the perspective projection onto them.

    Attributes
    ----------
    source_lps_mm : np.ndarray, shape (3,)
        X-ray focal spot, LPS mm.
    direction_lps : np.ndarray, shape (3,)
        Unit central-ray direction (source -> detector: the way the X-rays travel), LPS.
    isocentre_lps_mm : np.ndarray, shape (3,)
        Point on the central ray at ``sid_mm`` from the source, LPS mm.
    centre_lps_mm : np.ndarray, shape (3,)
        Detector centre (``source + sdd * direction``), LPS mm.
    row_axis_lps, col_axis_lps : np.ndarray, shape (3,)
        Unit LPS directions of increasing row (image down) and column (image right).
    pixel_mm : (float, float)
        Pixel size along rows and columns, mm at the detector.
    shape : (int, int)
        Rows, columns.
    sdd_mm, sid_mm : float
        Source-to-detector and source-to-isocentre distances, mm.
    view_direction_lps : np.ndarray, shape (3,) or None
        Unit direction the picture is seen along (detector -> patient; see the module
        docstring): ``-direction_lps`` with the tube below, ``direction_lps`` above. None (a
        geometry read back from an older sidecar): ``direction_lps``.
    """

    source_lps_mm: np.ndarray
    direction_lps: np.ndarray
    isocentre_lps_mm: np.ndarray
    centre_lps_mm: np.ndarray
    row_axis_lps: np.ndarray
    col_axis_lps: np.ndarray
    pixel_mm: tuple[float, float]
    shape: tuple[int, int]
    sdd_mm: float
    sid_mm: float
    view_direction_lps: np.ndarray | None = None

    @property
    def tube(self) -> str:
        """"below" when the rays travel against the view direction, else "above"."""
        if self.view_direction_lps is None:
            return "above"
        return "below" if float(np.dot(self.view_direction_lps, self.direction_lps)) < 0 else "above"

    @property
    def magnification_at_isocentre(self) -> float:
        """SDD / SID: the detector size of 1 mm at the isocentre, perpendicular to the ray."""
        return self.sdd_mm / self.sid_mm

    def pixel_to_lps(self, rows: np.ndarray | float, cols: np.ndarray | float) -> np.ndarray:
        """LPS mm of detector positions given as (continuous) pixel indices.

        Parameters
        ----------
        rows, cols : array_like, broadcastable
            Row and column indices; integers are pixel centres.

        Returns
        -------
        np.ndarray, shape (..., 3)
        """
        r = np.asarray(rows, dtype=np.float64)
        c = np.asarray(cols, dtype=np.float64)
        nr, nc = self.shape
        dr = (r - (nr - 1) / 2.0) * self.pixel_mm[0]
        dc = (c - (nc - 1) / 2.0) * self.pixel_mm[1]
        return (self.centre_lps_mm + dr[..., None] * self.row_axis_lps
                + dc[..., None] * self.col_axis_lps)

    def project(self, points_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Perspective projection of LPS points onto the detector.

        Parameters
        ----------
        points_lps : array_like, shape (..., 3)
            Points, LPS mm.

        Returns
        -------
        rows, cols : np.ndarray, shape (...)
            Continuous pixel indices (integers are pixel centres). Points at or behind the
            source's plane give NaN.
        """
        p = np.asarray(points_lps, dtype=np.float64) - self.source_lps_mm
        depth = p @ self.direction_lps
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(depth > 1e-9, self.sdd_mm / depth, np.nan)
        nr, nc = self.shape
        rows = (p @ self.row_axis_lps) * scale / self.pixel_mm[0] + (nr - 1) / 2.0
        cols = (p @ self.col_axis_lps) * scale / self.pixel_mm[1] + (nc - 1) / 2.0
        return rows, cols

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (LPS mm)."""
        return {
            "coordinate_system": "LPS",
            "source_lps_mm": [float(v) for v in self.source_lps_mm],
            "direction_lps": [float(v) for v in self.direction_lps],
            "view_direction_lps": [float(v) for v in (self.direction_lps
                                                      if self.view_direction_lps is None
                                                      else self.view_direction_lps)],
            "tube": self.tube,
            "isocentre_lps_mm": [float(v) for v in self.isocentre_lps_mm],
            "detector_centre_lps_mm": [float(v) for v in self.centre_lps_mm],
            "row_axis_lps": [float(v) for v in self.row_axis_lps],
            "col_axis_lps": [float(v) for v in self.col_axis_lps],
            "pixel_mm": [float(v) for v in self.pixel_mm],
            "shape": [int(v) for v in self.shape],
            "sdd_mm": float(self.sdd_mm),
            "sid_mm": float(self.sid_mm),
        }


@dataclass(frozen=True, kw_only=True)
class DRRResult:
    """A simulated radiograph.

    Attributes
    ----------
    line_integrals : np.ndarray, shape (rows, cols), float32
        ``integral of mu ds`` along each pixel's ray (dimensionless; transmission ``exp(-L)``).
    geometry : DetectorGeometry
        Pixel <-> LPS mapping and :meth:`DetectorGeometry.project`.
    """

    line_integrals: np.ndarray
    geometry: DetectorGeometry

    def project(self, points_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shortcut for ``geometry.project``."""
        return self.geometry.project(points_lps)

    def to_uint8(self, **kwargs: Any) -> np.ndarray:
        """Shortcut for :func:`drr_to_uint8` on this result."""
        return drr_to_uint8(self.line_integrals, **kwargs)


def detector_geometry(view_direction_lps: Sequence[float], isocentre_lps_mm: Sequence[float], *,
                      options: DRROptions = DRROptions()) -> DetectorGeometry:
    """The C-arm geometry of a view (see the module docstring for the conventions).

    Parameters
    ----------
    view_direction_lps : (3,) floats
        Direction the picture is seen along (detector -> patient; the planner's view
        direction), LPS (normalised here). The X-rays travel along it with ``tube="above"``
        and against it with ``tube="below"``.
    isocentre_lps_mm : (3,) floats
        Point on the central ray at ``options.sid_mm`` from the source, LPS mm.
    options : DRROptions
    """
    d = unit(view_direction_lps, "view direction", error=InputError)
    iso = np.asarray(isocentre_lps_mm, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(iso)):
        raise InputError("isocentre must be finite")
    if options.up_lps is not None:
        up = unit(options.up_lps, "up vector", error=InputError)
    else:
        up = np.array([0.0, 0.0, 1.0])
        if abs(float(up @ d)) > 0.98:  # looking along the body axis: anterior is up
            up = np.array([0.0, -1.0, 0.0])
    up = up - (up @ d) * d
    if np.linalg.norm(up) < 1e-6:
        raise InputError("the up vector is parallel to the view direction")
    up /= np.linalg.norm(up)
    # Seen along d whatever side the tube is on: the operator's view of the back, not mirrored.
    right = np.cross(d, up)
    beam = -d if options.tube == "below" else d
    source = iso - options.sid_mm * beam
    nr, nc = (int(n) for n in options.detector_pixels)
    return DetectorGeometry(
        source_lps_mm=source, direction_lps=beam, isocentre_lps_mm=iso,
        centre_lps_mm=source + options.sdd_mm * beam, row_axis_lps=-up, col_axis_lps=right,
        pixel_mm=(float(options.detector_size_mm[0]) / nr, float(options.detector_size_mm[1]) / nc),
        shape=(nr, nc), sdd_mm=float(options.sdd_mm), sid_mm=float(options.sid_mm),
        view_direction_lps=d)


def _torch_device(name: str):  # noqa: ANN202 - torch imported lazily
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def attenuation_volume(ct: Volume, *, options: DRROptions = DRROptions()) -> Any:
    """The CT as linear attenuation on torch, ready for :func:`compute_drr` (one copy).

    For callers that project the same CT many times (the app's fluoroscopy view follows every
    rotation): pass the result as ``compute_drr(..., attenuation=...)`` with the same
    ``options.device`` and ``options.mu_water_per_mm``.

    Returns
    -------
    torch.Tensor, shape (1, 1, z, y, x), float32
        ``mu = mu_water * (1 + HU / 1000)`` clipped at 0, 1/mm, on ``options.device``.
    """
    import torch

    # torch.tensor always copies (as_tensor would share a float32 CT's memory, and the in-place
    # steps below would then overwrite the caller's HU); in place keeps the peak at one copy.
    mu = torch.tensor(ct.array, dtype=torch.float32, device=_torch_device(options.device))
    mu.mul_(options.mu_water_per_mm / 1000.0).add_(options.mu_water_per_mm).clamp_(min=0.0)
    return mu[None, None]  # (1, 1, z, y, x) for grid_sample


def compute_drr(ct: Volume, view_direction_lps: Sequence[float],
                isocentre_lps_mm: Sequence[float], *, options: DRROptions = DRROptions(),
                attenuation: Any = None,
                progress: ProgressCallback | None = None) -> DRRResult:
    """Simulate the radiograph of ``ct`` for one C-arm view.

    Parameters
    ----------
    ct : Volume
        CT in HU, array (z, y, x), LPS geometry.
    view_direction_lps : (3,) floats
        Direction the picture is seen along (detector -> patient, the planner's view
        direction), LPS; the X-rays travel against it with the tube below (default), along it
        with the tube above (:class:`DRROptions`).
    isocentre_lps_mm : (3,) floats
        Point the central ray passes through, at ``options.sid_mm`` from the source, LPS mm.
    options : DRROptions
    attenuation : torch.Tensor or None
        :func:`attenuation_volume` of ``ct`` made earlier (same device and ``mu_water``);
        None: made here.
    progress : ProgressCallback or None
        Called after each chunk of detector rows; returning False raises Cancelled.

    Returns
    -------
    DRRResult
        ``line_integrals`` (rows, cols) float32 and the detector geometry.
    """
    import torch
    import torch.nn.functional as F

    geom = detector_geometry(view_direction_lps, isocentre_lps_mm, options=options)
    device = _torch_device(options.device)
    report(progress, 0.0, "preparing the attenuation volume")
    if attenuation is None:
        mu = attenuation_volume(ct, options=options)
    else:
        if tuple(attenuation.shape[-3:]) != tuple(ct.array.shape):
            raise InputError("the attenuation volume was made from another CT")
        mu = attenuation.to(device)
    nz, ny, nx = mu.shape[-3:]

    # LPS -> continuous index (x, y, z) -> grid_sample's [-1, 1] (align_corners: -1 = first
    # voxel centre); a size-1 axis maps to 0 so its single slice is sampled.
    m_inv = np.linalg.inv(ct.direction * ct.spacing_mm[None, :])
    size = np.array([nx, ny, nz], dtype=np.float64)
    norm_scale = np.where(size > 1, 2.0 / np.maximum(size - 1, 1), 0.0)
    src_idx = m_inv @ (geom.source_lps_mm - ct.origin_lps_mm)

    nr, nc = geom.shape
    # Rays x samples per chunk: the longest possible path inside the CT's box bounds the samples.
    corners = ct.index_to_lps(np.array([[i, j, k] for i in (-0.5, nx - 0.5)
                                        for j in (-0.5, ny - 0.5) for k in (-0.5, nz - 0.5)]))
    diag = float(np.linalg.norm(corners.max(0) - corners.min(0)))
    max_steps = max(1, int(math.ceil(diag / options.step_mm)) + 1)
    rows_per_chunk = max(1, min(nr, options.max_samples_per_chunk // max(1, nc * max_steps)))

    out = np.zeros((nr, nc), dtype=np.float32)
    lo, hi = -0.5, size - 0.5
    cols = np.arange(nc, dtype=np.float64)
    for r0 in range(0, nr, rows_per_chunk):
        r1 = min(nr, r0 + rows_per_chunk)
        rr, cc = np.meshgrid(np.arange(r0, r1, dtype=np.float64), cols, indexing="ij")
        pix = geom.pixel_to_lps(rr, cc).reshape(-1, 3)
        ray = pix - geom.source_lps_mm
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)  # unit LPS, so t is in mm
        v = ray @ m_inv.T  # index units per mm
        # Slab test against the CT's box (index space, voxel edges): the samples' span.
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (lo - src_idx) / v
            t2 = (hi - src_idx) / v
        t1 = np.where(np.abs(v) < 1e-12, np.where((src_idx >= lo) & (src_idx <= hi), -np.inf,
                                                  np.inf), t1)
        t2 = np.where(np.abs(v) < 1e-12, np.where((src_idx >= lo) & (src_idx <= hi), np.inf,
                                                  -np.inf), t2)
        t_near = np.maximum(np.minimum(t1, t2).max(axis=1), 0.0)
        t_far = np.maximum(t1, t2).min(axis=1)
        hit = t_far > t_near
        if np.any(hit):
            span = np.where(hit, t_far - t_near, 0.0)
            n_steps = max(1, int(math.ceil(float(span.max()) / options.step_mm)))
            # The sample positions straight in grid_sample's coordinates, in float32 (the
            # (rays, steps, 3) arrays are the cost: float64 and three passes took ~60 % of a
            # DRR): g = g0 + t * dg along each ray, t measured from the ray's entry (so the
            # float32 sums stay small: 1e-4 mm, far below a voxel).
            to32 = dict(device=device, dtype=torch.float32)
            shift = np.where(size > 1, 1.0, 0.0)
            g_entry = (src_idx[None, :] + t_near[:, None] * v) * norm_scale - shift  # (rays, 3)
            dg = v * norm_scale                                                       # (rays, 3)
            k = (torch.arange(n_steps, **to32) + 0.5) * options.step_mm  # (steps,) from entry
            valid = k[None, :] < torch.as_tensor(np.where(hit, t_far - t_near, -np.inf),
                                                 **to32)[:, None]
            g = torch.as_tensor(g_entry, **to32)[:, None, :] \
                + k[None, :, None] * torch.as_tensor(dg, **to32)[:, None, :]
            samples = F.grid_sample(mu, g[None, :, :, None, :], mode="bilinear",
                                    padding_mode="zeros", align_corners=True)[0, 0, :, :, 0]
            del g
            line = (samples * valid).sum(dim=1) * options.step_mm
            out[r0:r1] = line.reshape(r1 - r0, nc).cpu().numpy().astype(np.float32)
        report(progress, r1 / nr, f"DRR rows {r1}/{nr}")
    return DRRResult(line_integrals=out, geometry=geom)


def drr_to_uint8(line_integrals: np.ndarray, *, window: tuple[float, float] | None = None,
                 dense_dark: bool = True) -> np.ndarray:
    """Grey picture of a DRR, windowed on the log attenuation ``L``.

    Parameters
    ----------
    line_integrals : np.ndarray, shape (rows, cols)
        ``L`` from :func:`compute_drr`.
    window : (float, float) or None
        ``(L_low, L_high)`` mapped to the grey range; None: the 1st and 99.5th percentiles of
        the pixels whose rays cross tissue (``L > 0.05``), or of all pixels if none do.
    dense_dark : bool
        True (default): high attenuation dark, as fluoroscopy monitors show it; False: bone
        white as on film.

    Returns
    -------
    np.ndarray, shape (rows, cols), uint8
    """
    L = np.asarray(line_integrals, dtype=np.float64)
    if window is None:
        body = L[L > 0.05]
        values = body if body.size else L.reshape(-1)
        lo, hi = (float(v) for v in np.percentile(values, [1.0, 99.5]))
    else:
        lo, hi = (float(v) for v in window)
    if not hi > lo:
        hi = lo + 1e-6
    g = np.clip((L - lo) / (hi - lo), 0.0, 1.0)
    if dense_dark:
        g = 1.0 - g
    return np.round(g * 255.0).astype(np.uint8)


@dataclass(frozen=True, kw_only=True)
class DRROverlay:
    """Something in 3D (LPS) to draw on a DRR.

    Attributes
    ----------
    points_lps : np.ndarray, shape (N, 3)
        LPS mm. One point: a marker; several: a polyline.
    colour : (int, int, int)
        RGB 0-255.
    closed : bool
        Join the last point to the first (an outline).
    width_px : int
        Line width (or marker ring width) in output pixels.
    marker_radius_px : int
        Radius of the ring drawn around a single point.
    """

    points_lps: np.ndarray
    colour: tuple[int, int, int] = (255, 200, 0)
    closed: bool = False
    width_px: int = 2
    marker_radius_px: int = 6


def render_drr_overlay(result: DRRResult, overlays: Sequence[DRROverlay] = (), *,
                       grey: np.ndarray | None = None, scale: int = 1) -> np.ndarray:
    """RGB picture of a DRR with 3D outlines, lines and points projected onto it.

    Parameters
    ----------
    result : DRRResult
    overlays : sequence of DRROverlay
        Drawn in order, projected with ``result.geometry.project``.
    grey : np.ndarray, shape (rows, cols), uint8, or None
        The grey picture; None: :func:`drr_to_uint8` with its defaults.
    scale : int
        Integer magnification (nearest neighbour) before drawing, so lines stay crisp.

    Returns
    -------
    np.ndarray, shape (rows * scale, cols * scale, 3), uint8
    """
    from PIL import Image, ImageDraw

    g = result.to_uint8() if grey is None else np.asarray(grey, dtype=np.uint8)
    s = max(1, int(scale))
    img = Image.fromarray(np.repeat(np.repeat(g, s, axis=0), s, axis=1)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for ov in overlays:
        pts = np.asarray(ov.points_lps, dtype=np.float64).reshape(-1, 3)
        if pts.shape[0] == 0:
            continue
        rows, cols = result.project(pts)
        ok = np.isfinite(rows) & np.isfinite(cols)
        # Pixel (r, c) covers [c, c+1) * s in the magnified image; its centre is (c + 0.5) * s.
        xy = [((c + 0.5) * s, (r + 0.5) * s) for r, c in zip(rows[ok], cols[ok])]
        if not xy:
            continue
        colour = tuple(int(v) for v in ov.colour)
        if len(xy) == 1:
            x, y = xy[0]
            rad = ov.marker_radius_px
            draw.ellipse([x - rad, y - rad, x + rad, y + rad], outline=colour, width=ov.width_px)
        else:
            if ov.closed:
                xy = xy + [xy[0]]
            draw.line(xy, fill=colour, width=ov.width_px, joint="curve")
    return np.asarray(img, dtype=np.uint8)


#: Outline colour of a window kind :data:`WINDOW_COLOURS` does not name.
_OTHER_OUTLINE = (255, 200, 0)


def render_plan_drr(result: DRRResult, *, outlines: Iterable[tuple[str, np.ndarray]] = (),
                    needles: Iterable[tuple[np.ndarray, np.ndarray]] = (),
                    scale: int = 1) -> np.ndarray:
    """A DRR with the plan drawn on it: the one drawing of the app's simulated fluoroscopy and
    the report's DRR pictures, so both show the windows and the needle alike.

    Parameters
    ----------
    result : DRRResult
    outlines : iterable of (kind, polygon)
        Window outlines: ``kind`` a window kind (``kambin``, ``safe``: its
        :data:`~spinect_core.vocabulary.WINDOW_COLOURS` colour), ``polygon`` (N, 3) LPS mm,
        drawn closed; fewer than 2 points: skipped.
    needles : iterable of (entry, target)
        (3,) LPS mm each: the needle's line in
        :data:`~spinect_core.vocabulary.NEEDLE_COLOUR` and a ring at its target.
    scale : int
        Integer magnification before drawing (:func:`render_drr_overlay`).

    Returns
    -------
    np.ndarray, shape (rows * scale, cols * scale, 3), uint8
    """
    overlays = [DRROverlay(points_lps=p, colour=WINDOW_COLOURS.get(kind, _OTHER_OUTLINE),
                           closed=True)
                for kind, poly in outlines
                for p in [np.asarray(poly, float).reshape(-1, 3)] if len(p) >= 2]
    for entry, target in needles:
        tip = np.asarray(target, float).reshape(3)
        overlays += [DRROverlay(points_lps=np.stack([np.asarray(entry, float).reshape(3), tip]),
                                colour=NEEDLE_COLOUR),
                     DRROverlay(points_lps=tip[None], colour=NEEDLE_COLOUR)]
    return render_drr_overlay(result, overlays, scale=scale)


def write_drr_png(rgb: np.ndarray, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write an RGB (or grey) DRR picture as PNG, atomically; refuses to overwrite unless asked.

    The PNG holds pixels only (no text chunks), so no identifiers; its geometry (LPS) belongs
    in a sidecar written by the caller.
    """
    from PIL import Image

    from spinect_core.io.atomic import atomic_path

    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(tmp, format="PNG")
    return target
