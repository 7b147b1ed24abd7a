"""``identify_lumbosacral``: L5, S1, the L5/S1 disc, endplate, pedicles, foramina, roots, midline."""

from __future__ import annotations

import re
from typing import Any
from dataclasses import dataclass, field, fields

import numpy as np

from spinect_core.anatomy.checks import transitional_warnings
from spinect_core.anatomy.ct_edges import bone_edge
from spinect_core.anatomy.landmarks import (CoreLandmarks, SideAnatomy, endplates, root_centreline,
                                             side_landmarks)
from spinect_core.anatomy.levels import LevelOptions, assign_roots, derive_parts
from spinect_core.anatomy.parts import (PART_ID, PARTS_TABLE, has_level_instances,
                                        parts_from_instances)
from spinect_core.errors import AnatomyError, InputError
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

_VERTEBRA_NAME = re.compile(r"^(vertebrae?_)?([ctl]\d{1,2}|s\d|sacrum)$")


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
        ``"instances"`` (per-level labels), ``"labels"`` (derived from bone and a disc label) or
        ``"bone+nerve"`` (derived, the disc found as the gap between the bodies).
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
    if (instances is None) != (instance_table is None):
        raise InputError("instances and instance_table must be given together")
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
    else:
        derived = derive_parts(labels, table, options=options.levels,
                               progress=sub_progress(progress, 0.0, 0.7, ""))
        parts = derived.parts
        source = "labels" if derived.disc_source == "label" else "bone+nerve"
    report(progress, 0.75, "measuring landmarks")
    core = endplates(labels, parts, warnings)
    sides = side_landmarks(labels, parts, core)
    if ct is not None:
        refine_zone_landmarks(sides, ct)
    if derived is not None:
        assign_roots(parts, labels, {s: sides[s].foramen_centre_lps for s in sides},
                     core.midline_point_lps, core.midline_normal_lps)
        for s, sa in sides.items():
            sa.root_centreline_lps = root_centreline(
                labels, parts, s, sa.foramen_centre_lps, midline_point_lps=core.midline_point_lps,
                midline_normal_lps=core.midline_normal_lps)
    report(progress, 0.9, "checking for transitional anatomy")
    evidence = derived.evidence if derived is not None else None
    warnings.extend(transitional_warnings(labels, parts, core, evidence=evidence))
    if evidence is not None:
        warnings.extend(w for w in evidence.warnings if w not in warnings)
    for s, sa in sides.items():
        if sa.root_centreline_lps is None and (parts == PART_ID["other_nerve"]).any():
            warnings.append(f"no exiting L5 root found at the {s} L5/S1 foramen")
    report(progress, 1.0, "L5/S1 identified")
    seg = labels.with_array(parts)
    seg.warnings = list(labels.warnings)
    landmarks = {f.name: getattr(core, f.name) for f in fields(CoreLandmarks)}
    return LumbosacralAnatomy(parts=seg, parts_table=PARTS_TABLE, sides=sides, warnings=warnings,
                              source=source, level_evidence=evidence, **landmarks)
