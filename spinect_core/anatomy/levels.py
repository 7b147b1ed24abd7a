"""Derive the parts map (L5, S1, ilia, discs, roots, ...) from class labels alone.

Used when no per-level instance labels exist: the default label map (bone, nerve, disc, dura)
or the study's (bone, nerve). The steps, all on LPS millimetres:

1. **Vertebral bodies**: bone voxels deeper than :attr:`LevelOptions.core_mm` inside the bone
   (distance transform) form one "core" blob per vertebral body: intervertebral discs (labelled or
   not, they are not bone) cut the bone column, so cores never bridge a disc. Pedicles,
   processes, ribs and the iliac wings are too thin to have a core.
2. **The spine chain**: cores are linked from cranial to caudal when one lies 12-80 mm below
   another with little lateral offset and the column turns by at most 60 degrees from one link
   to the next; the longest chain is the spine (ilia and femoral heads are off it, and so is
   a sclerotic facet joint dense enough for a core of its own behind the bodies).
3. **Counting** (:mod:`spinect_core.anatomy.counting`): ribs beside the chain mark the thoracic
   bodies (the last rib-bearing one is T12). **The sacrum** is the lowest body that is flanked by
   the ilia (thick bone far lateral at its level), shaped like a sacrum (much wider, larger or
   taller than the body above it) and seen at least 30 mm deep along the column; when no body
   passes, the scan is refused with what is missing and the level it ends at (from the ribs when
   they are in view). With both counts the lumbar vertebrae between T12 and the sacrum are
   counted: other than 5 is a transitional-anatomy warning.
   :class:`~spinect_core.anatomy.counting.LevelEvidence` records it all with a confidence.
4. **L5** is the chain body above the sacrum. Bone is split into L5 / S1 / ilium / other with a
   watershed on the distance transform seeded by the cores (and far-lateral ilium seeds), so
   pedicles, laminae and facets go to their own vertebra (they meet the neighbour's only at thin
   joints). On grids coarser than :attr:`LevelOptions.geodesic_above_mm` the joints are not
   seen and the flood runs in voxel steps through the bone instead (each voxel to the seed
   nearest through the bone). Labels that fill the joints on a fine grid (a smooth scan) need
   the steps too: the anatomy tries the other flood when L5's landmarks are doubted.
5. **The L5/S1 disc** is the disc component between the two bodies or, without a disc label, the
   unlabelled gap between them. When there is neither and the CT is given, the labels' bone is
   cut where the CT shows a dark band between bright bone above and below
   (:func:`~spinect_core.anatomy.ct_bands.dark_bands`:
   a thin or degenerate disc at 2-3 mm slices is as dense as the endplates beside it, and
   labels that bridge it join L5 and S1 into one body) and the levels are derived again,
   recorded as ``disc_source = "ct"``. With the CT, the body named S1 is checked for a collapsed
   disc inside it (the bright plate of two endplates,
   :func:`~spinect_core.anatomy.ct_bands.bright_plates`): labels that bridged it join L5 to the
   sacrum and name L4 as L5; the bone is cut there, the levels derived again and the level
   given as in doubt. The body named L5 is checked the same way for a collapsed L4/L5 disc
   (labels that joined L4 to L5 leave the level right but L5's pedicles wrong).
6. The exiting L5 roots are matched later
   (:func:`spinect_core.anatomy.identify.match_exiting_roots`) at the L5 pedicles.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.ct_bands import across_bone, bright_plates, dark_bands
from spinect_core.anatomy.ct_edges import soft_tissue_hu
from spinect_core.anatomy.counting import (CountOptions, LevelEvidence, RibFindings, SacrumCheck,
                                           body_cut_below, chain_positions, check_sacrum,
                                           cut_by_fov_top,
                                           column_continues_below, count_warnings,
                                           find_hollow_sacrum, find_ribs, level_below,
                                           merged_bodies, name_levels, refusal_message,
                                           refused_last_level)
from spinect_core.anatomy.necks import top_body_neck
from spinect_core.anatomy.parts import BONE_PARTS, PART_ID, class_masks
from spinect_core.anatomy.sacroiliac import SI_JOINT_DEPTH_MM, joint_depth_mm
from spinect_core.distance import distance_inside
from spinect_core.errors import AnatomyError
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

_FULL = np.ones((3, 3, 3), bool)
#: How the level evidence's note on bodies merged in the labels begins.
_MERGED_NOTE_START = "the vertebral bodies are not separated in the bone labels"
#: Two counts name the same body when its core centres lie this close (mm): a cut elsewhere
#: leaves a core as it was, while a body split off the sacrum lies a body height away.
_SAME_BODY_MM = 10.0
#: A dark band within this distance (mm) of a bright plate lies just beyond an endplate: the
#: cortical endplate is 1-2 mm thick, and the partial volume of a 1-3 mm slice adds a voxel.
ENDPLATE_MM = 3.0
#: A dark band taller than this (mm, along the column; the 10th to 90th percentile) is no disc:
#: an L5/S1 disc is 10-14 mm high in front (ANATOMY.md); the dark interior of a real-bone
#: phantom's sacrum at 3 mm read as one band 59 mm tall.
DISC_MAX_HEIGHT_MM = 15.0
#: A band is a disc across the column when it spans at least this fraction of the plate beside
#: it from left to right: a real-bone phantom's collapsed disc (seed 101 at 3 mm, fused labels)
#: had a dark patch under one half of its plate (0.44 of it), and cut there alone the levels went
#: 36 mm off; the dark middles that are the disc spanned 0.85-0.97.
DISC_SPAN_FRACTION = 0.75


@dataclass(frozen=True, kw_only=True)
class LevelOptions:
    """Tuning of the level identification (mm, mm^3).

    Attributes
    ----------
    core_mm : float
        Depth inside bone that only vertebral bodies (and the sacrum) reach.
    min_core_mm3 : float
        Smaller cores are ignored (noise, small bones).
    ilium_lateral_mm : float
        Bone farther than this from the sacrum's centre (left-right) counts as ilium.
    min_ilium_mm3 : float
        Bone volume needed far lateral of the lowest body, on at least one side, to call it the
        sacrum (the ilia flank the sacrum; no lumbar vertebra has that much bone beside it).
    roi_mm : float
        Half-size of the box around L5/S1 in which the watershed runs (speed).
    coarse_mm : float
        Voxel size of the first pass that finds the column and the sacrum (speed on fine scans).
    max_off_midline_mm : float
        Cores farther than this left or right of the skeleton's midline (the median of its
        bone) are not vertebral bodies: a femoral head, an acetabulum and an iliac body in a
        row once stood in for L4, L5 and S1, 56-81 mm to the left of a spine whose bodies the
        bone labels had left hollow (a real 3 mm CT). Scoliotic lumbar bodies lie up to 20-30
        mm off the midline.
    core_split_mm, core_off_column_mm : float
        A core centred more than ``core_off_column_mm`` to the side of the column is cut at
        ``core_split_mm`` left and right of it (see :func:`_cores`): a lumbar body's core is at
        most about 40 mm wide (bodies 40-50 mm, ANATOMY.md, less twice ``core_mm``), the
        sacrum's alae reach the sacroiliac joints 40-50 mm out.
    plate_search_mm, plate_central_mm, plate_width_mm, plate_below_mm : float
        A collapsed disc inside the body named S1 or L5 (:func:`_plate_in`): how far from the
        L5/S1 disc it is searched, how far from its centre (left-right) it may lie, how wide it
        must be and how far below (above) the disc it must lie. A plate need not be centred:
        through 3 mm slices a collapsed disc tilted with the sacrum may read as a plate on one
        side only, where it is thinnest (real-bone seed 101 at 3 mm: a plate 19 mm wide, its
        centre 16 mm left of the disc's, missed when 15 mm and 20 mm were asked; the plan went
        a level up). Plates that merely reach the middle are not enough: those of the
        sacroiliac joints and alae do (patient-like seed 215, centres 34-36 mm out).
    plate_max_tilt_deg : float
        A plate lies across the column: its normal (the piece's least principal axis) leans at
        most this far out of the sagittal plane (a disc tilts forward with the sacrum, 40-60
        degrees on real CTs, but to the side only with a scoliosis). A band whose normal points
        left-right is a sagittal seam, not a disc: a real 3 mm CT resampled to 1.5 mm had a
        dark band beside the S1 body 19 mm left of the disc, its normal 74 degrees out of the
        sagittal plane, and the cut in its plane put the disc found there (9-12 mm from the
        reference's, "9 mm to the left of L5's centre").
    sacral_middle_mm, sacral_reach_mm : float
        A sacrum without a core (:func:`_sacral_middle`): how far left and right of its seed,
        and how far from its seed, its bone seeds S1.
    joint_reach_mm : float
        With the CT, bone voxels in a dark valley at most twice this wide (a joint space the
        labels bridged, :func:`_joint_spaces`) are the bone's surface for the watershed that
        parts L5, S1 and the ilia; 0 turns it off.
    joint_min_mm3, joint_core_fraction : float
        The joint spaces also end the cores that seed that watershed (:func:`_seedable`); a core
        left with less than the fraction of its voxels is ended only by joint spaces at least
        that large (smaller dark spots are trabecular marrow).
    disc_behind_wall_mm : float or None
        An unlabelled gap taken for the L5/S1 disc reaches at most this far behind the L5 body's
        posterior wall (a disc's annulus bulges 1-2 mm past it; the line of the bodies' posterior
        walls runs on to S1's). Without it a sacrum whose core lay behind its body (its canal and
        foramina filled with its fatty marrow: TotalSegmentator's real 3 mm CT cropped below L2)
        gave S1 a body reaching up behind L5, and the gap between the two ran up along L5's
        back: disc centre 7.8 mm off, 4.1 with it (the whole CT 3.0 -> 2.6 mm). None: no bound.
    disc_label_min_fraction, disc_min_hu : float
        With the CT, a labelled L5/S1 disc smaller than this fraction of the soft tissue (at
        least ``disc_min_hu``: a disc, not fat or the canal's fluid) in the gap between the two
        bodies is a disc labelled in part, and that soft tissue joins it
        (:func:`_disc_completed`). A patient-like phantom at 3 mm (arterial contrast): the
        network labelled 48 voxels of its disc at the right edge, 17 mm from the midline, and
        the plan was 11.2 mm off at "high" confidence; 6.2 mm with the gap's 178 voxels.
        TotalSegmentator's real 3 mm CT (12 HU of noise): 156 labelled voxels at the disc's
        back, 441 of soft tissue between the bodies; the plan's disc centre 6.0 -> 4.0 mm. A
        disc labelled whole is left as it is (none of the other 23 patient-like phantoms
        changed).
    disc_off_column_mm : float
        The L5/S1 disc found lies at most this far to the left or right of the column at its
        level (the line through L5's and the body above's core centres), or the scan is refused
        (:func:`_check_disc_on_column`): a disc lies on the column, and one found to its side
        means that S1's body (which bounds the disc's gap) is a piece of an ala or lateral
        mass. A real 3 mm CT resampled to 0.7 x 0.7 x 1 mm (12 HU of noise), its S1 body taken
        from a piece of the ala 39 mm to the side once its centre was cut at the CT's dark
        bands, put the disc 25 mm to the left of the column at "high" confidence (30 mm from
        the reference's; measured 2026-12-07 on the CT bone model's labels with a laxer test of
        contrast pools than the default, :attr:`CTBoneOptions.pool_ring_fraction` 0.25).
    geodesic_above_mm : float
        On a grid whose largest voxel side exceeds this (mm), the watershed that derives the
        parts floods through the bone in voxel steps from the seeds (each bone voxel goes to
        the seed nearest through the bone) instead of following the distance map's necks. The
        necks part bodies at their narrowest bone, which is where the facet joints are when the
        CT shows them (the joint spaces are then the bone's surface); a 1-2 mm joint through
        2-3 mm voxels is filled by the labels and not seen, and the narrowest necks are then
        L5's pedicles, so the floods from S1 and L4 took L5's arch. Measured on
        TotalSegmentator's real 3 mm CT (L5 pedicle centres from the reference's, left / right):
        18.1 / 7.3 -> 1.5 / 1.4 mm (the labels of the network on the array as stored 2.4 / 12.7
        -> 0.9 / 2.1); moved 0.75 mm 6.0 / 11.4 -> 3.1 / 3.5 (foramen centres 26 / 26 -> 6.8 /
        8.8). On finer grids the flood in steps loses what the necks keep: at 1 mm real-bone
        phantoms 9 of 20 sides with both landmarks within 4 mm -> 0 of 20; at 1.5 mm the
        procedural test phantoms' exact labels gave L5's arch in part to S1 and its transverse
        process a piece of the ala (false warnings). So the same CT resampled to 1.5 mm kept
        its arch given away (pedicle centres 28.1 / 15.8 mm; 1.6 / 4.5 with the flood in steps)
        until session 33: :func:`~spinect_core.anatomy.identify.identify_lumbosacral` derives
        the parts again with the other flood when the landmarks of the first are doubted, and
        keeps the more plausible (``identify._other_flood``). The steps are the bone's
        geodesic distance from the seeds in millimetres (:func:`_geodesic_from`), not counts
        of 6-neighbour steps, whose ties the array's order settled (session 35: the real CT at
        0.8 x 0.8 x 1 mm, right L5 landmarks 2-9 mm off as its file is stored, 13-16 mm in L,
        P, S order; now 2-3 mm either way, the left 4-8 mm).
        Real-bone phantoms at 3 mm 0 of 14 either way; 24 patient-like phantoms: the same 19 at
        the right level, the disc centres of those coarser than 2 mm within 0.5 mm of before but
        206 (5.7 -> 6.5 mm) and 209 (7.4 -> 11.2).
    counting : CountOptions
        Rib detection and the sacrum's evidence (shape, depth in the field of view).
    """

    core_mm: float = 7.0
    min_core_mm3: float = 400.0
    ilium_lateral_mm: float = 65.0
    min_ilium_mm3: float = 5000.0
    roi_mm: float = 130.0
    coarse_mm: float = 2.0
    max_off_midline_mm: float = 40.0
    core_split_mm: float = 40.0
    core_off_column_mm: float = 15.0
    plate_search_mm: float = 60.0
    plate_central_mm: float = 20.0
    plate_width_mm: float = 16.0
    plate_below_mm: float = 15.0
    plate_max_tilt_deg: float = 45.0
    sacral_middle_mm: float = 30.0
    sacral_reach_mm: float = 60.0
    joint_reach_mm: float = 2.0
    joint_min_mm3: float = 30.0
    joint_core_fraction: float = 0.2
    disc_behind_wall_mm: float | None = 3.0
    disc_label_min_fraction: float = 0.4
    disc_min_hu: float = 20.0
    disc_off_column_mm: float = 20.0
    geodesic_above_mm: float = 2.0
    counting: CountOptions = field(default_factory=CountOptions)


@dataclass
class DerivedLevels:
    """Result of :func:`derive_parts`: the parts map (without roots) and what was found.

    ``chain_centres_lps`` (K, 3) are the vertebral body core centroids, cranial first, ending
    with the sacrum (sacral segments found below it are left out); ``evidence.levels`` names
    them. ``evidence`` says how well the level is established (see
    :class:`~spinect_core.anatomy.counting.LevelEvidence`; ``evidence.to_dict()`` for JSON).
    """

    parts: np.ndarray
    chain_centres_lps: np.ndarray      # (K, 3) vertebral body core centroids, cranial first
    sacrum_centre_lps: np.ndarray
    l5_centre_lps: np.ndarray
    disc_centre_lps: np.ndarray        # (3,) centroid of the L5/S1 disc's voxels
    disc_source: str                   # "label", "gap", "completed" or "ct"
    evidence: LevelEvidence = field(default_factory=LevelEvidence)


class NoBone(AnatomyError):
    """The label map holds no bone."""


@dataclass
class _Core:
    """A vertebral body's core in the chain: its label in the cores' map (-1 for a sacrum found
    without a core, whose ``seed_lps`` (M, 3) are the top of S1's bone voxels, LPS mm)."""

    label: int
    centre: np.ndarray
    volume_mm3: float
    top_z: float
    bottom_z: float = float("nan")
    seed_lps: np.ndarray | None = None


def _cores(bone: np.ndarray, grid: Volume, off, sp, options: LevelOptions, *,
           split_x: float | None = None, dt: np.ndarray | None = None):
    """The bone's cores (deeper than ``options.core_mm``): the distance map, the labelled
    cores and their records (at least ``options.min_core_mm3``).

    With ``split_x`` (LPS x, mm: the column's), a core centred more than
    ``options.core_off_column_mm`` to the side of it, or reaching as far out as the ilia
    (``options.ilium_lateral_mm``), is cut at ``split_x +- options.core_split_mm``: a sacrum
    whose sacroiliac joints a coarse scan blurs is one deep block with the ilia (a real 3 mm
    CT's trial bone: its core reached from the midline to 109 mm left, centred 69 mm to the
    side; of 24 patient-like phantoms at 1.5-3 mm, 5 were refused so and 2 planned 38-75 mm
    off), which the cut returns to its central part. A sacrum with its alae alone stays whole
    (its centre, not moved down by cutting the alae off, is where the chain's link from the
    body above expects it). ``dt``: the distance map of ``bone`` when already computed.
    """
    if dt is None:
        dt = distance_inside(bone, sp)
    deep = dt >= options.core_mm
    lab, n = ndi.label(deep, structure=_FULL)
    if split_x is not None and n:
        idx = np.nonzero(deep)
        ids = lab[idx]
        x = G.voxel_points(grid, deep, off)[:, 0]
        mean_x = np.bincount(ids, weights=x, minlength=n + 1) / np.maximum(
            np.bincount(ids, minlength=n + 1), 1)
        reach = np.zeros(n + 1)
        np.maximum.at(reach, ids, np.abs(x - split_x))
        aside = (np.abs(mean_x - split_x) > options.core_off_column_mm) | (
            reach > options.ilium_lateral_mm)
        half = 0.5 * float(np.max(sp))
        cut = aside[ids] & (np.abs(np.abs(x - split_x) - options.core_split_mm) <= half)
        if cut.any():
            deep[tuple(i[cut] for i in idx)] = False
            lab, n = ndi.label(deep, structure=_FULL)
    voxel_mm3 = float(np.prod(sp))
    cores = []
    if n:
        objs = ndi.find_objects(lab)
        for i, sl in enumerate(objs, start=1):
            m = lab[sl] == i
            vol = float(m.sum()) * voxel_mm3
            if vol < options.min_core_mm3:
                continue
            o = tuple(s.start + a for s, a in zip(sl, off))
            pts = G.voxel_points(grid, m, o)
            cores.append(_Core(i, pts.mean(axis=0), vol, float(pts[:, 2].max()),
                               float(pts[:, 2].min())))
    return dt, lab, cores


#: The column turns by at most this much from one body-to-body link to the next. Measured
#: on real-bone phantoms (seeds 100-109, 1 and 3 mm) and the procedural ones: 11-32 degrees,
#: the largest at L5 to the sacrum's core; a real chest CT's sclerotic facet joint, dense
#: enough for a core of its own behind L2, took the chain's last place 85 degrees off it.
MAX_CHAIN_TURN_DEG = 60.0
#: Turns sharper than this are allowed but a chain with fewer of them is preferred over one as
#: long (that facet core, reached from L1 with a 49 degree turn, stood in for L2).
SHARP_CHAIN_TURN_DEG = 35.0
#: A core smaller than this fraction of a typical body's core (the median of the larger half of
#: the cores) counts as that fraction of a body in the chain's length: small cores behind the
#: column (sclerotic facet joints) otherwise make a longer chain than the bodies in front of
#: them when the sacrum below has no core (measured on patient-like phantoms whose sacrum's
#: marrow was left out of the bone: 2 of 24 planned 35-56 mm off at moderate confidence through
#: facet cores of 400-1100 mm^3 beside bodies of 11000-14000).
SMALL_CORE_FRACTION = 0.2


def _typical_core_mm3(cores: list[_Core]) -> float:
    """A typical body's core volume (mm^3): the median of the larger half of ``cores``'."""
    volumes = np.sort([c.volume_mm3 for c in cores])
    return float(np.median(volumes[len(volumes) // 2:]))


def _linked(upper: _Core, lower: _Core) -> bool:
    """``lower`` can be the next body below ``upper``: 12-80 mm lower, little lateral offset."""
    d = upper.centre - lower.centre
    return bool(12.0 < d[2] < 80.0 and abs(d[0]) < 20.0 and np.linalg.norm(d) < 90.0)


def _chain(cores: list[_Core], *, max_turn_deg: float = MAX_CHAIN_TURN_DEG,
           sharp_turn_deg: float = SHARP_CHAIN_TURN_DEG) -> list[_Core]:
    """Longest cranio-caudal chain of cores (the vertebral column), cranial first.

    Bodies follow each other along a smooth curve: from one link to the next the direction turns
    by at most ``max_turn_deg``. Of the longest chains, the one with the fewest turns sharper
    than ``sharp_turn_deg`` and then the largest core volume is taken. A core's part in the
    length is its volume over :data:`SMALL_CORE_FRACTION` of a typical body's, at most one. A
    dynamic programme over the chain's last link (pairs of cores): a turn needs the link before.
    """
    order = sorted(cores, key=lambda c: -c.centre[2])
    if not order:
        return []
    centres = np.array([c.centre for c in order], float)
    typical = _typical_core_mm3(order)
    weight = [min(1.0, c.volume_mm3 / max(SMALL_CORE_FRACTION * typical, 1e-9)) for c in order]
    cos_max = float(np.cos(np.radians(max_turn_deg)))
    cos_sharp = float(np.cos(np.radians(sharp_turn_deg)))
    # best[(i, j)]: (length, -sharp turns, volume) of the best chain ending with i -> j.
    best: dict[tuple[int, int], tuple[float, int, float]] = {}
    before: dict[tuple[int, int], int] = {}
    for j, cj in enumerate(order):
        for i in range(j):
            if not _linked(order[i], cj):
                continue
            u = centres[j] - centres[i]
            u /= np.linalg.norm(u)
            # Lengths rounded: chains of whole bodies tie exactly, whatever the order of sums.
            score, prev = (round(weight[i] + weight[j], 6), 0,
                           order[i].volume_mm3 + cj.volume_mm3), -1
            for h in range(i):
                if (h, i) not in best:
                    continue
                v = centres[i] - centres[h]
                cos = float(u @ v) / float(np.linalg.norm(v))
                if cos < cos_max:
                    continue
                n, sharp, vol = best[(h, i)]
                cand = (round(n + weight[j], 6), sharp - int(cos < cos_sharp),
                        vol + cj.volume_mm3)
                if cand > score:
                    score, prev = cand, h
            best[(i, j)], before[(i, j)] = score, prev
    if not best:
        return [max(order, key=lambda c: c.volume_mm3)]
    i, j = max(best, key=lambda k: best[k])
    out = [order[j]]
    while i >= 0:
        out.append(order[i])
        i, j = before[(i, j)], i
    return out[::-1]


def _block_factors(grid: Volume, target_mm: float) -> np.ndarray:
    """Voxels per block along (z, y, x) of :func:`block_majority` (1: not coarsened)."""
    return np.maximum(np.round(target_mm / G.spacing_zyx(grid)).astype(int), 1)


def block_majority(bone: np.ndarray, grid: Volume, off, target_mm: float
                   ) -> tuple[np.ndarray, Volume, tuple[int, ...]]:
    """Block-averaged copy of a (cropped) mask with voxels of about ``target_mm`` (majority vote).

    The first pass of :func:`derive_parts`, and the CT bone's level count of
    :mod:`spinect_core.bone.agreement`, which must see the same voxels.

    Parameters
    ----------
    bone : np.ndarray, bool, shape (nz, ny, nx)
        A crop of ``grid`` starting at index ``off`` (z, y, x).
    grid : Volume
        Geometry of the uncropped mask (LPS mm).
    off : tuple of int
    target_mm : float
        Block size: ``round(target_mm / spacing)`` voxels per axis, at least 1.

    Returns
    -------
    coarse : np.ndarray, bool, shape (nz // fz, ny // fy, nx // fx)
        The blocks at least half bone (the partial blocks at the far ends are dropped).
    cgrid : Volume
        The blocks' LPS geometry (its array is ``coarse``); ``grid`` itself when no axis is
        coarsened.
    off : tuple of int
        Index of ``coarse[0, 0, 0]`` in ``cgrid``: (0, 0, 0), or ``off`` when not coarsened.
    """
    f = _block_factors(grid, target_mm)
    if np.all(f == 1):
        return bone, grid, tuple(off)
    coarse = _block_means(bone, f) >= 0.5
    first = np.array(off, float) + 0.5 * (f - 1)          # (z, y, x) index of block 0's centre
    origin = grid.index_to_lps(first[::-1])
    cgrid = Volume(array=coarse, spacing_mm=grid.spacing_mm * f[::-1], origin_lps_mm=origin,
                   direction=grid.direction)
    return coarse, cgrid, (0, 0, 0)


def block_mean(values: np.ndarray, grid: Volume, target_mm: float) -> np.ndarray:
    """The mean of ``values`` (e.g. HU) over the blocks of :func:`block_majority` of an uncropped
    array on ``grid``: float32, the shape of its ``coarse``, on its ``cgrid``."""
    return _block_means(values, _block_factors(grid, target_mm)).astype(np.float32, copy=False)


def _block_means(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Means of whole blocks of ``f`` (z, y, x) voxels (the partial blocks at the far ends are
    dropped)."""
    n = (np.array(a.shape) // f) * f
    return a[: n[0], : n[1], : n[2]].reshape(n[0] // f[0], f[0], n[1] // f[1], f[1],
                                             n[2] // f[2], f[2]).mean(axis=(1, 3, 5))


def derive_parts(labels: Volume, table: LabelTable, *, ct: Volume | None = None,
                 options: LevelOptions | None = None,
                 progress: ProgressCallback | None = None) -> DerivedLevels:
    """Split the class labels into the parts of :data:`~spinect_core.anatomy.parts.PARTS_TABLE`.

    Parameters
    ----------
    labels : Volume
        Label map, shape (nz, ny, nx), any LPS geometry.
    table : LabelTable
        Must have a ``bone`` class; ``nerve``, ``disc`` and ``dura`` are used when present.
    ct : Volume, optional
        The CT (HU) on the same grid: when the labels have neither a disc nor a gap between L5
        and S1, their bone is cut at the CT's dark bands
        (:func:`~spinect_core.anatomy.ct_bands.dark_bands`) and the levels derived again; a
        collapsed disc inside the body named S1 or L5 cuts it too (step 5).
    options : LevelOptions, optional
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    DerivedLevels
        Roots are not split yet: all nerve voxels are ``other_nerve`` (see
        :func:`spinect_core.anatomy.identify.match_exiting_roots`).

    Raises
    ------
    AnatomyError
        No bone; no vertebral body; no sacrum established (no ilia, not shaped like a sacrum, or
        too little of it in the field of view: the message names what is missing and the level
        the scan ends at when the ribs allow counting, e.g. "the scan ends at L3"); nothing above
        the sacrum; L5 cannot be separated from S1; the L5/S1 disc found lies beside the column
        (:attr:`LevelOptions.disc_off_column_mm`); the count from the sacrum disagrees with the
        ribs while the chain misses a body or has one merged into the sacrum, or counts two
        lumbar vertebrae or fewer (:func:`refuse_a_broken_count`). A refusal of the sacrum or
        of the count carries the :class:`~spinect_core.anatomy.counting.LevelEvidence` as its
        ``evidence`` attribute.
    """
    options = options or LevelOptions()
    if ct is not None and not ct.same_grid(labels):
        raise ValueError("the CT and the label map must share one grid")
    carved = None
    # Progress: the labels alone, then (with the CT) the dark bands' try and the S1 check.
    try:
        derived = _derive_coarse_then_fine(labels, table, None, options,
                                           sub_progress(progress, 0.0, 1.0 if ct is None else 0.6),
                                           hu=None if ct is None else np.asarray(ct.array))
    except AnatomyError as exc:
        if ct is None or isinstance(exc, NoBone):
            raise
        derived, carved = _derive_on_dark_bands(labels, table, ct, exc, options,
                                                sub_progress(progress, 0.6, 0.85))
    if ct is None:
        refuse_a_broken_count(derived.evidence)
        return derived
    derived = _split_collapsed_disc(derived, labels, table, ct, carved, options,
                                    sub_progress(progress, 0.85, 0.9))
    derived = _split_bridged_disc(derived, labels, table, ct, carved, options,
                                  sub_progress(progress, 0.9, 0.95))
    derived = _split_merged_l5(derived, labels, table, ct, carved, options,
                               sub_progress(progress, 0.95, 1.0))
    refuse_a_broken_count(derived.evidence)
    _check_disc_on_column(derived, options)
    return derived


def column_x_at(chain_centres_lps: np.ndarray, l5_centre_lps: np.ndarray,
                point_lps: np.ndarray) -> float:
    """LPS x (mm) of the vertebral column at ``point_lps``'s level: on the line from the body
    above L5 through L5's centre (``chain_centres_lps``, cranial first), carried down to the
    point; L5's centre x when no body lies above it.

    Local, because a column is not vertical: a patient rolled 10 degrees in the coronal plane
    (or a scoliotic spine) has its upper lumbar bodies 20-35 mm to the side of L5/S1, and the
    median of all bodies' x put the patient-like phantoms' right discs 22-27 mm beside it.
    """
    centres = np.asarray(chain_centres_lps, float)
    l5 = np.asarray(l5_centre_lps, float)
    at = int(np.argmin(np.linalg.norm(centres - l5, axis=1))) if len(centres) else 0
    if at == 0:
        return float(l5[0])
    step = l5 - centres[at - 1]
    length = float(np.linalg.norm(step))
    if length < 10.0:           # not a body above L5 (a vertebral level is 25-40 mm)
        return float(l5[0])
    u = step / length
    return float((l5 + float(np.dot(np.asarray(point_lps, float) - l5, u)) * u)[0])


def _geodesic_from(seeds: np.ndarray, within: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """Distance (mm) from ``seeds`` through ``within`` (26-neighbour steps of their length in
    millimetres, :class:`skimage.graph.MCP_Geometric`): float32, shape of ``within``; 0 where
    no seed reaches (no flood from the seeds reaches there either).

    The watershed that floods the bone in steps takes this as its elevation, so that each voxel
    goes to the seed nearest through the bone. On a flat elevation it flooded in 6-neighbour
    steps, whose distances tie over whole regions between two seeds (not on a surface), and the
    array's order settled them: TotalSegmentator's real CT resampled to 0.8 x 0.8 x 1 mm had its
    right L5 landmarks 2-9 mm off stored as its file is and 13-16 mm off in L, P, S order.
    """
    from skimage.graph import MCP_Geometric

    out = np.zeros(within.shape, np.float32)
    starts = np.argwhere(seeds & within)
    if not len(starts):
        return out
    costs = np.where(within, 1.0, np.inf)
    dist, _ = MCP_Geometric(costs, fully_connected=True,
                            sampling=tuple(float(v) for v in sp)).find_costs(starts)
    reached = within & np.isfinite(dist)
    out[reached] = dist[reached]
    return out


def _check_disc_on_column(derived: DerivedLevels, options: LevelOptions) -> None:
    """Refuse a plan whose L5/S1 disc lies more than ``options.disc_off_column_mm`` to the
    left or right (LPS x) of the column at its level (:func:`column_x_at`): the disc lies on
    the column, so S1's body found beside it is an ala or a lateral mass and the anatomy at
    L5/S1 cannot be trusted."""
    column_x = column_x_at(derived.chain_centres_lps, derived.l5_centre_lps,
                           derived.disc_centre_lps)
    off = float(derived.disc_centre_lps[0]) - column_x
    if abs(off) <= options.disc_off_column_mm:
        return
    err = AnatomyError(
        f"cannot locate the L5/S1 disc: the disc found lies {abs(off):.0f} mm to the "
        f"{'left' if off > 0 else 'right'} of the vertebral column, not between the L5 and S1 "
        "bodies (S1's body was taken from a lateral part of the sacrum); check the "
        "segmentation at L5/S1")
    derived.evidence.downgrade("low", str(err))
    err.evidence = derived.evidence  # type: ignore[attr-defined]
    raise err


def _derive_on_dark_bands(labels: Volume, table: LabelTable, ct: Volume, first: AnatomyError,
                          options: LevelOptions, progress: ProgressCallback | None
                          ) -> tuple[DerivedLevels, np.ndarray]:
    """Step 5's second try, when the labels alone failed with ``first``: their bone cut at the
    CT's dark bands. Returns the levels and the cut (bool, the labels' shape)."""
    # Only when the labels alone fail: discs the labels bridged join bodies (L5 and S1 into
    # one, or the whole column into one "sacrum"). Not always: the dark bands also cut the
    # marrow-filled sacral canal and foramina of a threshold's bone, which the sacrum test of a
    # scan that had no need of them must not see.
    report(progress, 0.0, "cutting the bone at the dark bands of the CT")
    carved = dark_bands(np.asarray(ct.array), class_masks(labels, table)["bone"], labels)
    if not carved.any():
        raise first
    try:
        derived = _derive_coarse_then_fine(labels, table, carved, options, progress,
                                           hu=np.asarray(ct.array))
    except AnatomyError as exc:
        # The labels' own reason, not the cut bone's; unless only the cut bone could be counted
        # and it says where the scan ends (a real chest CT's labels merged T12 to L2 into one
        # block; cut at the CT's discs they counted down to L3).
        # Not when the labels' count saw the column go on below its last body (then a cut
        # count that "ends at T12" is wrong: a patient-like phantom's true labels at 3 mm,
        # whose L5 and S1 cores joined the ilia, were refused so).
        beyond = getattr(getattr(first, "evidence", None), "column_beyond_mm", None)
        if refused_last_level(exc) and not refused_last_level(first) and beyond is None:
            exc.evidence.reasons.append(
                f"counted on the labels' bone cut at the dark bands of the CT; the labels alone "
                f"could not be counted ({first})")
            raise exc from None
        raise first from None
    derived.disc_source = "ct"
    derived.evidence.reasons.append(
        f"the labels alone failed ({first}); with the bone cut at the dark bands between "
        "bright endplates on the CT (discs the labels bridged) the levels were found")
    first_ev = getattr(first, "evidence", None)
    lost = below = 0
    beyond = _hollow_column_below(first_ev, derived.sacrum_centre_lps)
    if beyond is not None:
        # The labels' own count saw the column go on below its last body with bone but no core
        # (a body, or the sacrum, left hollow), and the cut count calls that body, or one above
        # it, the sacrum (a patient-like phantom at 1.5 mm whose L5 had no core: L4 taken for
        # the sacrum, 75 mm off at moderate confidence, with 194 mm of the column below it).
        derived.evidence.doubt(
            f"the body taken for the sacrum has {beyond:.0f} mm of the column below it in the "
            "field of view with bone but no solid vertebral body (marrow left out of the bone "
            "labels): it may be a lumbar body, and the planned L5/S1 may lie higher up; check "
            "the level on a sagittal view")
    if first_ev is not None:
        first_centres = np.asarray(first_ev.level_centres_lps, float)
        cut_centres = np.asarray(derived.chain_centres_lps, float)
        lost = _lost_bodies(first_centres, cut_centres)
        below = _lumbar_sized_below(first_centres,
                                    np.asarray(first_ev.level_core_volumes_mm3, float),
                                    cut_centres[-1])
    if below:
        # The cut may shrink the core of the body above and make the next one look like a
        # sacrum (a patient-like phantom at 1.5 mm: L4 taken for the sacrum, 75 mm off at
        # moderate confidence, with the labels' own count's larger L5 below it).
        note = (f"the count on the bone cut at the CT's dark bands took for the sacrum a body "
                f"with {below} vertebral bod{'y' if below == 1 else 'ies'} of lumbar size below "
                "it in the labels' own count: the level may be too high; check it on a "
                "sagittal view")
        derived.evidence.doubt(note)
    if lost:
        # The cut may take a body's core with the disc (a patient-like phantom's labels, L5 and
        # S1 left without cores: cut, the count kept L3 and L4 only and took L4 for the
        # sacrum, 73 mm off at moderate confidence).
        note = (f"the count on the bone cut at the CT's dark bands misses {lost} of the "
                "vertebral bodies that the labels' own count found above its sacrum: the level "
                "may be off; check it on a sagittal view")
        derived.evidence.doubt(note)
    return derived, carved


def _hollow_column_below(first: LevelEvidence | None, sacrum: np.ndarray) -> float | None:
    """The labels' own count's ``column_beyond_mm`` (the column going on below its last body
    with bone but no core) when ``sacrum`` (a core centre, LPS mm) is that last body or one
    above it (less than ``_SAME_BODY_MM`` lower); None otherwise."""
    beyond = getattr(first, "column_beyond_mm", None)
    centres = np.asarray(getattr(first, "level_centres_lps", np.zeros((0, 3))), float)
    if beyond is None or len(centres) == 0:
        return None
    return float(beyond) if sacrum[2] >= centres[-1, 2] - _SAME_BODY_MM else None


def _lumbar_sized_below(centres: np.ndarray, volumes: np.ndarray, sacrum: np.ndarray) -> int:
    """How many bodies of a count (core centres (N, 3) LPS mm and core volumes (N,) mm^3,
    cranial first) lie below ``sacrum`` (a core centre, LPS mm; more than ``_SAME_BODY_MM``
    lower) with a core at least half the median of those above it: lumbar bodies, not S2
    (whose core is far smaller than L5's, when it has one)."""
    if len(centres) == 0 or len(volumes) != len(centres):
        return 0
    lower = centres[:, 2] < sacrum[2] - _SAME_BODY_MM
    upper = centres[:, 2] > sacrum[2] + _SAME_BODY_MM
    if not lower.any() or not upper.any():
        return 0
    return int(np.count_nonzero(volumes[lower] >= 0.5 * np.median(volumes[upper])))


def _lost_bodies(before: np.ndarray, after: np.ndarray) -> int:
    """How many bodies of the count ``before`` (core centres, (N, 3) LPS mm, cranial first)
    that lie above the last body of ``after`` (cranial first, the sacrum last) have no body of
    ``after`` within ``_SAME_BODY_MM`` (the same body in both). A lone core is no count to
    lose bodies from: 0 (often L5 and S1 joined in one block, its centre between the two
    bodies of the cut count: a real-bone phantom at 3 mm was so given a false warning)."""
    if len(before) < 2 or len(after) == 0:
        return 0
    above = before[before[:, 2] > after[-1][2] + _SAME_BODY_MM]
    if len(above) == 0:
        return 0
    d = np.linalg.norm(above[:, None, :] - after[None, :, :], axis=2)
    return int(np.count_nonzero(d.min(axis=1) > _SAME_BODY_MM))


def _split_collapsed_disc(derived: DerivedLevels, labels: Volume, table: LabelTable, ct: Volume,
                          carved: np.ndarray | None, options: LevelOptions,
                          progress: ProgressCallback | None) -> DerivedLevels:
    """Step 5's check of the body named S1: a collapsed disc inside it means the labels joined
    L5 to the sacrum, and the level found is one too high.

    Nothing else in the labels shows it: the sacrum test passes on L5 and S1 joined (wider,
    larger and taller than the body above), and the body above is L4 (measured on a real-bone
    phantom with a 3-4 mm L5/S1 disc at 3 mm slices: the fused labels were planned at L4/L5,
    35 mm off, with "moderate" confidence). When the CT shows the plate of two endplates across
    the column inside the S1 body (:func:`_plate_in`), the bone is cut there and the levels
    derived again. When they then put L5/S1 at the plate, or cannot be counted, the confidence is
    low and a warning says why (a sclerotic S1/S2 junction could look alike); when the plate
    does not become the disc, the first count stands.
    """
    found = _plate_cut(derived, labels, table, ct, carved, options, part="S1")
    if found is None:
        return derived
    report(progress, 0.0, "a collapsed disc inside S1: counting again")
    plate_c, cut = found
    depth = float(np.linalg.norm(plate_c - derived.disc_centre_lps))
    # The count alone first (0.3-0.8 s where the whole takes 1.5-2 s), on the labels' own
    # voxels (blocks of 2 mm lose a cut one or two voxels thick to their majority vote): when
    # the body above the sacrum is still the one named L5 (the plate lies inside the sacrum,
    # e.g. at S1/S2), the first count stands.
    try:
        counted = _count_pass(labels, table, cut, replace(options, coarse_mm=0.0), None)
        if np.linalg.norm(counted.chain[-2].centre - derived.l5_centre_lps) <= _SAME_BODY_MM:
            return derived
    except AnatomyError:
        pass
    try:
        recut = _derive_on_cut(labels, table, cut, options, progress, hu=np.asarray(ct.array))
    except AnatomyError as exc:
        derived.evidence.warnings.append(
            f"the CT shows a plate like the endplates of a collapsed disc (or of a disc the "
            f"segmentation calls bone) across the body named S1, {depth:.0f} mm below the L5/S1 "
            "disc: L5 may be joined to the sacrum in the segmentation and the planned level one "
            "too high; check the level on a sagittal view")
        derived.evidence.downgrade("low", f"a collapsed disc inside S1? the bone cut there "
                                          f"could not be counted ({exc})")
        return derived
    if np.linalg.norm(plate_c - recut.disc_centre_lps) > 10.0:
        return derived                   # counted again, the plate is not the new L5/S1 disc
    recut.disc_source = "ct"
    recut.evidence.warnings.append(
        f"the segmentation joined L5 to the sacrum: the CT shows endplates across the body it "
        f"called S1, {depth:.0f} mm below the disc it gave as L5/S1 (a collapsed disc, or a disc "
        "the segmentation calls bone), and the plan is one level lower, at those endplates (a "
        "sclerotic S1/S2 junction could look alike); check the level on a sagittal view")
    recut.evidence.downgrade("low", "L5/S1 taken at a collapsed disc seen on the CT inside the "
                                    "body the labels called S1")
    return recut


def _split_bridged_disc(derived: DerivedLevels, labels: Volume, table: LabelTable, ct: Volume,
                        carved: np.ndarray | None, options: LevelOptions,
                        progress: ProgressCallback | None) -> DerivedLevels:
    """Step 5's check of a sacrum that may hold L5, when the ribs count one lumbar vertebra too
    few, or when no ribs are in view and the sacroiliac joints begin a vertebra below the disc:
    the dark band of a disc the labels filled (:func:`_split_at_dark_band`), else the narrow
    bridge through which the labels joined L5's core to the sacrum's (:func:`_split_at_neck`).
    The first count stands when neither gives five lumbar vertebrae (with ribs) or a sacrum
    whose joints begin beside S1 (without).

    A lumbar CT has no ribs to count from: a real-bone phantom at 1 mm (seed 109, the CT's
    bone) had L5's core joined to the sacrum's through a 12-voxel bridge beside the canal, and
    was planned at L4/L5 (31 mm off, "low", its warnings that the sacrum's core was 123 mm tall
    and the joints began 43 mm below the disc); cut at the bridge it is counted L4, L5, S1 with
    the disc 1.6 mm from the true one and the joints 8 mm below it.
    """
    ev = derived.evidence
    if ev.rib_count_agrees is False and ev.lumbar_count == 4:
        ribs = True
    elif ev.rib_count_agrees is None and not ev.ribs_found:
        ribs = False
    else:
        return derived
    before = _joints_below_disc_mm(derived, labels)
    return (_split_at_dark_band(derived, labels, table, ct, carved, options, progress, ribs=ribs,
                                joints_before_mm=before)
            or _split_at_neck(derived, labels, table, ct, carved, options, progress, ribs=ribs,
                              joints_before_mm=before)
            or derived)


#: What backs a level moved one lower by a cut when the ribs are in view.
_FIVE_LUMBAR = "the ribs and the sacrum both count five lumbar vertebrae"


def _count_words(ribs: bool, before: float | None, after: float | None) -> tuple[str, str]:
    """What backs a level moved one lower by a cut (:func:`_split_bridged_disc`): the words for
    the warning and for the confidence's downgrade."""
    if ribs:
        return _FIVE_LUMBAR, "where the rib count expected one more lumbar vertebra"
    return (f"the sacroiliac joints begin beside S1 ({after:.0f} mm below it; {before:.0f} mm "
            "below the disc first found), while no ribs are in view to count from",
            "where the sacroiliac joints began a vertebra below the disc first found (no ribs "
            "in view)")


def _split_at_dark_band(derived: DerivedLevels, labels: Volume, table: LabelTable, ct: Volume,
                        carved: np.ndarray | None, options: LevelOptions,
                        progress: ProgressCallback | None, *, ribs: bool,
                        joints_before_mm: float | None) -> DerivedLevels | None:
    """The dark band of a disc the labels filled, inside the body named S1: the levels counted
    again with the bone cut there, or None when that does not give five lumbar vertebrae with
    L5/S1 at the band (``ribs``; without: the sacroiliac joints a vertebra below the first
    disc, ``joints_before_mm``, and beside S1 below the band; see :func:`_split_bridged_disc`).

    A disc that the labels bridge only in part (its thin posterior wedge, filled with the
    spinal canal behind it) joins the L5 and S1 cores: the sacrum test passes on the two
    joined, the body above is L4, and only the rib count disagrees (4 lumbar vertebrae), as a
    sacralised L5 would. Measured on a real 3 mm abdomen-pelvis CT resampled to 1.5 mm: planned
    at L4/L5, 36 mm off, at "moderate" confidence with the transitional-anatomy warnings. The
    CT still shows the disc as a band darker than the bone above and below it
    (:func:`~spinect_core.anatomy.ct_bands.dark_bands`). Only with the rib count's
    disagreement: a sacrum's own S1/S2 remnant of a disc is such a band too. The bone is cut
    there and the levels derived again; when they then count five lumbar vertebrae with the
    new L5/S1 at the band, the plan moves there at "low" confidence with a warning that says
    why (a sacralised L5 with a rudimentary disc looks alike).
    """
    before = joints_before_mm
    if not ribs and (before is None or before <= SI_JOINT_DEPTH_MM):
        return None
    found = _plate_cut(derived, labels, table, ct, carved, options, part="S1", finder=dark_bands)
    if found is None:
        return None
    report(progress, 0.0, "a filled disc inside S1: counting again")
    band_c, cut = found
    recut = _recount(labels, table, cut, ct, options, progress)
    if recut is None or np.linalg.norm(band_c - recut.disc_centre_lps) > 10.0:
        return None                      # the band is not the L5/S1 disc of the new count
    after = None if ribs else _joints_below_disc_mm(recut, labels)
    if (recut.evidence.lumbar_count != 5 if ribs
            else after is None or after > SI_JOINT_DEPTH_MM):
        return None
    depth = float(np.linalg.norm(band_c - derived.disc_centre_lps))
    backed, downgrade = _count_words(ribs, before, after)
    recut.disc_source = "ct"
    recut.evidence.warnings.append(
        f"the segmentation joined L5 to the sacrum: the CT shows a disc (a band darker than the "
        f"bone above and below it) across the body it called S1, {depth:.0f} mm below the disc "
        f"it gave as L5/S1, and with that disc {backed}; the plan is one level lower, at that "
        "disc (a sacralised L5 with a rudimentary disc looks alike); check the level on a "
        "sagittal view")
    recut.evidence.downgrade("low", "L5/S1 taken at a disc seen on the CT inside the body the "
                                    f"labels called S1, {downgrade}")
    return recut


def _split_at_neck(derived: DerivedLevels, labels: Volume, table: LabelTable, ct: Volume,
                   carved: np.ndarray | None, options: LevelOptions,
                   progress: ProgressCallback | None, *, ribs: bool,
                   joints_before_mm: float | None) -> DerivedLevels | None:
    """L5's core parted from the sacrum's at the narrow bridge through which the labels joined
    them (:func:`~spinect_core.anatomy.necks.top_body_neck`): the levels counted again with the
    bridge cut, or None.

    Labels that fill a disc's posterior wedge can join the L5 and S1 cores through a bridge
    just deeper than :attr:`LevelOptions.core_mm` while the CT shows no dark band across the
    column (a disc tilted 50 degrees, its thin edge beside the canal; measured on a real 3 mm
    CT resampled to 1.5 mm with 12 HU of noise: the cores joined through 36 voxels touching only
    at edges and corners, parted 1 mm deeper; the count refused, the sacroiliac joints 30 mm
    below the disc above the "sacrum"). Tried only when the sacroiliac joints begin more than
    :data:`~spinect_core.anatomy.sacroiliac.SI_JOINT_DEPTH_MM` below that disc (the body on top
    of the "sacrum" is a vertebra: a sacrum's own S1/S2 junction would be parted otherwise),
    and kept when the new count has five lumbar vertebrae (``ribs``; without ribs in view
    the joints alone judge it), the body parted off is its L5 and the joints then begin beside
    S1. ``joints_before_mm``: the joints' depth below the first disc
    (:func:`_joints_below_disc_mm`, measured once by :func:`_split_bridged_disc`; None without
    joints).
    """
    before = joints_before_mm
    if before is None or before <= SI_JOINT_DEPTH_MM:
        return None
    bone = class_masks(labels, table)["bone"]
    if carved is not None:
        bone &= ~carved
    neck = top_body_neck(bone, derived.parts == PART_ID["S1"], labels,
                         core_mm=options.core_mm, min_core_mm3=options.min_core_mm3)
    if neck is None:
        return None
    report(progress, 0.0, "a body joined to the top of the sacrum: counting again")
    recut = _recount(labels, table, neck.cut if carved is None else carved | neck.cut, ct,
                     options, progress)
    if (recut is None or (ribs and recut.evidence.lumbar_count != 5)
            or np.linalg.norm(recut.l5_centre_lps - neck.top_centre_lps) > _SAME_BODY_MM):
        return None
    after = _joints_below_disc_mm(recut, labels)
    if after is None or after > SI_JOINT_DEPTH_MM:
        return None
    # The joints' depths are in the warning already: without ribs only their absence is said.
    counted = _FIVE_LUMBAR if ribs else "no ribs are in view to count from"
    recut.evidence.warnings.append(
        f"the segmentation joined L5 to the sacrum through a bridge of bone across the L5/S1 "
        f"disc ({int(neck.cut.sum())} voxels; {neck.depth_mm - options.core_mm:.0f} mm deeper "
        f"inside the bone the two cores stand apart): the sacroiliac joints began "
        f"{before:.0f} mm below the disc it gave "
        f"as L5/S1, {after:.0f} mm below the disc beneath the body parted off, and {counted}; "
        "the plan is one level lower (a sacralised L5 looks alike); check the level on a "
        "sagittal view")
    recut.evidence.downgrade("low", "L5 parted from the sacrum at a bridge of bone in the "
                                    f"labels, {_count_words(ribs, before, after)[1]}")
    return recut


def _recount(labels: Volume, table: LabelTable, cut: np.ndarray, ct: Volume,
             options: LevelOptions, progress: ProgressCallback | None) -> DerivedLevels | None:
    """The levels derived again on the labels' bone cut at ``cut`` (the CT given); None when
    they cannot be derived."""
    try:
        return _derive_coarse_then_fine(labels, table, cut, options, progress,
                                        hu=np.asarray(ct.array))
    except AnatomyError:
        return None


def _joints_below_disc_mm(derived: DerivedLevels, grid: Volume) -> float | None:
    """How far below the L5/S1 disc's centre (mm, along the disc's normal: its voxels' least
    principal axis) the sacroiliac joints begin (:func:`~spinect_core.anatomy.sacroiliac.
    joint_depth_mm`); None without disc voxels or joints."""
    pts = G.voxel_points(grid, derived.parts == PART_ID["disc_L5S1"])
    if len(pts) < 10:
        return None
    normal = G.principal_axes(pts)[2][-1]
    return joint_depth_mm(grid, derived.parts, derived.disc_centre_lps,
                          normal if normal[2] >= 0.0 else -normal)


def _split_merged_l5(derived: DerivedLevels, labels: Volume, table: LabelTable, ct: Volume,
                     carved: np.ndarray | None, options: LevelOptions,
                     progress: ProgressCallback | None) -> DerivedLevels:
    """Step 5's check of the body named L5: the plate of a collapsed L4/L5 disc inside it (the
    labels joined L4 to L5) parts them.

    The level stands (the sacrum and the L5/S1 disc are where they were), but the part named L5
    held L4 too, and its pedicles were L4's or between the two (measured on a phantom whose L4/L5
    disc was collapsed: the L5 pedicle landmarks 9-25 mm off, the foramen 3-5 mm; the level
    count said only "a block 47 mm tall where L5 should be"). When the cut parts them, with the
    sacrum and the L5/S1 disc unchanged, the levels derived on the cut bone are used and a
    warning says so.
    """
    found = _plate_cut(derived, labels, table, ct, carved, options, part="L5")
    if found is None:
        return derived
    report(progress, 0.0, "a collapsed disc inside L5: parting it from L4")
    plate_c, cut = found
    try:
        counted = _count_pass(labels, table, cut, replace(options, coarse_mm=0.0), None)
        if (np.linalg.norm(counted.chain[-2].centre - derived.l5_centre_lps) <= _SAME_BODY_MM
                or np.linalg.norm(counted.chain[-1].centre - derived.sacrum_centre_lps)
                > _SAME_BODY_MM):
            return derived               # the cut parts nothing, or moves the sacrum
        parted = _derive_coarse_then_fine(labels, table, cut, options, progress,
                                          hu=np.asarray(ct.array))
    except AnatomyError:
        return derived
    before, after = derived.disc_centre_lps, parted.disc_centre_lps
    if np.linalg.norm(plate_c - after) < options.plate_below_mm or np.linalg.norm(
            parted.l5_centre_lps - derived.l5_centre_lps) <= _SAME_BODY_MM:
        return derived
    if np.linalg.norm(after - before) > _SAME_BODY_MM:
        return derived                   # another L5/S1: not this check's to decide
    parted.disc_source = derived.disc_source
    # The first count's warnings still hold, but for the bodies it found merged: now parted.
    parted.evidence.warnings.extend(
        w for w in derived.evidence.warnings
        if w not in parted.evidence.warnings and not w.startswith(_MERGED_NOTE_START))
    parted.evidence.warnings.append(
        f"the segmentation joined L4 to L5: they were parted where the CT shows the endplates "
        f"of a collapsed disc, {np.linalg.norm(plate_c - before):.0f} mm above the L5/S1 "
        "disc; check L5's pedicles and the foramen on the images")
    parted.evidence.reasons.append("L5 parted from L4 at a collapsed disc seen on the CT")
    return parted


def _plate_cut(derived: DerivedLevels, labels: Volume, table: LabelTable, ct: Volume,
               carved: np.ndarray | None, options: LevelOptions, *, part: str,
               finder: Callable[[np.ndarray, np.ndarray, Volume], np.ndarray] = bright_plates
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """The centre (LPS mm) of the plate inside ``part`` (:func:`_plate_in`; ``finder``:
    :func:`~spinect_core.anatomy.ct_bands.bright_plates` or
    :func:`~spinect_core.anatomy.ct_bands.dark_bands`) and the whole cut of the labels' bone:
    the plate widened to the body's surface (:func:`~spinect_core.anatomy.ct_bands.across_bone`)
    and ``carved``; None without a plate."""
    bone = class_masks(labels, table)["bone"]
    if carved is not None:
        bone &= ~carved
    hu = np.asarray(ct.array)
    plate = _plate_in(derived, labels, hu, bone, options, part=part, finder=finder)
    if plate is None:
        return None
    if finder is bright_plates:
        plate = _disc_at_plate(derived, labels, hu, bone, plate, options, part=part)
    plate = across_bone(plate, bone, labels)
    return (G.voxel_points(labels, plate).mean(axis=0),
            plate if carved is None else carved | plate)


def _disc_at_plate(derived: DerivedLevels, labels: Volume, hu: np.ndarray, bone: np.ndarray,
                   plate: np.ndarray, options: LevelOptions, *, part: str) -> np.ndarray:
    """The dark band of the disc at a bright ``plate`` (bool, the labels' shape), where the CT
    shows one: the cut then follows the disc itself, not the plate; else ``plate``.

    Bands (:func:`~spinect_core.anatomy.ct_bands.dark_bands`) that pass the plates' own tests
    (:func:`_plate_in`), touch the plate within :data:`ENDPLATE_MM` and are no taller than
    :data:`DISC_MAX_HEIGHT_MM` are measured along the line from the disc found to the plate (most
    of each band against the plate's 10th-90th percentiles); those taken must together span
    :data:`DISC_SPAN_FRACTION` of the plate from left to right (a disc crosses the column):

    * **within the plate**: the dark middle of a collapsed disc between its two endplates. Cut
      at the plate, the levels were right but L5 lost its lower body to the cut (real-bone
      phantom 103 at 1 mm with the CT bone model's bone: pedicle centres 4.8 / 6.5 mm and
      foramen centres 9.2 / 10.4 mm off; cut at the band, 0.7 / 0.6 and 2.6 / 3.5);
    * **beyond the plate**, holding at least as many voxels: a disc of normal height that the
      labels bridged, beyond the endplate that faces it (an endplate is a bright plate between
      its marrow and such a disc, as a collapsed disc's endplates are). Cut at the plate, the
      levels took the right disc one endplate too high (TotalSegmentator's real CT resampled to
      1.25 mm: the plate 172 voxels, 10 mm above the disc; the disc's band 246). A collapsed
      disc's plate outweighs the darker patches of marrow beyond it (phantom 106: 5745 against
      1130), which are no disc.
    """
    bands = _plate_in(derived, labels, hu, bone, options, part=part, finder=dark_bands)
    if bands is None:
        return plate
    # On the box of the plate and the bands (the plate's distance map and the bands' labels are
    # the same there as on the whole map, at a fraction of its size).
    sp = G.spacing_zyx(labels)
    box = G.bbox_slices(plate | bands, np.ceil(ENDPLATE_MM / sp).astype(int) + 1)
    off = tuple(b.start for b in box)
    near = ndi.distance_transform_edt(~plate[box], sampling=sp) <= ENDPLATE_MM
    lab, _ = ndi.label(bands[box], structure=_FULL)
    touching = [int(k) for k in np.unique(lab[near & bands[box]]) if k]
    if not touching:
        return plate
    disc_c = np.asarray(derived.disc_centre_lps, float)
    plate_pts = G.voxel_points(labels, plate[box], off)
    u = plate_pts.mean(axis=0) - disc_c
    u /= max(float(np.linalg.norm(u)), 1e-9)
    lo, hi = np.percentile((plate_pts - disc_c) @ u, [10, 90])
    band_pts = {k: G.voxel_points(labels, lab == k, off) for k in touching}
    # Each disc-high band's middle along the line from the disc found to the plate.
    middle = {}
    for k, pts in band_pts.items():
        t10, t50, t90 = np.percentile((pts - disc_c) @ u, [10, 50, 90])
        if t90 - t10 <= DISC_MAX_HEIGHT_MM:        # a disc, not a dark region of the bone
            middle[k] = float(t50)
    plate_x = np.percentile(plate_pts[:, 0], [5, 95])

    def across(keys: list[int]) -> bool:
        """The bands span at least ``DISC_SPAN_FRACTION`` of the plate from left to right."""
        if not keys:
            return False
        x = np.percentile(np.concatenate([band_pts[k][:, 0] for k in keys]), [5, 95])
        shared = min(plate_x[1], x[1]) - max(plate_x[0], x[0])
        return shared >= DISC_SPAN_FRACTION * float(plate_x[1] - plate_x[0])

    def mask(keys: list[int]) -> np.ndarray:
        out = np.zeros(plate.shape, bool)
        out[box] = np.isin(lab, keys)
        return out

    within = [k for k, t in middle.items() if lo <= t <= hi]
    if across(within):
        return mask(within)
    beyond = [k for k, t in middle.items() if t > hi]
    if across(beyond) and sum(len(band_pts[k]) for k in beyond) >= len(plate_pts):
        return mask(beyond)
    return plate


def _plate_in(derived: DerivedLevels, labels: Volume, hu: np.ndarray, bone: np.ndarray,
              options: LevelOptions, *, part: str,
              finder: Callable[[np.ndarray, np.ndarray, Volume], np.ndarray] = bright_plates
              ) -> np.ndarray | None:
    """The CT's bright plates (:func:`~spinect_core.anatomy.ct_bands.bright_plates`, or the
    bands ``finder`` gives) that cross the column inside the body named ``part`` ("S1": below
    the L5/S1 disc; "L5": above it); None when there is none.

    A plate counts when most of it is ``part``, its centre lies within
    :attr:`LevelOptions.plate_central_mm` of the L5/S1 disc's centre from left to right (the
    plates of sacroiliac joints the labels filled lie 33-62 mm lateral, measured on ten
    real-bone phantoms), it spans at least :attr:`LevelOptions.plate_width_mm` from left to right,
    its centre lies :attr:`LevelOptions.plate_below_mm` or more from the disc's (not the disc's
    own endplates), on ``part``'s side of it, and it lies across the column
    (:attr:`LevelOptions.plate_max_tilt_deg`).

    Returns
    -------
    np.ndarray, bool, the labels' shape, or None
    """
    disc_c = derived.disc_centre_lps
    sl = _roi(labels, labels.array.shape, (0, 0, 0), disc_c, options.plate_search_mm)
    inside = derived.parts[sl] == PART_ID[part]
    lab, n = ndi.label(finder(hu[sl], bone[sl], labels), structure=_FULL)
    off = tuple(s.start for s in sl)
    side = -1.0 if part == "S1" else 1.0          # S1 lies below the disc, L5 above it
    keep = []
    for k in range(1, n + 1):
        piece = lab == k
        if np.count_nonzero(piece & inside) < 0.5 * np.count_nonzero(piece):
            continue
        pts = G.voxel_points(labels, piece, off)
        centre, _, axes = G.principal_axes(pts)
        normal = axes[-1]                              # the piece's least principal axis
        if (abs(centre[0] - disc_c[0]) <= options.plate_central_mm
                and np.ptp(pts[:, 0]) >= options.plate_width_mm
                and side * (centre[2] - disc_c[2]) > 0.0
                and np.linalg.norm(centre - disc_c) >= options.plate_below_mm
                and abs(normal[0]) <= np.sin(np.radians(options.plate_max_tilt_deg))):
            keep.append(k)
    if not keep:
        return None
    out = np.zeros(labels.array.shape, bool)
    out[sl] = np.isin(lab, keep)
    return out


def _derive_on_cut(labels: Volume, table: LabelTable, cut: np.ndarray, options: LevelOptions,
                   progress: ProgressCallback | None, *, hu: np.ndarray) -> DerivedLevels:
    """:func:`_derive_parts` on the labels' bone cut at ``cut``, counted on the labels' own voxels
    first (as the checks that found the cut count it), then coarse and fine as
    :func:`_derive_coarse_then_fine`.

    Blocks of ~2 mm can close a cut one or two voxels thick again by their majority vote and
    count the bodies as if it were not there: TotalSegmentator's real CT resampled to 1.25 mm,
    cut at its L5/S1 disc, counted T12 to L5 and the sacrum on its own voxels and three lumbar
    vertebrae with L5 in the sacrum on the blocks.
    """
    try:
        return _derive_parts(labels, table, cut, replace(options, coarse_mm=0.0), progress,
                             hu=hu)
    except NoBone:
        raise
    except AnatomyError:
        return _derive_coarse_then_fine(labels, table, cut, options, progress, hu=hu)


def _derive_coarse_then_fine(labels: Volume, table: LabelTable, carved: np.ndarray | None,
                             options: LevelOptions, progress: ProgressCallback | None, *,
                             hu: np.ndarray | None = None) -> DerivedLevels:
    """:func:`_derive_parts` with its quick coarse first pass and, when that fails and the labels
    are finer than it, again with the first pass at full resolution.

    Block-averaging to ``coarse_mm`` closes the last unlabelled voxels of a disc that partial
    volume nearly bridged (2-3 mm slices), so the coarse cores of L5 and S1 merge where the
    full-resolution ones do not (measured: 2 of 6 real-bone phantoms' fused labels at 2.5 mm
    were refused "cannot separate L5 from S1" and are found within 2 mm at full resolution). A
    scan refused at full resolution too keeps the coarse pass's reason.
    """
    try:
        return _derive_parts(labels, table, carved, options, sub_progress(progress, 0.0, 0.5),
                             hu=hu)
    except NoBone:
        raise
    except AnatomyError as exc:
        if np.all(_block_factors(labels, options.coarse_mm) == 1):
            raise
        try:
            return _derive_parts(labels, table, carved, replace(options, coarse_mm=0.0),
                                 sub_progress(progress, 0.5, 1.0), hu=hu)
        except AnatomyError:
            raise exc from None


@dataclass
class _Counted:
    """Pass 1 of :func:`_derive_parts`: the class masks (bone cut), the spine chain down to the
    sacrum (cranial first), the sacral bodies found below it, the evidence and the column's
    left-right position (LPS x, mm) at which the cores were cut (:func:`_cores`)."""

    masks: dict[str, np.ndarray]
    chain: list[_Core]
    sacral: list[_Core]
    evidence: LevelEvidence
    column_x: float


#: The count passes kept by :func:`shared_count_passes` (None outside it), by
#: :func:`_count_key`: a pass's result or its refusal, with the labels it was counted on.
_SHARED_COUNTS: ContextVar[dict | None] = ContextVar("spinect_shared_counts", default=None)


@contextmanager
def shared_count_passes() -> Iterator[None]:
    """Within the block, :func:`derive_parts` calls on the same label map share their count
    passes (pass 1: the column, the ribs, the sacrum): a call whose options differ only in how
    pass 2 floods the bone (:attr:`LevelOptions.geodesic_above_mm`) takes the counts of the
    labels cut the same way instead of counting again.

    The anatomy derives the parts a second time with the other flood when L5's landmarks are
    doubted (:func:`spinect_core.anatomy.identify._other_flood`); the counts are the same, and
    on fine grids they are half of each derivation (TotalSegmentator's real CT at 1 mm, whose
    coarse count is refused and counted again on the labels' own voxels: 10 s of 21).
    """
    token = _SHARED_COUNTS.set({})
    try:
        yield
    finally:
        _SHARED_COUNTS.reset(token)


def _count_key(labels: Volume, table: LabelTable, carved: np.ndarray | None,
               options: LevelOptions) -> tuple:
    """What a count pass depends on: the label map and its table (the same objects), the cut
    (its voxels' digest) and the options but pass 2's flood."""
    cut = None if carved is None else hashlib.blake2b(
        np.packbits(carved).tobytes() + repr(carved.shape).encode(), digest_size=16).digest()
    return (id(labels), id(table), cut, replace(options, geodesic_above_mm=0.0))


def _count_pass(labels: Volume, table: LabelTable, carved: np.ndarray | None,
                options: LevelOptions, progress: ProgressCallback | None) -> _Counted:
    """Pass 1 (coarse, ~2 mm): find the vertebral column and the sacrum, or refuse quickly; on
    the labels' bone cut at ``carved`` (bool, the labels' shape; its voxels join the disc).
    Within :func:`shared_count_passes`, a pass already made on the same labels is taken (a
    copy: the callers add to its evidence)."""
    shared = _SHARED_COUNTS.get()
    if shared is None:
        return _count_once(labels, table, carved, options, progress)
    key = _count_key(labels, table, carved, options)
    if key in shared:
        result = shared[key][2]
        if isinstance(result, AnatomyError):
            raise _refusal_copy(result)
        # The masks are made again (a fraction of a second) rather than kept: four of the
        # scan's size per pass kept (a 512 x 512 x 600 CT: 0.6 GB).
        return replace(result, masks=_cut_class_masks(labels, table, carved),
                       chain=list(result.chain), sacral=list(result.sacral),
                       evidence=copy.deepcopy(result.evidence))
    try:
        counted = _count_once(labels, table, carved, options, progress)
    except AnatomyError as exc:
        shared[key] = (labels, table, _refusal_copy(exc))
        raise
    shared[key] = (labels, table, replace(counted, masks={}, evidence=copy.deepcopy(
        counted.evidence)))
    return counted


def _cut_class_masks(labels: Volume, table: LabelTable, carved: np.ndarray | None
                     ) -> dict[str, np.ndarray]:
    """The labels' class masks (:func:`~spinect_core.anatomy.parts.class_masks`), their bone cut
    at ``carved`` and the cut voxels given to the disc."""
    masks = class_masks(labels, table)
    if carved is not None:
        masks["bone"] = masks["bone"] & ~carved
        masks["disc"] = masks["disc"] | carved         # a band joins the disc it belongs to
    return masks


def _refusal_copy(refusal: AnatomyError) -> AnatomyError:
    """A copy of a count's refusal with its own evidence: the callers add to it."""
    out = copy.copy(refusal)
    if hasattr(refusal, "evidence"):
        out.evidence = copy.deepcopy(refusal.evidence)  # type: ignore[attr-defined]
    return out


def _count_once(labels: Volume, table: LabelTable, carved: np.ndarray | None,
                options: LevelOptions, progress: ProgressCallback | None) -> _Counted:
    """:func:`_count_pass` itself."""
    masks = _cut_class_masks(labels, table, carved)
    bone_full = masks["bone"]
    if not bone_full.any():
        values = [int(v) for v in np.unique(np.asarray(labels.array))[:12]]
        raise NoBone(f"the label map contains no bone (class 'bone' = "
                           f"{table.id_of('bone')} in its table; values found: {values}): cannot "
                           "find L5/S1; segment the CT first (bone and nerve) or give the label "
                           "table that names its values")
    sp_full = G.spacing_zyx(labels)
    box = G.bbox_slices(bone_full, np.ceil(3.0 * options.core_mm / sp_full).astype(int))
    box_off = tuple(s.start for s in box)
    report(progress, 0.05, "finding vertebral bodies")
    cbone, cgrid, coff = block_majority(bone_full[box], labels, box_off, options.coarse_mm)
    csp = G.spacing_zyx(cgrid)
    cdt, clab, ccores = _cores(cbone, cgrid, coff, csp, options)
    cpts = G.voxel_points(cgrid, cbone, coff)        # LPS of the coarse bone's voxels
    midline_x = float(np.median(cpts[:, 0]))

    def column_of(cores: list[_Core]) -> list[_Core]:
        return _chain([c for c in cores
                       if abs(c.centre[0] - midline_x) <= options.max_off_midline_mm])

    chain = column_of(ccores)
    column_x = float(np.median([c.centre[0] for c in chain])) if chain else midline_x
    if chain:
        # Again with the cores cut beside the column (see _cores): the sacrum and an ilium
        # joined in the labels.
        cdt, clab, ccores = _cores(cbone, cgrid, coff, csp, options, split_x=column_x, dt=cdt)
        chain = column_of(ccores)
    if not chain and ccores:
        off_mm = min(abs(c.centre[0] - midline_x) for c in ccores)
        raise AnatomyError(f"no vertebral body near the skeleton's midline (the nearest thick bone "
                           f"lies {off_mm:.0f} mm to the side): the spine's bodies are not solid "
                           "in the bone labels; check the segmentation of the spine")
    if not chain:
        raise AnatomyError("no vertebral body found in the bone labels: L5/S1 cannot be identified;"
                           " check that the label map holds the spine")
    report(progress, 0.15, "counting ribs and vertebrae")
    ribs = find_ribs(cbone, cgrid, coff, cdt, clab, chain, core_mm=options.core_mm,
                     options=options.counting)
    report(progress, 0.25, "finding the sacrum")
    chain, s_idx, evidence = _count_levels(chain, ribs, cbone, cpts, cgrid, coff, clab, labels,
                                           options)
    # S2... found as separate bodies below the sacrum are part of it.
    return _Counted(masks=masks, chain=chain[: s_idx + 1], sacral=chain[s_idx + 1:],
                    evidence=evidence, column_x=column_x)


def _derive_parts(labels: Volume, table: LabelTable, carved: np.ndarray | None,
                  options: LevelOptions, progress: ProgressCallback | None, *,
                  hu: np.ndarray | None = None) -> DerivedLevels:
    """:func:`derive_parts` on the labels, their bone cut at ``carved`` (bool, the labels'
    shape) and the cut voxels taken as disc when given."""
    counted = _count_pass(labels, table, carved, options, progress)
    masks, chain, sacral, evidence = counted.masks, counted.chain, counted.sacral, counted.evidence
    bone_full = masks["bone"]
    sp_full = G.spacing_zyx(labels)
    sacrum_c, l5_c = chain[-1], chain[-2]

    # Pass 2 (full resolution, in a box around the junction).
    centre = 0.5 * (sacrum_c.centre + l5_c.centre)
    sl = _roi(labels, labels.array.shape, (0, 0, 0), centre, options.roi_mm)
    off = tuple(s.start for s in sl)
    sp = sp_full
    voxel_mm3 = float(np.prod(sp))
    bone = bone_full[sl]
    dt, core_lab, cores = _cores(bone, labels, off, sp, options,
                                 split_x=counted.column_x)

    report(progress, 0.4, "separating L5, S1 and the ilia")
    # The joint spaces the CT shows are the bone's surface, for the seeds and the watershed.
    dt_joints, seedable = dt, core_lab > 0
    if hu is not None and options.joint_reach_mm > 0:
        joints = _joint_spaces(hu[sl], bone, sp, reach_mm=options.joint_reach_mm)
        if joints.any():
            dt_joints = distance_inside(bone & ~joints, sp)
            seedable = _seedable(core_lab, bone, joints, sp, options, dt_joints=dt_joints)
    markers = np.zeros(bone.shape, np.uint8)
    roles = {}
    for c in cores:
        roles[c.label] = _core_role(c, chain, sacral)
        markers[(core_lab == c.label) & seedable] = PART_ID[roles[c.label]]
    l5_ids = [k for k, r in roles.items() if r == "L5"]
    bone_pts = G.voxel_points(labels, bone, off)
    zz, yy, xx = np.nonzero(bone)
    s1_seed = np.isin(core_lab, [k for k, r in roles.items() if r == "S1"])
    # S1's core stays below L5's: thick labels (the CT bone model's) join L5's pedicle and
    # transverse process to the ala deeply enough for the sacrum's core to reach into them (a
    # procedural phantom's L5 arch went to S1 whole, its pedicles found 11-13 mm off). No S1
    # seed is kept above the level of the lowest point of L5's core along the column (that
    # point's depth below the core's centre taken in LPS z: the column runs cranio-caudally
    # at L5 within a few tens of degrees); S1's own bone there is reached by the flood from
    # below.
    axis = l5_c.centre - sacrum_c.centre
    axis /= max(float(np.linalg.norm(axis)), 1e-6)
    above = (bone_pts - l5_c.centre) @ axis > -(l5_c.centre[2] - l5_c.bottom_z)
    high = np.zeros(bone.shape, bool)
    high[zz[above], yy[above], xx[above]] = True
    markers[s1_seed & high] = 0
    # Bone that no core claims (a core's voxels kept from seeding by a joint still count).
    unclaimed = (core_lab == 0) | (s1_seed & high)
    s1_seed &= ~high
    # The body's own cores only: a lateral mass's core seeds S1's part, not its body (the
    # body bounds the L5/S1 disc's gap, which must not reach round to the foramina).
    s1_body_seed = s1_seed & np.isin(core_lab, [
        c.label for c in cores if _core_role(c, chain, sacral, sacrum_depth_mm=10.0) == "S1"])
    if sacrum_c.seed_lps is not None:
        # A sacrum without a core: its top's bone seeds S1 (see _hollow_sacrum), and so does
        # its middle below that (else the ilia's seeds flood its thin shell through the
        # sacroiliac joints: a real 3 mm CT's sacrum went to the ilia but for its top).
        s1_body_seed = _seed_mask(sacrum_c.seed_lps, labels, off, bone, options.coarse_mm) & (
            unclaimed)
        middle = _sacral_middle(sacrum_c, bone_pts, options) & unclaimed[zz, yy, xx]
        s1_body_seed[zz[middle], yy[middle], xx[middle]] = True
        markers[(s1_seed & seedable) | s1_body_seed] = PART_ID["S1"]
        s1_seed = s1_seed | s1_body_seed
    if not l5_ids or not s1_seed.any():
        raise AnatomyError("cannot separate L5 from S1 at full resolution; check the "
                                "segmentation at L5/S1")
    dx = bone_pts[:, 0] - sacrum_c.centre[0]
    far = (np.abs(dx) > options.ilium_lateral_mm) & (bone_pts[:, 2] < l5_c.top_z + 40.0) & (
        unclaimed[zz, yy, xx])
    markers[zz[far & (dx > 0)], yy[far & (dx > 0)], xx[far & (dx > 0)]] = PART_ID["ilium_left"]
    markers[zz[far & (dx < 0)], yy[far & (dx < 0)], xx[far & (dx < 0)]] = PART_ID["ilium_right"]
    from skimage.segmentation import watershed

    report(progress, 0.5, "separating L5, S1 and the ilia")
    # The watershed splits at the bone's narrowest necks. Thick labels (the CT bone
    # model's, a voxel wider than the bone, the default "fused" mode's) fill the facet
    # joints, and L5's posterior arch flooded from S1 or L4 through them: on 6 procedural
    # phantoms with the CT's bone, 7 of 12 L5 pedicle centres were found 7-13 mm off
    # (2-3 mm with this). Where the CT shows the joint, its voxels are the bone's surface.
    # Coarse voxels do not show the facet joints: flood in steps instead (geodesic_above_mm).
    elevation = (_geodesic_from(markers > 0, bone, sp)
                 if float(sp.max()) > options.geodesic_above_mm else -dt_joints)
    ws = watershed(elevation, markers, mask=bone).astype(np.uint8)
    ws[bone & (ws == 0)] = PART_ID["other_bone"]   # bone no seed reaches: not L5/S1
    report(progress, 0.7, "finding the L5/S1 disc")

    parts_c = np.zeros(bone.shape, np.uint8)
    parts_c[bone] = ws[bone]
    for cls, pid in (("nerve", "other_nerve"), ("dura", "dura"), ("disc", "disc_other")):
        parts_c[masks[cls][sl] & ~bone] = PART_ID[pid]
    l5_body = _body_of(parts_c == PART_ID["L5"], np.isin(core_lab, l5_ids), sp, options)
    # The body of a sacrum without a core grows from its top and middle only: small patches of
    # its marrow with a core (beside the canal, in the real 3 mm CT's fatty S1) seed its part
    # but would stretch its body back to the articular processes, whose gap with L5's arch
    # then joins the disc's (that CT's disc centre moved 4 mm back and up, 2.8 -> 7.0 mm).
    s1_body = _body_of(parts_c == PART_ID["S1"], s1_body_seed, sp, options)
    disc = masks["disc"][sl]
    source = "label"
    chosen = _disc_between(disc, l5_body, s1_body, sp) if disc.any() else None
    free = ~bone & ~masks["nerve"][sl] & ~masks["dura"][sl]
    if options.disc_behind_wall_mm is not None:
        free &= _not_behind(l5_body, labels.anterior_step_zyx, sp, options.disc_behind_wall_mm)
    if chosen is None:
        source = "gap"
        chosen = _gap_between(free, l5_body, s1_body, sp)
    elif hu is not None:
        completed = _disc_completed(chosen, free & (hu[sl] >= options.disc_min_hu), l5_body,
                                    s1_body, sp, min_fraction=options.disc_label_min_fraction)
        if completed.sum() > chosen.sum():
            source, chosen = "completed", completed
    if chosen is None or chosen.sum() * voxel_mm3 < 200.0:
        raise AnatomyError("cannot separate L5 from S1: no disc or gap found between the "
                                "two bodies (fused L5/S1?); check the segmentation at L5/S1")
    parts_c[chosen] = PART_ID["disc_L5S1"]
    if carved is not None:
        _return_cut_bone(parts_c, carved[sl], sp)

    parts = np.zeros(labels.array.shape, np.uint8)
    for cls, pid in (("bone", "other_bone"), ("nerve", "other_nerve"), ("dura", "dura"),
                     ("disc", "disc_other")):
        parts[masks[cls]] = PART_ID[pid]
    parts[sl] = np.where(parts_c > 0, parts_c, parts[sl])
    evidence.s1_endplate_found = True
    evidence.reasons.append(f"S1 endplate: the L5/S1 {'disc' if source == 'label' else 'gap'} "
                            "lies between the L5 and S1 bodies")
    report(progress, 0.8, "levels identified")
    return DerivedLevels(parts=parts, chain_centres_lps=np.array([c.centre for c in chain]),
                         sacrum_centre_lps=sacrum_c.centre, l5_centre_lps=l5_c.centre,
                         disc_centre_lps=G.voxel_points(labels, chosen, off).mean(axis=0),
                         disc_source=source, evidence=evidence)


#: :func:`_return_cut_bone` searches this far (mm) about the cut for the nearest bone first.
_CUT_MARGIN_MM = 10.0


def _return_cut_bone(parts: np.ndarray, cut: np.ndarray, sp: np.ndarray) -> None:
    """Give the voxels of ``cut`` that became ``disc_other`` back to the bone part nearest each
    (in place; ``parts`` and ``cut`` on one box, ``sp`` its voxel size (z, y, x) mm).

    A cut parts two bodies for the count and its voxels join the disc class, but only the
    piece that becomes the L5/S1 disc is a disc: the rest is bone (the endplates of a collapsed
    L4/L5 disc, the plate widened in its plane to the body's surface). Left as a disc, the cut
    hollowed L5's body at its pedicles: measured on a real-bone phantom at 3 mm with the CT
    bone model's labels, a collapsed-disc plate 33 mm above L5/S1 took 78 of the 318 body
    voxels at the pedicles' level and the pedicle centres were found 9-12 mm off.
    """
    back = cut & (parts == PART_ID["disc_other"])
    bone = np.isin(parts, [PART_ID[n] for n in BONE_PARTS]) & ~cut
    if not back.any() or not bone.any():
        return
    # The nearest bone lies within a few voxels of a cut: search a box about the cut first (the
    # whole box the parts span is up to 260 mm across), the whole box only when some voxel of
    # the cut finds none within the margin (bone beyond it could be nearer).
    for margin in (_CUT_MARGIN_MM, None):
        box = (tuple(slice(None) for _ in parts.shape) if margin is None else
               G.bbox_slices(back, np.ceil(margin / sp).astype(int)))
        dist, nearest = ndi.distance_transform_edt(~bone[box], sampling=sp,
                                                   return_indices=True)
        inner = back[box]
        if margin is None or dist[inner].max() <= margin:
            sub = parts[box]
            sub[inner] = sub[tuple(i[inner] for i in nearest)]
            return


def _seedable(core_lab: np.ndarray, bone: np.ndarray, joints: np.ndarray, sp: np.ndarray,
              options: LevelOptions, *, dt_joints: np.ndarray | None = None) -> np.ndarray:
    """The voxels of the cores (``core_lab`` > 0) that may seed the watershed: as deep inside
    the bone, taking the joint spaces the CT shows as its surface, as a core must be
    (``options.core_mm``); bool, ``bone``'s shape.

    Labels a voxel wider than the bone (the CT bone model's, the default fused bone's) fill the
    facet joints, and the articular processes on both sides of a joint become one mass thick
    enough for a core: on real-bone phantoms L5's inferior and S1's superior articular
    processes with their joint, 15 mm across, joined the sacrum's core through S1's thick
    pedicle, seeded S1 inside L5's inferior articular processes, and the watershed gave S1
    L5's laminae and spinous process and L5 L4's (real-bone seeds 100-109 at 1 mm: 3500-15000
    of L5's voxels in S1 on 9 of 10, the L5 pedicle centres 6-14 mm off).

    :func:`_joint_spaces` also marks dark spots of trabecular marrow between brighter
    trabeculae, which can leave a body no voxel that deep (a real-bone phantom's L5 lost all
    of its 14000 core voxels to them). A core that keeps less than
    ``options.joint_core_fraction`` of its voxels is taken with only the joint spaces of at
    least ``options.joint_min_mm3`` as surface (the spots are single voxels and small
    clusters), and whole when that too leaves too little.

    Parameters
    ----------
    core_lab : np.ndarray, int, shape (z, y, x)
        The cores (:func:`_cores`), 0 elsewhere.
    bone, joints : np.ndarray, bool, same shape
        The labels' bone and its joint spaces (:func:`_joint_spaces`).
    sp : np.ndarray, shape (3,)
        Voxel size (z, y, x), mm.
    options : LevelOptions
    dt_joints : np.ndarray, optional
        The distance (mm) of each voxel of ``bone & ~joints`` from the rest, when computed.
    """
    if dt_joints is None:
        dt_joints = distance_inside(bone & ~joints, sp)
    cores = core_lab > 0
    out = cores & (dt_joints >= options.core_mm)
    n = int(core_lab.max())
    total = np.bincount(core_lab[cores], minlength=n + 1)
    kept = np.bincount(core_lab[out], minlength=n + 1)
    thin = (kept < options.joint_core_fraction * total) & (total > 0)
    if not thin.any():
        return out
    pieces, count = ndi.label(joints, structure=_FULL)
    size = np.bincount(pieces.ravel(), minlength=count + 1) * float(np.prod(sp))
    size[0] = 0.0
    large = (size >= options.joint_min_mm3)[pieces]
    out_large = cores & (distance_inside(bone & ~large, sp) >= options.core_mm)
    kept_large = np.bincount(core_lab[out_large], minlength=n + 1)
    whole = thin & (kept_large < options.joint_core_fraction * total)
    out[thin[core_lab] & cores] = out_large[thin[core_lab] & cores]
    out[whole[core_lab] & cores] = True
    return out


def _core_role(core: _Core, chain: list[_Core], sacral: list[_Core], *,
               sacrum_depth_mm: float = 30.0) -> str:
    """The part a core of the junction's box seeds: ``"L5"``, ``"S1"``, ``"ilium_left"``,
    ``"ilium_right"`` or ``"other_bone"``.

    ``chain`` is the column's bodies, cranial first, ending with L5 and the sacrum; ``sacral``
    the sacral bodies found below the sacrum. A core seeds the body nearest to it when it lies
    near that body's centre or beside it at its height (a body whose marrow is hollow in the
    middle keeps a core on each side: a real 3 mm CT's L5, 23 mm apart). The sacrum's bounds
    are looser: its height, because S1 slopes and a sacrum without a core is centred on the
    top of its bone (the same CT's S1, its marrow's cavities filled, kept a core on each side,
    one 10.4 mm from that centre's height); its depth, because with its fatty marrow filled
    that CT's sacrum kept its cores in the lateral masses beside and behind the body, 15 and 29
    mm behind the centre (taken as other bone, they flooded S1's top and its disc centre moved
    3.1 -> 5.7 mm off). No lumbar arch has a core that deep behind the sacrum's centre: its
    articular processes and laminae are thinner than twice ``LevelOptions.core_mm``
    (``sacrum_depth_mm``; 10 mm, a lumbar body's bound, keeps the sacrum's body cores alone).
    A core far lateral of the sacrum, no higher than 40 mm above L5's top, is an ilium.
    """
    sacrum_c, l5_c = chain[-1], chain[-2]
    near = min(chain + sacral, key=lambda k: float(np.linalg.norm(k.centre - core.centre)))
    d = np.abs(near.centre - core.centre)
    sacrum = near is sacrum_c or any(near is k for k in sacral)
    beside_y, beside_z = (sacrum_depth_mm, 15.0) if sacrum else (10.0, 10.0)
    if np.linalg.norm(d) <= 12.0 or (d[0] <= 30.0 and d[1] <= beside_y and d[2] <= beside_z):
        if sacrum:
            return "S1"
        return "L5" if near is l5_c else "other_bone"
    if abs(core.centre[0] - sacrum_c.centre[0]) > 35.0 and core.centre[2] < l5_c.top_z + 40.0:
        return "ilium_left" if core.centre[0] > sacrum_c.centre[0] else "ilium_right"
    return "other_bone"


def _joint_spaces(hu: np.ndarray, bone: np.ndarray, sp: np.ndarray, *, reach_mm: float
                  ) -> np.ndarray:
    """The bone voxels of ``bone`` that lie in a thin dark valley of the CT: a joint space that
    the labels bridged.

    A voxel is one when, along some axis, there is bone within ``reach_mm`` on both sides and
    the voxel is darker than halfway between soft tissue and the dimmer of the brightest bone
    on each side. Labels a voxel wider than the bone (the CT bone model's, which takes in the
    partial-volume rim) fill a 1-2 mm facet joint, and the voxels of that fill read halfway
    between the two cortices and the joint's soft tissue. Marrow wider than ``2 * reach_mm``
    has no bone within reach on both sides and is not marked; thin marrow (a lamina's) may be,
    which only makes it flood later.

    Parameters
    ----------
    hu : np.ndarray, shape (z, y, x)
        CT, HU.
    bone : np.ndarray, bool, same shape
    sp : np.ndarray, shape (3,)
        Voxel size (z, y, x), mm.
    reach_mm : float

    Returns
    -------
    np.ndarray, bool, same shape
    """
    h = np.asarray(hu, np.float32)
    soft = soft_tissue_hu(h, bone)
    soft = 40.0 if soft is None else soft
    hb = np.where(bone, h, np.float32(-1000.0))
    out = np.zeros(bone.shape, bool)
    # The brightest bone within reach before (lo) and after (hi) each voxel along an axis;
    # two buffers reused for the three axes (a 1 mm CT's box is tens of millions of voxels).
    lo, hi = np.empty_like(hb), np.empty_like(hb)
    for axis in range(3):
        r = max(int(round(reach_mm / float(sp[axis]))), 1)
        n = h.shape[axis]
        lo.fill(-1000.0)
        hi.fill(-1000.0)
        for k in range(1, min(r, n - 1) + 1):
            dst = [slice(None)] * 3
            src = [slice(None)] * 3
            dst[axis], src[axis] = slice(k, None), slice(None, n - k)
            np.maximum(lo[tuple(dst)], hb[tuple(src)], out=lo[tuple(dst)])
            dst[axis], src[axis] = slice(None, n - k), slice(k, None)
            np.maximum(hi[tuple(dst)], hb[tuple(src)], out=hi[tuple(dst)])
        np.minimum(lo, hi, out=lo)        # the dimmer flank
        lo += np.float32(soft)
        lo *= np.float32(0.5)             # halfway between it and soft tissue
        out |= h < lo
    return bone & out


def _sized_bodies_below(chain: list[_Core], index: int) -> int:
    """Chain bodies below ``index`` whose core is at least half as large as the one above it."""
    ref = chain[max(index - 1, 0)].volume_mm3
    return sum(c.volume_mm3 >= 0.5 * ref for c in chain[index + 1:])


def _body_as_large_below(chain: list[_Core], index: int) -> bool:
    """A chain body below ``index`` has a core at least half as large as ``chain[index]``'s."""
    return any(c.volume_mm3 >= 0.5 * chain[index].volume_mm3 for c in chain[index + 1:])


def _count_levels(chain: list[_Core], ribs: RibFindings, cbone: np.ndarray, cpts: np.ndarray,
                  cgrid: Volume, coff, clab: np.ndarray, fov: Volume, options: LevelOptions
                  ) -> tuple[list[_Core], int, LevelEvidence]:
    """Find the sacrum in the chain and name the levels, or refuse saying what is missing.

    ``cpts`` (N, 3) are the LPS centres of ``cbone``'s voxels (``np.nonzero`` order). Returns
    the chain (with a sacrum found without a core appended, see :func:`_hollow_sacrum`), the
    sacrum's chain index and the evidence (``s1_endplate_found`` still False: the second pass
    establishes it).
    """
    co = options.counting
    voxel = float(np.prod(G.spacing_zyx(cgrid)))
    heavy = ~ribs.thin_points
    checks: list[SacrumCheck] = []
    for k in range(len(chain) - 1, max(len(chain) - 4, 0) - 1, -1):   # the lowest 3-4 bodies
        checks.append(check_sacrum(k, chain, cpts, heavy, cgrid, clab, coff, fov,
                                   core_mm=options.core_mm,
                                   ilium_lateral_mm=options.ilium_lateral_mm,
                                   min_ilium_mm3=options.min_ilium_mm3, voxel_mm3=voxel,
                                   options=co))
    # Below S1 the sacrum tapers (S2's body is far smaller than L5's, S3's has no core): a
    # candidate with two or more bodies below it at least half as large as the body above it is
    # a lumbar or thoracic body (measured: a chest CT's T11, beside bone the network added to
    # its ribs, passed the sacrum's tests with T12-L2 below it).
    # Nor is a candidate with a body below it whose core is half its own or more: what lies
    # below the sacrum's core is at most 3 % of it (45 label maps counted right), while a lumbar
    # body below the one taken for the sacrum is as large (a patient-like phantom at 1.5 mm whose
    # L5 had no core: L3 passed for the sacrum with L4 below it, 107 mm off at moderate).
    passed = [c for c in checks if c.ok and _sized_bodies_below(chain, c.index) < 2
              and not _body_as_large_below(chain, c.index)]
    # The most cranial body that passes: S2 may have a core of its own below S1.
    chosen = min(passed, key=lambda c: c.index) if passed else None
    # Unless the body below it passes too and is sacrum-shaped against it: then the chosen one
    # is L5 (its iliac crests beside it, its shape inflated against an L4 the field of view
    # cuts; measured on real-bone phantoms at 3 mm slices: the true labels of 2 of 5 seeds were
    # planned at L4/L5). S2 below S1 is smaller than S1, never shaped against it.
    by_index = {c.index: c for c in passed}
    while chosen is not None and chosen.index + 1 in by_index \
            and by_index[chosen.index + 1].shaped:
        chosen = by_index[chosen.index + 1]
    s_idx = chosen.index if chosen is not None else None
    t12 = ribs.last_body
    if t12 is not None and s_idx is not None and t12 >= s_idx:
        t12 = None                       # "ribs" at or below the sacrum are something else
    ev = LevelEvidence()
    lows: dict[str, int] = {}
    if t12 is not None:
        ev.ribs_found = True
        ev.last_rib_level = "T12"
        ev.rib_levels = {s: ribs.count(s) for s in ("left", "right")}
        lows = {s: max((r.body for r in ribs.ribs if r.side == s), default=-1)
                for s in ("left", "right")}
        ev.reasons.append(f"ribs: {ev.rib_levels['left']} rib-bearing levels on the left, "
                          f"{ev.rib_levels['right']} on the right; the last rib-bearing "
                          "vertebra is taken as T12")
        if min(lows.values()) != max(lows.values()):
            lone = "left" if lows["left"] > lows["right"] else "right"
            ev.reasons.append(f"the last rib-bearing vertebra has a rib on the {lone} side only")
    end = s_idx if s_idx is not None else len(chain) - 1
    pos, _ = chain_positions(chain[: end + 1], co, core_mm=options.core_mm,
                             ends_with_sacrum=s_idx is not None)
    ev.levels = name_levels(pos, sacrum=s_idx, t12=t12)
    ev.level_centres_lps = np.array([c.centre for c in chain[: end + 1]], float).reshape(-1, 3)
    ev.level_core_volumes_mm3 = np.array([c.volume_mm3 for c in chain[: end + 1]], float)
    start = t12 if t12 is not None else max(end - 5, 0)
    ev.missing_bodies = (pos[end] - pos[start]) - (end - start)
    # Bodies merged in the labels (no disc between them) make any count through them wrong.
    heights = merged_bodies(chain[: end + 1], cgrid, clab, coff,
                            max_height_mm=co.max_core_height_mm)
    tall = {j: h for j, h in heights.items() if start <= j and j != s_idx}
    ev.merged_bodies = len(tall)
    merged_note = ""
    if tall:
        j, h = max(tall.items(), key=lambda kv: kv[1])
        merged_note = (f"{_MERGED_NOTE_START} (a block "
                       f"{h:.0f} mm tall where {ev.levels[j]} should be, no disc seen): the levels "
                       "cannot be counted")
    ev.counted_from = ("sacrum+ribs" if t12 is not None and s_idx is not None else
                       "sacrum" if s_idx is not None else "ribs" if t12 is not None else "none")

    if chosen is None:
        bottom = checks[0]
        ev.ilia_found = bool(bottom.ilia)
        ev.ilia_sides = bottom.ilia
        ev.sacrum_shape_ratios = bottom.ratios
        ev.sacrum_depth_mm = bottom.depth_mm
        ev.last_level = ev.levels[-1] if t12 is not None else None
        # A sacrum-like sliver under the last disc: the scan ends just below the body above it.
        # (Not when the field of view goes on below it: then the bone labels end there.)
        sliver = bool(bottom.ilia) and bottom.shaped and len(chain) > 1 and bottom.cut_by_fov
        if sliver and t12 is not None:
            ev.last_level = ev.levels[-2]
        # The scan's edge cuts a body below the last core (too shallow for a core of its own).
        ends_in_body = body_cut_below(chain, cbone, cgrid, coff, fov)
        cut = not sliver and t12 is not None and not merged_note and ends_in_body
        if cut:
            ev.last_level = level_below(ev.levels[-1])
            ev.reasons.append(f"the field of view cuts a vertebral body below {ev.levels[-1]} "
                              f"(bone along the column to the scan's edge): {ev.last_level}")
        if merged_note and t12 is not None:
            ev.last_level = None
            ev.levels = tuple("?" for _ in ev.levels)
            ev.reasons.append(merged_note)
        # The column goes on in view below the last body (its bodies have no core in the bone):
        # the scan does not end there, the labels do.
        beyond = (None if sliver or cut else
                  column_continues_below(chain, cbone, cgrid, coff, fov))
        ev.confidence = "low"
        hollow = (_hollow_sacrum(chain, ev, bottom, cpts, cgrid, fov, options)
                  if beyond is not None and not merged_note else None)
        if hollow is not None:
            return [*chain, hollow], len(chain), ev
        if beyond is not None and not merged_note and t12 is not None \
                and t12 < len(chain) - 2 and len(checks) > 1 and _small_last_core(chain):
            # Tried on a copy: the refusal below keeps the evidence as found.
            trial = copy.deepcopy(ev)
            trimmed = _without_small_last_core(chain, trial, t12, co, options)
            hollow = _hollow_sacrum(trimmed, trial, checks[1], cpts, cgrid, fov, options)
            if hollow is not None:
                trial.reasons.append(
                    "a small core below L5 (a patch of the sacrum's marrow in the bone labels, "
                    f"{chain[-1].volume_mm3 / 1000.0:.1f} ml, too small for a vertebral body) "
                    "is taken as part of the sacrum")
                # After the sacrum in the chain: the small core is sacral (S1's seed).
                return [*trimmed, hollow, chain[-1]], len(trimmed), trial
        if len(chain) < 2 and bottom.ilia and bottom.deep_enough:
            # Bone beside a lone body is no proof of a sacrum: a real 40 mm slab of the upper
            # abdomen (one thoracic body, ribs and arms beside it) was refused as "no vertebral
            # body above the sacrum".
            err = AnatomyError("only one vertebral body is in view: with no body above it to "
                               "compare, it cannot be told whether it is the sacrum (L5 out of "
                               "view) or another vertebra, so L5/S1 cannot be identified; use a "
                               "CT that includes L5 and the sacrum")
        elif beyond is not None:
            last = (f" ({ev.levels[-1]} by the rib count)" if t12 is not None and not merged_note
                    else "")
            ev.last_level = None
            ev.column_beyond_mm = beyond
            ev.reasons.append(f"the column goes on below the last body found for {beyond:.0f} mm "
                              "of the field of view without a solid vertebral body in the bone")
            err = AnatomyError(
                f"the scan reaches {beyond:.0f} mm further down the column than the last "
                f"vertebral body found{last}, with bone there: the bodies below (and the sacrum) "
                "are not solid in the bone labels (their marrow left out), so the sacrum cannot "
                "be identified; check the segmentation of the lower spine and the sacrum")
        else:
            # Without ribs the refusal says L5/S1 is out of view unless the field of view goes
            # on well below a chain of bodies and does not end within a body below it (a real
            # lumbar crop ends within L4, 72 mm below the top of L3, its only body with a core).
            open_below = len(chain) > 1 and not ends_in_body
            err = AnatomyError(refusal_message(
                bottom.missing(), last_level=ev.last_level, counted_from=ev.counted_from,
                just_below=sliver, cut=cut, uncountable=merged_note if t12 is not None else "",
                fov_below_mm=bottom.fov_depth_mm if open_below else None))
        err.evidence = ev                # what was found, for a report of the refusal
        raise err

    ev.sacrum_found = True
    ev.ilia_found = True
    ev.ilia_sides = chosen.ilia
    ev.sacrum_shape_ratios = chosen.ratios
    ev.sacrum_depth_mm = chosen.depth_mm
    ev.last_level = "S1"
    ev.confidence = "high"
    w, v, h = chosen.ratios
    ev.reasons.append(f"sacrum: ilia on the {' and '.join(chosen.ilia)} side"
                      f"{'s' if len(chosen.ilia) > 1 else ''}; its core is {w:.1f}x as wide, "
                      f"{v:.1f}x as large and {h:.1f}x as tall as L5's; {chosen.depth_mm:.0f} mm "
                      "of it in view")
    if len(chosen.ilia) < 2:
        ev.downgrade("moderate", f"an ilium was found on the {chosen.ilia[0]} side only")
    if t12 is None:
        ev.downgrade("moderate", "no ribs in view: the count from the sacrum is not cross-checked "
                     "against the last rib-bearing vertebra (a transitional vertebra cannot be "
                     "excluded)")
        # Nor can the ribs catch a body missing above the sacrum: L5 merged into the sacrum's
        # core through a disc its labels bridge (a patient-like phantom at 3 mm, arterial
        # phase: L4 was planned as L5, 35 mm off, at moderate confidence, its link to the
        # sacrum 1.8x the spacing above) or left without a core.
        hidden = _hidden_body_above_sacrum(chain, s_idx)
        if hidden is not None:
            ev.doubt(f"the last lumbar body found lies {hidden:.1f}x the spacing of the bodies "
                     "above it from the sacrum: a body without a solid core, or merged into the "
                     "sacrum in the bone labels (L5), may lie between them, which would make the "
                     "planned L5/S1 L4/L5; check the level on a sagittal view")
    else:
        ev.lumbar_count = pos[s_idx] - pos[t12] - 1
        ev.rib_count_agrees = ev.lumbar_count == 5
        if ev.rib_count_agrees:
            ev.reasons.append("5 lumbar vertebrae between T12 and the sacrum: the rib count and "
                              "the count from the sacrum agree")
        elif ev.lumbar_count in (4, 6):
            ev.warnings.extend(count_warnings(ev.lumbar_count))
            ev.downgrade("moderate", f"{ev.lumbar_count} lumbar vertebrae between T12 and the "
                         "sacrum: transitional anatomy")
            other = min(lows.values()) if lows else -1
            if 0 <= other < t12 and pos[s_idx] - pos[other] - 1 == 5:
                # The sides' lowest ribs on neighbouring vertebrae, and the other side's count
                # is the usual 5: a lone 12th rib, or a rib given to the vertebra below its own
                # where the field of view cuts T12 (a real CT at 3 mm: L1 taken for T12 at
                # "moderate", before ribs went to the body beside their heads).
                ev.doubt(f"the lowest ribs lie on different vertebrae on the two sides: counted "
                         f"from the {min(lows, key=lows.__getitem__)} side's last rib there are "
                         f"5 lumbar vertebrae, from the other side's {ev.lumbar_count}; check the "
                         "last rib-bearing vertebra on a coronal view")
            hidden = _hidden_body_above_sacrum(chain, s_idx)
            if ev.lumbar_count == 4 and hidden is not None:
                note = (f"the last lumbar body found lies {hidden:.1f}x the spacing of the "
                        "bodies above it from the sacrum: a body without a solid core (L5) may "
                        "lie between them, which would make the two counts agree and the planned "
                        "L5/S1 L4/L5; check the level on a sagittal view")
                ev.doubt(note)
            if hidden is not None:
                ev.chain_faults.append(f"the last lumbar body found lies {hidden:.1f}x the "
                                       "spacing of the bodies above it from the sacrum")
        else:
            # Three lumbar vertebrae, or seven, is not a variant: the count went wrong (measured
            # on a real 3 mm CT's bone from a trial variant of the CT bone model: L4 taken for
            # the sacrum, planned 82 mm from L5/S1 at "moderate").
            hidden = _hidden_body_above_sacrum(chain, s_idx)
            if hidden is not None:
                # Both counts say bodies are missing from the chain, and the long last link
                # says where: the body above the sacrum is not L5, whichever count is right
                # (a patient-like phantom at 3 mm, osteoporotic: L2-L5 without a solid core,
                # L1 planned as L5 at "low", 37 mm off, once the canal was no longer bone).
                ev.reasons.append(f"{ev.lumbar_count} lumbar vertebrae between T12 and the "
                                  f"sacrum, the last link {hidden:.1f}x the spacing above")
                err = AnatomyError(
                    f"the levels cannot be counted: {ev.lumbar_count} lumbar "
                    f"vertebra{'' if ev.lumbar_count == 1 else 'e'} between the last "
                    "rib-bearing vertebra and the sacrum, and the last body found above the "
                    f"sacrum lies {hidden:.1f}x the spacing of the bodies above it from the "
                    "sacrum: vertebral bodies without a solid core in the bone labels (their "
                    "marrow left out) lie between them, so the disc above the sacrum cannot be "
                    "named; check the segmentation of the lower spine")
                err.evidence = ev
                raise err
            ev.warnings.extend(count_warnings(ev.lumbar_count))
            ev.downgrade("low", f"{ev.lumbar_count} lumbar vertebrae between T12 and the "
                         "sacrum: no transitional anatomy gives that, the count went wrong")
    # A lone body above that the scan's top edge cuts has a part's core: its size and height
    # are no yardstick, and only the width tells a sacrum with its alae from the next lumbar
    # body (a patient-like phantom cropped 100 mm above L5/S1, its L5 and sacrum without cores:
    # L4 passed for the sacrum against L3's cut core, 4.8x as large and 2.1x as tall but 1.2x as
    # wide, and was planned 81 mm off at moderate confidence).
    above_cut = s_idx == 1 and cut_by_fov_top(chain[0], fov, core_mm=options.core_mm)
    taller_only = w < co.sacrum_width_ratio and (v < co.sacrum_volume_ratio or above_cut)
    hardly_larger = v < co.sacrum_clear_volume_ratio
    if (taller_only or hardly_larger) and not ev.rib_count_agrees:
        # Taller only: a sacrum's core with its alae is wider than L5's (1.9-2.7x on 46 label
        # maps of real-bone phantoms); L5 joined to the top of S1 in the labels is only taller
        # (a patient-like phantom, osteoporotic, 3 mm: L5 was taken for the sacrum, 1.08x as
        # wide, 1.8x as tall, and planned 38 mm from L5/S1 at moderate confidence). Hardly
        # larger: a body a level too high, wide but with a core 1.1x as large as the one above
        # (a wide L5 above a sacrum without a core; an L5 above a sacrum whose canal the CT bone
        # model filled: planned 34 and 32 mm off at moderate confidence).
        shape = ("no wider than the one above, which the top of the field of view cuts (its "
                 "size and height are a part's)" if taller_only and above_cut
                 else "only taller than the one above" if taller_only
                 else "hardly larger than the one above")
        higher = ("may lie a level or more higher up" if taller_only and above_cut
                  else "may be L4/L5")
        note = (f"the body taken for the sacrum is {shape} ({h:.1f}x as tall, {w:.1f}x as "
                f"wide, {v:.1f}x as large): L5 joined to S1 in the labels, or a wide L5 above a "
                f"sacrum left without a core, looks alike, so the planned L5/S1 {higher}; "
                "check the level on a sagittal view")
        ev.doubt(note)
        ev.chain_faults.append(f"the body taken for the sacrum is {shape}")
    sacrum_h = heights.get(s_idx, 0.0)
    if sacrum_h > co.max_sacrum_core_height_mm:
        # Lumbar bodies merged into the sacrum's core (their discs bridged in the labels): the
        # body above it is higher up the column than L5.
        note = (f"the core taken for the sacrum is {sacrum_h:.0f} mm tall, taller than a "
                f"sacrum's (up to about {co.max_sacrum_core_height_mm:.0f} mm): lumbar bodies may "
                "be merged into it in the bone labels, and the planned L5/S1 may lie higher up; "
                "check the level on a sagittal view")
        ev.doubt(note)
        ev.chain_faults.append(f"the core taken for the sacrum is {sacrum_h:.0f} mm tall")
    if merged_note:
        ev.warnings.append(merged_note.replace("the levels cannot be counted",
                                               "the level count is unreliable; check the "
                                               "segmentation and the level on a full-spine view"))
        ev.downgrade("low", merged_note)
    if ev.missing_bodies:
        ev.downgrade("low", f"{ev.missing_bodies} vertebral bod"
                     f"{'y' if ev.missing_bodies == 1 else 'ies'} without a core inferred in a "
                     "gap of the chain: the count may be off")
        ev.chain_faults.append(f"{ev.missing_bodies} vertebral bod"
                               f"{'y' if ev.missing_bodies == 1 else 'ies'} without a core "
                               "inferred in a gap of the chain")
    # (Bodies merged in the labels are no such sign: the merged block is one of the count's
    # bodies, which explains the disagreement, and the disc above the sacrum stands.)
    return chain, s_idx, ev


def refuse_a_broken_count(ev: LevelEvidence) -> None:
    """Refuse (:class:`AnatomyError` carrying ``ev``) when the count from the sacrum disagrees
    with the rib count and the chain itself shows bodies missing or merged
    (``ev.chain_faults``), or when it finds two lumbar vertebrae or fewer. Judged on the final
    count, after the checks that may mend it (:func:`_split_bridged_disc`).

    A count of 4 or 6 is transitional anatomy when the chain is otherwise whole, and the disc
    above the sacrum is L5/S1 whatever the ribs say. When bodies are also missing from the chain
    or merged into the sacrum's core, the disagreement is the segmentation's, and the disc above
    the sacrum may be L4/L5: measured on a patient-like phantom at 3 mm (4 lumbar, the last link
    1.8x the spacing, the sacrum's core 107 mm tall: planned 37 mm from L5/S1 at low confidence)
    and on TotalSegmentator's real 3 mm CT reconstructed 0.75 mm off its grid (4 lumbar, a body
    inferred in a gap, L5 merged into the sacrum's core: 41 mm off) or with 5 mm slices (2
    lumbar: 38 mm off). A count of 3 with a whole chain stays a plan at low confidence (a
    patient-like phantom whose ribs were miscounted was planned right).
    """
    if ev.rib_count_agrees is not False or ev.lumbar_count is None:
        return
    n = ev.lumbar_count
    if not ev.chain_faults and n > 2:
        return
    why = ("; ".join(ev.chain_faults) if ev.chain_faults else
           f"no transitional anatomy gives {n} lumbar vertebra{'' if n == 1 else 'e'}")
    reason = (f"the levels cannot be counted: {n} lumbar vertebra{'' if n == 1 else 'e'} "
              "between the last rib-bearing vertebra and the sacrum (5, or 4-6 with a "
              f"transitional vertebra), and {why}: vertebral bodies are missing or merged in the "
              "bone labels (or fused in the patient), so the disc above the sacrum cannot be "
              "named L5/S1; check the segmentation of the lower spine and the level on a "
              "full-spine view")
    ev.reasons.append(reason)
    err = AnatomyError(reason)
    err.evidence = ev
    raise err


def _small_last_core(chain: list[_Core]) -> bool:
    """The chain's last core is smaller than :data:`SMALL_CORE_FRACTION` of a typical body's
    (the median of the larger half of the chain's cores), with at least two bodies above it:
    no vertebral body, a patch of a hollow sacrum's marrow (TotalSegmentator's real 3 mm CT
    with the cavities of its bone filled: a 1.4 ml core beside S1's midline, 0.15x L5's, that
    the ribs named L6 and the refusal then named the sacrum's absence)."""
    if len(chain) < 3:
        return False
    return chain[-1].volume_mm3 < SMALL_CORE_FRACTION * _typical_core_mm3(chain[:-1])


def _without_small_last_core(chain: list[_Core], ev: LevelEvidence, t12: int,
                             co: CountOptions, options: LevelOptions) -> list[_Core]:
    """The chain without its last core (:func:`_small_last_core`), with ``ev``'s levels (T12 at
    chain index ``t12``), centres, core volumes and missing bodies counted again without it."""
    trimmed = chain[:-1]
    pos, _ = chain_positions(trimmed, co, core_mm=options.core_mm)
    ev.levels = name_levels(pos, sacrum=None, t12=t12)
    ev.level_centres_lps = ev.level_centres_lps[: len(trimmed)]
    ev.level_core_volumes_mm3 = ev.level_core_volumes_mm3[: len(trimmed)]
    ev.missing_bodies = (pos[-1] - pos[t12]) - (len(trimmed) - 1 - t12)
    return trimmed


def _hollow_sacrum(chain: list[_Core], ev: LevelEvidence, bottom: SacrumCheck, cpts: np.ndarray,
                   cgrid: Volume, fov: Volume, options: LevelOptions) -> _Core | None:
    """A sacrum without a core below the chain's last body, accepted on the rib count: the
    sacrum's record for the chain, with ``ev`` completed (low confidence), or None.

    Only when the ribs name the last body L5 with no body missing in the count and the ilia lie
    beside it on both sides, and the column goes on below it with bone (the caller's test):
    then the bone past the L5/S1 gap (:func:`~spinect_core.anatomy.counting.find_hollow_sacrum`)
    is taken for S1. The sacrum's shape cannot be checked (it has no core to compare with
    L5's), so transitional anatomy is not excluded and the user is told so. Measured on a real
    3 mm CT (elderly, fatty sacral marrow): refused before as "the scan reaches 156 mm further
    down the column than the last vertebral body found (L5 by the rib count)".
    """
    if not (ev.ribs_found and ev.levels and ev.levels[-1] == "L5" and ev.missing_bodies == 0
            and len(bottom.ilia) == 2):
        return None
    step = float(max(cgrid.spacing_mm.max(), 1.0))
    found = find_hollow_sacrum(chain, cpts, fov, step=step,
                               voxel_mm3=float(np.prod(G.spacing_zyx(cgrid))),
                               options=options.counting)
    if found is None:
        return None
    seed_z = found.seed_lps[:, 2]
    core = _Core(-1, found.centre_lps, 0.0, float(seed_z.max()), float(seed_z.min()),
                 seed_lps=found.seed_lps)
    ev.sacrum_found = ev.sacrum_hollow = True
    ev.ilia_found = True
    ev.ilia_sides = bottom.ilia
    ev.sacrum_depth_mm = found.depth_mm
    ev.levels = (*ev.levels, "S1")
    ev.level_centres_lps = np.vstack([ev.level_centres_lps, found.centre_lps[None]])
    ev.level_core_volumes_mm3 = np.append(ev.level_core_volumes_mm3, 0.0)
    ev.last_level = "S1"
    ev.counted_from = "ribs"
    ev.lumbar_count = 5
    ev.reasons.append(
        f"the sacrum has no solid core in the bone labels (its marrow left out): the bone the "
        f"column runs into below the L5/S1 gap, {found.depth_mm:.0f} mm of it in view, between "
        f"ilia on both sides, is taken for it because the rib count names the body above L5")
    # Low: the rib count alone names the level (it was off on 3 of the 9 patient-like phantoms
    # whose level the sacrum fixed, 4 or 6 lumbar vertebrae for 5, and a sacrum without a
    # core under a miscount was planned 38 mm off), and the sacrum's shape is unchecked.
    ev.doubt("the sacrum is not solid in the bone labels, so L5 was named by counting down from "
             "the last rib-bearing vertebra only: a transitional vertebra (sacralised L5, "
             "lumbarised S1) or an unusual rib count cannot be excluded; confirm the level on a "
             "sagittal view")
    return core


#: A link from the last lumbar body to the sacrum's core this many times the median spacing of
#: the lumbar links above may hide a body (the sacrum's core centre lies deeper than a body's:
#: measured on patient-like phantoms at 3 mm, 0.96-1.31x on their true labels and 0.85-1.45x on
#: the fused labels that were counted right; 2.13x where L5 had no core).
HIDDEN_BODY_LINK_RATIO = 1.7


def _hidden_body_above_sacrum(chain: list[_Core], s_idx: int) -> float | None:
    """The ratio of the last link (the body above the sacrum to the sacrum's core, along the
    column: LPS z) to the median of the links above, when it is at least
    :data:`HIDDEN_BODY_LINK_RATIO` and there are two links above to compare; else None.

    :func:`~spinect_core.anatomy.counting.chain_positions` leaves the sacrum's link out (its
    core's top is no endplate), so an L5 without a core there goes uncounted: measured on a
    patient-like phantom at 3 mm (sclerotic), L4 was planned as L5, 37 mm off, at moderate
    confidence beside the words "possible sacralised L5".
    """
    if s_idx < 3:
        return None
    z = np.array([c.centre[2] for c in chain[: s_idx + 1]], float)
    links = np.abs(np.diff(z))
    ratio = float(links[-1] / np.median(links[:-1]))
    return ratio if ratio >= HIDDEN_BODY_LINK_RATIO else None


def _roi(grid: Volume, shape, off, centre_lps: np.ndarray, half_mm: float):
    """Index box (within a crop starting at ``off``) of an LPS cube around ``centre_lps``."""
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
    idx = grid.lps_to_index(centre_lps + half_mm * corners)      # (8, 3) x, y, z
    lo = np.floor(idx.min(axis=0)).astype(int)[::-1] - np.asarray(off)
    hi = np.ceil(idx.max(axis=0)).astype(int)[::-1] - np.asarray(off) + 1
    return tuple(slice(max(int(a), 0), min(int(b), n)) for a, b, n in zip(lo, hi, shape))


def _seed_mask(seed_lps: np.ndarray, grid: Volume, off, bone: np.ndarray, reach_mm: float
               ) -> np.ndarray:
    """The bone of ``bone`` (a crop of ``grid`` at index ``off``) within about ``reach_mm`` (a
    coarse voxel) of the points ``seed_lps`` (M, 3, LPS mm)."""
    ijk = np.rint(grid.lps_to_index(seed_lps)).astype(int)[:, ::-1] - np.asarray(off)
    ijk = ijk[np.all((ijk >= 0) & (ijk < np.array(bone.shape)), axis=1)]
    mask = np.zeros(bone.shape, bool)
    mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
    reach = np.maximum(np.rint(0.5 * reach_mm / G.spacing_zyx(grid)).astype(int), 0)
    if reach.any():
        mask = ndi.binary_dilation(mask, structure=np.ones(2 * reach + 1, bool))
    return mask & bone


def _sacral_middle(sacrum: _Core, bone_pts: np.ndarray, options: LevelOptions) -> np.ndarray:
    """(N,) bool: which of the bone voxels ``bone_pts`` (N, 3, LPS mm) are a sacrum without a
    core below its seed (``sacrum.seed_lps``), near its midline: within
    ``options.sacral_middle_mm`` left-right of the seed's centre (medial of the sacroiliac
    joints, 40-50 mm out), lower than the seed's lowest point (below the top of S1 by the seed's
    depth: the inferior articular processes of L5 end higher up, behind the sloping S1
    endplate) and within ``options.sacral_reach_mm`` of the seed's centre (not the pubic
    symphysis)."""
    return ((np.abs(bone_pts[:, 0] - sacrum.centre[0]) <= options.sacral_middle_mm)
            & (bone_pts[:, 2] < sacrum.bottom_z)
            & (np.linalg.norm(bone_pts - sacrum.centre, axis=1) <= options.sacral_reach_mm))


def _body_of(part: np.ndarray, core: np.ndarray, sp, options: LevelOptions) -> np.ndarray:
    """The vertebral body of a part: its core grown back by the core depth, inside the part."""
    return part & G.within_mm(core, options.core_mm + 0.5 * float(np.max(sp)), sp)


def _near_bodies(l5_body: np.ndarray, s1_body: np.ndarray, sp, margin_mm: float):
    """Index box around both bodies (keeps the distance maps small on large scans)."""
    return G.bbox_slices(l5_body | s1_body, np.ceil(margin_mm / np.asarray(sp)).astype(int))


def _disc_between(disc: np.ndarray, l5_body: np.ndarray, s1_body: np.ndarray, sp
                  ) -> np.ndarray | None:
    """The disc component touching both bodies the most (within 3 mm of each)."""
    box = _near_bodies(l5_body, s1_body, sp, 20.0)
    if box is None:
        return None
    found = _disc_between_in(disc[box], l5_body[box], s1_body[box], sp)
    if found is None:
        return None
    out = np.zeros_like(disc)
    out[box] = found
    # The whole component, also where it leaves the box.
    lab, _ = ndi.label(disc, structure=_FULL)
    ids = np.unique(lab[out])
    return np.isin(lab, ids[ids > 0])


def _disc_between_in(disc: np.ndarray, l5_body: np.ndarray, s1_body: np.ndarray, sp
                     ) -> np.ndarray | None:
    lab, n = ndi.label(disc, structure=_FULL)
    if n == 0:
        return None
    near5 = ndi.distance_transform_edt(~l5_body, sampling=sp) <= 3.0
    near1 = ndi.distance_transform_edt(~s1_body, sampling=sp) <= 3.0
    c5 = np.bincount(lab[near5 & disc], minlength=n + 1)
    c1 = np.bincount(lab[near1 & disc], minlength=n + 1)
    score = np.minimum(c5, c1)
    score[0] = 0
    best = int(np.argmax(score))
    return (lab == best) if score[best] > 0 else None


def _disc_completed(disc: np.ndarray, soft: np.ndarray, l5_body: np.ndarray,
                    s1_body: np.ndarray, sp, *, min_fraction: float) -> np.ndarray:
    """The labelled L5/S1 disc, completed with the soft tissue between the bodies where the
    labels hold only a part of it.

    Parameters
    ----------
    disc : np.ndarray, bool, shape (nz, ny, nx)
        The labelled disc between the bodies (:func:`_disc_between`).
    soft : np.ndarray, bool, same shape
        Unlabelled soft tissue that may be disc (not bone, nerve or dura; a disc's CT value).
    l5_body, s1_body : np.ndarray, bool, same shape
        The two bodies.
    sp : array-like, shape (3,)
        Voxel size (z, y, x) in mm.
    min_fraction : float
        The labelled disc stands alone when it holds at least this fraction of the gap's
        voxels (:func:`_gap_between` of the soft tissue and the disc).

    Returns
    -------
    np.ndarray, bool, same shape
        ``disc``, or ``disc`` with the gap's soft tissue.
    """
    gap = _gap_between(soft | disc, l5_body, s1_body, np.asarray(sp, float))
    if gap is None or disc.sum() >= min_fraction * gap.sum():
        return disc
    return disc | gap


def _not_behind(body: np.ndarray, anterior: tuple[int, int], sp: np.ndarray,
                margin_mm: float) -> np.ndarray:
    """(z, y, x) bool: the voxels no further back than ``margin_mm`` behind the rearmost voxel of
    ``body`` along the array axis that runs antero-posteriorly (``anterior``: that axis and the
    index step towards anterior, :attr:`Volume.anterior_step_zyx`); all when ``body`` is empty."""
    axis, step = anterior
    out = np.ones(body.shape, bool)
    along = np.nonzero(body.any(axis=tuple(a for a in range(3) if a != axis)))[0]
    if along.size == 0:
        return out
    margin = int(round(margin_mm / float(sp[axis])))
    index = np.arange(body.shape[axis]).reshape([-1 if a == axis else 1 for a in range(3)])
    keep = index >= along.min() - margin if step > 0 else index <= along.max() + margin
    return out & keep


def _gap_between(free: np.ndarray, l5_body: np.ndarray, s1_body: np.ndarray, sp
                 ) -> np.ndarray | None:
    """Unlabelled voxels lying between the two bodies (the disc when it has no label).

    A voxel is between the bodies when its nearest L5-body and S1-body points are nearly opposite
    each other (the path through it is at most 15 % longer than the straight gap) and the gap is
    at most 20 mm.
    """
    if not l5_body.any() or not s1_body.any():
        return None
    box = _near_bodies(l5_body, s1_body, sp, 18.0)
    found = _gap_between_in(free[box], l5_body[box], s1_body[box], sp)
    if found is None:
        return None
    out = np.zeros_like(free)
    out[box] = found
    return out


def _gap_between_in(free: np.ndarray, l5_body: np.ndarray, s1_body: np.ndarray, sp
                    ) -> np.ndarray | None:
    d5, i5 = ndi.distance_transform_edt(~l5_body, sampling=sp, return_indices=True)
    d1, i1 = ndi.distance_transform_edt(~s1_body, sampling=sp, return_indices=True)
    cand = free & (d5 <= 16.0) & (d1 <= 16.0)
    zz, yy, xx = np.nonzero(cand)
    a = i5[:, zz, yy, xx].T * sp
    b = i1[:, zz, yy, xx].T * sp
    gap = np.linalg.norm(a - b, axis=1)
    ok = (gap <= 20.0) & (d5[zz, yy, xx] + d1[zz, yy, xx] <= 1.15 * gap + float(sp.max()))
    out = np.zeros_like(free)
    out[zz[ok], yy[ok], xx[ok]] = True
    if not out.any():
        return None
    lab, n = ndi.label(out, structure=_FULL)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))

