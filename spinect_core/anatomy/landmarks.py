"""Landmarks of the L5/S1 junction measured on a parts map (whatever built it).

All outputs are LPS millimetres. The measurements work on voxel point clouds in an anatomical
frame centred on the S1 superior endplate: ``h`` along the endplate normal (cranial), ``lat``
along the mid-sagittal plane normal (patient left), ``post`` = ``h`` x ``lat`` (posterior).
Working in that frame (not the scanner's axes) keeps the definitions valid for tilted patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
from scipy import ndimage as ndi
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.frames import LocalFrame, side_frame
from spinect_core.anatomy.parts import PART_ID
from spinect_core.errors import AnatomyError
from spinect_core.volume import Volume

SIDE_SIGN = {"left": 1.0, "right": -1.0}   # sign of ``lat`` (patient left = +x LPS)
#: Radius of the ball that fits into a vertebral body (height >= 20 mm) but not into a pedicle
#: (height <= ~16 mm), so an opening separates the body from the arch.
BODY_BALL_MM = 8.5
#: Least height (mm) of the band above the L5 inferior endplate where the body's lateral border
#: is measured (about a third of an L5 body's posterior height).
BORDER_BAND_MM = 4.0
#: How far (mm) the opened body's posterior wall may lie behind its canal-facing part before
#: the opening is taken to have kept the pedicle (measured: 0.1-1.8 mm, or 12-16 mm when kept).
ARCH_KEPT_MM = 5.0
#: A disc centre farther than this (mm) left or right of L5's centroid is warned of: measured,
#: at most 3.5 mm on 66 label maps of real-bone and patient-like phantoms that were planned
#: right, and 8.2 mm where a fused label map held the L5/S1 disc as a lateral fragment of
#: 1.3 ml (the disc centre 9.5 mm from the truth, at high level confidence). Measured again
#: 2026-12-06 on the 24 patient-like phantoms' fused label maps: 7.9 mm on that case, but also
#: 8.2-10.6 mm on three planned right (disc centre within 0.7 mm of the truth left-right),
#: whose L5 label holds bone beside the vertebra: a false warning there. L5's opened body as the
#: reference instead silences those three but lies 8.2 mm off on another, and misses a one-sided
#: disc on the procedural phantom (its L5 opens lopsided), so the centroid stays: a needless
#: check beats a missed one.
DISC_OFF_L5_MM = 6.0
#: How far (mm) the L5 body's posterior wall below the pedicle may lie behind the wall at the
#: pedicle's level: the wall leans with the L5/S1 segmental angle (10-20 deg, ANATOMY.md), 2-4 mm
#: over the 10 mm down to the foramen.
WALL_LEAN_MM = 3.0
#: How far (mm) behind the body's posterior wall the pedicle is followed at most.
PEDICLE_REACH_MM = 14.0
#: The coronal slab (mm behind the posterior wall) taken to hold only the pedicle.
PEDICLE_SLAB_MM = (1.0, 5.0)
#: Where (mm behind the wall) the pedicle's middle section and its centre lie on a pedicle at
#: least ``PEDICLE_MID_MM[1]`` long; a shorter one's are as far along it proportionally.
PEDICLE_MID_MM = (7.0, 11.0)
PEDICLE_CENTRE_MM = 8.0
#: A pedicle whose posterior elements begin at most this far (mm) behind the wall is short (a
#: real L5's: 3-5 mm on bone labelled as it is, 6 mm on TotalSegmentator's real 3 mm CT with
#: the fused bone, a voxel wider, whose right pedicle centre was then found 8.4 mm off, 2.1 mm
#: as short); from 7 mm on, bone hanging down behind a long pedicle may be the S1 superior
#: articular process given to L5 (7-12 mm behind a procedural phantom's pedicle).
SHORT_PEDICLE_MAX_MM = 6.0
#: L5 bone behind the wall this far (mm) below the S1 superior endplate's plane is the inferior
#: articular process: it reaches the L5/S1 facet, whose lower end lies beside the S1 endplate or
#: lower (6-9 mm below it on the real bones). Bone a segmentation gave to L5 by mistake near a
#: long procedural pedicle (the S1 superior articular process's tip) stays above that.
IAP_BELOW_S1_ENDPLATE_MM = 3.0


@dataclass(kw_only=True)
class SideAnatomy:
    """Per-side landmarks (LPS mm) of the L5/S1 foramen.

    Attributes
    ----------
    pedicle_centre_lps : np.ndarray, shape (3,)
        Centroid of the L5 pedicle.
    pedicle_lower_margin_lps : np.ndarray, shape (3,)
        Lowest point of the L5 pedicle (along the S1 endplate normal), below its centre.
    pedicle_medial_wall_lps : np.ndarray, shape (3,)
        Most medial point of the pedicle (the medial bound of the foraminal zone).
    vertebral_body_lateral_border_lps : np.ndarray, shape (3,)
        Most lateral point of the raw L5 bone in front of the body's posterior wall, between
        its inferior endplate and the pedicle (a band at least ``BORDER_BAND_MM`` high): the
        lateral bound of the foraminal zone.
    foramen_centre_lps : np.ndarray, shape (3,)
        Midway between the pedicle's lower margin and the S1 bone below it (not below the S1
        superior endplate's plane), 3 mm behind the L5 body's posterior wall.
    posterior_wall_lps : np.ndarray, shape (3,)
        The L5 body's posterior wall just below the pedicle (the foramen's anterior wall where
        the safe triangle lies), at the foramen centre's lateral position, halfway between the
        inferior endplate and the pedicle: what lies further forward is the body, not the
        foramen (the anterior bound of the foraminal zone).
    root_centreline_lps : np.ndarray, shape (N, 3), or None
        Exiting L5 root near the foramen (medial end first); None without a root label.
    frame : LocalFrame
        The side's local frame (``docs/ARCHITECTURE.md`` 4.1): origin at the foramen centre, z cranial,
        y posterior, x lateral towards this side (left-handed for the right side).
    """

    pedicle_centre_lps: np.ndarray
    pedicle_lower_margin_lps: np.ndarray
    pedicle_medial_wall_lps: np.ndarray
    vertebral_body_lateral_border_lps: np.ndarray
    foramen_centre_lps: np.ndarray
    posterior_wall_lps: np.ndarray
    root_centreline_lps: np.ndarray | None
    frame: LocalFrame


@dataclass(kw_only=True)
class CoreLandmarks:
    """Side-independent landmarks (LPS mm)."""

    s1_endplate_centre_lps: np.ndarray
    s1_endplate_normal_lps: np.ndarray
    l5_endplate_centre_lps: np.ndarray
    disc_centre_lps: np.ndarray
    midline_point_lps: np.ndarray
    midline_normal_lps: np.ndarray
    #: The L5 inferior endplate's unit normal (cranial), or None where it was not measured: with
    #: the S1 endplate's, L5's tilt on the sacrum (``anatomy.plausibility``).
    l5_endplate_normal_lps: np.ndarray | None = None


class AnatomicalFrame:
    """Anatomical coordinates (lat, post, h) about the S1 endplate centre."""

    def __init__(self, centre: np.ndarray, normal: np.ndarray, left: np.ndarray) -> None:
        self.c = centre
        self.h = normal
        self.lat = G.orthogonal_part(left, normal)
        self.post = np.cross(self.h, self.lat)
        self.R = np.column_stack([self.lat, self.post, self.h])

    @classmethod
    def about_midline(cls, core: "CoreLandmarks") -> "AnatomicalFrame":
        """The frame of the S1 endplate with its origin moved along ``lat`` onto the
        mid-sagittal plane: ``lat`` is then the distance from the midline (patient's left
        positive), ``post`` and ``h`` are the S1 endplate's as before."""
        frame = cls(core.s1_endplate_centre_lps, core.s1_endplate_normal_lps,
                    core.midline_normal_lps)
        offset = float(np.dot(core.midline_point_lps - frame.c, frame.lat))
        return cls(frame.c + offset * frame.lat, frame.h, frame.lat)

    def local(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, float) - self.c) @ self.R

    def lps(self, q: np.ndarray) -> np.ndarray:
        return np.asarray(q, float) @ self.R.T + self.c


def endplates(grid: Volume, parts: np.ndarray, warnings: list[str]) -> CoreLandmarks:
    """S1 superior endplate plane, L5 inferior endplate centre, disc centre and the midline."""
    s1 = parts == PART_ID["S1"]
    l5 = parts == PART_ID["L5"]
    disc = parts == PART_ID["disc_L5S1"]
    if not s1.any():
        raise AnatomyError("no S1/sacrum found: L5/S1 is not in the field of view; use a CT "
                           "that includes the sacrum")
    if not l5.any():
        raise AnatomyError("no L5 found: L5/S1 is not in the field of view; use a CT that "
                           "includes L5")
    bridged = np.zeros((0, 3))
    if disc.sum() >= 20:
        pts_s1 = G.interface_points(grid, s1, disc)
        pts_l5 = G.interface_points(grid, l5, disc)
        bridged = _bridged_disc_points(grid, s1, l5, disc)
    else:
        # No disc (fused or unlabelled): the endplate is where S1 and L5 touch.
        pts_s1 = pts_l5 = G.interface_points(grid, s1, l5)
    if len(pts_s1) < 20 or len(pts_l5) < 20:
        raise AnatomyError("cannot find the S1 superior endplate: L5 and S1 do not face each "
                           "other across a disc; check the segmentation at L5/S1")
    c1, n1 = _endplate_plane(pts_s1, bridged)
    l5_centroid = G.voxel_points(grid, l5).mean(axis=0)
    if np.dot(l5_centroid - c1, n1) < 0:
        n1 = -n1
    c5, n5 = _endplate_plane(pts_l5, bridged)
    if np.dot(n5, n1) < 0:
        n5 = -n5
    disc_centre = 0.5 * (c1 + c5)

    # Midline: start from the widest axis of the endplate (vertebral endplates are wider than
    # deep), refine by mirror symmetry of L5, the disc and the top of S1 around the disc.
    hpts = pts_s1 - np.outer((pts_s1 - c1) @ n1, n1)
    _, _, axes = G.principal_axes(hpts)
    left0 = G.orthogonal_part(axes[0], n1)
    if left0[0] < 0:
        left0 = -left0
    near = (parts == PART_ID["L5"]) | disc | s1
    pts = G.voxel_points(grid, near)
    pts = pts[np.linalg.norm(pts - disc_centre, axis=1) < 45.0]
    normal, point = G.symmetry_plane(pts, left0, disc_centre)
    normal = G.orthogonal_part(normal, n1)
    if np.degrees(np.arccos(np.clip(np.dot(normal, left0), -1, 1))) > 20.0:
        warnings.append("the mirror symmetry of L5/S1 is poor (scoliosis or a partial "
                        "segmentation?); the midline follows the L5 body's axes instead")
        normal, point = left0, disc_centre
    point = disc_centre + np.dot(point - disc_centre, normal) * normal
    off = float(np.dot(disc_centre - l5_centroid, normal))
    if abs(off) > DISC_OFF_L5_MM:
        side = "left" if off * normal[0] > 0 else "right"      # LPS +x is the patient's left
        warnings.append(f"the L5/S1 disc centre found lies {abs(off):.0f} mm to the {side} of "
                        "L5's centre (the disc is labelled in part, or on one side only): the "
                        "disc centre and the endplates may be off; check them on the CT")
    return CoreLandmarks(s1_endplate_centre_lps=c1, s1_endplate_normal_lps=G.unit(n1),
                         l5_endplate_centre_lps=c5, l5_endplate_normal_lps=G.unit(n5),
                         disc_centre_lps=disc_centre,
                         midline_point_lps=point, midline_normal_lps=normal)


def _endplate_plane(endplate: np.ndarray, bridged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit normal of an endplate seen at its labelled disc (``endplate``, (N, 3) LPS
    mm) and at the disc's bridged part (``bridged``, :func:`_bridged_disc_points`).

    The normal is the labelled part's alone: the bridged contact is the watershed's border
    inside the disc, a surface some millimetres from the endplate and, in a wedge-shaped disc,
    not parallel to it (measured on a phantom whose front three quarters of the disc were split
    at their middle: one plane through both tilted 16-20 degrees, a normal shared by both 6-10,
    the labelled part alone 1-3). The centre is the centroid of both, moved onto that plane.
    """
    centre, normal, keep = G.fit_plane(endplate)
    if len(bridged) < 20:
        return centre, normal
    b_keep = G.fit_plane(bridged)[2]
    mean = np.concatenate([endplate[keep], bridged[b_keep]]).mean(axis=0)
    return mean - np.dot(mean - centre, normal) * normal, normal


def _bridged_disc_points(grid: Volume, s1: np.ndarray, l5: np.ndarray, disc: np.ndarray,
                         *, lateral_mm: float = 30.0, height_mm: float = 20.0) -> np.ndarray:
    """LPS points (N, 3) where the L5 and S1 bone touch across the part of the disc that the
    labels call bone.

    A network's disc label may cover only the back of the disc (its front bridged as bone, the
    watershed's border between L5 and S1 running through it): the endplates fitted to that strip
    alone put the disc centre 6-8 mm behind and above the true one, and the S1 endplate normal
    off by 10-12 degrees (measured on real-bone phantoms' fused labels at 2.5-3 mm slices). The
    contact is kept in front of the labelled disc's back (LPS +y is posterior; the L5/S1 facet
    joints, which touch too, lie behind the canal), within ``lateral_mm`` left-right and
    ``height_mm`` cranio-caudally of its centre.
    """
    touch = G.interface_points(grid, s1, l5)
    if not len(touch):
        return touch
    pts = G.voxel_points(grid, disc)
    centre = pts.mean(axis=0)
    keep = ((touch[:, 1] <= pts[:, 1].max()) & (np.abs(touch[:, 0] - centre[0]) <= lateral_mm)
            & (np.abs(touch[:, 2] - centre[2]) <= height_mm))
    return touch[keep]


def _crop(grid: Volume, mask: np.ndarray, margin_mm: float):
    margin = np.ceil(margin_mm / grid.spacing_mm[::-1]).astype(int)
    sl = G.bbox_slices(mask, margin)
    offset = tuple(s.start for s in sl)
    return sl, offset


#: Two pieces of an opened L5 body are its two halves when their centres lie within
#: ``BODY_HALVES_MM`` of each other cranio-caudally and front to back, and within a body's width
#: (``BODY_HALVES_APART_MM``) left to right.
BODY_HALVES_MM = 10.0
BODY_HALVES_APART_MM = 50.0


def _body_halves(body: np.ndarray, grid: Volume) -> np.ndarray:
    """The largest piece of the opened body (bool, (z, y, x) on ``grid``), with the next largest
    when it lies beside it at its height and is at least half its size: an osteoporotic body
    whose marrow the bone labels left hollow in the middle opens into a left and a right half (a
    real 3 mm CT's L5: 93 and 126 voxels, 31 mm apart left to right, at the same height and
    depth), and the largest alone left one side of L5 without a body."""
    lab, n = ndi.label(body, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return body
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    centres = np.array(ndi.center_of_mass(body, lab, order[:2]), float)   # (2, 3) z, y, x
    d = np.abs(centres[0] - centres[1]) * G.spacing_zyx(grid)
    pair = (d[0] <= BODY_HALVES_MM and d[1] <= BODY_HALVES_MM and d[2] <= BODY_HALVES_APART_MM
            and sizes[order[1]] >= 0.5 * sizes[order[0]])
    return np.isin(lab, order[:2]) if pair else lab == int(order[0])


def side_landmarks(grid: Volume, parts: np.ndarray, core: CoreLandmarks
                   ) -> dict[str, SideAnatomy]:
    """Pedicles, body borders, foramina, roots and frames of both sides.

    Definitions (anatomical frame of the module docstring):

    * L5 body = the largest connected part of L5 that an 8.5 mm ball fits into (with a
      second part beside it at its height: :func:`_body_halves`);
    * posterior wall = 98th percentile of ``post`` over body voxels 0-25 mm lateral of the
      midline in the body's upper 60 % (the pedicle level), or over those within 10 mm of the
      midline when that lies more than ``ARCH_KEPT_MM`` in front (the opening kept a pedicle);
    * pedicle = the L5 bone 1-5 mm behind that wall (only the pedicle crosses that slab: the
      articular and transverse processes lie behind the foramen), grown 12 mm backwards without
      going below its lowest point in the slab;
    * lower margin = the lowest pedicle point below the pedicle's centroid.
    """
    sp = G.spacing_zyx(grid)
    half_vox = 0.5 * float(np.mean(sp))
    l5 = parts == PART_ID["L5"]
    sl, off = _crop(grid, l5, 5.0)
    l5c = l5[sl]
    # The body is what a ball wider than any pedicle fits into; the rest is the posterior arch.
    body = G.opening_by_distance(l5c, BODY_BALL_MM, sp)
    if not body.any():
        raise AnatomyError("cannot find the L5 vertebral body (too thin in the labels); check "
                           "the segmentation at L5")
    body = _body_halves(body, grid)
    F = AnatomicalFrame.about_midline(core)
    body_q = F.local(G.voxel_points(grid, body, off))
    l5_q = F.local(G.voxel_points(grid, l5c, off))
    s1 = parts == PART_ID["S1"]
    s1_sl, s1_off = _crop(grid, s1 & _near(grid, s1, core.disc_centre_lps, 70.0), 2.0)
    s1_q = F.local(G.voxel_points(grid, s1[s1_sl], s1_off))
    l5_inf_h = float(F.local(core.l5_endplate_centre_lps)[2])
    h_lo, h_hi = float(body_q[:, 2].min()), float(body_q[:, 2].max())
    upper = body_q[:, 2] >= h_lo + 0.4 * (h_hi - h_lo)

    out: dict[str, SideAnatomy] = {}
    for side, sgn in SIDE_SIGN.items():
        lat = sgn * body_q[:, 0]
        body_side = (lat >= 0.0) & (lat <= 25.0)
        band = upper & body_side
        if band.sum() < 5:
            band = upper & (lat > 0)
        if band.sum() < 5:
            # A body with nothing on this side of the midline is a body the labels left in
            # part (measured on a real 3 mm CT whose L5 marrow the CT bone model had missed).
            raise AnatomyError(f"cannot find the {side} half of the L5 vertebral body (the "
                               "labels hold only part of it); check the segmentation at L5")
        wall = float(np.percentile(body_q[band, 1], 98)) + half_vox
        # On some real vertebrae the ball fits into the thick L5 pedicle, and the opened body
        # keeps it: its lateral part then reaches 12-16 mm behind the wall that faces the canal
        # (elsewhere the two agree within 2 mm), and the "pedicle" found behind it was the
        # lamina. The wall within 10 mm of the midline, medial of the pedicles, holds then.
        inner = upper & (lat >= 0.0) & (lat <= 10.0)
        if inner.sum() >= 5:
            wall_inner = float(np.percentile(body_q[inner, 1], 98)) + half_vox
            if wall - wall_inner > ARCH_KEPT_MM:
                wall = wall_inner
                body_side &= body_q[:, 1] <= wall + 3.0
        slab = (l5_q[:, 1] >= wall + PEDICLE_SLAB_MM[0]) & (l5_q[:, 1] <= wall + PEDICLE_SLAB_MM[1]) & (
            sgn * l5_q[:, 0] >= 4.0) & (l5_q[:, 2] >= l5_inf_h)
        if slab.sum() < 5:
            raise AnatomyError(f"cannot find the {side} L5 pedicle; check the segmentation of L5")
        sec = _main_cluster(l5_q[slab], grid)
        lat_lo, lat_hi = float(sec[:, 0].min()), float(sec[:, 0].max())
        # The pedicle ends where the posterior elements begin. A real L5 pedicle is short
        # (3-5 mm behind the wall, then the inferior articular process hangs down to the facet):
        # the fixed 14 mm reach, made for long pedicles, put the "centre" 8 mm behind the wall
        # in the articular process and the lower margin 4-9 mm too low (at the L5 endplate).
        length = _pedicle_length(l5_q, sgn=sgn, wall=wall, lat_range=(lat_lo, lat_hi),
                                 below_h=-IAP_BELOW_S1_ENDPLATE_MM)
        # Its middle section lies 7-11 mm behind the wall. When the posterior elements begin
        # within SHORT_PEDICLE_MAX_MM of it (a short pedicle), it lies proportionally nearer
        # and the pedicle ends at ``length``. A longer pedicle keeps the full reach: bone of the
        # S1 superior articular process that a segmentation gave to L5 can hang down 7-12 mm
        # behind the wall of a long pedicle, and must not shorten it.
        short_pedicle = length <= SHORT_PEDICLE_MAX_MM
        scale = length / PEDICLE_MID_MM[1] if short_pedicle else 1.0
        reach = length if short_pedicle else PEDICLE_REACH_MM
        if short_pedicle:
            short = slab & (l5_q[:, 1] <= wall + reach)
            if short.sum() >= 5:
                sec = _main_cluster(l5_q[short], grid)
                lat_lo, lat_hi = float(sec[:, 0].min()), float(sec[:, 0].max())
        h_min = float(sec[:, 2].min())
        ped_sel = (l5_q[:, 1] >= wall) & (l5_q[:, 1] <= wall + reach) & (
            l5_q[:, 2] >= h_min - 1.0) & (
            l5_q[:, 2] <= float(sec[:, 2].max()) + 1.0) & (sgn * l5_q[:, 0] >= 4.0) & (
            l5_q[:, 0] >= lat_lo - 6.0) & (l5_q[:, 0] <= lat_hi + 6.0)
        ped_q = l5_q[ped_sel]
        # Centre = middle of the pedicle's cross-section halfway along it (the pedicles converge,
        # so a centroid of the whole pedicle would sit too medial).
        mid_sel = (ped_q[:, 1] >= wall + PEDICLE_MID_MM[0] * scale) & (
            ped_q[:, 1] <= wall + PEDICLE_MID_MM[1] * scale)
        if short_pedicle:
            # A short pedicle's section also holds the root of the transverse process, which
            # joins it and the body's side and reaches far beyond the body (the L5 one): the
            # pedicle is sought over the body's width, which it does not pass.
            side_lat = sgn * body_q[upper & (sgn * body_q[:, 0] > 0.0), 0]
            if len(side_lat) >= 5:
                within = sgn * ped_q[:, 0] <= float(np.percentile(side_lat, 98)) + half_vox
                if (mid_sel & within).sum() >= 5:
                    mid_sel &= within
        mid = ped_q[mid_sel]
        if len(mid) < 5:
            mid = ped_q
        lo_q, hi_q = np.percentile(mid, 5, axis=0), np.percentile(mid, 95, axis=0)
        centre_q = 0.5 * (lo_q + hi_q)
        centre_q[1] = float(np.clip(wall + PEDICLE_CENTRE_MM * scale, ped_q[:, 1].min(),
                                    ped_q[:, 1].max()))
        col = ped_q[np.hypot(ped_q[:, 0] - centre_q[0], ped_q[:, 1] - centre_q[1]) <= 4.0]
        if len(col) == 0:
            col = sec
        if short_pedicle:
            # The margin of a short pedicle slopes down laterally into the transverse process's
            # root: the median of the 1 mm columns' lowest bone under the pedicle's middle (as
            # the real bones' landmarks are measured), not the lowest point at its side.
            lat_bin = np.floor(col[:, 0] - centre_q[0]).astype(int)
            lows = [float(col[lat_bin == b, 2].min()) for b in np.unique(lat_bin)]
            low_h = float(np.median(lows)) - half_vox
        else:
            low_h = float(col[:, 2].min()) - half_vox
        lower_q = np.array([centre_q[0], centre_q[1], low_h])
        medial_q = sec[np.argmin(sgn * sec[:, 0])].copy()

        # Posterior wall of the body at the pedicle's lateral position, below the pedicle.
        # The foramen lies 3 mm behind the posterior wall, which leans with L5's lordosis:
        # follow the wall line down to the foramen's height. Only the body in front of the
        # pedicle level's wall (plus the lean, WALL_LEAN_MM) makes the line: where the opened
        # body keeps a pedicle's base at some heights and not at others, their percentiles
        # tilted the line, and extrapolated down to the foramen it put the foramen 13-20 mm
        # behind the pedicle's centre (real-bone phantoms 101, 103 and 106 at 1 mm with the
        # CT bone model's bone).
        wall_at = _wall_line(body_q[body_side & (body_q[:, 1] <= wall + WALL_LEAN_MM)],
                             default=wall - half_vox, cap=wall + WALL_LEAN_MM)
        f_lat = centre_q[0]
        f_post = wall_at(low_h - 5.0) + half_vox + 3.0
        below = (np.abs(s1_q[:, 0] - f_lat) <= 2.0) & (np.abs(s1_q[:, 1] - f_post) <= 2.0) & (
            s1_q[:, 2] < low_h)
        s1_top = float(s1_q[below, 2].max()) + half_vox if below.any() else 0.0
        # The foramen's floor does not lie below the S1 superior endplate (h = 0; Kambin's
        # triangle stands on it): on real bone the column behind the wall may hold no S1 bone
        # down to the S1 pedicle's lower half, or the ala only (the SAP split off into another
        # part), which put the foramen centre 10-15 mm under the disc.
        s1_top = max(s1_top, 0.0)
        f_h = 0.5 * (low_h + s1_top)
        f_post = wall_at(f_h) + half_vox + 3.0
        foramen_q = np.array([f_lat, f_post, f_h])
        wall_q = np.array([f_lat, _wall_below_pedicle(
            l5_q[(sgn * l5_q[:, 0] >= 0.0) & (sgn * l5_q[:, 0] <= 25.0)],
            h_range=(l5_inf_h, low_h - 1.0), cap=wall + WALL_LEAN_MM,
            default=f_post - 3.0 - half_vox)
            + half_vox, 0.5 * (l5_inf_h + low_h - 1.0)])

        # Lateral border of the body between the inferior endplate and the pedicle, on the raw
        # bone in front of the posterior wall (only the body lies there below the pedicle): the
        # opened body loses its lateral rim to the ball (up to ~15 mm on real vertebrae, whose
        # sides are concave between flaring endplate rims). The band is at least
        # BORDER_BAND_MM high: on real bone the pedicle's lower margin may lie level with the
        # endplate centre, which left a band too thin to hold the body's lateral edge.
        band_hi = max(low_h, l5_inf_h - 1.0 + BORDER_BAND_MM)
        lv = l5_q[(l5_q[:, 2] <= band_hi) & (l5_q[:, 2] >= l5_inf_h - 1.0)
                  & (l5_q[:, 1] <= wall - 2.0) & (sgn * l5_q[:, 0] >= 0.0)]
        if len(lv) == 0:
            lv = body_q[(body_q[:, 2] <= low_h) & (body_q[:, 2] >= l5_inf_h - 1.0)]
        if len(lv) == 0:
            lv = body_q
        # At the most lateral ``x``, at the middle of the rim within 1.5 mm of it: a single
        # extreme voxel moves along the rim when the segmentation is a voxel thicker, and the
        # CT edge found from it (identify.refine_zone_landmarks) with it.
        x_max = float(np.max(sgn * lv[:, 0]))
        border_q = lv[sgn * lv[:, 0] >= x_max - 1.5].mean(axis=0)
        border_q[0] = sgn * x_max

        foramen = F.lps(foramen_q)
        root = root_centreline(grid, parts, side, foramen, midline_point_lps=core.midline_point_lps,
                               midline_normal_lps=core.midline_normal_lps)
        frame = side_frame(origin_lps=foramen, cranial_lps=core.s1_endplate_normal_lps,
                           left_lps=core.midline_normal_lps, side=side)
        out[side] = SideAnatomy(
            pedicle_centre_lps=F.lps(centre_q), pedicle_lower_margin_lps=F.lps(lower_q),
            pedicle_medial_wall_lps=F.lps(medial_q),
            vertebral_body_lateral_border_lps=F.lps(border_q), foramen_centre_lps=foramen,
            posterior_wall_lps=F.lps(wall_q),
            root_centreline_lps=root, frame=frame)
    return out


def _wall_below_pedicle(q: np.ndarray, *, h_range: tuple[float, float], cap: float,
                        default: float) -> float:
    """Posterior wall ``post`` of the L5 body between the inferior endplate and the pedicle.

    ``q`` holds the L5 voxel points (N, 3: lat, post, h; mm) of one side. Between those heights
    nothing but the body reaches the wall (the pedicle lies above, the inferior articular process
    6 mm or more behind, beyond ``cap``), so the raw bone's 98th percentile finds the wall
    without the rounding of the opened body, whose ball shaves the body's lower corners, nor the
    extrapolation of a wall line fitted to the whole body (both moved it by 2-3 mm between two
    segmentations of one phantom).
    """
    sel = (q[:, 2] >= h_range[0]) & (q[:, 2] <= h_range[1]) & (q[:, 1] <= cap)
    if sel.sum() < 20:
        return default
    return float(np.percentile(q[sel, 1], 98))


def _pedicle_length(q: np.ndarray, *, sgn: float, wall: float, lat_range: tuple[float, float],
                    below_h: float, min_points: int = 3) -> float:
    """How far (mm) behind the posterior wall ``wall`` the pedicle reaches (at most
    ``PEDICLE_REACH_MM``).

    ``q`` holds the L5 voxel points (N, 3: lat, post, h; mm). The pedicle ends at the first 1 mm
    coronal section behind the wall (from 1 mm on) in which at least ``min_points`` points of the
    pedicle's columns (``lat_range``, 4 mm or more from the midline on this side) lie below
    ``below_h``: the inferior articular process, which hangs down behind the foramen to the
    facet joint. A long pedicle (the procedural phantom's) meets none within the reach.
    """
    cols = (sgn * q[:, 0] >= 4.0) & (q[:, 0] >= lat_range[0]) & (q[:, 0] <= lat_range[1]) & (
        q[:, 2] < below_h)
    post = q[cols, 1] - wall
    for d in np.arange(1.0, PEDICLE_REACH_MM):
        if int(np.count_nonzero((post >= d) & (post < d + 1.0))) >= min_points:
            return float(max(d, 2.0))
    return PEDICLE_REACH_MM


def _wall_line(q: np.ndarray, *, default: float, cap: float = np.inf):
    """Posterior wall ``post(h)`` of a body: a line through the per-height 98th percentiles,
    no further back than ``cap``."""
    if len(q) < 20:
        return lambda h: min(default, cap)
    h_lo, h_hi = float(q[:, 2].min()) + 2.0, float(q[:, 2].max()) - 2.0
    hs, ps = [], []
    for a in np.arange(h_lo, h_hi, 2.0):
        sel = (q[:, 2] >= a) & (q[:, 2] < a + 2.0)
        if sel.sum() >= 5:
            hs.append(a + 1.0)
            ps.append(float(np.percentile(q[sel, 1], 98)))
    if len(hs) < 2:
        return lambda h: min(default, cap)
    b, a0 = np.polyfit(hs, ps, 1)
    return lambda h: min(float(a0 + b * h), cap)


def _main_cluster(q: np.ndarray, grid: Volume) -> np.ndarray:
    """The largest cluster of points (linked within 1.8 voxels), so stray islands are ignored."""
    if len(q) < 3:
        return q
    r = 1.8 * float(grid.spacing_mm.max())
    pairs = cKDTree(q).query_pairs(r, output_type="ndarray")
    m = sps.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(q), len(q)))
    _, lab = connected_components(m, directed=False)
    return q[lab == np.argmax(np.bincount(lab))]


def _near(grid: Volume, mask: np.ndarray, point: np.ndarray, radius_mm: float) -> np.ndarray:
    """``mask`` restricted to voxels within ``radius_mm`` of an LPS point."""
    out = np.zeros_like(mask)
    zz, yy, xx = np.nonzero(mask)
    p = grid.index_to_lps(np.stack([xx, yy, zz], -1))
    keep = np.linalg.norm(p - point, axis=1) <= radius_mm
    out[zz[keep], yy[keep], xx[keep]] = True
    return out


def root_centreline(grid: Volume, parts: np.ndarray, side: str, foramen_lps: np.ndarray, *,
                    midline_point_lps: np.ndarray, midline_normal_lps: np.ndarray,
                    radius_mm: float = 20.0, step_mm: float = 1.5) -> np.ndarray | None:
    """Centreline (N, 3) LPS mm of the exiting L5 root within ``radius_mm`` of the foramen.

    The root voxels near the foramen are binned along their principal axis; the centroid of
    each bin is a centreline point. Ordered from the end nearer the spinal canal.
    """
    root = parts == PART_ID[f"root_L5_{side}"]
    if not root.any():
        return None
    pts = G.voxel_points(grid, root)
    pts = pts[np.linalg.norm(pts - foramen_lps, axis=1) <= radius_mm]
    if len(pts) < 5:
        return None
    c, _, axes = G.principal_axes(pts)
    t = (pts - c) @ axes[0]
    edges = np.arange(t.min(), t.max() + step_mm, step_mm)
    line = []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (t >= a) & (t < b)
        if sel.sum() >= 2:
            line.append(pts[sel].mean(axis=0))
    if len(line) < 2:
        return None
    line = np.array(line)
    # Medial end first (the end nearer the mid-sagittal plane, where the root leaves the sac).
    lat = np.abs((line - midline_point_lps) @ midline_normal_lps)
    return line if lat[0] <= lat[-1] else line[::-1].copy()
