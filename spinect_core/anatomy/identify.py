"""``identify_lumbosacral``: L5, S1, the L5/S1 disc, endplate, pedicles, foramina, roots, midline."""

from __future__ import annotations

import math
import re
from typing import Any
from dataclasses import dataclass, field, fields, replace

import numpy as np
import scipy.sparse as sps
from scipy import ndimage as ndi
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.checks import short_arch_warnings, transitional_warnings
from spinect_core.anatomy.plausibility import landmark_warnings, mirror_difference_mm
from spinect_core.anatomy.ct_edges import bone_edge
from spinect_core.anatomy.fine_grid import landmark_parts
from spinect_core.anatomy.landmarks import (SIDE_SIGN, CoreLandmarks, SideAnatomy, endplates,
                                             root_centreline, side_landmarks)
from spinect_core.anatomy.levels import (DerivedLevels, LevelOptions, derive_parts,
                                         shared_count_passes)
from spinect_core.anatomy.parts import (PART_ID, PARTS_TABLE, has_level_instances,
                                        parts_from_instances)
from spinect_core.errors import AnatomyError, InputError
from spinect_core.labels import LabelTable
from spinect_core.preprocess.orientation import to_model_axes
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

_VERTEBRA_NAME = re.compile(r"^(vertebrae?_)?([ctl]\d{1,2}|s\d|sacrum)$")
_FULL = np.ones((3, 3, 3), bool)


@dataclass(frozen=True, kw_only=True)
class RootMatchOptions:
    """Options of :func:`match_exiting_roots` (millimetres).

    Attributes
    ----------
    gate_half_width_mm : float
        Half width of the foraminal gate: the sagittal slab (side frame) through the L5 pedicle's
        lower margin, which the exiting root crosses on its way out of the canal.
    contact_mm : float
        The exiting root's gate voxels lie within this distance of the L5 bone (it runs along
        the pedicle's underside and the body's posterolateral corner; the S1 root crosses the
        gate inside the sacrum, 5 mm or more from L5, mostly 12 mm or more).
    max_height_mm : float
        Largest height difference (along the side frame's cranial axis) between a gate voxel and
        the pedicle's lower margin for a match (the L4 root crosses 15-35 mm above, the S1 root
        14-35 mm below, the L5 root within about -14..+6 mm on real bone).
    anterior_mm, posterior_mm : float
        The gate voxel must lie at most this far in front of / behind the lower margin (the root
        runs in front of the pedicle, lateral of the body, up to ~25 mm on real bone).
    weak_height_mm : float
        A match whose nearest gate voxel is further than this from the margin's height is weak.
    ambiguity_margin_mm : float
        A match whose runner-up lies within this margin of it is weak.
    canal_drop_mm : float
        Medial of the gate, the root's voxels are those above the lowest gate crossing minus
        this (the L5 root rises medially to the sac; the S1 root it may touch there descends).
    """

    gate_half_width_mm: float = 3.0
    contact_mm: float = 5.0
    max_height_mm: float = 16.0
    anterior_mm: float = 35.0
    posterior_mm: float = 8.0
    weak_height_mm: float = 8.0
    ambiguity_margin_mm: float = 5.0
    canal_drop_mm: float = 3.0


@dataclass(frozen=True, kw_only=True)
class RootMatch:
    """How one side's exiting L5 root was chosen among the nerve components (LPS mm).

    Attributes
    ----------
    side : str
        ``"left"`` or ``"right"``.
    rule : str
        ``"gate"`` (crosses the foraminal gate under the L5 pedicle, touching L5), ``"foramen"``
        (no component does: the one nearest the foramen centre, always weak) or ``"none"``.
    crossing_lps : np.ndarray, shape (3,), or None
        The matched component's best gate voxel (``"gate"``), else its voxel nearest the foramen
        centre.
    distance_mm : float
        Height difference of that voxel from the pedicle's lower margin (``"gate"``) or its
        distance from the foramen centre (``"foramen"``); ``inf`` for ``"none"``.
    runner_up_mm : float
        The same for the next-best component (``inf`` when there is none).
    weak : bool
        The match should be checked by a user (see :attr:`reason`).
    reason : str
        Why it is weak, or empty.
    """

    side: str
    rule: str
    crossing_lps: np.ndarray | None
    distance_mm: float
    runner_up_mm: float
    weak: bool
    reason: str = ""


def _nearest_per_component(comp: np.ndarray, d: np.ndarray, n: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Per component id 1..n: the smallest ``d`` of its voxels and that voxel's index."""
    dist = np.full(n + 1, np.inf)
    np.minimum.at(dist, comp, d)
    where = np.zeros(n + 1, int)
    hit = np.flatnonzero(np.isfinite(d) & (d == dist[comp]))
    where[comp[hit]] = hit      # ties: any of the equally near voxels
    return dist, where


def _root_voxels(q: np.ndarray, members: np.ndarray, best: int, gate_lo: float,
                 link_mm: float, drop_mm: float) -> np.ndarray:
    """Indices (into ``q``) of the exiting root within its component ``members``.

    The lateral piece (``x >= gate_lo``) linked to the best gate voxel ``best`` is the root
    through and beyond the foramen; medially only voxels above its lowest gate crossing minus
    ``drop_mm`` are kept, so an S1 root touching it in the canal stays apart.
    """
    lat = members[q[members, 0] >= gate_lo]
    if len(lat) == 0:
        return members
    pairs = cKDTree(q[lat]).query_pairs(link_mm, output_type="ndarray")
    m = sps.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                       shape=(len(lat), len(lat)))
    _, cc = connected_components(m, directed=False)
    at = np.flatnonzero(lat == best)
    piece = lat[cc == cc[at[0]]] if len(at) else lat
    gate_h = q[piece[q[piece, 0] <= gate_lo + 2.0 * link_mm], 2]
    floor = (float(gate_h.min()) if len(gate_h) else float(q[best, 2])) - drop_mm
    med = members[(q[members, 0] < gate_lo) & (q[members, 2] >= floor)]
    return np.concatenate([piece, med])


def match_exiting_roots(parts: np.ndarray, grid: Volume, sides: dict[str, SideAnatomy],
                        midline_point_lps: np.ndarray, midline_normal_lps: np.ndarray, *,
                        options: RootMatchOptions | None = None) -> dict[str, RootMatch]:
    """Relabel (in place) each side's exiting L5 root among the ``other_nerve`` voxels.

    The exiting L5 root leaves the canal under the L5 pedicle and runs caudally, laterally and
    anteriorly through the L5/S1 foramen, so it crosses the sagittal plane of the pedicle (the
    "gate": the pedicle's lower margin +- ``gate_half_width_mm`` along the side frame's lateral
    axis) at about the height of the pedicle's lower margin, against the L5 bone. The L4 root
    crosses that plane 15 mm or more above the margin, the S1 root 14 mm or more below it,
    inside the sacrum, away from L5. Among the nerve components with gate voxels on this side
    of the midline, within ``contact_mm`` of L5 and ``anterior_mm``/``posterior_mm`` of the
    margin, the one with a voxel nearest the margin's height (within ``max_height_mm``) is the
    root. Unlike a ball about the foramen centre this holds when the root runs well in front of
    the centre (up to ~25 mm on real bone, lateral of the body).

    A component that holds more than the root (roots touching in the canal, or merged through
    it across the midline) is cut: only this side of the midline, the lateral piece linked to
    the gate crossing, and medially what lies above that crossing (see :func:`_root_voxels`).
    Without any gate crossing (a root cut into pieces, a missing pedicle margin) the component
    nearest the foramen centre (within 12 mm) is taken and the match is weak.

    Parameters
    ----------
    parts : np.ndarray
        uint8 parts map (nz, ny, nx), modified in place.
    grid : Volume
        Geometry of ``parts``.
    sides : dict
        ``"left"``/``"right"`` -> :class:`SideAnatomy` (pedicle lower margin, frame).
    midline_point_lps, midline_normal_lps : np.ndarray, shape (3,)
        Mid-sagittal plane; the normal points to patient left.
    options : RootMatchOptions, optional

    Returns
    -------
    dict
        side -> :class:`RootMatch`.
    """
    o = options or RootMatchOptions()
    nerve = parts == PART_ID["other_nerve"]
    none = {s: RootMatch(side=s, rule="none", crossing_lps=None, distance_mm=float("inf"),
                         runner_up_mm=float("inf"), weak=False) for s in sides}
    if not nerve.any():
        return none
    sl = G.bbox_slices(nerve)
    off = tuple(s.start for s in sl)
    lab, n = ndi.label(nerve[sl], structure=_FULL)
    zz, yy, xx = np.nonzero(lab)
    comp = lab[zz, yy, xx]
    pts = G.voxel_points(grid, lab > 0, off)
    side_of = np.sign((pts - midline_point_lps) @ midline_normal_lps)   # +1 left, -1 right
    vox = float(np.max(grid.spacing_mm))
    half = max(o.gate_half_width_mm, 0.75 * vox)
    l5 = parts == PART_ID["L5"]
    l5_surface = G.voxel_points(grid, l5 & ~ndi.binary_erosion(l5))
    l5_tree = cKDTree(l5_surface) if len(l5_surface) else None
    out: dict[str, RootMatch] = {}
    for side, sa in sides.items():
        on = side_of == SIDE_SIGN[side]
        q = sa.frame.point_to_local(pts)
        low = sa.frame.point_to_local(np.asarray(sa.pedicle_lower_margin_lps, float))
        q = q - low
        gate = on & (np.abs(q[:, 0]) <= half) & (q[:, 1] >= -o.anterior_mm) & (
            q[:, 1] <= o.posterior_mm) & (np.abs(q[:, 2]) <= o.max_height_mm)
        if l5_tree is not None and gate.any():
            idx = np.flatnonzero(gate)
            dl5, _ = l5_tree.query(pts[idx], distance_upper_bound=o.contact_mm + vox)
            gate[idx[dl5 > o.contact_mm + 0.5 * vox]] = False
        rule, limit = "gate", o.max_height_mm
        d = np.where(gate, np.abs(q[:, 2]), np.inf)
        dist, where = _nearest_per_component(comp, d, n)
        if not np.isfinite(dist).any():
            rule, limit = "foramen", 12.0
            d = np.linalg.norm(pts - np.asarray(sa.foramen_centre_lps, float), axis=1)
            d[~on] = np.inf
            dist, where = _nearest_per_component(comp, d, n)
        ranked = np.argsort(dist)
        best = int(ranked[0])
        if not dist[best] <= limit:
            out[side] = none[side]
            continue
        runner = float(dist[ranked[1]]) if n >= 2 else float("inf")
        reasons = []
        if rule == "foramen":
            reasons.append("no nerve component crosses the foramen under the L5 pedicle; took "
                           f"the one nearest the foramen centre ({dist[best]:.0f} mm)")
        else:
            if dist[best] > o.weak_height_mm:
                reasons.append(f"it crosses the foramen {dist[best]:.0f} mm from the height of "
                               "the L5 pedicle's lower margin")
            if runner - dist[best] < o.ambiguity_margin_mm:
                reasons.append(f"another nerve component crosses nearly as well ({runner:.0f} "
                               f"mm against {dist[best]:.0f} mm)")
        members = np.flatnonzero((comp == best) & on)
        if rule == "gate":
            members = _root_voxels(q, members, int(where[best]), -half, 1.8 * vox,
                                   o.canal_drop_mm)
        parts[sl][zz[members], yy[members], xx[members]] = PART_ID[f"root_L5_{side}"]
        out[side] = RootMatch(side=side, rule=rule, crossing_lps=pts[where[best]].copy(),
                              distance_mm=float(dist[best]), runner_up_mm=runner,
                              weak=bool(reasons), reason="; ".join(reasons))
    return out


@dataclass(frozen=True, kw_only=True)
class AnatomyOptions:
    """Options of :func:`identify_lumbosacral`.

    Attributes
    ----------
    levels : LevelOptions
        Tuning of the level identification when parts are derived from class labels.
    use_instances : bool
        Use per-level instance labels when given (False forces the derivation, for checks).
    """

    levels: LevelOptions = field(default_factory=LevelOptions)
    use_instances: bool = True


@dataclass(kw_only=True)
class LumbosacralAnatomy(CoreLandmarks):
    """The L5/S1 junction of one CT: a parts map and landmarks, all LPS millimetres (the
    side-independent landmarks are those of :class:`CoreLandmarks`).

    Attributes
    ----------
    parts : Volume
        uint8 ids of :attr:`parts_table` on the label map's grid, shape (nz, ny, nx).
    parts_table : LabelTable
        ``L5``, ``S1`` (the sacrum), ``disc_L5S1``, ``ilium_left``, ``ilium_right``,
        ``other_bone``, ``root_L5_left``, ``root_L5_right``, ``other_nerve``, ``dura``,
        ``disc_other``.
    s1_endplate_centre_lps : np.ndarray, shape (3,)
        Centre of the plane fitted to the S1 superior endplate (its surface under the disc).
    s1_endplate_normal_lps : np.ndarray, shape (3,)
        Unit normal of that plane, pointing cranially.
    l5_endplate_centre_lps : np.ndarray, shape (3,)
        Centre of the L5 inferior endplate.
    l5_endplate_normal_lps : np.ndarray, shape (3,), or None
        Unit normal of the L5 inferior endplate, pointing cranially (the S1 endplate's where the
        labels have no disc between them); None where not measured.
    disc_centre_lps : np.ndarray, shape (3,)
        Midway between the two endplate centres.
    midline_point_lps, midline_normal_lps : np.ndarray, shape (3,)
        The mid-sagittal plane (from the mirror symmetry of L5/S1); the normal points to patient
        left (roughly +x LPS) and is orthogonal to the endplate normal.
    sides : dict
        ``"left"`` and ``"right"`` -> :class:`~spinect_core.anatomy.landmarks.SideAnatomy`.
    warnings : list of str
        Transitional anatomy and other things a user should check.
    source : str
        ``"instances"`` (per-level labels), ``"labels"`` (derived from bone and a disc label),
        ``"bone+nerve"`` (derived, the disc found as the gap between the bodies),
        ``"labels+gap"`` (derived, a disc labelled in part completed with the soft tissue of
        that gap on the CT; a warning says so) or ``"labels+ct"`` (derived, the disc found on
        the CT as the dark band or the bright plate of a collapsed disc between the endplates;
        a warning says so).
    level_evidence : LevelEvidence or None
        How well the level count establishes L5/S1 when the levels were derived from class
        labels (:class:`~spinect_core.anatomy.counting.LevelEvidence`; ``confidence``,
        ``reasons``, ``warnings``); None for per-level instance labels. In ``plan.json``
        under ``anatomy.level_evidence``.
    """

    parts: Volume
    parts_table: LabelTable
    sides: dict[str, SideAnatomy]
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    level_evidence: Any = None

    def mask(self, *names: str) -> np.ndarray:
        """Boolean (nz, ny, nx) mask of the union of the named parts."""
        ids = [self.parts_table.id_of(n) for n in names]
        return np.isin(self.parts.array, ids)


def _names_vertebrae(table: LabelTable) -> bool:
    return any(_VERTEBRA_NAME.match(n.lower()) for i, n in table.names.items() if i)


def refine_zone_landmarks(sides: dict[str, SideAnatomy], ct: Volume) -> None:
    """Move each side's zone landmarks, in place, to the bone edge on the CT.

    The pedicle's lower margin moves along the side frame's caudal axis and the body's lateral
    border along its lateral axis (see :mod:`spinect_core.anatomy.ct_edges`: the same sub-voxel
    edge for any segmentation within 2.5 mm of it). The posterior wall, a percentile over the
    lateral half of the wall, becomes the 90th percentile of the edges found along the posterior
    axis at every 2 mm from the landmark to 12 mm medial of it, over 3 heights 1 mm apart. A
    landmark without a clear edge on the CT keeps its label position.
    """
    for sa in sides.values():
        f = sa.frame
        for name, outward in (("pedicle_lower_margin_lps", -f.z_lps),
                              ("vertebral_body_lateral_border_lps", f.x_lps)):
            edge = bone_edge(ct, getattr(sa, name), outward)
            if edge is not None:
                setattr(sa, name, edge)
        wall = np.asarray(sa.posterior_wall_lps, float)
        depths = []
        for medial_mm in np.arange(0.0, 12.1, 2.0):
            for up_mm in (-1.0, 0.0, 1.0):
                edge = bone_edge(ct, wall - medial_mm * f.x_lps + up_mm * f.z_lps, f.y_lps)
                if edge is not None:
                    depths.append(float((edge - wall) @ f.y_lps))
        if len(depths) >= 5:
            sa.posterior_wall_lps = wall + float(np.percentile(depths, 90)) * f.y_lps


#: The other watershed's parts are kept, at as many landmark doubts, only when their landmarks'
#: left-right difference (:func:`~spinect_core.anatomy.plausibility.mirror_difference_mm`, the
#: sum over four landmarks) is smaller by more than this (mm): the two halves of an L5 differ by
#: 1-3 mm per landmark. Measured with both floods on every doubted case at hand (session 34:
#: TotalSegmentator's real CT at 0.8-2 mm, real-bone phantoms with the CT's bone at 1 and 3
#: mm), the alternatives whose landmarks were nearer the reference gained 4-30 mm and those no
#: nearer 0.8 mm or less (or lost).
FLOOD_MIRROR_GAIN_MM = 3.0


@dataclass(kw_only=True)
class _Measured:
    """The landmarks measured on one parts map, and how plausible they are.

    ``fine`` is the grid of the landmarks (:func:`~spinect_core.anatomy.fine_grid.
    landmark_parts`); ``endplate_warnings`` what :func:`endplates` said; ``arch_warnings`` the
    short-arch (derived parts only) and plausibility warnings; ``doubts`` (their number, the
    sides' left-right landmark difference summed over the landmarks, mm): lower is more
    plausible.
    """

    fine: Volume
    core: CoreLandmarks
    sides: dict[str, SideAnatomy]
    endplate_warnings: list[str]
    arch_warnings: list[str]
    doubts: tuple[int, float]


def _measure(labels: Volume, parts: np.ndarray, ct: Volume | None, *,
             derived: bool = False) -> _Measured:
    """The core and side landmarks of ``parts`` (on ``labels``' grid), their zone landmarks
    moved to the CT's bone edge when ``ct`` is given, and their plausibility (:class:`_Measured`;
    ``derived``: the parts were derived, so L5's arch may be cut short)."""
    # A coarse label map's landmarks are measured on L5/S1 resampled to 1 mm (fine_grid).
    fine, fine_parts = landmark_parts(labels, parts)
    endplate_warnings: list[str] = []
    core = endplates(fine, fine_parts, endplate_warnings)
    sides = side_landmarks(fine, fine_parts, core)
    if ct is not None:
        refine_zone_landmarks(sides, ct)
    arch = short_arch_warnings(labels, parts, core) if derived else []
    arch += landmark_warnings(core, sides)
    return _Measured(fine=fine, core=core, sides=sides, endplate_warnings=endplate_warnings,
                     arch_warnings=arch, doubts=(len(arch), mirror_difference_mm(core, sides)))


def _other_flood(labels: Volume, table: LabelTable, ct: Volume | None, options: LevelOptions,
                 derived: DerivedLevels, measured: _Measured,
                 progress: ProgressCallback | None) -> tuple[DerivedLevels, _Measured]:
    """The parts derived with the other watershed of :attr:`LevelOptions.geodesic_above_mm`
    (the bone's necks on a fine grid, voxel steps on a coarse one) when their landmarks are more
    plausible than ``measured``'s (fewer short-arch and plausibility warnings, or as many and a
    left-right difference, summed over the landmarks, smaller by more than
    :data:`FLOOD_MIRROR_GAIN_MM`); else ``derived`` and ``measured`` as given.

    Which watershed parts L5's arch from its neighbours depends on what the labels show of the
    facet joints, not on the grid alone: TotalSegmentator's real 3 mm CT resampled to 1.25 and
    1.5 mm (the 3 mm blur kept, the joints filled) had its L5 pedicle centres 12-28 mm off with
    the necks (short arches, a pedicle 41 mm from the midline; all said) and 2-7 mm with the
    voxel steps; at 1 mm 1.0 / 4.0 mm either way, the right lower margin 13 -> 6 mm; at 0.8 x
    0.8 x 1 mm the right side's landmarks 16 -> 9 mm; at 2 mm the steps were worse and are not
    taken. Both are tried only when the first has a doubt.
    """
    necks = float(G.spacing_zyx(labels).max()) <= options.geodesic_above_mm
    other = replace(options, geodesic_above_mm=0.0 if necks else math.inf)
    try:
        alternative = derive_parts(labels, table, ct=ct, options=other, progress=progress)
        measured_alt = _measure(labels, alternative.parts, ct, derived=True)
    except AnatomyError:
        return derived, measured
    (n_first, apart_first), (n_alt, apart_alt) = measured.doubts, measured_alt.doubts
    if not (n_alt < n_first or (n_alt == n_first
                                and apart_alt < apart_first - FLOOD_MIRROR_GAIN_MM)):
        return derived, measured
    first, then = ("the bone's necks", "voxel steps") if necks else ("voxel steps",
                                                                       "the bone's necks")
    alternative.evidence.reasons.append(
        f"L5's arch: the bone was parted between the vertebrae along {then}, since along {first} "
        f"the L5 landmarks had {measured.doubts[0]} doubt(s) (their left and right sides "
        f"{measured.doubts[1]:.0f} mm apart in all) against {measured_alt.doubts[0]} "
        f"({measured_alt.doubts[1]:.0f} mm)")
    return alternative, measured_alt


def identify_lumbosacral(labels: Volume, table: LabelTable, *, instances: Volume | None = None,
                         instance_table: LabelTable | None = None, ct: Volume | None = None,
                         options: AnatomyOptions | None = None,
                         progress: ProgressCallback | None = None) -> LumbosacralAnatomy:
    """Identify the L5/S1 junction and measure its landmarks.

    Parameters
    ----------
    labels : Volume
        Class label map (uint ids), shape (nz, ny, nx), any LPS geometry. Needs a ``bone`` class;
        uses ``nerve``, ``disc`` and ``dura`` when present (names matched case-insensitively).
    table : LabelTable
        Names of ``labels``' ids.
    instances : Volume, optional
        Per-level instance map on the same grid (e.g. the phantom's: L4, L5, S1, ilium_left, ...,
        disc_L5S1, dura, root_L5_left, ...). When it names L5 and S1 the parts come from it.
    instance_table : LabelTable, optional
        Names of ``instances``' ids; required with ``instances``.
    ct : Volume, optional
        The CT on the same grid. When given, the landmarks that bound the foraminal zone (the
        pedicle's lower margin, the body's lateral border and posterior wall) move to the bone
        edge on the CT (:func:`refine_zone_landmarks`).
    options : AnatomyOptions, optional
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    LumbosacralAnatomy

    Raises
    ------
    AnatomyError
        No bone; L5/S1 (or the sacrum) not in the field of view; L5 and S1 cannot be separated;
        a landmark (endplate, pedicle) cannot be found. The message names what is missing.
    InputError
        Instances without a table, or maps on different grids.
    """
    options = options or AnatomyOptions()
    if ct is not None and not ct.same_grid(labels):
        raise InputError("the CT and the label map are on different grids; resample the labels "
                         "onto the CT first")
    if instances is not None and not instances.same_grid(labels):
        raise InputError("the instance map and the label map are on different grids")
    if (instances is None) != (instance_table is None):
        raise InputError("instances and instance_table must be given together")
    # Measured in the patient's axes whatever the file's storage order: the counts, floods and
    # landmark searches break ties in array order, and TotalSegmentator's real 3 mm CT stored
    # five ways gave L5 landmarks up to 1 mm apart and, at windows of a few mm^2, other plans.
    stored = to_model_axes(labels)
    if stored.unchanged:
        return _identify(labels, table, instances=instances, instance_table=instance_table,
                         ct=ct, options=options, progress=progress)
    anatomy = _identify(stored.volume, table,
                        instances=None if instances is None else to_model_axes(instances).volume,
                        instance_table=instance_table,
                        ct=None if ct is None else to_model_axes(ct).volume,
                        options=options, progress=progress)
    return replace(anatomy, parts=labels.with_array(
        np.ascontiguousarray(stored.back(anatomy.parts.array))))


def _identify(labels: Volume, table: LabelTable, *, instances: Volume | None,
              instance_table: LabelTable | None, ct: Volume | None, options: AnatomyOptions,
              progress: ProgressCallback | None) -> LumbosacralAnatomy:
    """:func:`identify_lumbosacral` on maps already checked (same grid, whatever order)."""
    report(progress, 0.0, "identifying L5/S1")
    warnings: list[str] = []
    use_inst = options.use_instances and instances is not None
    if use_inst and not has_level_instances(instance_table):
        if _names_vertebrae(instance_table):
            raise AnatomyError("the instance labels name vertebrae but not L5 and S1/sacrum: L5/S1 "
                               "is not in the field of view; use a CT that includes L5 and the "
                               "sacrum")
        use_inst = False   # instances of something else (dura only, ...): derive the levels
    derived = None
    if use_inst:
        parts = parts_from_instances(labels, table, instances, instance_table)
        source = "instances"
        report(progress, 0.75, "measuring landmarks")
        measured = _measure(labels, parts, ct)
    else:
        # The other flood's derivation takes the first one's counts (the same labels).
        with shared_count_passes():
            derived = derive_parts(labels, table, ct=ct, options=options.levels,
                                   progress=sub_progress(progress, 0.0, 0.6, ""))
            report(progress, 0.6, "measuring landmarks")
            measured = _measure(labels, derived.parts, ct, derived=True)
            if measured.doubts[0]:
                derived, measured = _other_flood(labels, table, ct, options.levels, derived,
                                                 measured, sub_progress(progress, 0.6, 0.75, ""))
        parts = derived.parts
        source = {"label": "labels", "gap": "bone+nerve", "completed": "labels+gap",
                  "ct": "labels+ct"}[derived.disc_source]
        if derived.disc_source == "completed":
            warnings.append("the segmentation labels only part of the L5/S1 disc: the soft "
                            "tissue the CT shows between the L5 and S1 bodies was added to it; "
                            "check the disc and the level on the images")
        if derived.disc_source == "ct":
            warnings.append("the L5/S1 disc is not in the segmentation (bridged by bone or too "
                            "thin at this slice thickness): it was found on the CT between the "
                            "L5 and S1 endplates (a dark band, or the bright plate of a collapsed "
                            "disc); review the level")
    fine, core, sides = measured.fine, measured.core, measured.sides
    warnings.extend(measured.endplate_warnings)
    if fine is not labels and derived is None:
        # The roots are not on the fine grid; derived parts have theirs traced after matching.
        for s, sa in sides.items():
            sa.root_centreline_lps = root_centreline(
                labels, parts, s, sa.foramen_centre_lps, midline_point_lps=core.midline_point_lps,
                midline_normal_lps=core.midline_normal_lps)
    if derived is not None:
        matches = match_exiting_roots(parts, labels, sides, core.midline_point_lps,
                                      core.midline_normal_lps)
        for s, sa in sides.items():
            m = matches[s]
            # The centreline is gathered about the root's own crossing of the foramen: on real
            # bone the root may run >15 mm in front of the foramen centre.
            centre = m.crossing_lps if m.crossing_lps is not None else sa.foramen_centre_lps
            sa.root_centreline_lps = root_centreline(
                labels, parts, s, centre, midline_point_lps=core.midline_point_lps,
                midline_normal_lps=core.midline_normal_lps)
            if m.weak:
                warnings.append(f"the exiting L5 root at the {s} L5/S1 foramen is a weak match "
                                f"({m.reason}): check that the nerve marked as the {s} L5 root "
                                "is the one leaving under the L5 pedicle")
    warnings.extend(measured.arch_warnings)
    report(progress, 0.9, "checking for transitional anatomy")
    evidence = derived.evidence if derived is not None else None
    warnings.extend(transitional_warnings(labels, parts, core, evidence=evidence))
    if evidence is not None:
        warnings.extend(w for w in evidence.warnings if w not in warnings)
    for s, sa in sides.items():
        if sa.root_centreline_lps is None and (parts == PART_ID["other_nerve"]).any():
            # Said of the segmentation's nerve: roots traced on the CT come later and are
            # reported on their own (a real 3 mm CT said "no exiting L5 root found" beside the
            # CT's exiting L5 root at confidence 0.6).
            warnings.append(f"the segmentation's nerve shows no exiting L5 root at the {s} "
                            "L5/S1 foramen")
    report(progress, 1.0, "L5/S1 identified")
    seg = labels.with_array(parts)
    seg.warnings = list(labels.warnings)
    landmarks = {f.name: getattr(core, f.name) for f in fields(CoreLandmarks)}
    return LumbosacralAnatomy(parts=seg, parts_table=PARTS_TABLE, sides=sides, warnings=warnings,
                              source=source, level_evidence=evidence, **landmarks)
