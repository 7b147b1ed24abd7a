"""The nerve roots of a plan: from the network's nerve class, from the CT, fused, rasterised.

Per side, three roots matter at L5/S1 (:data:`~spinect_core.anatomy.root_tracing.ROOT_NAMES`):
the exiting L5 root (the hypotenuse of both windows), the exiting L4 root and the traversing S1
root. Each is a :class:`Root`: a centreline (LPS mm), a radius per point, a confidence and where
it came from (``network``, ``ct``, ``fused`` or ``operator``).

* :func:`network_roots`: the network's nerve class near the same landmarks, traced like the CT
  (:func:`~spinect_core.anatomy.root_tracing.trace_root`) on a pseudo-CT of the mask (nerve 40
  HU in -100 HU), so a root the network found in pieces has gaps, and its confidence is the
  fraction of its length the mask covers.
* :func:`fuse_roots`: where the network's and the CT's centrelines agree (symmetric mean distance
  over the root's assessed segment at most :attr:`FusionOptions.agree_mm`) the fused centreline
  is their confidence-weighted mean; where they disagree the more confident one is used and a
  warning says so ("the exiting L5 root on the left: the network and the CT disagree by 5.0 mm:
  ... review it"), for ``plan.json``, the report and the app.
* :func:`apply_roots`: the chosen roots rasterised into the nerve class the planner uses (the
  label map's nerve near the replaced roots removed) and into the anatomy's parts, whose
  exiting L5 root centreline divides the foramen into the Kambin and safe windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from spinect_core.anatomy.parts import CLASS_ALIASES, PART_ID, find_ids
from spinect_core.anatomy.root_tracing import (ROOT_NAMES, ROOT_WORDS, TracedRoot, TracingOptions,
                                               polyline_distance, root_geometry,
                                               segment_mask, trace_anatomy_roots, trace_root)
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

RootSource = Literal["network", "ct", "fused", "operator"]
RootsMode = Literal["network", "ct", "fused"]
ROOTS_MODES: tuple[str, ...] = ("network", "ct", "fused")

#: HU of the pseudo-CT a nerve mask is traced on (inside, outside).
_MASK_HU = (40.0, -100.0)


@dataclass(kw_only=True)
class Root:
    """One nerve root of a plan.

    Attributes
    ----------
    name : str
        ``exiting_l5``, ``exiting_l4`` or ``traversing_s1``.
    side : {"left", "right"}
    centreline_lps_mm : np.ndarray, shape (N, 3)
        LPS mm, from where it leaves the sac (medial / cranial) outwards.
    radius_mm : np.ndarray, shape (N,)
    confidence : float
        0..1.
    source : {"network", "ct", "fused", "operator"}
    notes : list of str
    """

    name: str
    side: str
    centreline_lps_mm: np.ndarray
    radius_mm: np.ndarray
    confidence: float
    source: RootSource
    notes: list[str] = field(default_factory=list)

    @property
    def words(self) -> str:
        return f"{ROOT_WORDS.get(self.name, self.name)} on the {self.side}"

    def to_dict(self) -> dict[str, Any]:
        """``plan.json``'s ``sides.<side>.roots.<name>`` (LPS mm)."""
        return {"centreline_lps_mm": [[round(float(v), 3) for v in p]
                                      for p in self.centreline_lps_mm],
                "radius_mm": [round(float(r), 3) for r in self.radius_mm],
                "confidence": round(float(self.confidence), 3), "source": self.source,
                "notes": list(self.notes)}


@dataclass(frozen=True, kw_only=True)
class FusionOptions:
    """How the network's and the CT's roots are fused.

    Attributes
    ----------
    agree_mm : float
        Largest symmetric mean distance (mm, over the root's assessed segment: the foramen for
        an exiting root, the lateral recess for the traversing one) at which the two agree.
    replace_margin_mm : float
        Network nerve voxels within a replaced root's radius plus this margin of its centreline
        are taken out of the nerve class before the chosen root is drawn in.
    """

    agree_mm: float = 2.0
    replace_margin_mm: float = 2.0


def _root(traced: TracedRoot | None, name: str, side: str, source: RootSource) -> Root | None:
    if traced is None:
        return None
    return Root(name=name, side=side, centreline_lps_mm=traced.centreline_lps_mm,
                radius_mm=traced.radius_mm, confidence=traced.confidence, source=source,
                notes=list(traced.notes))


#: ``(side, root name) -> root_geometry(anatomy, side, name)`` (None where a landmark is missing).
RootGeometries = Mapping[tuple[str, str], dict | None]


def root_geometries(anatomy: Any, sides: Sequence[str] = ("left", "right")
                    ) -> dict[tuple[str, str], dict | None]:
    """:func:`root_geometry` of every root of ``sides``, computed once for all the steps of a
    plan's roots (the network's tracing, the CT's and their fusion each need it; the exiting L4
    root's searches the whole parts map for the L4 pedicle)."""
    return {(s, n): root_geometry(anatomy, s, n) for s in sides for n in ROOT_NAMES}


def _geometry(anatomy: Any, side: str, name: str, geometries: RootGeometries | None
              ) -> dict | None:
    """The root's geometry from ``geometries`` when it holds it, else computed."""
    if geometries is not None and (side, name) in geometries:
        return geometries[(side, name)]
    return root_geometry(anatomy, side, name)


def ct_roots(ct: Volume, anatomy: Any, *, sides: Sequence[str] = ("left", "right"),
             options: TracingOptions | None = None, geometries: RootGeometries | None = None,
             progress: ProgressCallback | None = None) -> dict[str, dict[str, Root | None]]:
    """The roots traced on the CT (:func:`trace_anatomy_roots`) as :class:`Root` records
    (``geometries``: :func:`root_geometries` already computed)."""
    traced = trace_anatomy_roots(ct, anatomy, sides=sides, options=options,
                                 geometries=geometries, progress=progress)
    return {s: {n: _root(t, n, s, "ct") for n, t in by.items()} for s, by in traced.items()}


def nerve_mask(labels: Volume, table: LabelTable) -> np.ndarray:
    """(z, y, x) bool: the label map's nerve class (``nerve``, ``roots``, ... by name)."""
    ids = find_ids(table, CLASS_ALIASES["nerve"])
    return np.isin(labels.array, ids) if ids else np.zeros(labels.array.shape, bool)


def network_roots(labels: Volume, table: LabelTable, anatomy: Any, *,
                  sides: Sequence[str] = ("left", "right"), options: TracingOptions | None = None,
                  geometries: RootGeometries | None = None,
                  progress: ProgressCallback | None = None) -> dict[str, dict[str, Root | None]]:
    """The roots the label map's nerve class shows near the landmarks.

    Traced with the same waypoints as the CT's (:func:`root_geometry`) on a pseudo-CT of the
    mask, so the centreline follows the middle of the labelled tube and missing pieces are gaps
    (bridged up to ``max_bridge_mm``, otherwise reported). A root whose box holds no nerve voxel
    is ``None``. ``geometries``: :func:`root_geometries` already computed.
    """
    mask = nerve_mask(labels, table)
    out: dict[str, dict[str, Root | None]] = {s: {n: None for n in ROOT_NAMES} for s in sides}
    if not mask.any():
        report(progress, 1.0, "no nerve in the label map")
        return out
    jobs = [(s, n) for s in sides for n in ROOT_NAMES]
    for i, (side, name) in enumerate(jobs):
        report(progress, i / len(jobs), f"the network's {ROOT_WORDS[name]} on the {side}")
        geo = _geometry(anatomy, side, name, geometries)
        if geo is None:
            continue
        # The pseudo-CT of the mask in the root's box only (a full-size float copy of a thin-slice
        # CT's labels would cost hundreds of MB).
        pseudo = _pseudo_ct(labels, mask, anatomy.sides[side].frame, geo["box"])
        if pseudo is None:
            continue
        traced = trace_root(pseudo, anatomy.sides[side].frame, geo["waypoints"], geo["end"],
                            box_lo_local=geo["box"][0], box_hi_local=geo["box"][1],
                            options=options, name=f"network's {ROOT_WORDS[name]} on the {side}",
                            tube_filter=False)
        out[side][name] = _root(traced, name, side, "network")
    report(progress, 1.0, "network roots found")
    return out


def _pseudo_ct(labels: Volume, mask: np.ndarray, frame: Any, box: tuple) -> Volume | None:
    """A float32 volume, -100 HU with the mask at 40 HU, over the index box of ``box`` (local
    frame corners, mm) grown by 3 voxels; None when the box misses the grid."""
    lo, hi = (np.asarray(v, float) for v in box)
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])
    idx = labels.lps_to_index(frame.point_to_lps(corners))  # (8, 3) x, y, z
    shape = np.array(mask.shape[::-1])
    i0 = np.clip(np.floor(idx.min(0)).astype(int) - 3, 0, shape)
    i1 = np.clip(np.ceil(idx.max(0)).astype(int) + 4, 0, shape)
    if np.any(i1 - i0 < 2):
        return None
    sub = mask[i0[2]:i1[2], i0[1]:i1[1], i0[0]:i1[0]]
    arr = np.where(sub, _MASK_HU[0], _MASK_HU[1]).astype(np.float32)
    return Volume(array=arr, spacing_mm=labels.spacing_mm, direction=labels.direction,
                  origin_lps_mm=labels.index_to_lps(i0[None].astype(float))[0])


def _segment_points(root: Root, anatomy: Any, geo: dict | None) -> np.ndarray:
    """The root's points within ``geo``'s assessed segment (all of them without ``geo`` or
    with fewer than 3 there)."""
    pts = root.centreline_lps_mm
    if geo is None:
        return pts
    sel = segment_mask(pts, anatomy.sides[root.side].frame, geo["segment"])
    return pts[sel] if sel.sum() >= 3 else pts


def root_distance(a: Root, b: Root, anatomy: Any, *,
                  geometries: RootGeometries | None = None) -> float:
    """Symmetric mean distance (mm) of two roots over the root's assessed segment
    (``geometries``: :func:`root_geometries` already computed)."""
    # The geometry once for the pair (the exiting L4 root's searches the whole parts map).
    geo = _geometry(anatomy, a.side, a.name, geometries)
    geo_b = (geo if (b.side, b.name) == (a.side, a.name)
             else _geometry(anatomy, b.side, b.name, geometries))
    pa, pb = _segment_points(a, anatomy, geo), _segment_points(b, anatomy, geo_b)
    return 0.5 * float(polyline_distance(pa, b.centreline_lps_mm).mean()
                       + polyline_distance(pb, a.centreline_lps_mm).mean())


def _average(a: Root, b: Root) -> tuple[np.ndarray, np.ndarray]:
    """``a``'s points moved towards their projections on ``b`` by the confidence weights (points
    beyond ``b``'s ends stay)."""
    wa, wb = max(a.confidence, 1e-3), max(b.confidence, 1e-3)
    L = b.centreline_lps_mm
    pts = a.centreline_lps_mm
    seg_a, seg_b = L[:-1], L[1:]
    ab = seg_b - seg_a
    ap = pts[:, None, :] - seg_a[None]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0.0, 1.0)
    near = seg_a[None] + t[..., None] * ab[None]
    k = np.linalg.norm(pts[:, None] - near, axis=-1).argmin(1)
    proj = near[np.arange(len(pts)), k]
    tk = t[np.arange(len(pts)), k]
    inside = ~(((k == 0) & (tk <= 0.0)) | ((k == len(ab) - 1) & (tk >= 1.0)))
    rb = b.radius_mm[k] + tk * (b.radius_mm[np.minimum(k + 1, len(b.radius_mm) - 1)] - b.radius_mm[k])
    out = np.where(inside[:, None], (wa * pts + wb * proj) / (wa + wb), pts)
    rad = np.where(inside, (wa * a.radius_mm + wb * rb) / (wa + wb), a.radius_mm)
    return out, rad


def fuse_roots(network: dict[str, dict[str, Root | None]], ct: dict[str, dict[str, Root | None]],
               anatomy: Any, *, options: FusionOptions | None = None,
               geometries: RootGeometries | None = None
               ) -> tuple[dict[str, dict[str, Root | None]], list[str]]:
    """Fuse the network's and the CT's roots per side and root (``geometries``:
    :func:`root_geometries` already computed).

    Returns
    -------
    roots : dict
        ``side -> name -> Root or None``: ``fused`` where both exist and agree (the CT's points
        moved towards the network's by the confidence weights; confidence
        ``1 - (1 - c_ct)(1 - c_net)``), otherwise the more confident of the two (the CT's on a
        tie) with its own source, or the one that exists.
    warnings : list of str
        One per disagreement, naming the root, the distance, the bound and which was used; one
        per root neither found.
    """
    o = options or FusionOptions()
    out: dict[str, dict[str, Root | None]] = {}
    warnings: list[str] = []
    for side in sorted(set(network) | set(ct), key=("left", "right").index):
        for name in ROOT_NAMES:
            a = ct.get(side, {}).get(name)
            b = network.get(side, {}).get(name)
            words = f"the {ROOT_WORDS[name]} on the {side}"
            if a is None and b is None:
                chosen = None
                warnings.append(f"{words}: neither the network nor the CT shows it: no root is "
                                "drawn there, review the plan")
            elif a is None or b is None:
                chosen = replace(a or b, notes=list((a or b).notes) + [
                    f"{'the network' if a is None else 'the CT'} alone shows it"])
            else:
                d = root_distance(a, b, anatomy, geometries=geometries)
                if d <= o.agree_mm:
                    pts, rad = _average(a, b)
                    conf = 1.0 - (1.0 - a.confidence) * (1.0 - b.confidence)
                    chosen = Root(name=name, side=side, centreline_lps_mm=pts, radius_mm=rad,
                                  confidence=round(float(conf), 3), source="fused",
                                  notes=a.notes + b.notes + [
                                      f"the network and the CT agree within {d:.1f} mm"])
                else:
                    use = a if a.confidence >= b.confidence else b
                    which = "the CT's" if use is a else "the network's"
                    warnings.append(
                        f"{words}: the network and the CT disagree by {d:.1f} mm (mean distance, "
                        f"agreement within {o.agree_mm:g} mm): {which} is used (confidence CT "
                        f"{a.confidence:.2f}, network {b.confidence:.2f}): review it")
                    chosen = replace(use, notes=list(use.notes) + [
                        f"the network and the CT disagree by {d:.1f} mm; {which} is used"])
            out.setdefault(side, {})[name] = chosen
    return out, warnings


def rasterise_roots(roots: Sequence[Root], grid: Volume) -> np.ndarray:
    """(z, y, x) bool of ``grid``: voxel centres inside the tubes of ``roots`` (the radius
    interpolated linearly along each segment)."""
    out = np.zeros(grid.array.shape, bool)
    for root in roots:
        out |= tube_mask(root.centreline_lps_mm, root.radius_mm, grid)
    return out


def _tube_geometry(line: np.ndarray, radius: np.ndarray, grid: Volume
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(line (N, 3) LPS mm, radius (N,) mm, indices (N, 3) x, y, z, box lo, box hi (x, y, z,
    hi exclusive)) of a tube on ``grid``, a one-point line doubled; None when it misses."""
    line = np.asarray(line, float)
    radius = np.asarray(radius, float)
    if len(line) == 0:
        return None
    if len(line) == 1:
        line, radius = np.vstack([line, line]), np.concatenate([radius, radius])
    idx = grid.lps_to_index(line)
    # The box of the tube in index space, grown by the radius in voxels (an index step is at
    # least the smallest spacing long, whatever the direction matrix).
    pad = float(radius.max()) / np.min(grid.spacing_mm) + 1.0
    lo = np.maximum(np.floor(idx.min(0) - pad).astype(int), 0)
    hi = np.minimum(np.ceil(idx.max(0) + pad).astype(int) + 1, np.array(grid.array.shape[::-1]))
    if np.any(hi <= lo):
        return None
    return line, radius, idx, lo, hi


def tube_box(line: np.ndarray, radius: np.ndarray, grid: Volume
             ) -> tuple[slice, slice, slice] | None:
    """The index box of ``grid`` that holds the tube :func:`tube_mask` draws.

    Parameters
    ----------
    line : (N, 3) LPS mm
        The centreline.
    radius : (N,) mm
        The radius at each centreline point.
    grid : Volume
        Only its geometry is read.

    Returns
    -------
    (z, y, x) slices or None
        Within the grid; None when the tube misses it (or ``line`` is empty).
    """
    g = _tube_geometry(line, radius, grid)
    if g is None:
        return None
    lo, hi = g[3], g[4]
    return (slice(int(lo[2]), int(hi[2])), slice(int(lo[1]), int(hi[1])),
            slice(int(lo[0]), int(hi[0])))


def tube_mask(line: np.ndarray, radius: np.ndarray, grid: Volume, *,
              clip: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """Voxel centres of ``grid`` inside a tube: within the radius (interpolated linearly along
    each segment) of the centreline.

    The one tube rasteriser: :func:`rasterise_roots`, :func:`apply_roots` and the root editor's
    in-place redraw (:mod:`spinect_core.planning.root_edit`, on a ``clip`` box) all draw with it,
    so an edited root is drawn to exactly the voxels a full redraw gives.

    Parameters
    ----------
    line : (N, 3) LPS mm
        The centreline; one point draws a ball.
    radius : (N,) mm
        The radius at each centreline point (add a margin to it for a grown tube).
    grid : Volume
        Only its geometry is read.
    clip : (z, y, x) slices with int start and stop, optional
        Draw only in this index box of ``grid`` (the result has the box's shape).

    Returns
    -------
    (z, y, x) bool
        ``grid``'s shape, or ``clip``'s box's shape; all False when the tube misses it.
    """
    shape = grid.array.shape
    if clip is None:
        clip = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    clo = np.array([clip[2].start, clip[1].start, clip[0].start])
    chi = np.array([clip[2].stop, clip[1].stop, clip[0].stop])
    out = np.zeros(tuple(int(v) for v in (chi - clo)[::-1]), bool)
    g = _tube_geometry(line, radius, grid)
    if g is None:
        return out
    line, radius, idx, lo, hi = g
    lo, hi = np.maximum(lo, clo), np.minimum(hi, chi)
    if np.any(hi <= lo):
        return out
    a, b = line[:-1], line[1:]
    spacing = float(np.min(grid.spacing_mm))
    # Each segment is tested only on the voxels of its own box (its ends grown by its larger
    # radius): far fewer distances than the whole tube's box for every segment.
    for i in range(len(a)):
        pad = max(radius[i], radius[i + 1]) / spacing + 1.0
        slo = np.maximum(np.floor(np.minimum(idx[i], idx[i + 1]) - pad).astype(int), lo)
        shi = np.minimum(np.ceil(np.maximum(idx[i], idx[i + 1]) + pad).astype(int) + 1, hi)
        if np.any(shi <= slo):
            continue
        xs, ys, zs = (np.arange(slo[k], shi[k]) for k in range(3))
        zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
        pts = grid.index_to_lps(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], -1))
        ab = b[i] - a[i]
        ap = pts - a[i]
        t = np.clip(ap @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        d = np.linalg.norm(ap - t[:, None] * ab, axis=1)
        inside = (d <= radius[i] + t * (radius[i + 1] - radius[i])).reshape(zz.shape)
        o0, o1 = slo - clo, shi - clo
        out[o0[2]:o1[2], o0[1]:o1[1], o0[0]:o1[0]] |= inside
    return out


def without_nerve(labels: Volume, table: LabelTable, instances: Volume | None = None
                  ) -> tuple[Volume, Volume | None]:
    """The label map (and instance map) with the nerve class set to background: what
    ``--roots ct`` plans on before the traced roots are drawn in."""
    mask = nerve_mask(labels, table)
    arr = labels.array.copy()
    arr[mask] = 0
    out = labels.with_array(arr)
    out.warnings = list(labels.warnings)
    inst = None
    if instances is not None:
        ia = instances.array.copy()
        ia[mask] = 0
        inst = instances.with_array(ia)
    return out, inst


def apply_roots(anatomy: Any, labels: Volume, table: LabelTable,
                chosen: dict[str, dict[str, Root | None]],
                replaced: dict[str, dict[str, Root | None]] | None = None, *,
                options: FusionOptions | None = None) -> tuple[Volume, LabelTable]:
    """Draw the chosen roots into the nerve class and the anatomy's parts.

    Parameters
    ----------
    anatomy : LumbosacralAnatomy
        Changed in place: its parts get the chosen roots (the exiting L5 root as
        ``root_L5_<side>``, the others as ``other_nerve``; drawn over background and nerve parts
        only, never over bone, disc or the sac), and each side's ``root_centreline_lps`` becomes
        the chosen exiting L5 root within 20 mm of the foramen centre.
    labels : Volume
        The label map the planner uses (on the anatomy's grid).
    table : LabelTable
        Its table; a ``nerve`` class is added when it has none.
    chosen : dict
        ``side -> name -> Root or None``.
    replaced : dict, optional
        The network's roots: where a chosen root does not come from the network, the network's
        nerve within its radius plus ``replace_margin_mm`` is removed first.
    options : FusionOptions, optional

    Returns
    -------
    labels, table : Volume, LabelTable
        A new label map (the input is not changed) and its table.
    """
    o = options or FusionOptions()
    ids = find_ids(table, CLASS_ALIASES["nerve"])
    if ids:
        nerve_id = ids[0]
    else:
        nerve_id = max(table.names) + 1
        table = LabelTable({**table.names, nerve_id: "nerve"})
    dtype = labels.array.dtype if nerve_id <= np.iinfo(labels.array.dtype).max else np.uint16
    arr = labels.array.astype(dtype, copy=True)
    parts = anatomy.parts.array
    nerve_parts = np.array([PART_ID["root_L5_left"], PART_ID["root_L5_right"],
                            PART_ID["other_nerve"]])
    remove = np.zeros(arr.shape, bool)
    for side, by in (replaced or {}).items():
        for name, old in by.items():
            new = chosen.get(side, {}).get(name)
            if old is None or (new is not None and new.source == "network"):
                continue
            remove |= tube_mask(old.centreline_lps_mm, old.radius_mm + o.replace_margin_mm,
                                 labels)
    nerve_now = np.isin(arr, ids) if ids else np.zeros(arr.shape, bool)
    arr[remove & nerve_now] = 0
    parts[remove & np.isin(parts, nerve_parts)] = 0
    # Where a root may be drawn, once for all roots: drawing one only writes nerve parts and the
    # nerve id, which leave later roots the same voxels to draw on (or rewrite them unchanged).
    free = (parts == 0) | np.isin(parts, nerve_parts)
    soft = (arr == 0) | nerve_now
    for side, by in chosen.items():
        for name, root in by.items():
            if root is None or root.source == "network":
                continue  # the network's own root is already in both maps
            tube = tube_mask(root.centreline_lps_mm, root.radius_mm, labels)
            pid = PART_ID[f"root_L5_{side}"] if name == "exiting_l5" else PART_ID["other_nerve"]
            parts[tube & free] = pid
            arr[tube & soft] = nerve_id
    for side, sa in anatomy.sides.items():
        root = chosen.get(side, {}).get("exiting_l5")
        if root is None:
            continue
        line = root.centreline_lps_mm
        near = np.linalg.norm(line - np.asarray(sa.foramen_centre_lps, float), axis=1) <= 20.0
        if near.sum() >= 2:
            sa.root_centreline_lps = line[near].copy()
    out = labels.with_array(arr)
    out.warnings = list(labels.warnings)
    return out, table


@dataclass(kw_only=True)
class RootsResult:
    """What :func:`resolve_roots` chose.

    Attributes
    ----------
    mode : {"network", "ct", "fused"}
    roots : dict
        ``side -> name -> Root or None``: the roots the plan uses.
    network, ct : dict or None
        The candidates (``None`` when not computed in this mode).
    warnings : list of str
        Disagreements and missing roots (for the plan's ``warnings``).
    labels : Volume
        The label map the planner uses (with the chosen roots drawn into the nerve class).
    table : LabelTable
    """

    mode: str
    roots: dict[str, dict[str, Root | None]]
    network: dict[str, dict[str, Root | None]] | None
    ct: dict[str, dict[str, Root | None]] | None
    warnings: list[str]
    labels: Volume
    table: LabelTable

    def side_dict(self, side: str) -> dict[str, Any]:
        """``plan.json``'s ``sides.<side>.roots``: every root name, ``None`` where none."""
        by = self.roots.get(side, {})
        return {n: (None if by.get(n) is None else by[n].to_dict()) for n in ROOT_NAMES}


def resolve_roots(mode: str, ct: Volume, labels: Volume, table: LabelTable, anatomy: Any, *,
                  sides: Sequence[str] = ("left", "right"),
                  tracing: TracingOptions | None = None, fusion: FusionOptions | None = None,
                  progress: ProgressCallback | None = None) -> RootsResult:
    """The roots of a plan in one of the modes of ``spinect plan --roots``.

    * ``network``: the label map's nerve as it is (its roots measured for the record);
    * ``ct``: the roots traced on the CT, drawn into the nerve class (``labels`` should already
      have no nerve: :func:`without_nerve`);
    * ``fused``: both, fused (:func:`fuse_roots`), with a warning per disagreement.
    """
    if mode not in ROOTS_MODES:
        raise ValueError(f"roots mode must be one of {ROOTS_MODES}, got {mode!r}")
    warnings: list[str] = []
    net = ctr = None
    # Fused: each root's geometry once for the network's tracing, the CT's and their fusion
    # (the other modes need each one once anyway; the network's skips them without a nerve).
    geos = root_geometries(anatomy, sides) if mode == "fused" else None
    if mode in ("network", "fused"):
        net = network_roots(labels, table, anatomy, sides=sides, options=tracing, geometries=geos,
                            progress=sub_progress(progress, 0.0, 0.4, "network roots: "))
    if mode in ("ct", "fused"):
        ctr = ct_roots(ct, anatomy, sides=sides, options=tracing, geometries=geos,
                       progress=sub_progress(progress, 0.4, 0.9, "CT roots: "))
    if mode in ("network", "ct"):
        chosen = net if mode == "network" else ctr
        missing = ("the network shows no root there" if mode == "network"
                   else "no root was found on the CT: review the plan")
        for side, by in chosen.items():
            for name, root in by.items():
                if root is None:
                    warnings.append(f"the {ROOT_WORDS[name]} on the {side}: {missing}")
    else:
        chosen, warnings = fuse_roots(net, ctr, anatomy, options=fusion, geometries=geos)
    for by in chosen.values():
        for root in by.values():
            # A CT root's gap that the network's agreeing root covers is no longer a doubt:
            # its note stays with the fused root, not in the plan's warnings.
            if root is not None and root.source == "ct":
                warnings.extend(n for n in root.notes if "review it" in n and n not in warnings)
    report(progress, 0.95, "drawing the roots")
    if mode == "network":
        new_labels, new_table = labels, table
    else:
        new_labels, new_table = apply_roots(anatomy, labels, table, chosen, replaced=net,
                                            options=fusion)
    report(progress, 1.0, "roots ready")
    return RootsResult(mode=mode, roots=chosen, network=net, ct=ctr, warnings=warnings,
                       labels=new_labels, table=new_table)
