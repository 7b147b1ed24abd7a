"""Counting the vertebrae: ribs, the sacrum, level names and how sure the count is.

:func:`~spinect_core.anatomy.levels.derive_parts` finds the vertebral bodies as a chain of bone
"cores" (cranial first). This module names them and says how well the names are established:

* **From the sacrum**: the sacrum (S1) is the lowest body that is *shaped like a sacrum* (much
  wider, larger or taller than the body above it: the sacral alae and the fused S1-S2 make one
  thick block), *flanked by the ilia* (thick bone far lateral at its height) and *seen deep
  enough* (at least :attr:`CountOptions.min_sacrum_depth_mm` of it inside the field of view).
  L5 is the body above, L4 the one above that, and so on.
* **From the ribs**: a rib is a thin bone (no voxel deeper than the core depth) that reaches far
  lateral (:attr:`CountOptions.rib_reach_mm` from the spinal axis) and whose medial end lies at
  the side of the spine, behind the front of the bodies, within a few millimetres of one
  vertebra's bone (the costovertebral and costotransverse joints; segmentations leave a gap
  there). The vertebra it articulates with is found by a watershed of the column's bone seeded by
  the body cores (pedicles and transverse processes go to their own body). The last rib-bearing
  vertebra is T12; L1, L2, ... follow below.
* **Both**: the number of lumbar vertebrae between T12 and the sacrum should be 5; 4 or 6 means
  transitional anatomy (a sacralised L5 or a lumbarised S1 / an L6, or an unusual rib count),
  said in words as a warning (:func:`count_warnings`).

A chain gap much longer than its neighbours (a body without a core, e.g. osteoporotic or cut by
a thick slice) is counted as the missing bodies it most likely holds, and lowers the confidence.

Instance label maps (TotalSegmentator names ``vertebrae_L3``, or VerSe ids) name their levels
directly: :func:`instance_levels` lists them, :func:`require_l5_s1` refuses a map that does not
reach L5 and the sacrum by saying where it ends, :func:`evidence_from_instances` gives their
:class:`LevelEvidence`.

All coordinates are LPS millimetres; volumes are indexed (z, y, x).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy import geometry as G
from spinect_core.errors import AnatomyError
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

_FULL = np.ones((3, 3, 3), bool)

#: Levels in cranio-caudal order. T13 and L6 exist in some people (supernumerary segments);
#: ``S1`` stands for the sacrum as a whole.
LEVEL_ORDER: tuple[str, ...] = (
    tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 14))
    + tuple(f"L{i}" for i in range(1, 7)) + ("S1", "coccyx"))
_RANK = {n: i for i, n in enumerate(LEVEL_ORDER)}

#: VerSe vertebra ids (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 27 coccyx, 28 T13).
VERSE_LEVELS: dict[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)}, **{i: f"T{i - 7}" for i in range(8, 20)},
    **{i: f"L{i - 19}" for i in range(20, 26)}, 26: "S1", 27: "coccyx", 28: "T13"}

_LEVEL_NAME = re.compile(r"^(?:vertebrae?_)?([ctl])(\d{1,2})$")


@dataclass(frozen=True, kw_only=True)
class CountOptions:
    """Tuning of the rib detection and the sacrum's evidence (mm, mm^3).

    Attributes
    ----------
    near_mm : float
        Half-width (left-right, from the spinal axis) of the column region: bodies and pedicles.
        Bone farther out is examined as rib candidates (a rib is cut from its vertebra there).
    rib_reach_mm : float
        A rib reaches at least this far lateral of the spinal axis (lumbar transverse processes
        end at 40-55 mm; even short 12th ribs pass 70 mm).
    rib_min_mm3 : float
        Smaller thin pieces are ignored.
    rib_gap_mm : float
        The rib's medial end lies within this distance of its vertebra's bone (joint space and
        the segmentation's gap there: 1-11 mm on the real chest CT), and within this distance
        beyond ``near_mm`` from the spinal axis.
    min_sacrum_depth_mm : float
        At least this much of the sacrum below its top must lie in the field of view (and be
        bone) before the lowest body is accepted as the sacrum: a sliver of S1 looks like any
        vertebra.
    sacrum_width_ratio, sacrum_volume_ratio, sacrum_height_ratio : float
        The sacrum's core is at least this much wider (left-right), larger or taller than the
        core of the body above it (any one suffices); lumbar bodies differ by < 1.3x.
    shape_reference_min_mm3 : float
        Where every body the shape is judged against (:data:`SHAPE_REFERENCE_BODIES` above) has
        a core smaller than this (mm^3) and none is cut by the field of view's top, the shape
        is no evidence: those cores are slivers of bodies whose marrow the labels left out
        (lumbar cores are 4000-9000 mm^3). Measured 2026-12-07 (session 33) on
        TotalSegmentator's real CT resampled to 1 mm and cropped below L2, with the bodies' marrow
        left out: L5's core (5700 mm^3) against a sliver of L3 (440) passed for the sacrum and
        the count named L3 "L5" at "moderate" (refused later only because L5 and "S1" could not
        be parted at full resolution).
    sacrum_clear_volume_ratio : float
        Unless the rib count agrees, a sacrum whose core is not at least this much larger than
        the body above's is in doubt (low confidence), whatever its width. Real sacra's cores
        are 1.4-2.5x as large on 20 real-bone label maps at 2.5-3 mm (2.6-5.7x in the fused
        labels at 1 x 1 x 2.5-3 mm) and 6-18x on patient-like phantoms; two bodies a level too
        high passed for the sacrum with cores 1.1x as large as the body above's: a patient-like
        phantom's wide L5 above a sacrum left without a core (1.5x as wide; planned 34 mm from
        L5/S1 at moderate confidence), and a real-bone phantom's L5 at 1 x 1 x 3 mm whose sacral
        canal the CT bone model had filled (1.8x as wide; 32 mm, moderate).
    missing_body_factor : float
        A gap between two cores longer than the others' by (this - 1) times the body spacing
        hides a body without a core (see :func:`chain_positions`).
    max_core_height_mm : float
        A core taller than this along the column (a body's is <= ~25 mm: the body less twice the
        core depth) spans several bodies merged in the labels (discs not segmented as non-bone):
        the levels cannot be counted through it.
    max_sacrum_core_height_mm : float
        The sacrum's core (S1 to about S3, with the alae) is at most this tall along the column:
        58-92 mm measured on 46 label maps of real-bone and patient-like phantoms counted right;
        110-111 mm on two whose lowest lumbar bodies had merged into it (planned 37-38 mm from
        L5/S1).
    hollow_radius_mm, hollow_half_width_mm, hollow_seed_mm, hollow_min_seed_mm3 : float
        A sacrum without a core (:func:`find_hollow_sacrum`): the radius of the cylinder along
        the column in which its top is sought (and the seed's reach front to back), the seed's
        half-width left-right, how far below the L5/S1 gap it reaches, and the least bone it
        must hold.
    """

    near_mm: float = 25.0
    rib_reach_mm: float = 65.0
    rib_min_mm3: float = 250.0
    rib_gap_mm: float = 15.0
    min_sacrum_depth_mm: float = 30.0
    sacrum_width_ratio: float = 1.5
    sacrum_volume_ratio: float = 3.0
    sacrum_height_ratio: float = 1.8
    shape_reference_min_mm3: float = 1500.0
    sacrum_clear_volume_ratio: float = 1.3
    missing_body_factor: float = 1.6
    max_core_height_mm: float = 35.0
    max_sacrum_core_height_mm: float = 100.0
    hollow_radius_mm: float = 12.0
    hollow_half_width_mm: float = 20.0
    hollow_seed_mm: float = 15.0
    hollow_min_seed_mm3: float = 1000.0


# --- level names --------------------------------------------------------------------------------
def level_below(level: str, steps: int = 1) -> str:
    """The level ``steps`` below (negative: above) in the usual 7-12-5 count (no T13, no L6 unless
    counting past L5, when L6, L7 name the extra lumbar bodies); ``"?"`` outside the spine."""
    seq = tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13)) + tuple(
        f"L{i}" for i in range(1, 8))
    if level not in seq:
        return "?"
    k = seq.index(level) + steps
    return seq[k] if 0 <= k < len(seq) else "?"


def level_rank(level: str) -> int:
    """Position of a level name from the skull down (C1 lowest, L7 highest; -1 if unknown):
    ``level_rank(a) < level_rank("L5")`` means ``a`` lies above L5."""
    return _RANK.get(level, -1)


# --- ribs ----------------------------------------------------------------------------------------
@dataclass
class Rib:
    """One rib found beside the column.

    Attributes
    ----------
    side : str
        ``"left"`` or ``"right"`` (patient side; LPS +x is left).
    body : int
        Chain index (cranial first) of the vertebra it articulates with.
    medial_lps : np.ndarray, shape (3,)
        Centre of its medial end.
    reach_mm : float
        Farthest lateral distance from the spinal axis.
    volume_mm3 : float
    """

    side: str
    body: int
    medial_lps: np.ndarray
    reach_mm: float
    volume_mm3: float


@dataclass
class RibFindings:
    """Ribs found on a (coarse) bone mask.

    Attributes
    ----------
    ribs : list of Rib
    thin_points : np.ndarray, bool, shape (N,)
        For each bone voxel (in ``np.nonzero(bone)`` order): it lies in a thin far-lateral piece
        (rib, process, fragment), so it is never counted as ilium.
    """

    ribs: list[Rib] = field(default_factory=list)
    thin_points: np.ndarray | None = None

    def bodies(self, side: str | None = None) -> set[int]:
        """Chain indices of the rib-bearing bodies (on ``side`` or either)."""
        return {r.body for r in self.ribs if side is None or r.side == side}

    @property
    def last_body(self) -> int | None:
        """Chain index of the lowest rib-bearing body (T12), or None without ribs."""
        b = self.bodies()
        return max(b) if b else None

    def count(self, side: str) -> int:
        """Rib-bearing levels on one side (two pieces of one broken rib count once)."""
        return len(self.bodies(side))


def _axis(chain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.array([k.centre for k in chain], float).reshape(-1, 3)
    o = np.argsort(c[:, 2])
    return c[o, 2], c[o, 0], c[o, 1]


def along_chain(point: np.ndarray, centres: np.ndarray) -> float:
    """Arc length (mm) along the polyline of ``centres`` of ``point``'s projection onto it.

    Parameters
    ----------
    point : np.ndarray, shape (3,)
        LPS mm.
    centres : np.ndarray, shape (K, 3)
        Body centres, cranial first (LPS mm); body ``k`` lies at the arc length of the first
        ``k`` links.

    Returns
    -------
    float
        0 at the first centre; the first and last links are extended beyond the chain's ends
        (negative above the first body).
    """
    centres = np.asarray(centres, float).reshape(-1, 3)
    if len(centres) < 2:
        return 0.0
    d = np.diff(centres, axis=0)
    length = np.linalg.norm(d, axis=1)
    t = np.einsum("ij,ij->i", np.asarray(point, float) - centres[:-1], d) / length ** 2
    t[1:] = np.maximum(t[1:], 0.0)
    t[:-1] = np.minimum(t[:-1], 1.0)
    gap = np.linalg.norm(centres[:-1] + t[:, None] * d - point, axis=1)
    k = int(np.argmin(gap))
    return float(np.concatenate([[0.0], np.cumsum(length)])[k] + t[k] * length[k])


def find_ribs(bone: np.ndarray, grid: Volume, off, dt: np.ndarray, core_lab: np.ndarray,
              chain, *, core_mm: float, options: CountOptions) -> RibFindings:
    """Ribs beside the chain's bodies, each assigned to the vertebra it articulates with.

    Parameters
    ----------
    bone : np.ndarray, bool, shape (nz, ny, nx)
        Bone mask (a crop of ``grid`` starting at index ``off``; usually the coarse pass).
    grid : Volume
        Geometry of the uncropped mask.
    off : tuple of int
        (z, y, x) index of ``bone[0, 0, 0]`` in ``grid``.
    dt : np.ndarray, float, shape of ``bone``
        Distance to the nearest non-bone voxel (mm).
    core_lab : np.ndarray, int, shape of ``bone``
        Core labels (``dt >= core_mm`` components); ``chain`` items carry their ``label``.
    chain : sequence
        Vertebral bodies, cranial first, with ``centre`` (LPS, mm) and ``label``.
    core_mm : float
        The core depth: a rib has no voxel this deep.
    options : CountOptions

    Returns
    -------
    RibFindings
    """
    out = RibFindings()
    zz, yy, xx = np.nonzero(bone)
    out.thin_points = np.zeros(len(zz), bool)
    if len(chain) == 0 or len(zz) == 0:
        return out
    sp = G.spacing_zyx(grid)
    voxel = float(np.prod(sp))
    pts = grid.index_to_lps(np.stack([xx + off[2], yy + off[1], zz + off[0]], axis=-1))
    az, ax, ay = _axis(chain)
    lat = pts[:, 0] - np.interp(pts[:, 2], az, ax)
    post = pts[:, 1] - np.interp(pts[:, 2], az, ay)
    absl = np.abs(lat)
    outer_sel = absl >= options.near_mm
    if not outer_sel.any():
        return out
    outer = np.zeros(bone.shape, bool)
    outer[zz[outer_sel], yy[outer_sel], xx[outer_sel]] = True
    lab, n = ndi.label(outer, structure=_FULL)
    comp = lab[zz, yy, xx]
    counts = np.bincount(comp, minlength=n + 1)
    depth = np.zeros(n + 1)
    np.maximum.at(depth, comp, dt[zz, yy, xx])
    reach = np.zeros(n + 1)
    np.maximum.at(reach, comp, absl)
    inner = np.full(n + 1, np.inf)
    np.minimum.at(inner, comp, absl)
    thin = depth < core_mm
    thin[0] = False
    out.thin_points = thin[comp]
    cand = np.nonzero(thin & (counts * voxel >= options.rib_min_mm3)
                      & (reach >= options.rib_reach_mm)
                      & (inner <= options.near_mm + options.rib_gap_mm))[0]
    if len(cand) == 0:
        return out

    # Which vertebra each piece of the column belongs to: a watershed of the column's bone (with
    # the transverse processes, without the rib candidates) on the depth map, seeded by the body
    # cores: joints between vertebrae are thin, so the basins meet there.
    from skimage.segmentation import watershed

    col_sel = (absl < options.near_mm + 2.0 * options.rib_gap_mm) & ~np.isin(comp, cand)
    near = np.zeros(bone.shape, bool)
    near[zz[col_sel], yy[col_sel], xx[col_sel]] = True
    box = G.bbox_slices(near, np.ceil(options.rib_gap_mm / sp).astype(int) + 1)
    markers = np.zeros(bone.shape, np.int32)
    for i, c in enumerate(chain):
        markers[core_lab == c.label] = i + 1
    basins = np.zeros(bone.shape, np.int32)
    basins[box] = watershed(-dt[box], markers[box] * near[box], mask=near[box])
    centres = np.array([c.centre for c in chain], float).reshape(-1, 3)
    s_bodies = np.array([along_chain(c, centres) for c in centres])
    level_mm = float(np.median(np.diff(s_bodies))) if len(chain) > 1 else np.inf

    for k in cand:
        sel = comp == k
        medial = sel & (absl <= inner[k] + 4.0)
        if not (-25.0 <= float(np.median(post[medial])) <= 60.0):
            continue                                    # anterior end (clavicle, sternal rib end)
        mz, my, mx = zz[medial], yy[medial], xx[medial]
        pad = np.ceil(options.rib_gap_mm / sp).astype(int) + 1
        lo = np.maximum([mz.min(), my.min(), mx.min()] - pad, 0)
        hi = np.minimum(np.array([mz.max(), my.max(), mx.max()]) + pad + 1, bone.shape)
        sub = basins[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if not sub.any():
            continue
        d, ind = ndi.distance_transform_edt(sub == 0, sampling=sp, return_indices=True)
        iz, iy, ix = mz - lo[0], my - lo[1], mx - lo[2]
        ok = d[iz, iy, ix] <= options.rib_gap_mm
        if not ok.any():
            continue
        owners = sub[ind[0][iz[ok], iy[ok], ix[ok]], ind[1][iz[ok], iy[ok], ix[ok]],
                     ind[2][iz[ok], iy[ok], ix[ok]]]
        body = int(np.bincount(owners).argmax()) - 1
        s_rib = along_chain(pts[medial].mean(axis=0), centres)
        body = rib_body(body, s_bodies, s_rib, level_mm=level_mm)
        side = "left" if float(np.median(lat[sel])) > 0 else "right"
        out.ribs.append(Rib(side=side, body=body, medial_lps=pts[medial].mean(axis=0),
                            reach_mm=float(reach[k]), volume_mm3=float(counts[k] * voxel)))
    return out


# A rib's head this much nearer (in levels) one body than its basin's body is that body's.
RIB_HEAD_NEARER_LEVELS = 0.4


def rib_body(basin_body: int, s_bodies: np.ndarray, s_rib: float, *, level_mm: float) -> int:
    """The vertebra a rib belongs to: its watershed basin's, unless that body is far from its head.

    The basin that reaches the rib's medial end is its vertebra's, unless that body lies more than
    :data:`RIB_HEAD_NEARER_LEVELS` of a level farther along the column from the rib's head than
    the nearest body does: the lowest ribs (10-12) articulate with their own body alone, their
    heads beside its upper half (within about 0.35 of a level of its centre, a body being about
    0.7 of a level tall), so a head that much nearer one body is that body's; a head at a disc
    (ribs 2-9) is left to the basin. On a strongly tilted column the arch of the vertebra two
    below reaches back up beside the rib's head (a real chest CT at 2 mm blocks: the 12th rib's
    head level with T12 was given to L2, so L2 was "T12"); where the field of view cuts T12,
    L1's basin floods its arch (a real lumbar CT resampled to 2 mm: the 12th rib's head 6 mm
    from T12's centre was given to L1, 27 mm away, so one lumbar vertebra went missing from the
    count; at 3 mm the head 11 mm below the cut T12's centre and 28 mm above L1's, 0.45 of a
    level nearer T12).

    Parameters
    ----------
    basin_body : int
        Chain index of the body whose basin reaches the rib's medial end.
    s_bodies : np.ndarray, float, shape (n,)
        The bodies' positions along the column (mm, :func:`along_chain`).
    s_rib : float
        The rib head's position along the column (mm).
    level_mm : float
        The column's typical distance between neighbouring bodies (mm).

    Returns
    -------
    int
        Chain index of the rib's vertebra.
    """
    offsets = np.abs(np.asarray(s_bodies, float) - s_rib)
    if offsets[basin_body] - offsets.min() > RIB_HEAD_NEARER_LEVELS * level_mm:
        return int(np.argmin(offsets))
    return int(basin_body)


def body_cut_below(chain, bone: np.ndarray, grid: Volume, off, fov: Volume, *,
                   radius_mm: float = 10.0, min_fill: float = 0.3,
                   min_partial_mm: float = 6.0) -> bool:
    """Whether the field of view ends inside a vertebral body below the chain's last one.

    A body the scan's edge cuts a few centimetres deep has no core (too shallow, or its marrow
    not filled), so the chain ends one body early: a chest CT that ends in L3 counted to L2.
    Below the last body, along the column (the last link extended), the next body's upper
    endplate lies about 0.6 of a level spacing away (half a body and a disc); when the field of
    view reaches at least ``min_partial_mm`` past it, but not past the body (1.4 spacings), and
    bone fills at least ``min_fill`` of a cylinder of ``radius_mm`` around the axis there, that
    body is in view, cut.

    Parameters
    ----------
    chain : sequence
        Bodies, cranial first, with ``centre`` (LPS mm); at least two.
    bone : np.ndarray, bool, shape (nz, ny, nx)
        The mask the chain came from, a crop of ``grid`` starting at index ``off`` (z, y, x).
    grid : Volume
        Geometry of the uncropped mask.
    off : tuple of int
    fov : Volume
        The scan's own grid (its edge is the field of view's).

    Returns
    -------
    bool
    """
    below = _column_below(chain, bone, grid, off, fov, radius_mm=radius_mm, min_fill=min_fill,
                          min_partial_mm=min_partial_mm)
    return below is not None and not below[1]


def column_continues_below(chain, bone: np.ndarray, grid: Volume, off, fov: Volume, *,
                           radius_mm: float = 10.0, min_fill: float = 0.05) -> float | None:
    """How far (mm) the field of view reaches below the chain's last body when a whole body's
    length of it lies below with some bone along the column there (the cylinder of
    :func:`body_cut_below`, ``min_fill`` of it bone): the bodies below are in view but have
    no core in the bone (their marrow left out); None otherwise. Parameters as
    :func:`body_cut_below`'s.

    Measured on a real 3 mm CT whose bone left the sacrum's fatty marrow out (a fifth of the
    cylinder below L5 bone): the count stopped at L5 with the scan reaching 156 mm further
    down the column, and the refusal said "the scan ends at L5".
    """
    below = _column_below(chain, bone, grid, off, fov, radius_mm=radius_mm, min_fill=min_fill,
                          min_partial_mm=0.0)
    return below[0] if below is not None and below[1] else None


def _column_below(chain, bone: np.ndarray, grid: Volume, off, fov: Volume, *, radius_mm: float,
                  min_fill: float, min_partial_mm: float) -> tuple[float, bool] | None:
    """``(to_fov, beyond)`` when bone fills at least ``min_fill`` of the cylinder where the next
    body below the chain's last one lies (0.6-1.4 level spacings along the column) and the
    field of view reaches ``min_partial_mm`` into it: ``to_fov`` the distance (mm) from the
    last body's centre to the field of view's edge along the column, ``beyond`` whether that
    edge lies past the next body (more than 1.4 spacings); None otherwise."""
    if len(chain) < 2:
        return None
    centres = np.array([c.centre for c in chain], float)
    links = np.diff(centres, axis=0)
    spacing = float(np.median(np.linalg.norm(links[-3:], axis=1)))
    u = links[-1] / np.linalg.norm(links[-1])
    if u[2] > -0.5:                               # not heading down the column
        return None
    last = centres[-1]
    to_fov = (last[2] - fov_bottom_z(fov, last[0], last[1])) / -u[2]
    start, stop = 0.6 * spacing, min(to_fov, 1.4 * spacing)
    if not np.isfinite(to_fov) or stop < start + min_partial_mm:
        return None
    # Sample the cylinder on a 1.5 mm lattice in LPS and read the mask there.
    (a,), (b,) = G.cross_axes(u[None])
    disc = G.disc_offsets(radius_mm, 1.5)                                  # (M, 2)
    t = np.arange(start, stop, 1.5)
    pts = (last + t[:, None, None] * u + disc[None, :, :1] * a
           + disc[None, :, 1:] * b).reshape(-1, 3)
    ijk = np.rint(grid.lps_to_index(pts)).astype(int)[:, ::-1] - np.asarray(off)   # (z, y, x)
    inside = np.all((ijk >= 0) & (ijk < np.array(bone.shape)), axis=1)
    if inside.sum() < 0.5 * len(pts):
        return None
    k = ijk[inside]
    if bone[k[:, 0], k[:, 1], k[:, 2]].mean() < min_fill:
        return None
    return float(to_fov), bool(to_fov > 1.4 * spacing)


# --- the sacrum ----------------------------------------------------------------------------------
def fov_bottom_z(grid: Volume, x: float, y: float) -> float:
    """Lowest LPS z (mm) of the field of view on the vertical line through (x, y) (the edge of
    the outermost voxels); +inf when the line misses the volume."""
    return _fov_z_extent(grid, x, y)[0]


def fov_top_z(grid: Volume, x: float, y: float) -> float:
    """Highest LPS z (mm) of the field of view on the vertical line through (x, y) (the edge of
    the outermost voxels); -inf when the line misses the volume."""
    return _fov_z_extent(grid, x, y)[1]


def cut_by_fov_top(body, fov: Volume, *, core_mm: float) -> bool:
    """Whether the field of view's top edge cuts ``body`` (with ``centre`` and ``top_z``, LPS
    mm): its core reaches within the core depth ``core_mm`` and two voxels of that edge."""
    top = fov_top_z(fov, float(body.centre[0]), float(body.centre[1]))
    return body.top_z + core_mm >= top - 2.0 * float(np.max(fov.spacing_mm))


def _fov_z_extent(grid: Volume, x: float, y: float) -> tuple[float, float]:
    """(lowest, highest) LPS z (mm) of the field of view on the vertical line through (x, y);
    (+inf, -inf) when the line misses the volume."""
    miss = (float("inf"), float("-inf"))
    m = grid.direction * grid.spacing_mm[None, :]
    minv = np.linalg.inv(m)
    o = minv @ (np.array([x, y, 0.0]) - grid.origin_lps_mm)   # index at z = 0
    d = minv @ np.array([0.0, 0.0, 1.0])                        # index change per mm of z
    lo_t, hi_t = -np.inf, np.inf
    for a in range(3):
        n = grid.array.shape[2 - a]
        lo, hi = -0.5, n - 0.5
        if abs(d[a]) < 1e-12:
            if not (lo <= o[a] <= hi):
                return miss
            continue
        t1, t2 = (lo - o[a]) / d[a], (hi - o[a]) / d[a]
        lo_t, hi_t = max(lo_t, min(t1, t2)), min(hi_t, max(t1, t2))
    return (float(lo_t), float(hi_t)) if lo_t <= hi_t else miss


#: A sacrum check's field of view "ends" below the body when it reaches less than this (mm)
#: past the depth needed: the depth is measured along the sloping column (30-50 degrees at the
#: sacrum), the field of view's reach straight down.
FOV_SLACK_MM = 15.0


@dataclass
class SacrumCheck:
    """The evidence that one chain body is the sacrum.

    Attributes
    ----------
    index : int
        Chain index of the body examined.
    ilia : tuple of str
        Sides (``"left"``, ``"right"``) with thick bone far lateral at its height.
    shaped : bool
        Its core is wider, larger or taller than the body above's by the set ratios.
    ratios : tuple of float
        (width, volume, height) of its core over the body above's (0 when there is none).
    depth_mm : float
        How far the bone and the field of view reach below its top (mm).
    deep_enough : bool
    min_depth_mm : float
    fov_depth_mm : float
        How far the field of view reaches below its top (mm), bone or not.
    slivers_above : bool
        Every body its shape was judged against is a sliver of a core
        (:attr:`CountOptions.shape_reference_min_mm3`): not shaped, whatever the ratios.
    """

    index: int
    ilia: tuple[str, ...]
    shaped: bool
    ratios: tuple[float, float, float]
    depth_mm: float
    deep_enough: bool
    min_depth_mm: float = 30.0
    fov_depth_mm: float = float("inf")
    slivers_above: bool = False

    @property
    def cut_by_fov(self) -> bool:
        """Too shallow because the field of view ends (not the bone: a sacrum left hollow in the
        bone labels is shallow with the scan going on below it)."""
        return self.fov_depth_mm < self.min_depth_mm + FOV_SLACK_MM

    @property
    def ok(self) -> bool:
        return bool(self.ilia) and self.shaped and self.deep_enough

    def missing(self) -> str:
        """What is missing, as words for a refusal (empty when nothing)."""
        if not self.ilia:
            return "no sacrum found (no ilia beside the lowest vertebral body)"
        if not self.shaped and self.slivers_above:
            return ("no sacrum found: the vertebral bodies above the lowest one are only slivers "
                    "of bone in the labels (their marrow left out), so whether it is the sacrum "
                    "cannot be told from its shape")
        if not self.shaped:
            # Not "it has ilia beside it": what the ilia test found can be ribs or a scapula
            # on a chest CT, and the shape is what decides.
            return ("no sacrum found: the lowest vertebral body is not shaped like a sacrum (no "
                    "wider, larger or taller than the body above it), so the sacrum is outside "
                    "the field of view or not segmented")
        if not self.deep_enough and not self.cut_by_fov:
            return (f"too little of the sacrum is solid in the bone labels (only "
                    f"{max(self.depth_mm, 0.0):.0f} mm of bone below the lowest disc, while the "
                    f"field of view reaches {self.fov_depth_mm:.0f} mm below it; at least "
                    f"{self.min_depth_mm:.0f} mm are needed to confirm S1)")
        if not self.deep_enough:
            return (f"the sacrum is mostly outside the field of view (only "
                    f"{max(self.depth_mm, 0.0):.0f} mm of bone below the lowest disc are in view; "
                    f"at least {self.min_depth_mm:.0f} mm of the sacrum are needed to confirm S1)")
        return ""


def _core_extent(p: np.ndarray) -> tuple[float, float, float]:
    """(left-right width, volume in voxels, cranio-caudal height) of one core's voxel centres
    ``p`` (N, 3, LPS mm), mm."""
    if len(p) == 0:
        return 0.0, 0.0, 0.0
    w = float(np.percentile(p[:, 0], 98) - np.percentile(p[:, 0], 2))
    h = float(np.percentile(p[:, 2], 98) - np.percentile(p[:, 2], 2))
    return w, float(len(p)), h


def _line_exit(grid: Volume, p0: np.ndarray, u: np.ndarray) -> float:
    """Distance (mm) from ``p0`` along the unit vector ``u`` to where the line leaves the field of
    view of ``grid`` (the outer edge of its voxels); 0 when ``p0`` is outside it."""
    m = grid.direction * grid.spacing_mm[None, :]
    minv = np.linalg.inv(m)
    o = minv @ (np.asarray(p0, float) - grid.origin_lps_mm)
    d = minv @ np.asarray(u, float)
    hi_t = np.inf
    for a in range(3):
        n = grid.array.shape[2 - a]
        lo, hi = -0.5, n - 0.5
        if not (lo <= o[a] <= hi):
            return 0.0
        if abs(d[a]) > 1e-12:
            hi_t = min(hi_t, ((hi if d[a] > 0 else lo) - o[a]) / d[a])
    return float(hi_t)


#: A bin along the column with less bone than this fraction of the upper body's own fill is the
#: disc (:func:`_depth_below_gap`). Not a quarter: at 2.5 mm slices a thin L5/S1 disc keeps a
#: third of its bins' bone by partial volume (0.31 measured on a real-bone phantom's fused
#: labels; 0.25 refused that scan and the true labels of another one as "sacrum outside the
#: field of view"); a body's own bins hold 0.85 or more.
DISC_BIN_FRACTION = 0.35


@dataclass(frozen=True)
class GapBelow:
    """The bone beyond the first disc-like gap below a body, along a line (:func:`gap_below`).

    Attributes
    ----------
    top_mm : float
        Distance (mm) along the line from the body's centre to the top of the bone below the gap.
    depth_mm : float
        How far (mm) that bone reaches beyond ``top_mm``, bounded by the field of view.
    axis : np.ndarray, shape (3,)
        The line's unit direction (LPS).
    """

    top_mm: float
    depth_mm: float
    axis: np.ndarray


def gap_below(bone_pts: np.ndarray, above: np.ndarray, centre: np.ndarray, fov: Volume,
              step: float, radius_mm: float = 10.0) -> GapBelow | None:
    """The first disc-like gap below ``above`` (a body centre) and the bone beyond it, in a
    cylinder of ``radius_mm`` along the line from ``above`` through ``centre`` (the body below:
    the column follows the lordosis and the sacral slope), bounded by the field of view.

    A run of bins under :data:`DISC_BIN_FRACTION` of the upper body's own fill is the disc; the
    next bin over 40 % of it is the top of the body below; without such a run, the narrowest bin
    between the two centres. None when no bone lies along the line inside the field of view.
    """
    above = np.asarray(above, float)
    axis = np.asarray(centre, float) - above
    if axis[2] > -1.0:
        axis = np.array([0.0, 0.0, -1.0])
    u = axis / np.linalg.norm(axis)
    t_end = _line_exit(fov, above, u)
    rel = bone_pts - above
    t = rel @ u
    r = np.linalg.norm(rel - np.outer(t, u), axis=1)
    t = t[(r <= radius_mm) & (t >= 0.0) & (t <= t_end)]
    if len(t) == 0 or t_end < 3 * step:
        return None
    edges = np.arange(0.0, t_end + step, step)
    counts = np.histogram(t, bins=edges)[0]                 # from ``above`` downwards
    ref = float(counts[:3].max())
    if ref <= 0:
        return None
    full = counts >= 0.4 * ref
    # A disc: a run of thin bins with bone again after it (thin bins where the bone ends, with
    # nothing after them, are the end of the column, not a disc).
    gap = [k for k in np.nonzero(counts < DISC_BIN_FRACTION * ref)[0] if full[k + 1:].any()]
    if gap:
        top = float(edges[np.flatnonzero(full & (np.arange(len(counts)) > gap[0]))[0]])
    else:
        # One block along the line (labels that bridged the disc there, while the two bodies'
        # cores are apart): the body below begins at the narrowest bone between the two
        # centres. (Its centre was taken instead, or the end of the bone for a disc, and half
        # the body was lost: a fused network label map's sacrum measured 0-29 mm deep and the
        # scan was refused as "the sacrum mostly outside the field of view".)
        centre_bin = min(int(np.linalg.norm(axis) // step), len(counts) - 1)
        top = float(edges[int(np.argmin(counts[: centre_bin + 1]))])
    below = t[t >= top]
    last = float(below.max()) + 0.5 * step if len(below) else top
    return GapBelow(top_mm=top, depth_mm=max(min(last, t_end) - top, 0.0), axis=u)


def _depth_below_gap(bone_pts: np.ndarray, above: np.ndarray, centre: np.ndarray, fov: Volume,
                     step: float, radius_mm: float = 10.0) -> float:
    """How far (mm) bone reaches beyond the first disc-like gap below ``above`` (see
    :func:`gap_below`); 0 when no bone follows a gap inside the field of view."""
    found = gap_below(bone_pts, above, centre, fov, step, radius_mm)
    return 0.0 if found is None else found.depth_mm


def _upper_medial_centre(p: np.ndarray, above: np.ndarray, *, fallback: np.ndarray,
                         half_width_mm: float = 15.0, top_mm: float = 20.0) -> np.ndarray:
    """Centre (LPS mm) of a core's voxel centres ``p`` (N, 3, LPS mm) within ``half_width_mm``
    left-right of the body above and within ``top_mm`` of their highest point: where the column
    enters the body below.

    A sacrum's core merged with bone beside S1 (an ilium at the sacroiliac joint) has its
    centroid 10-15 mm lateral and behind the S1 body, and a depth line aimed there crosses the
    L5/S1 disc obliquely, where it never looks like a gap (real-bone phantoms at 2.5-3 mm).
    ``fallback`` when no voxel qualifies.
    """
    p = p[np.abs(p[:, 0] - float(above[0])) <= half_width_mm]
    if len(p) == 0:
        return np.asarray(fallback, float)
    p = p[p[:, 2] >= p[:, 2].max() - top_mm]
    return p.mean(axis=0)


#: The sacrum's shape is judged against the body above, or against the median of this many
#: bodies above when that is larger (see :func:`check_sacrum`).
SHAPE_REFERENCE_BODIES = 4


def check_sacrum(index: int, chain, bone_pts: np.ndarray, heavy: np.ndarray, grid: Volume,
                 core_lab: np.ndarray, off, fov: Volume, *, core_mm: float,
                 ilium_lateral_mm: float, min_ilium_mm3: float, voxel_mm3: float,
                 options: CountOptions) -> SacrumCheck:
    """Measure the evidence that ``chain[index]`` is the sacrum.

    Parameters
    ----------
    index : int
        Chain index (cranial first) of the candidate.
    chain : sequence
        Bodies with ``centre``, ``top_z``, ``volume_mm3`` and ``label``.
    bone_pts : np.ndarray, shape (N, 3)
        LPS centres of the bone voxels (``np.nonzero`` order of the mask ``core_lab`` came from).
    heavy : np.ndarray, bool, shape (N,)
        Voxels that may be ilium (not part of a thin far-lateral piece such as a rib).
    grid, core_lab, off
        The mask's geometry, its core labels and the crop offset (z, y, x).
    fov : Volume
        The full label map's grid: the field of view.
    core_mm, ilium_lateral_mm, min_ilium_mm3, voxel_mm3 : float
        Core depth, the ilium's lateral distance and volume, and the voxel volume of ``grid``.
    options : CountOptions
    """
    c = chain[index]
    top = c.top_z + core_mm
    # Ilia: thick bone far lateral from 45 mm below the body's top to 5 mm above it.
    slab = heavy & (bone_pts[:, 2] <= top + 5.0) & (bone_pts[:, 2] >= top - 45.0 - core_mm)
    dx = bone_pts[slab, 0] - c.centre[0]
    sides = tuple(s for s, n in (("left", np.count_nonzero(dx > ilium_lateral_mm)),
                                 ("right", np.count_nonzero(dx < -ilium_lateral_mm)))
                  if n * voxel_mm3 >= min_ilium_mm3)
    # Shape: the sacrum's core (body, alae, S2) against the body above, or against the bodies
    # above when the one above is smaller than they are: a partial core just above (1000 mm^3
    # beside bodies of 4000-9000) made L4 "3.7x as tall" (a patient-like phantom whose sacrum
    # had no core in the bone, planned 80 mm off at moderate confidence).
    ratios = (0.0, 0.0, 0.0)
    shaped = slivers = False
    if index > 0:
        # The candidate's core voxels, read once for its shape and its depth line below.
        c_pts = G.voxel_points(grid, core_lab == c.label, off)
        above = np.array([_core_extent(G.voxel_points(grid, core_lab == chain[k].label, off))
                          for k in range(max(index - SHAPE_REFERENCE_BODIES, 0), index)])
        a = np.maximum(above[-1], np.median(above, axis=0))
        b = _core_extent(c_pts)
        ratios = tuple(float(bb / aa) if aa > 0 else 0.0 for aa, bb in zip(a, b))
        shaped = (ratios[0] >= options.sacrum_width_ratio
                  or ratios[1] >= options.sacrum_volume_ratio
                  or ratios[2] >= options.sacrum_height_ratio)
        # Against slivers of marrow only (every body above a small core that the field of view
        # does not cut) the ratios measure the labels' holes, not a sacrum: no evidence.
        reference = [chain[k] for k in range(max(index - SHAPE_REFERENCE_BODIES, 0), index)]
        slivers = all(r.volume_mm3 < options.shape_reference_min_mm3
                      and not cut_by_fov_top(r, fov, core_mm=core_mm) for r in reference)
        shaped = shaped and not slivers
    # Depth: from the top of the body (measured under the body above, where the sacral
    # promontory lies: a candidate merged with the ilia has a core reaching the iliac crests) to
    # where the bone or the field of view ends.
    if index > 0:
        step = float(max(grid.spacing_mm.max(), 1.0))
        # Along the line to the core's centre and to its upper medial part, whichever sees
        # more (see _upper_medial_centre).
        aim = _upper_medial_centre(c_pts, chain[index - 1].centre, fallback=c.centre)
        depth = max(_depth_below_gap(bone_pts, chain[index - 1].centre, target, fov, step)
                    for target in (c.centre, aim))
    fov_depth = top - fov_bottom_z(fov, float(c.centre[0]), float(c.centre[1]))
    if index == 0:
        depth = fov_depth
    return SacrumCheck(index=index, ilia=sides, shaped=shaped, ratios=ratios, depth_mm=float(depth),
                       deep_enough=depth >= options.min_sacrum_depth_mm,
                       min_depth_mm=options.min_sacrum_depth_mm, fov_depth_mm=float(fov_depth),
                       slivers_above=slivers)


@dataclass(frozen=True)
class HollowSacrum:
    """A sacrum found without a core (:func:`find_hollow_sacrum`).

    Attributes
    ----------
    centre_lps : np.ndarray, shape (3,)
        Centre (LPS mm) of the seed: the bone just below the L5/S1 gap along the column.
    seed_lps : np.ndarray, shape (M, 3)
        The seed's bone voxel centres (LPS mm): the top of S1.
    depth_mm : float
        How far bone reaches below the gap along the column, in the field of view (mm).
    """

    centre_lps: np.ndarray
    seed_lps: np.ndarray
    depth_mm: float


def find_hollow_sacrum(chain, bone_pts: np.ndarray, fov: Volume, *, step: float,
                       voxel_mm3: float, options: CountOptions) -> HollowSacrum | None:
    """The top of a sacrum that has no core: the bone the column runs into beyond the first
    disc-like gap below the chain's last body.

    An elderly sacrum's marrow is fat (-140 to +90 HU measured on a real 3 mm CT) and its S1
    body, sloping back at 40-50 degrees, is solid in axial slices over a few millimetres only:
    the bone labels keep its cortex and leave it without a core, and the count ends at L5 with
    the column going on below. Here the line of the last link (L4 to L5), in the column's
    sagittal plane, is followed past the L5/S1 gap (:func:`gap_below`); the bone around it
    (``options.hollow_half_width_mm`` left and right, ``options.hollow_radius_mm`` front and
    back), from the gap down to ``options.hollow_seed_mm`` below, is the top of S1. Whether
    that body is the sacrum is for the caller to establish (the rib count, the ilia): this only
    finds it.

    Parameters
    ----------
    chain : sequence
        Bodies with ``centre`` (LPS mm), cranial first; at least two.
    bone_pts : np.ndarray, shape (N, 3)
        LPS centres of the bone voxels.
    fov : Volume
        The scan's grid (its field of view).
    step : float
        Bin length along the column (mm): the coarse voxel size.
    voxel_mm3 : float
        Volume of one of ``bone_pts``' voxels.
    options : CountOptions

    Returns
    -------
    HollowSacrum or None
        None when no gap and bone follow, the seed holds less than
        ``options.hollow_min_seed_mm3`` of bone, or bone goes on down the midline for less
        than ``options.min_sacrum_depth_mm`` below the gap (:func:`_midline_depth`).
    """
    if len(chain) < 2:
        return None
    # One link further down, in the sagittal plane through the last body's bone: its core may
    # lie to one side (a real 3 mm CT's osteoporotic L5 had two cores, 11 mm left and 12 mm
    # right of the midline; the chain took the left one).
    last = np.asarray(chain[-1].centre, float).copy()
    last[0] = _body_middle_x(bone_pts, last, float(np.median([c.centre[0] for c in chain])),
                             half_width_mm=options.hollow_half_width_mm + options.hollow_radius_mm,
                             depth_mm=options.hollow_radius_mm)
    aim = last + (np.asarray(chain[-1].centre, float) - np.asarray(chain[-2].centre, float))
    aim[0] = last[0]
    found = gap_below(bone_pts, last, aim, fov, step, options.hollow_radius_mm)
    if found is None:
        return None
    rel = bone_pts - last
    t = rel @ found.axis
    across = rel - np.outer(t, found.axis)        # the axis has no left-right part: x is across
    front_back = np.linalg.norm(across[:, 1:], axis=1)
    # As wide as the S1 endplate's middle (it is 45-55 mm wide, 30-40 mm deep): a narrower
    # seed left one side of S1's top out, and the L5/S1 disc found against it with it.
    seed = bone_pts[(np.abs(across[:, 0]) <= options.hollow_half_width_mm)
                    & (front_back <= options.hollow_radius_mm) & (t >= found.top_mm)
                    & (t <= found.top_mm + options.hollow_seed_mm)]
    if len(seed) * voxel_mm3 < options.hollow_min_seed_mm3:
        return None
    depth = _midline_depth(bone_pts, last + found.top_mm * found.axis, fov, step=step,
                           half_width_mm=options.hollow_radius_mm)
    if depth < options.min_sacrum_depth_mm:
        return None
    return HollowSacrum(centre_lps=seed.mean(axis=0), seed_lps=seed, depth_mm=depth)


def _body_middle_x(bone_pts: np.ndarray, core_centre: np.ndarray, column_x: float, *,
                   half_width_mm: float, depth_mm: float) -> float:
    """LPS x (mm) midway between the left and right ends of a body's bone at its core's height:
    the bone within ``half_width_mm`` left and right of ``column_x`` and ``depth_mm`` up, down,
    front and back of ``core_centre`` (its 5th and 95th percentiles of x); ``column_x`` when
    there is none."""
    near = bone_pts[(np.abs(bone_pts[:, 0] - column_x) <= half_width_mm)
                    & (np.abs(bone_pts[:, 1] - core_centre[1]) <= depth_mm)
                    & (np.abs(bone_pts[:, 2] - core_centre[2]) <= depth_mm)]
    if len(near) == 0:
        return column_x
    lo, hi = np.percentile(near[:, 0], [5, 95])
    return float(0.5 * (lo + hi))


def _midline_depth(bone_pts: np.ndarray, top: np.ndarray, fov: Volume, *, step: float,
                   half_width_mm: float, max_gap_bins: int = 3) -> float:
    """How far down (LPS z, mm) bone goes on without a break from ``top`` (LPS mm), within
    ``half_width_mm`` left-right of it, in the field of view: the sacrum follows its slope
    backwards, which a line down the column leaves after a centimetre or two (a real 3 mm CT's
    S1, sloping 45 degrees). A break is ``max_gap_bins`` bins of ``step`` mm without bone."""
    z = bone_pts[(np.abs(bone_pts[:, 0] - top[0]) <= half_width_mm)
                 & (bone_pts[:, 2] <= top[2]), 2]
    reach = top[2] - fov_bottom_z(fov, float(top[0]), float(top[1]))
    if len(z) == 0 or not np.isfinite(reach) or reach <= 0:
        return 0.0
    counts = np.histogram(top[2] - z, bins=np.arange(0.0, reach + step, step))[0]
    empty = np.convolve(counts == 0, np.ones(max_gap_bins, int), "valid") == max_gap_bins
    stop = int(np.argmax(empty)) if empty.any() else len(counts)
    return float(min(stop * step, reach))


# --- the evidence record ------------------------------------------------------------------------
@dataclass
class LevelEvidence:
    """How well the levels (and so L5/S1) are established; JSON-ready via :meth:`to_dict`.

    Attributes
    ----------
    sacrum_found : bool
        A chain body passed every sacrum test (ilia, shape, depth), or a sacrum without a core
        was found below the L5 of the rib count (``sacrum_hollow``).
    sacrum_hollow : bool
        The sacrum has no core in the bone labels: found as the bone below the L5/S1 gap, its
        shape unchecked.
    ilia_found : bool
        Thick bone far lateral of the sacrum (or of the lowest body) on at least one side.
    ilia_sides : tuple of str
    sacrum_shape_ratios : tuple of float
        (width, volume, height) of the sacrum's core over L5's.
    sacrum_depth_mm : float or None
        How much of the sacrum below its top is in the field of view.
    s1_endplate_found : bool
        The L5/S1 disc (or the gap) between the L5 and S1 bodies was found.
    ribs_found : bool
    rib_levels : dict
        ``{"left": n, "right": n}``: rib-bearing levels found on each side.
    last_rib_level : str or None
        ``"T12"`` when ribs are in view (the last rib-bearing vertebra by definition).
    lumbar_count : int or None
        Bodies between the last rib-bearing vertebra and the sacrum (5 normally); None unless
        both are in view.
    rib_count_agrees : bool or None
        ``lumbar_count == 5``; None when either count is missing.
    missing_bodies : int
        Bodies inferred in chain gaps (no core found there).
    merged_bodies : int
        Cores in the counted span too tall for one body (several bodies merged in the labels).
    column_beyond_mm : float or None
        On a refusal: how far the field of view reaches down the column below the last body
        found, with bone there (:func:`column_continues_below`): the labels end there, not the
        scan; None otherwise.
    levels : tuple of str
        Names of the chain's bodies, cranial first (matching ``chain_centres_lps``); ``"?"``
        where they cannot be named.
    level_centres_lps : np.ndarray, shape (len(levels), 3)
        Their core centroids (LPS, mm); also set when the scan is refused.
    level_core_volumes_mm3 : np.ndarray, shape (len(levels),)
        Their cores' volumes (mm^3), as ``level_centres_lps``.
    last_level : str or None
        The lowest vertebra in view, by the count that could be made.
    counted_from : str
        ``"sacrum+ribs"``, ``"sacrum"``, ``"ribs"`` or ``"none"``.
    confidence : str
        ``"high"`` (sacrum, ilia both sides, S1 endplate, rib count agrees), ``"moderate"``
        (complete sacral evidence but no rib cross-check, the counts disagree, or one ilium only),
        ``"low"`` (a body missing from the chain or another doubt).
    reasons : list of str
        One line per point that set the confidence.
    warnings : list of str
        What a user must check (transitional anatomy), in words.
    chain_faults : list of str
        Signs, in words, that the chain of bodies down to the sacrum misses a body or has one
        merged into the sacrum's core (a body inferred in a gap, a long last link, a sacrum
        recognised by its height alone or hardly larger than L5, a sacral core too tall; once
        the landmarks are found, sacroiliac joints beginning a vertebra below the disc above
        the sacrum, :func:`~spinect_core.anatomy.checks.refuse_l5_fused_to_the_sacrum`): with a
        count that disagrees with the ribs, the levels are refused.
    """

    sacrum_found: bool = False
    sacrum_hollow: bool = False
    ilia_found: bool = False
    ilia_sides: tuple[str, ...] = ()
    sacrum_shape_ratios: tuple[float, float, float] = (0.0, 0.0, 0.0)
    sacrum_depth_mm: float | None = None
    s1_endplate_found: bool = False
    ribs_found: bool = False
    rib_levels: dict[str, int] = field(default_factory=dict)
    last_rib_level: str | None = None
    lumbar_count: int | None = None
    rib_count_agrees: bool | None = None
    missing_bodies: int = 0
    merged_bodies: int = 0
    column_beyond_mm: float | None = None
    levels: tuple[str, ...] = ()
    level_centres_lps: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    level_core_volumes_mm3: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last_level: str | None = None
    counted_from: str = "none"
    confidence: str = "low"
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chain_faults: list[str] = field(default_factory=list)

    def downgrade(self, to: str, reason: str) -> None:
        """Lower the confidence to ``to`` (never raise it) and record why."""
        order = ("low", "moderate", "high")
        if order.index(to) < order.index(self.confidence):
            self.confidence = to
        if reason and reason not in self.reasons:
            self.reasons.append(reason)

    def doubt(self, note: str) -> None:
        """Warn the user with ``note`` and lower the confidence to low for the same reason."""
        self.warnings.append(note)
        self.downgrade("low", note)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (for ``plan.json``)."""
        return {
            "confidence": self.confidence, "counted_from": self.counted_from,
            "sacrum_found": bool(self.sacrum_found), "sacrum_hollow": bool(self.sacrum_hollow),
            "ilia_found": bool(self.ilia_found),
            "ilia_sides": list(self.ilia_sides),
            "sacrum_shape_ratios": [round(float(r), 2) for r in self.sacrum_shape_ratios],
            "sacrum_depth_mm": None if self.sacrum_depth_mm is None else round(
                float(self.sacrum_depth_mm), 1),
            "s1_endplate_found": bool(self.s1_endplate_found),
            "ribs_found": bool(self.ribs_found), "rib_levels": dict(self.rib_levels),
            "last_rib_level": self.last_rib_level, "lumbar_count": self.lumbar_count,
            "rib_count_agrees": self.rib_count_agrees, "missing_bodies": int(self.missing_bodies),
            "merged_bodies": int(self.merged_bodies),
            "column_beyond_mm": (None if self.column_beyond_mm is None
                                 else round(float(self.column_beyond_mm), 1)),
            "levels": list(self.levels),
            "level_centres_lps": np.round(np.asarray(self.level_centres_lps, float), 1).tolist(),
            "last_level": self.last_level,
            "reasons": list(self.reasons), "warnings": list(self.warnings),
        }


def chain_positions(chain, options: CountOptions, *, core_mm: float = 7.0,
                    ends_with_sacrum: bool = False) -> tuple[list[int], int]:
    """Position of each chain body in the column, counting inferred missing bodies.

    The height between one core's bottom and the next one's top is a disc plus twice the core
    depth (20-26 mm); a body without a core (osteoporotic, cut by thick slices) adds its own
    height and a disc. Core centres would mislead here: the sacrum's lies far below its top.

    Parameters
    ----------
    chain : sequence
        Bodies, cranial first, with ``centre``, ``top_z`` and ``bottom_z`` (LPS z, mm).
    options : CountOptions
    core_mm : float
        The core depth.
    ends_with_sacrum : bool
        The last body is the sacrum: its link is not examined (a missing L5 core is not caught
        here) and is left out of the references.

    Returns
    -------
    positions : list of int
        0 for the first (most cranial) body, +1 per body, plus the bodies a gap most likely
        hides: a gap longer than the others' median by ``(missing_body_factor - 1)`` times the
        median body spacing (or by 18 mm at least).
    missing : int
        Bodies inferred in all gaps.
    """
    if len(chain) == 0:
        return [], 0
    top = np.array([k.top_z for k in chain], float)
    bottom = np.array([getattr(k, "bottom_z", np.nan) for k in chain], float)
    gaps = bottom[:-1] - top[1:]
    centres = np.array([k.centre for k in chain], float)
    links = np.abs(np.diff(centres[:, 2]))
    nominal_gap = 2.0 * core_mm + 10.0
    pos = [0]
    missing = 0
    # The sacrum's core top is no endplate (the alae and a merged ilium reach higher): its gap
    # is neither examined nor a reference.
    usable = np.isfinite(gaps)
    if ends_with_sacrum and len(gaps):
        usable[-1] = False
    for j, g in enumerate(gaps):
        others = gaps[usable & (np.arange(len(gaps)) != j)]
        ref_gap = float(np.median(others)) if len(others) else nominal_gap
        # The spacing of the other bodies, without the sacrum's (its centre lies deep).
        keep = np.ones(len(links), bool)
        keep[j] = False
        if ends_with_sacrum:
            keep[-1] = False
        spacing = float(np.median(links[keep])) if keep.any() else 30.0
        extra = 0
        excess = g - ref_gap
        if usable[j] and excess > max((options.missing_body_factor - 1.0) * spacing, 18.0):
            extra = max(int(round(excess / spacing)), 1)
        missing += extra
        pos.append(pos[-1] + 1 + extra)
    return pos, missing


def merged_bodies(chain, grid: Volume, core_lab: np.ndarray, off, *, max_height_mm: float
                  ) -> dict[int, float]:
    """Chain bodies whose core is taller (along the column) than one body can be.

    Parameters
    ----------
    chain : sequence
        Bodies, cranial first, with ``centre`` and ``label``.
    grid, core_lab, off
        Geometry of the mask the cores came from, the core labels and the crop offset (z, y, x).
    max_height_mm : float

    Returns
    -------
    dict of int to float
        Chain index -> core height (mm) for the bodies over ``max_height_mm``.
    """
    out: dict[int, float] = {}
    centres = np.array([c.centre for c in chain], float).reshape(-1, 3)
    for j, c in enumerate(chain):
        # The local column axis: through the neighbouring centres (vertical for a lone body).
        a = centres[max(j - 1, 0)] - centres[min(j + 1, len(chain) - 1)]
        u = a / np.linalg.norm(a) if np.linalg.norm(a) > 1e-6 else np.array([0.0, 0.0, 1.0])
        h = G.voxel_points(grid, core_lab == c.label, off) @ u
        height = float(np.percentile(h, 99) - np.percentile(h, 1)) if len(h) else 0.0
        if height > max_height_mm:
            out[j] = height
    return out


def name_levels(positions: Sequence[int], *, sacrum: int | None, t12: int | None
                ) -> tuple[str, ...]:
    """Names of the chain bodies from the last rib-bearing one (T12, then L1...) when ribs are in
    view, else from the sacrum (S1, then L5, L4...); ``"?"`` when neither is.

    Bodies below the sacrum are sacral (``"S1"`` names the sacrum as a whole).
    """
    out = []
    for j, p in enumerate(positions):
        if sacrum is not None and j >= sacrum:
            out.append("S1" if j == sacrum else "sacrum")
        elif t12 is not None:
            out.append(level_below("T12", p - positions[t12]))
        elif sacrum is not None:
            out.append(level_below("L5", -(positions[sacrum] - p - 1)))
        else:
            out.append("?")
    return tuple(out)


def count_warnings(lumbar_count: int) -> list[str]:
    """Words for a lumbar count other than 5 (transitional anatomy); empty for 5."""
    if lumbar_count == 5:
        return []
    last = f"L{lumbar_count}" if lumbar_count > 0 else "T12"
    head = (f"{lumbar_count} lumbar vertebrae between the last rib-bearing vertebra (T12) and the "
            "sacrum: the rib count and the count from the sacrum disagree")
    tail = (f"; the planned L5/S1 is the disc above the sacrum, {last}/S1 by the rib count; "
            "confirm the level count on a full-spine view before injecting")
    if lumbar_count == 4:
        return [head + " (possible sacralised L5: a lumbar vertebra fused with the sacrum, or only "
                "11 rib pairs)" + tail]
    if lumbar_count == 6:
        return [head + " (possible lumbarised S1 or a sixth lumbar vertebra, or a missing 12th rib "
                "pair)" + tail]
    return [head + " (the count is unreliable)" + tail]


_USE = "use a CT that includes L5 and the sacrum"


def _absent_below(last: str) -> str:
    """What is missing below the last vertebra ``last``, with its verb: "L4, L5 and the sacrum
    are" below L3, "the lumbar spine (L1-L5) and the sacrum are" below a thoracic vertebra,
    "the sacrum (S1) is" below L5 (or a sixth lumbar vertebra)."""
    if level_rank(last) >= level_rank("L5"):
        return "the sacrum (S1) is"
    if level_rank(last) < level_rank("L1"):
        return "the lumbar spine (L1-L5) and the sacrum are"
    below = [v for v in ("L1", "L2", "L3", "L4", "L5") if level_rank(v) > level_rank(last)]
    return ", ".join(below) + " and the sacrum are"


def refused_last_level(refusal: BaseException) -> str | None:
    """The last level a refused count named (``"L3"`` of "the scan ends at L3": its
    :class:`LevelEvidence`'s ``last_level``), or None when it named none."""
    last = getattr(getattr(refusal, "evidence", None), "last_level", None)
    return last if last and last != "?" else None


#: Without ribs, a refusal says L5/S1 is out of view only when the field of view reaches less
#: than this (mm) below the lowest body's top: a body, a disc and the least sacrum the count
#: needs (:attr:`CountOptions.min_sacrum_depth_mm`). Farther, the sacrum may be in view but not
#: recognised (a patient-like phantom at 5 mm slices, its sacrum in view, was refused as "L5/S1
#: is not in the field of view").
SACRUM_IN_VIEW_MM = 70.0


def refusal_message(missing: str, *, last_level: str | None, counted_from: str,
                    just_below: bool = False, cut: bool = False, uncountable: str = "",
                    fov_below_mm: float | None = None) -> str:
    """One-line refusal that says first what was found: where the scan ends when the count
    says so, then what is missing, then what to do.

    * the count ends above L5: ``"the scan ends at L3 (counted down from the last rib-bearing
      vertebra, T12): L4, L5 and the sacrum are not in the field of view, so L5/S1 is not in
      the field of view; use ..."`` (no word on the sacrum test: there is no sacrum to test);
    * it ends at L5: where it ends, then why the bone below is not a sacrum (``missing``);
    * it ends below L5 (the count names an L6): L5/S1 is not said to be out of view (the disc
      under L5 is in view), only that the body below L5 is no recognisable sacrum;
    * the levels cannot be counted (``uncountable``, or no ribs): why, and ``missing``; with
      ``uncountable`` the message does not say L5/S1 is out of view (it may be in view).

    Parameters
    ----------
    missing : str
        Why the lowest body is not the sacrum (:meth:`SacrumCheck.missing`).
    last_level : str or None
        The last vertebra the count names (None or ``"?"``: not counted).
    counted_from : str
        ``ribs`` when counted down from T12 (said in the message).
    just_below : bool
        The scan ends a little below ``last_level`` (a sliver of the next body in view) rather
        than within it.
    cut : bool
        ``last_level`` is a body the field of view cuts (:func:`body_cut_below`): "the scan
        ends within L3".
    uncountable : str
        Why the levels cannot be counted although ribs are in view (replaces where it ends).
    fov_below_mm : float, optional
        How far the field of view reaches below the lowest body's top (mm), given when it does
        not end within a body there: from :data:`SACRUM_IN_VIEW_MM` on the message does not say
        L5/S1 is out of view (without ribs, or with a count that ends at L5 or above).
    """
    if uncountable:
        # The count failed: whether L5/S1 is in view is not known.
        return (f"L5/S1 cannot be identified: {missing}, and {uncountable}; check the bone "
                f"segmentation, or {_USE}")
    if not last_level or last_level == "?":
        if fov_below_mm is not None and fov_below_mm >= SACRUM_IN_VIEW_MM:
            return (f"L5/S1 cannot be identified: {missing}, and no ribs are in view to count the "
                    f"levels from, so the levels cannot be counted, while the field of view "
                    f"reaches {fov_below_mm:.0f} mm below the top of the lowest vertebral body "
                    f"found (the sacrum may be in view but not in the bone labels); check the "
                    f"bone segmentation, or {_USE}")
        return (f"L5/S1 is not in the field of view: {missing}, and no ribs are in view to count "
                f"the levels from, so the levels cannot be counted; {_USE}")
    at = (f"just below {last_level}" if just_below else
          f"within {last_level}" if cut else f"at {last_level}")
    counted = (" (counted down from the last rib-bearing vertebra, T12)" if counted_from == "ribs"
               else "")
    where = f"the scan ends {at}{counted}"
    if (level_rank(last_level) <= level_rank("L5") and fov_below_mm is not None
            and fov_below_mm >= SACRUM_IN_VIEW_MM):
        # The field of view goes on a body's length and more below the last body counted: the
        # scan does not end there, the bodies below are not recognised (TotalSegmentator's
        # real CT resampled to 1.25 mm, its rib count one level high and L5 joined to the
        # sacrum, was refused as "the scan ends at L4: L5 and the sacrum are not in the field
        # of view"; the same CT at 3 mm with its grid moved by half a voxel, the sacrum's
        # marrow left out of the bone, as "the scan ends at L5: L5/S1 is not in the field of
        # view").
        return (f"L5/S1 cannot be identified: the count ends at {last_level}{counted}, but the "
                f"field of view reaches {fov_below_mm:.0f} mm below the top of the lowest "
                f"vertebral body found, so the bodies below it (and the sacrum) are in view but "
                f"not recognised in the bone labels ({missing}); check the bone segmentation and "
                f"the rib count, or {_USE}")
    if level_rank(last_level) < level_rank("L5"):
        return (f"{where}: {_absent_below(last_level)} not in the field of view, so L5/S1 is not "
                f"in the field of view; {_USE}")
    if level_rank(last_level) > level_rank("L5"):
        # The count passed L5: the disc below L5 is in view, but the body under it is no
        # recognisable sacrum, so "L6" may be a sixth lumbar vertebra or the top of a sacrum
        # (a real 3 mm CT cut 33 mm into S1, its fatty marrow left out of the bone, was refused
        # as "the scan ends at L6: L5/S1 is not in the field of view").
        return (f"{where}, below L5 by the count: L5/S1 cannot be identified ({missing}; the body "
                f"below L5 may be a sixth lumbar vertebra, or a sacrum that the scan cuts or that "
                f"is not solid in the bone labels); check the bone segmentation, or {_USE}")
    return f"{where}: L5/S1 is not in the field of view ({missing}); {_USE}"


# --- instance label maps ------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceLevels:
    """Vertebral levels named by an instance label map.

    Attributes
    ----------
    levels : tuple of str
        Levels present, cranio-caudal (``C1`` .. ``T13`` .. ``L6``, ``S1`` for the sacrum,
        ``coccyx``).
    ids : tuple of int
        The label id of each level (the first id when several name one level).
    """

    levels: tuple[str, ...]
    ids: tuple[int, ...]

    @property
    def last(self) -> str | None:
        """The most caudal level present, or None."""
        return self.levels[-1] if self.levels else None

    @property
    def has_sacrum(self) -> bool:
        return "S1" in self.levels

    def last_vertebra(self) -> str | None:
        """The most caudal mobile vertebra (the sacrum and coccyx excluded)."""
        mobile = [v for v in self.levels if v not in ("S1", "coccyx")]
        return mobile[-1] if mobile else None


def level_of_name(name: str) -> str | None:
    """Level named by an instance name (``vertebrae_L3``, ``L3``, ``sacrum``, ``vertebrae_S1``,
    ``T13``), or None for anything else (ribs, discs, hips, ...)."""
    low = name.strip().lower()
    if low in ("sacrum", "s1", "vertebrae_s1", "vertebra_s1"):
        return "S1"
    if low in ("coccyx", "vertebrae_coccyx"):
        return "coccyx"
    m = _LEVEL_NAME.match(low)
    if not m:
        return None
    lv = f"{m.group(1).upper()}{int(m.group(2))}"
    return lv if lv in _RANK else None


def instance_levels(instances: Volume | np.ndarray,
                    table: LabelTable | Mapping[int, str] | None = None, *,
                    min_voxels: int = 1) -> InstanceLevels:
    """The vertebral levels present in an instance label map, cranio-caudal.

    Parameters
    ----------
    instances : Volume or np.ndarray
        Integer label map, any shape (usually (nz, ny, nx)).
    table : LabelTable or mapping of int to str, optional
        Names of the ids (TotalSegmentator ``vertebrae_L3``, ``sacrum``, ...). None: the ids are
        VerSe's (:data:`VERSE_LEVELS`: 16-24 = T9..L5, 25 = L6, 26 = sacrum).
    min_voxels : int
        A level needs at least this many voxels to count as present.

    Returns
    -------
    InstanceLevels
    """
    arr = instances.array if isinstance(instances, Volume) else np.asarray(instances)
    if table is None:
        names = VERSE_LEVELS
    else:
        raw = table.names if isinstance(table, LabelTable) else dict(table)
        names = {int(i): lv for i, n in raw.items() if int(i) != 0
                 for lv in [level_of_name(str(n))] if lv is not None}
    if not names:
        return InstanceLevels((), ())
    ids = np.array(sorted(names))
    vals = arr.ravel()
    in_range = (vals >= 0) & (vals <= ids.max())
    counts = np.bincount(vals[in_range].astype(np.int64), minlength=int(ids.max()) + 1)
    found: dict[str, int] = {}
    for i in ids:
        if counts[i] >= min_voxels:
            found.setdefault(names[int(i)], int(i))
    order = sorted(found, key=level_rank)
    return InstanceLevels(tuple(order), tuple(found[v] for v in order))


def require_l5_s1(levels: InstanceLevels) -> None:
    """Refuse an instance map that does not hold both L5 and the sacrum, saying where it ends.

    Raises
    ------
    AnatomyError
        ``"... the labels end at L3 ..."`` naming the last vertebra and what is missing.
    """
    if "L5" in levels.levels and levels.has_sacrum:
        return
    last = levels.last_vertebra()
    if last is None and not levels.has_sacrum:
        raise AnatomyError("the instance labels name no vertebra: the levels cannot be counted; "
                           "L5/S1 is not in the field of view or not labelled")
    if levels.has_sacrum:
        raise AnatomyError(f"the instance labels hold the sacrum but no L5 (the last lumbar level "
                           f"labelled is {last or 'none'}): L5/S1 is not in the field of view or "
                           "not labelled; provide labels that include L5 and the sacrum")
    raise AnatomyError(f"the scan ends at {last} (the last vertebra labelled): "
                       f"{_absent_below(last)} not in the field of view; L5/S1 is not in the "
                       f"field of view; {_USE}")


def evidence_from_instances(levels: InstanceLevels) -> LevelEvidence:
    """The level evidence of an instance label map: the labels name the levels themselves.

    Confidence ``"high"`` when L5 and the sacrum are labelled and, with T12 labelled too, exactly
    five lumbar vertebrae lie between; ``"moderate"`` when T12 is not in the labels (the count
    cannot be checked) or the labels hold an L6 / T13 (transitional anatomy, warned); ``"low"``
    without L5 and the sacrum (such a map is refused by :func:`require_l5_s1`).
    """
    ev = LevelEvidence(counted_from="instances", levels=levels.levels, last_level=levels.last,
                       sacrum_found=levels.has_sacrum, confidence="high")
    ev.reasons.append("levels named by the instance labels: " + ", ".join(levels.levels))
    if not ("L5" in levels.levels and levels.has_sacrum):
        ev.downgrade("low", "the instance labels do not hold both L5 and the sacrum")
        return ev
    lumbar = [v for v in levels.levels if v.startswith("L")]
    if "T12" in levels.levels:
        ev.lumbar_count = len(lumbar)
        if len(lumbar) != 5:
            ev.warnings.extend(count_warnings(len(lumbar)))
            ev.downgrade("moderate", f"{len(lumbar)} lumbar vertebrae labelled")
    else:
        ev.downgrade("moderate", "T12 is not in the labels: the lumbar count cannot be checked")
    if "L6" in levels.levels and "T12" not in levels.levels:
        ev.warnings.append("the labels hold an L6 (six lumbar vertebrae): the planned L5/S1 is "
                           "the disc above the sacrum; confirm the level count on a full-spine "
                           "view")
        ev.downgrade("moderate", "an L6 is labelled")
    if "T13" in levels.levels:
        ev.warnings.append("the labels hold a T13 (13 rib-bearing vertebrae): confirm the level "
                           "count on a full-spine view")
        ev.downgrade("moderate", "a T13 is labelled")
    return ev
