"""One test (or a few) per phantom builder: geometry asserted on small point sets, no rendering.

The builders are cheap (milliseconds): one seeded chain is shared by the module; a few tests
feed hand-made geometry records to show a builder follows the geometry it is given (what the
phantom on real bones relies on).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spinect_core.phantom import shapes as S
from spinect_core.phantom.anatomy import build_anatomy
from spinect_core.phantom.builders.bones import build_bones, vertebra_fields
from spinect_core.phantom.builders.canal import build_canal
from spinect_core.phantom.builders.discs import DiscShape, build_discs
from spinect_core.phantom.builders.facets import build_facets
from spinect_core.phantom.builders.fat import build_foraminal_fat, foramen_span
from spinect_core.phantom.builders.frames import build_frames
from spinect_core.phantom.builders.ilium import build_ilium
from spinect_core.phantom.builders.landmarks import spine_landmarks
from spinect_core.phantom.builders.pedicles import build_vertebrae, procedural_spine
from spinect_core.phantom.builders.record import SIDES, Spine, VertebraGeometry
from spinect_core.phantom.builders.roots import build_roots
from spinect_core.phantom.builders.sac import build_sac
from spinect_core.phantom.builders.soft_tissue import build_soft_tissue
from spinect_core.phantom.params import sample_params


class Chain:
    """Every builder's output for one seed, built in build_anatomy's order."""

    def __init__(self, seed: int) -> None:
        p = self.p = sample_params(seed)
        self.frames = build_frames(p)
        self.verts = build_vertebrae(p, self.frames)
        self.facets = build_facets(p, self.verts)
        self.spine = procedural_spine(self.verts, p)
        self.canal = build_canal(self.spine)
        self.sac = build_sac(self.spine, width_mm=p.dural_sac_width_mm, depth_mm=p.dural_sac_depth_mm,
                             end_mm=p.dural_sac_end_mm)
        self.roots = build_roots(self.spine, self.sac, p)
        self.soft = build_soft_tissue(self.spine, p)
        self.ilium = build_ilium(self.spine, p, z_bottom=self.soft.body.big[0][2])
        self.fat = build_foraminal_fat(self.spine)
        self.discs = build_discs(self.spine)
        self.bones = build_bones(p, self.verts, self.ilium, list(self.roots.tubes))


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain(1)


def _f(fn, pts, key="d"):
    """Field ``key`` of ``fn`` at points (n, 3)."""
    P = np.atleast_2d(np.asarray(pts, float))
    return fn(P[:, 0].copy(), P[:, 1].copy(), P[:, 2].copy())[key]


def _local(frame, pts):
    P = np.atleast_2d(pts)
    return np.column_stack(frame.to_local(P[:, 0], P[:, 1], P[:, 2]))


# --- frames -----------------------------------------------------------------------------------
def test_frames_stack_discs_of_the_sampled_height_and_angle(chain):
    p, fr = chain.p, chain.frames
    assert np.allclose(fr.s1.point([0, 0, 0.5 * p.s1_body_height_mm]), 0.0)   # origin: S1 endplate
    # S1's axis tilts forward by the sacral slope from the patient's z axis.
    assert np.degrees(np.arccos(fr.s1.R[2, 2])) == pytest.approx(p.sacral_slope_deg)
    # L5's inferior endplate centre sits mid-disc-height above S1's and slips forward.
    l5_bottom = fr.l5.point([0, 0, -0.5 * p.l5_body_height_mm])
    local = _local(fr.s1, l5_bottom)[0]
    hmid = 0.5 * (p.disc_l5s1_anterior_mm + p.disc_l5s1_posterior_mm)
    assert local == pytest.approx([0.0, -p.listhesis_l5_mm, 0.5 * p.s1_body_height_mm + hmid])
    # Segmental angle between the S1 and L4/L5 endplates = disc wedge + L5 body wedge.
    ang = np.degrees(np.arccos(np.clip(fr.s1.R[:, 2] @ fr.l5.R[:, 2], -1, 1)))
    assert ang == pytest.approx(fr.l5s1_disc_wedge_deg + 0.5 * fr.l5_body_wedge_deg)
    assert fr.derived["segmental_angle_l5s1_deg"] == pytest.approx(
        fr.l5s1_disc_wedge_deg + fr.l5_body_wedge_deg)


# --- pedicles ---------------------------------------------------------------------------------
def test_pedicles_give_the_sampled_foramen_height(chain):
    p, v = chain.p, chain.verts
    fh = v.derived["foramen_height_l5s1_mm"]
    for side, _n, _s in SIDES:
        zb = v.l5.ped_bottom[side]
        clipped = zb in (-0.5 * v.l5.H + 5.0, 0.5 * v.l5.H - 1.0 - v.l5.ped_h[side])
        if not clipped:
            assert fh[side] == pytest.approx(p.foramen_height_l5s1_mm[side])
        # The pedicle lies inside its body's height.
        assert -0.5 * v.l5.H < zb < zb + v.l5.ped_h[side] < 0.5 * v.l5.H
    assert v.l4.canal_w < v.l5.canal_w < v.s1.canal_w
    assert v.canal_depth_mm >= p.dural_sac_depth_mm + p.disc_bulge_mm + 4.0


# --- facets -----------------------------------------------------------------------------------
def test_facets_add_articular_processes_and_capsules(chain):
    v, fa = chain.verts, chain.facets
    assert (len(v.s1.extras), len(v.l5.extras), len(v.l4.extras)) == (2, 4, 4)
    assert [c.name for c in fa.capsules] == ["facet_capsule_l5s1_left", "facet_capsule_l4l5_left",
                                             "facet_capsule_l5s1_right", "facet_capsule_l4l5_right"]
    for c in fa.capsules:
        centre = fa.joints[c.name]["joint_centre"]
        # The capsule wraps the joint (ellipsoid radii 10 x 9 x 11 mm around its centre).
        assert np.all(_f(c.fields, [centre + [0, 0, 5.0], centre - [0, 0, 5.0]]) < 0)
        assert _f(c.fields, centre + [0, 0, 15.0])[0] > 0
        lo, hi = c.bbox
        assert np.all(lo < centre) and np.all(centre < hi)
    for side, sname, s in SIDES:
        # The S1 SAP rises above the S1 endplate by its sampled height, lateral to the canal.
        tip = _local(v.s1.frame, fa.landmarks[f"s1_sap_tip_{sname}"])[0]
        assert tip[2] - 0.5 * v.s1.H == pytest.approx(chain.p.s1_sap_height_mm[side])
        assert s * tip[0] > 0.5 * v.s1.canal_w


# --- canal and sac ----------------------------------------------------------------------------
def test_canal_contains_the_sac(chain):
    canal, sac = chain.canal, chain.sac
    # Points on the sac's lateral and posterior walls (where it is wide) lie inside the canal.
    wide = sac.half_width > 0.8 * sac.half_width.max()
    P = sac.line[wide]
    for off in ([1, 0, 0], [-1, 0, 0]):
        edge = P + np.asarray(off, float) * sac.half_width[wide, None]
        assert np.all(canal.fields(*edge.T.copy())["d"] < 0)
    assert np.all(_f(canal.part.fields, P) < -2.0)
    assert canal.part.cache and canal.part.name == "canal"


def test_sac_has_the_requested_size_and_end(chain):
    sp, p = chain.spine, chain.p
    sac = build_sac(sp, width_mm=15.0, depth_mm=12.0, end_mm=30.0)
    v5 = sp["L5"]
    centre = v5.point([0.0, 0.5 * v5.body_depth_mm + sac.y_mm, 0.0])
    # Across the sac at the L5 body centre: 15 mm wide (x), inside at the centre.
    xs = np.linspace(-12, 12, 481)
    pts = centre + np.column_stack([xs, 0 * xs, 0 * xs])
    inside = xs[_f(sac.part.fields, pts) < 0]
    assert inside.max() - inside.min() == pytest.approx(15.0, abs=0.2)
    # It ends 30 mm below the S1 endplate (along S1's axis), tapered.
    end_local = _local(sp["S1"].frame, sac.line[-1])[0]
    assert 0.5 * sp["S1"].body_height_mm - end_local[2] == pytest.approx(30.0, abs=1e-6)
    assert sac.half_width[-1] < 0.2 * sac.half_width[0]
    # y: the sac lies on the disc's bulge, 1 mm behind it.
    assert sac.y_mm == pytest.approx(p.disc_bulge_mm + 1.0 + 6.0)
    assert [layer.tissue for layer in sac.part.layers] == ["dura", "csf"]


# --- roots ------------------------------------------------------------------------------------
def _under_pedicle(v: VertebraGeometry, line: np.ndarray, side: int):
    """Root centreline points (vertebra-local) near the pedicle's centre in x, in front of
    the pedicle's posterior end."""
    s = SIDES[side][2]
    L = _local(v.frame, line)
    xc = s * v.pedicle_centre[side][0]
    near = np.abs(s * L[:, 0] - xc) < 0.25 * v.pedicle_width_mm[side]
    return L[near & (L[:, 1] < 0.5 * v.body_depth_mm + 12.0)]


def test_exiting_roots_pass_under_their_own_pedicle(chain):
    for level in ("L4", "L5"):
        v = chain.spine[level]
        for side, sname, _s in SIDES:
            line, radii = chain.roots.tubes[f"root_{level}_{sname}"]
            under = _under_pedicle(v, line, side)
            assert len(under) > 0
            zb = v.pedicle_bottom_mm[side]
            # Below the lower margin, within ~1.5 root diameters of it (the root hugs it).
            assert np.all(under[:, 2] < zb) and under[:, 2].max() > zb - 3 * radii.max()
            # Leaves laterally and caudally.
            d = chain.roots.landmarks[f"root_{level}_{sname}_exit_direction"]
            assert SIDES[side][2] * d[0] > 0 and d[2] < 0


def test_roots_follow_the_pedicle_they_are_given(chain):
    """Lowering a pedicle by 4 mm in the geometry record lowers the root under it by 4 mm."""
    sp = chain.spine
    v5 = sp["L5"]
    low = dataclasses.replace(v5, pedicle_bottom_mm=tuple(z - 4.0 for z in v5.pedicle_bottom_mm))
    moved = build_roots(Spine(vertebrae={**sp.vertebrae, "L5": low}, disc_bulge_mm=sp.disc_bulge_mm,
                              disc_posterior_height_mm=sp.disc_posterior_height_mm), chain.sac, chain.p)
    a = _local(v5.frame, chain.roots.tubes["root_L5_left"][0])
    b = _local(v5.frame, moved.tubes["root_L5_left"][0])
    # The tube's knot under the pedicle (3rd control point, sample 16) moved down by 4 mm.
    assert b[16] - a[16] == pytest.approx([0.0, 0.0, -4.0], abs=1e-9)
    # Roots of other levels are untouched.
    assert np.array_equal(moved.tubes["root_L4_left"][0], chain.roots.tubes["root_L4_left"][0])


def test_s1_root_runs_down_the_front_of_the_sacral_canal(chain):
    v1 = chain.spine["S1"]
    for side, sname, s in SIDES:
        line, radii = chain.roots.tubes[f"root_S1_{sname}"]
        L = _local(v1.frame, line)
        assert L[0, 2] > 0.5 * v1.body_height_mm         # leaves the sac above the S1 endplate
        assert L[-1, 2] < -0.5 * v1.body_height_mm       # exits below S1 (anterior foramen)
        assert np.all(s * L[:, 0] > 0)                   # stays on its side
        assert np.allclose(radii, 0.5 * chain.p.root_diameter_s1_mm[side])
    names = [pt.name for pt in chain.roots.nerve_parts((np.zeros(3), np.ones(3)))]
    assert names == [f"{n}_nerve" for n in chain.roots.tubes]


# --- soft tissue ------------------------------------------------------------------------------
def test_soft_tissue_skin_and_vessels(chain):
    sp, p, body = chain.spine, chain.p, chain.soft.body
    v5 = sp["L5"]
    assert body.y_skin - v5.point([0, 0.5 * v5.body_depth_mm, 0])[1] == pytest.approx(p.skin_depth_mm)
    # Inside the body at the spine, outside behind the skin.
    assert _f(body.fields, v5.frame.t)[0] < -50
    assert _f(body.fields, [0.0, body.y_skin + 5.0, v5.frame.t[2]])[0] > 0
    assert np.all(body.fov_lo < v5.frame.t) and np.all(v5.frame.t < body.fov_hi)
    names = [pt.name for pt in chain.soft.parts]
    assert names[:2] == ["body", "bowel"] and "psoas_left" in names and "iliac_vein_right" in names
    # Vessels lie in front of the bodies, psoas beside them.
    for pt in chain.soft.parts:
        if pt.name.startswith("iliac_"):
            assert 0.5 * (pt.bbox[0][1] + pt.bbox[1][1]) < v5.frame.t[1]
            assert _f(pt.fields, v5.frame.t)[0] > 15.0
    psoas = next(pt for pt in chain.soft.parts if pt.name == "psoas_left")
    side_point = v5.point([0.5 * v5.body_width_mm + 13.0, -6.0, 0.0])
    assert _f(psoas.fields, side_point)[0] < -10


# --- ilium ------------------------------------------------------------------------------------
def test_ilium_crest_height_and_gap(chain):
    p, il = chain.p, chain.ilium
    l45 = chain.discs.landmarks["l4l5_disc_centre"]
    for side, sname, s in SIDES:
        top = il.landmarks[f"iliac_crest_top_{sname}"]
        # Crest top at the sampled height relative to the L4/L5 disc.
        assert top[2] - l45[2] == pytest.approx(p.iliac_crest_height_mm[side], abs=1e-6)
        fn = il.fields[sname]
        assert _f(fn, top - [0, 0, 3.0], "outer")[0] < 0 < _f(fn, top + [0, 0, 3.0], "outer")[0]
        # The wing stays lateral of L5's transverse tip by about the sampled gap at its height.
        tip = il.landmarks[f"l5_transverse_tip_{sname}"]
        xs = tip[0] + s * np.linspace(0, p.iliac_crest_gap_mm[side] - 1.0, 40)
        pts = np.column_stack([xs, np.full(40, tip[1]), np.full(40, tip[2])])
        assert np.all(_f(fn, pts, "outer") > 0)


# --- fat ----------------------------------------------------------------------------------------
def test_foraminal_fat_fills_the_foramen_between_the_pedicles(chain):
    sp = chain.spine
    for (up, low, lname) in (("L5", "S1", "l5s1"), ("L4", "L5", "l4l5")):
        for side, sname, _s in SIDES:
            top, bot = foramen_span(sp[up], sp[low], side)
            c = chain.fat.landmarks[f"{lname}_foramen_centre_{sname}"]
            assert c == pytest.approx(0.5 * (top + bot))
            part = next(pt for pt in chain.fat.parts if pt.name == f"foramen_fat_{lname}_{sname}")
            # Filled from one pedicle to the other.
            assert np.all(_f(part.fields, [c + [0, 1.0, 0], top, bot]) < 0)
            # The top is the upper pedicle's lower margin: below the upper pedicle's centre.
            u = sp[up]
            assert _local(u.frame, top)[0][2] == pytest.approx(u.pedicle_bottom_mm[side])


# --- discs --------------------------------------------------------------------------------------
def _flat_vertebra(name: str, frame, *, W=40.0, D=30.0, H=20.0) -> VertebraGeometry:
    """A box-like vertebra with flat endplates and an elliptic outline (hand-made geometry)."""
    return VertebraGeometry(
        name=name, frame=frame, body_width_mm=W, body_depth_mm=D, body_height_mm=H,
        canal_width_mm=20.0, canal_depth_mm=15.0, pedicle_width_mm=(10.0, 10.0),
        pedicle_height_mm=(12.0, 12.0), pedicle_bottom_mm=(-2.0, -2.0),
        pedicle_centre=(np.array([15.0, 22.0, 4.0]), np.array([-15.0, 22.0, 4.0])),
        transverse_tip=None,
        superior_endplate=lambda x, y: np.full(np.shape(x), 0.5 * H),
        inferior_endplate=lambda x, y: np.full(np.shape(x), -0.5 * H),
        outline=lambda x, y, w, d: S.sd_ellipse2(x, y, 0.5 * w, 0.5 * d))


def test_disc_lies_between_the_endplates_with_the_requested_height():
    gap = 9.0
    low = _flat_vertebra("S1", S.Frame(np.eye(3), np.zeros(3)))
    up = _flat_vertebra("L5", S.Frame(np.eye(3), np.array([0.0, 0.0, 20.0 + gap])))
    sp = Spine(vertebrae={"S1": low, "L5": up, "L4": up}, disc_bulge_mm=1.0,
               disc_posterior_height_mm={"L5S1": gap, "L4L5": gap})
    discs = build_discs(sp)
    disc = discs.parts[0]
    assert disc.name == "disc_L5S1"
    assert discs.landmarks["l5s1_disc_centre"] == pytest.approx([0.0, 0.0, 10.0 + 0.5 * gap])
    zs = np.linspace(5.0, 25.0, 2001)
    col = np.column_stack([0 * zs + 2.0, 0 * zs + 1.0, zs])   # off the (degenerate) axis
    inside = zs[_f(disc.fields, col, "outer") < 0]
    # Between the lower body's top (z = 10) and the upper body's bottom (z = 10 + gap),
    # overlapping each endplate by 0.3 mm (no gap of air at a voxel's edge).
    assert inside.min() == pytest.approx(10.0 - 0.3, abs=0.02)
    assert inside.max() == pytest.approx(10.0 + gap + 0.3, abs=0.02)
    nucleus = zs[_f(disc.fields, col, "inner") < 0]
    assert inside.min() < nucleus.min() and nucleus.max() < inside.max()
    # A named shape parameter changes it: no overlap puts the disc exactly between the endplates.
    flush = build_discs(sp, DiscShape(endplate_overlap_mm=0.0)).parts[0]
    inside0 = zs[_f(flush.fields, col, "outer") < 0]
    assert (inside0.min(), inside0.max()) == pytest.approx((10.0, 10.0 + gap), abs=0.02)
    # Width: the bodies' outline grown by the bulge on each side.
    xs = np.linspace(-30, 30, 1201)
    row = np.column_stack([xs, 0 * xs + 1.0, np.full_like(xs, 10.0 + 0.5 * gap)])
    wide = xs[_f(disc.fields, row, "outer") < 0]
    assert wide.max() - wide.min() == pytest.approx(40.0 + 2.0, abs=0.3)


def test_procedural_discs_touch_both_bodies(chain):
    sp = chain.spine
    for disc, (lname, low, up) in zip(chain.discs.parts, (("l5s1", "S1", "L5"), ("l4l5", "L5", "L4"))):
        c = chain.discs.landmarks[f"{lname}_disc_centre"]
        assert _f(disc.fields, c, "outer")[0] < 0 and _f(disc.fields, c, "inner")[0] < 0
        # Not inside the bodies: 1 mm inside each (concave) endplate's centre is outside the disc.
        z_low = float(sp[low].superior_endplate(np.array(0.0), np.array(0.0))) - 1.0
        z_up = float(sp[up].inferior_endplate(np.array(0.0), np.array(0.0))) + 1.0
        assert z_low < 0.5 * sp[low].body_height_mm - 1.0      # concave: the centre is deeper
        for v, z in ((sp[low], z_low), (sp[up], z_up)):
            assert _f(disc.fields, v.point([0, 0, z]), "outer")[0] > 0


# --- bones --------------------------------------------------------------------------------------
def test_bones_have_cortex_around_cancellous_bone_and_an_open_canal(chain):
    names = [pt.name for pt in chain.bones.parts]
    assert names == ["L4", "L5", "S1", "ilium_left", "ilium_right"]
    for v in (chain.verts.l4, chain.verts.l5):
        fn = vertebra_fields(v)
        d = fn(*(np.array([c]) for c in v.frame.t))
        assert d["outer"][0] < d["inner"][0] < 0               # body centre: cancellous
        canal_c = v.frame.point([0, 0.5 * v.D + 0.5 * v.canal_d, 0.0])
        assert _f(fn, canal_c, "outer")[0] > 0                 # the canal is not bone
        lamina = v.frame.point([0, 0.5 * v.D + v.canal_d + 3.0, 0.0])
        assert _f(fn, lamina, "outer")[0] < 0                  # ... roofed by the laminae
    v1 = chain.verts.s1
    assert _f(chain.bones.sacrum_fields, v1.frame.t, "inner")[0] < 0
    s1 = chain.bones.parts[2]
    assert s1.cache and ("canal", 0.0, 0.0) in s1.carve
    assert all((f"root_{lv}_{sd}", 1.0, 1.0) in s1.carve for lv in ("L4", "L5", "S1")
               for sd in ("left", "right"))


# --- landmarks and the chain -------------------------------------------------------------------
def test_landmarks_and_paint_order(chain):
    lm = spine_landmarks(chain.frames)
    assert np.allclose(lm["s1_superior_endplate_centre"], 0)
    angle = np.degrees(np.arccos(lm["s1_superior_endplate_normal"] @ lm["l5_inferior_endplate_normal"]))
    assert angle == pytest.approx(chain.frames.l5s1_disc_wedge_deg)
    an = build_anatomy(chain.p)
    names = [pt.name for pt in an.parts]
    assert len(set(names)) == len(names)
    # Soft tissue first, then bones, then nerves and the sac on top.
    assert names[0] == "body" and names[-1] == "dura"
    assert names.index("S1") < min(i for i, n in enumerate(names) if n.endswith("_nerve"))
    assert names.index("canal") < names.index("L4")
    for key in ("l5s1_foramen_centre_left", "l5_pedicle_centre_right", "iliac_crest_top_left",
                "l4l5_disc_centre", "root_L5_left_centreline", "dural_sac_centreline"):
        assert key in an.landmarks
