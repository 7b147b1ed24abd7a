"""Derive the parts map (L5, S1, ilia, discs, roots, ...) from class labels alone.

Used when no per-level instance labels exist: the default label map (bone, nerve, disc, dura)
or the study's (bone, nerve). The steps, all on LPS millimetres:

1. **Vertebral bodies**: bone voxels deeper than :attr:`LevelOptions.core_mm` inside the bone
   (distance transform) form one "core" blob per vertebral body: intervertebral discs (labelled or
   not, they are not bone) cut the bone column, so cores never bridge a disc. Pedicles,
   processes, ribs and the iliac wings are too thin to have a core.
2. **The spine chain**: cores are linked from cranial to caudal when one lies 12-80 mm below
   another with little lateral offset; the longest chain is the spine (ilia and femoral heads are
   off it).
3. **The sacrum** is the lowest body of the chain when it is flanked by the ilia (a large bone mass
   far lateral at its level). Otherwise L5/S1 is not in the field of view: refused.
4. **L5** is the chain body above the sacrum. Bone is split into L5 / S1 / ilium / other with a
   watershed on the distance transform seeded by the cores (and far-lateral ilium seeds), so
   pedicles, laminae and facets go to their own vertebra (they meet the neighbour's only at thin
   joints).
5. **The L5/S1 disc** is the disc component between the two bodies or, without a disc label, the
   unlabelled gap between them.
6. The exiting L5 roots are assigned later (:func:`assign_roots`) from the foramen centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.parts import PART_ID, class_masks
from spinect_core.errors import AnatomyError
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import Volume

_FULL = np.ones((3, 3, 3), bool)


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
    """

    core_mm: float = 7.0
    min_core_mm3: float = 400.0
    ilium_lateral_mm: float = 65.0
    min_ilium_mm3: float = 5000.0
    roi_mm: float = 130.0
    coarse_mm: float = 2.0


@dataclass
class DerivedLevels:
    """Result of :func:`derive_parts`: the parts map (without roots) and what was found."""

    parts: np.ndarray
    chain_centres_lps: np.ndarray      # (K, 3) vertebral body core centroids, cranial first
    sacrum_centre_lps: np.ndarray
    l5_centre_lps: np.ndarray
    disc_source: str                   # "label" or "gap"


@dataclass
class _Core:
    label: int
    centre: np.ndarray
    volume_mm3: float
    top_z: float


def _cores(bone: np.ndarray, grid: Volume, off, sp, options: LevelOptions):
    dt = ndi.distance_transform_edt(bone, sampling=sp)
    lab, n = ndi.label(dt >= options.core_mm, structure=_FULL)
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
            cores.append(_Core(i, pts.mean(axis=0), vol, float(pts[:, 2].max())))
    return dt, lab, cores


def _chain(cores: list[_Core]) -> list[_Core]:
    """Longest cranio-caudal chain of cores (the vertebral column), cranial first."""
    order = sorted(cores, key=lambda c: -c.centre[2])
    best_len = [1] * len(order)
    best_vol = [c.volume_mm3 for c in order]
    prev = [-1] * len(order)
    for j, cj in enumerate(order):
        for i in range(j):
            ci = order[i]
            d = ci.centre - cj.centre
            if 12.0 < d[2] < 80.0 and abs(d[0]) < 20.0 and np.linalg.norm(d) < 90.0:
                cand = (best_len[i] + 1, best_vol[i] + cj.volume_mm3)
                if cand > (best_len[j], best_vol[j]):
                    best_len[j], best_vol[j], prev[j] = cand[0], cand[1], i
    if not order:
        return []
    j = max(range(len(order)), key=lambda k: (best_len[k], best_vol[k]))
    out = []
    while j >= 0:
        out.append(order[j])
        j = prev[j]
    return out[::-1]


def _lateral_bone_count(bone_pts: np.ndarray, centre: np.ndarray, top_z: float,
                       options: LevelOptions) -> tuple[float, float]:
    """Numbers of bone voxels far left / far right of a body, from 45 mm below its top to 5 mm
    above it (LPS z). The caller multiplies by the voxel volume."""
    slab = (bone_pts[:, 2] <= top_z + 5.0) & (bone_pts[:, 2] >= top_z - 45.0)
    dx = bone_pts[slab, 0] - centre[0]
    return float(np.count_nonzero(dx > options.ilium_lateral_mm)), float(
        np.count_nonzero(dx < -options.ilium_lateral_mm))


def _coarse(bone: np.ndarray, grid: Volume, off, target_mm: float):
    """Block-averaged copy of a (cropped) mask with voxels of about ``target_mm`` (majority vote).

    Returns the coarse mask and a Volume carrying its LPS geometry (array unused elsewhere).
    """
    sp = G.spacing_zyx(grid)
    f = np.maximum(np.round(target_mm / sp).astype(int), 1)
    if np.all(f == 1):
        return bone, grid, tuple(off)
    n = (np.array(bone.shape) // f) * f
    b = bone[: n[0], : n[1], : n[2]].reshape(n[0] // f[0], f[0], n[1] // f[1], f[1], n[2] // f[2], f[2])
    coarse = b.mean(axis=(1, 3, 5)) >= 0.5
    first = np.array(off, float) + 0.5 * (f - 1)          # (z, y, x) index of block 0's centre
    origin = grid.index_to_lps(first[::-1])
    cgrid = Volume(array=coarse, spacing_mm=grid.spacing_mm * f[::-1], origin_lps_mm=origin,
                   direction=grid.direction)
    return coarse, cgrid, (0, 0, 0)


def derive_parts(labels: Volume, table: LabelTable, *, options: LevelOptions | None = None,
                 progress: ProgressCallback | None = None) -> DerivedLevels:
    """Split the class labels into the parts of :data:`~spinect_core.anatomy.parts.PARTS_TABLE`.

    Parameters
    ----------
    labels : Volume
        Label map, shape (nz, ny, nx), any LPS geometry.
    table : LabelTable
        Must have a ``bone`` class; ``nerve``, ``disc`` and ``dura`` are used when present.
    options : LevelOptions, optional
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    DerivedLevels
        Roots are not split yet: all nerve voxels are ``other_nerve`` (see :func:`assign_roots`).

    Raises
    ------
    AnatomyError
        No bone; no vertebral body; no sacrum (L5/S1 not in the field of view); nothing above the
        sacrum; L5 cannot be separated from S1.
    """
    options = options or LevelOptions()
    masks = class_masks(labels, table)
    bone_full = masks["bone"]
    if not bone_full.any():
        raise AnatomyError("the label map contains no bone: cannot find L5/S1; segment the CT "
                           "first (bone and nerve)")
    sp_full = G.spacing_zyx(labels)
    box = G.bbox_slices(bone_full, np.ceil(3.0 * options.core_mm / sp_full).astype(int))
    box_off = tuple(s.start for s in box)

    # Pass 1 (coarse, ~2 mm): find the vertebral column and the sacrum, or refuse quickly.
    report(progress, 0.05, "finding vertebral bodies")
    cbone, cgrid, coff = _coarse(bone_full[box], labels, box_off, options.coarse_mm)
    csp = G.spacing_zyx(cgrid)
    _, _, ccores = _cores(cbone, cgrid, coff, csp, options)
    chain = _chain(ccores)
    if not chain:
        raise AnatomyError("no vertebral body found in the bone labels: L5/S1 cannot be identified;"
                           " check that the label map holds the spine")
    report(progress, 0.25, "finding the sacrum")
    cpts = G.voxel_points(cgrid, cbone, coff)
    bottom = chain[-1]
    left_n, right_n = _lateral_bone_count(cpts, bottom.centre, bottom.top_z, options)
    if max(left_n, right_n) * float(np.prod(csp)) < options.min_ilium_mm3:
        raise AnatomyError("no sacrum found (no ilia beside the lowest vertebral body): L5/S1 is "
                           "not in the field of view; use a CT that includes L5 and the sacrum")
    if len(chain) < 2:
        raise AnatomyError("no vertebral body above the sacrum: L5 is not in the field of view; "
                           "use a CT that includes L5 and the sacrum")
    sacrum_c, l5_c = chain[-1], chain[-2]

    # Pass 2 (full resolution, in a box around the junction).
    centre = 0.5 * (sacrum_c.centre + l5_c.centre)
    sl = _roi(labels, labels.array.shape, (0, 0, 0), centre, options.roi_mm)
    off = tuple(s.start for s in sl)
    sp = sp_full
    voxel_mm3 = float(np.prod(sp))
    bone = bone_full[sl]
    dt, core_lab, cores = _cores(bone, labels, off, sp, options)

    def role(c: _Core) -> str:
        near = min(chain, key=lambda k: float(np.linalg.norm(k.centre - c.centre)))
        if np.linalg.norm(near.centre - c.centre) <= 12.0:
            if near is sacrum_c:
                return "S1"
            return "L5" if near is l5_c else "other_bone"
        if abs(c.centre[0] - sacrum_c.centre[0]) > 35.0 and c.centre[2] < l5_c.top_z + 40.0:
            return "ilium_left" if c.centre[0] > sacrum_c.centre[0] else "ilium_right"
        return "other_bone"

    report(progress, 0.4, "separating L5, S1 and the ilia")
    markers = np.zeros(bone.shape, np.uint8)
    roles = {}
    for c in cores:
        roles[c.label] = role(c)
        markers[core_lab == c.label] = PART_ID[roles[c.label]]
    l5_ids = [k for k, r in roles.items() if r == "L5"]
    s1_ids = [k for k, r in roles.items() if r == "S1"]
    if not l5_ids or not s1_ids:
        raise AnatomyError("cannot separate L5 from S1 at full resolution; check the "
                           "segmentation at L5/S1")
    bone_pts = G.voxel_points(labels, bone, off)
    zz, yy, xx = np.nonzero(bone)
    dx = bone_pts[:, 0] - sacrum_c.centre[0]
    far = (np.abs(dx) > options.ilium_lateral_mm) & (bone_pts[:, 2] < l5_c.top_z + 40.0) & (
        markers[zz, yy, xx] == 0)
    markers[zz[far & (dx > 0)], yy[far & (dx > 0)], xx[far & (dx > 0)]] = PART_ID["ilium_left"]
    markers[zz[far & (dx < 0)], yy[far & (dx < 0)], xx[far & (dx < 0)]] = PART_ID["ilium_right"]
    from skimage.segmentation import watershed

    report(progress, 0.5, "separating L5, S1 and the ilia")
    ws = watershed(-dt, markers, mask=bone).astype(np.uint8)
    ws[bone & (ws == 0)] = PART_ID["other_bone"]   # bone no seed reaches: not L5/S1
    report(progress, 0.7, "finding the L5/S1 disc")

    parts_c = np.zeros(bone.shape, np.uint8)
    parts_c[bone] = ws[bone]
    for cls, pid in (("nerve", "other_nerve"), ("dura", "dura"), ("disc", "disc_other")):
        parts_c[masks[cls][sl] & ~bone] = PART_ID[pid]
    l5_body = _body_of(parts_c == PART_ID["L5"], np.isin(core_lab, l5_ids), sp, options)
    s1_body = _body_of(parts_c == PART_ID["S1"], np.isin(core_lab, s1_ids), sp, options)
    disc = masks["disc"][sl]
    source = "label"
    chosen = _disc_between(disc, l5_body, s1_body, sp) if disc.any() else None
    if chosen is None:
        source = "gap"
        free = ~bone & ~masks["nerve"][sl] & ~masks["dura"][sl]
        chosen = _gap_between(free, l5_body, s1_body, sp)
    if chosen is None or chosen.sum() * voxel_mm3 < 200.0:
        raise AnatomyError("cannot separate L5 from S1: no disc or gap found between the two "
                           "bodies (fused L5/S1?); check the segmentation at L5/S1")
    parts_c[chosen] = PART_ID["disc_L5S1"]

    parts = np.zeros(labels.array.shape, np.uint8)
    for cls, pid in (("bone", "other_bone"), ("nerve", "other_nerve"), ("dura", "dura"),
                     ("disc", "disc_other")):
        parts[masks[cls]] = PART_ID[pid]
    parts[sl] = np.where(parts_c > 0, parts_c, parts[sl])
    report(progress, 0.8, "levels identified")
    return DerivedLevels(parts=parts, chain_centres_lps=np.array([c.centre for c in chain]),
                         sacrum_centre_lps=sacrum_c.centre, l5_centre_lps=l5_c.centre,
                         disc_source=source)


def _roi(grid: Volume, shape, off, centre_lps: np.ndarray, half_mm: float):
    """Index box (within a crop starting at ``off``) of an LPS cube around ``centre_lps``."""
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
    idx = grid.lps_to_index(centre_lps + half_mm * corners)      # (8, 3) x, y, z
    lo = np.floor(idx.min(axis=0)).astype(int)[::-1] - np.asarray(off)
    hi = np.ceil(idx.max(axis=0)).astype(int)[::-1] - np.asarray(off) + 1
    return tuple(slice(max(int(a), 0), min(int(b), n)) for a, b, n in zip(lo, hi, shape))


def _body_of(part: np.ndarray, core: np.ndarray, sp, options: LevelOptions) -> np.ndarray:
    """The vertebral body of a part: its core grown back by the core depth, inside the part."""
    d = ndi.distance_transform_edt(~core, sampling=sp)
    return part & (d <= options.core_mm + 0.5 * float(sp.max()))


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


def assign_roots(parts: np.ndarray, grid: Volume, foramen_lps: dict[str, np.ndarray],
                 midline_point_lps: np.ndarray, midline_normal_lps: np.ndarray, *,
                 radius_mm: float = 8.0) -> None:
    """Relabel (in place) the nerve component passing through each L5/S1 foramen as that side's
    exiting L5 root; the other nerve voxels stay ``other_nerve``.

    A component reaching both foramina (roots merged through the canal) is split at the
    mid-sagittal plane.
    """
    nerve = parts == PART_ID["other_nerve"]
    if not nerve.any():
        return
    sl = G.bbox_slices(nerve)
    off = tuple(s.start for s in sl)
    lab, n = ndi.label(nerve[sl], structure=_FULL)
    pts = G.voxel_points(grid, lab > 0, off)
    comp = lab[lab > 0]
    zz, yy, xx = np.nonzero(lab > 0)
    side_of = np.sign((pts - midline_point_lps) @ midline_normal_lps)   # +1 left, -1 right
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        d = np.linalg.norm(pts - foramen_lps[side], axis=1)
        best = None
        for r in (radius_mm, 1.5 * radius_mm):
            near = d <= r
            if near.any():
                counts = np.bincount(comp[near], minlength=n + 1)
                best = int(np.argmax(counts))
                break
        if best is None:
            continue
        sel = (comp == best) & (side_of == sgn)
        target = parts[sl]
        target[zz[sel], yy[sel], xx[sel]] = PART_ID[f"root_L5_{side}"]
