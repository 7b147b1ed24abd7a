"""The real-bone anatomy: Visible Human L4, L5, sacrum and hip bones, varied per seed, with the
procedural phantom's discs, dural sac, roots, fat, vessels and muscles placed from them.

How it is assembled (patient frame as in :mod:`spinect_core.phantom.anatomy`: mm, x left,
y posterior, z superior, origin at the S1 superior endplate's centre):

1. Frames: the real bodies' measured sizes and wedges (``landmarks.json``), scaled by the seed's
   size (:mod:`~spinect_core.phantom.real.variation`), and the seed's sacral slope and disc
   heights (a degenerate disc replaces its heights) go through the procedural frame chain
   (:func:`~spinect_core.phantom.builders.frames.build_frames`): each segment's lordosis is its
   disc wedge plus the real body's wedge.
2. A :class:`~spinect_core.phantom.builders.record.Spine` record of the real vertebrae (body
   sizes, canal, pedicle widths, heights, lower margins and centres, transverse tips, the real
   endplate surfaces as height maps) feeds the procedural soft-tissue builders unchanged:
   canal fat, dural sac, the exiting L4/L5 roots with their ganglia (they pass under the given,
   i.e. real, pedicles), the traversing S1 roots, foraminal fat, discs (between the real
   endplates, reaching :data:`DISC_OVERLAP_MM` into the bodies, which are painted over them, so
   that no gap is left), body outline, muscles, bowel and vessels.
3. The bones are the real meshes (:mod:`~spinect_core.phantom.real.bones`), in the procedural
   bone parts' paint order, names and instances (``L4``, ``L5``, ``S1``, ``ilium_left``,
   ``ilium_right``); the dural sac is carved out of any bone it would cross (the sacral canal is
   shallower than the sac's lumbar depth). Facet capsules are not modelled: where two
   vertebrae meet (the seed's lordosis and SAP hypertrophy press the placed facets together,
   with no dark line between them on the CT), the lower one is carved by
   :data:`FACET_JOINT_SPACE_MM` of joint space, left as the surrounding tissue.
4. Landmarks describing bone (pedicle centres and lower margins, foramen centres, SAP and
   transverse tips, facet centres, iliac crest tops, endplate normals) come from the real bones.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders import (
    SIDES, Anatomy, Layer, Part, Spine, VertebraGeometry, build_canal, build_discs,
    build_foraminal_fat, build_roots, build_sac, build_soft_tissue,
)
from spinect_core.phantom.builders.bones import ROOT_CLEARANCE, SI_JOINT_CLEARANCE, bone_layers
from spinect_core.phantom.builders.frames import build_frames
from spinect_core.phantom.builders.landmarks import spine_landmarks
from spinect_core.phantom.builders.paint import paint_order
from spinect_core.phantom.builders.vertebra import body_outline
from spinect_core.phantom.params import PhantomParams
from spinect_core.phantom.real.bones import Bump, HipDeformation, PlacedBone, bone_fields
from spinect_core.phantom.real.meshes import load_landmarks, load_mesh
from spinect_core.phantom.real.variation import RealVariation

#: How far (mm) the discs reach into the adjacent bodies (painted over by the bone).
DISC_OVERLAP_MM = 1.5
#: Radius (mm, Gaussian SD) of the SAP hypertrophy and of an osteophyte.
SAP_RADIUS_MM = 5.0
OSTEOPHYTE_RADIUS_MM = 3.0
#: Thickness of the iliacus/gluteal muscle layer painted around the iliac wing (mm).
ILIAC_MUSCLE_MM = 14.0
#: Clearance (mm) between the dural sac and the bone it is carved from.
SAC_CLEARANCE_MM = 0.5
#: Joint space (mm) between the facets of two vertebrae where the placed real bones meet or
#: overlap (their seed's lordosis and SAP hypertrophy press them together).
FACET_JOINT_SPACE_MM = 1.5
#: Cortical thickness of the hip bones (mm): the thin iliac wing keeps some cancellous core.
HIP_CORTEX_MM = 1.2
#: The S1 "pedicle" (the foramen's floor) as the soft-tissue builders see it: from the canal's
#: wall to under the L5 pedicle centre, its top the measured floor, 14 mm high (the sacrum has
#: no separate pedicle below it).
S1_PEDICLE_HEIGHT_MM = 14.0


def _frame(d: dict) -> S.Frame:
    return S.Frame(np.asarray(d["R"], float), np.asarray(d["origin"], float))


def _wedge_scaled(wedge_deg: float, sy: float, sz: float) -> float:
    """A body's wedge angle after scaling its depth by ``sy`` and height by ``sz``."""
    return float(np.degrees(np.arctan(np.tan(np.deg2rad(wedge_deg)) * sz / sy)))


def real_params(p: PhantomParams, var: RealVariation) -> PhantomParams:
    """Procedural parameters ``p`` with the real bones' sizes (scaled), the seed's disc heights
    (or a degenerate disc's) and segmental angles = disc wedge + real body wedge: what the
    frame chain, the body outline and the field of view read."""
    L = load_landmarks()
    sx, sy, sz = var.scale_xyz
    fr, vt = L["frames"], L["vertebrae"]
    dims = {lv: (fr[lv]["W"] * sx, fr[lv]["D"] * sy, fr[lv]["H"] * sz) for lv in ("L4", "L5", "S1")}
    (W4, D4, H4), (W5, D5, H5), (W1, D1, H1) = dims["L4"], dims["L5"], dims["S1"]
    ha5, hp5 = var.disc_heights_mm.get("L5S1", (p.disc_l5s1_anterior_mm, p.disc_l5s1_posterior_mm))
    ha4, hp4 = var.disc_heights_mm.get("L4L5", (p.disc_l4l5_anterior_mm, p.disc_l4l5_posterior_mm))
    wd5 = float(np.degrees(np.arctan2(ha5 - hp5, 0.5 * (D1 + D5))))
    wd4 = float(np.degrees(np.arctan2(ha4 - hp4, 0.5 * (D5 + D4))))
    wb5 = _wedge_scaled(fr["L5"]["wedge_deg"], sy, sz)
    wb4 = _wedge_scaled(fr["L4"]["wedge_deg"], sy, sz)
    canal_w = (vt["L5"]["pedicle_left"]["medial"] + vt["L5"]["pedicle_right"]["medial"]) * sx
    canal_d = vt["L5"]["canal_depth"] * sy
    # The sac must fit the real lumbar canal: it lies on the disc's back.
    sac_d = float(min(p.dural_sac_depth_mm, canal_d - p.disc_bulge_mm - 2.5))
    sac_w = float(min(p.dural_sac_width_mm, canal_w - 6.0))
    tip = {lv: tuple(abs(vt[lv][f"transverse_tip_{n}"][0]) * sx for _i, n, _s in SIDES)
           for lv in ("L4", "L5")}
    ped = {lv: [vt[lv][f"pedicle_{n}"] for _i, n, _s in SIDES] for lv in ("L4", "L5")}
    return p.replace(
        l4_body_width_mm=W4, l4_body_depth_mm=D4, l4_body_height_mm=H4,
        l5_body_width_mm=W5, l5_body_depth_mm=D5, l5_body_height_mm=H5,
        s1_body_width_mm=W1, s1_body_depth_mm=D1, s1_body_height_mm=H1,
        disc_l5s1_anterior_mm=ha5, disc_l5s1_posterior_mm=hp5,
        disc_l4l5_anterior_mm=ha4, disc_l4l5_posterior_mm=hp4,
        segmental_angle_l5s1_deg=wd5 + wb5, segmental_angle_l4l5_deg=wd4 + wb4,
        l5_pedicle_width_mm=tuple(q["width"] * sx for q in ped["L5"]),
        l5_pedicle_height_mm=tuple(q["height"] * sz for q in ped["L5"]),
        l4_pedicle_width_mm=tuple(q["width"] * sx for q in ped["L4"]),
        l4_pedicle_height_mm=tuple(q["height"] * sz for q in ped["L4"]),
        canal_width_mm=canal_w, canal_depth_mm=canal_d,
        dural_sac_depth_mm=sac_d, dural_sac_width_mm=sac_w,
        l5_transverse_tip_mm=tip["L5"], l4_transverse_tip_mm=tip["L4"])


@functools.lru_cache(maxsize=None)
def endplate_height_map(body: str, superior: bool,
                        step_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real-local z (mm) of a body's endplate surface on a regular (x, y) grid.

    Returns ``(xs, ys, z)`` with ``z`` shape (len(xs), len(ys)): the endplate faces' centres
    (``measure.endplates``' selection) interpolated linearly, nearest value outside them.
    """
    from scipy.interpolate import griddata

    lv = body.split("_")[0]
    f = load_landmarks()["frames"][lv]
    mesh = load_mesh(body)
    R, o = np.asarray(f["R"], float), np.asarray(f["origin"], float)
    fn = np.asarray(mesh.face_normals) @ R
    fc = (np.asarray(mesh.triangles_center) - o) @ R
    sign = 1.0 if superior else -1.0
    # The endplate faces as measure.endplates selects them, in the body's final frame.
    sel = (sign * fn[:, 2] > 0.7) & (sign * fc[:, 2] > 0)
    pts = fc[sel]
    xs = np.arange(-0.5 * f["W"] - 4, 0.5 * f["W"] + 4 + step_mm, step_mm)
    ys = np.arange(-0.5 * f["D"] - 4, 0.5 * f["D"] + 4 + step_mm, step_mm)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    z = griddata(pts[:, :2], pts[:, 2], (X, Y), method="linear")
    zn = griddata(pts[:, :2], pts[:, 2], (X, Y), method="nearest")
    z = np.where(np.isnan(z), zn, z)
    return xs, ys, z


def _surface(body: str, superior: bool, scale: np.ndarray,
             shift_mm: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``surface(x, y) -> local z`` of a real endplate in a scaled bone frame, moved by
    ``shift_mm`` along z (bilinear in the height map, clamped at its edges)."""
    from scipy.interpolate import RegularGridInterpolator

    xs, ys, z = endplate_height_map(body, superior)
    interp = RegularGridInterpolator((xs, ys), z, method="linear", bounds_error=False,
                                     fill_value=None)

    def surface(x, y):
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        q = np.stack([np.clip(x / scale[0], xs[0], xs[-1]), np.clip(y / scale[1], ys[0], ys[-1])],
                     axis=-1)
        return interp(q.reshape(-1, 2)).reshape(x.shape) * scale[2] + shift_mm
    return surface


def real_spine(frames: dict[str, S.Frame], var: RealVariation, q: PhantomParams) -> Spine:
    """The :class:`Spine` record of the real L4, L5 and S1 on ``frames`` (scaled)."""
    L = load_landmarks()
    fr, vt = L["frames"], L["vertebrae"]
    sc = var.scale_xyz
    geo = {}
    for lv in ("L4", "L5", "S1"):
        f = fr[lv]
        W, D, H = f["W"] * sc[0], f["D"] * sc[1], f["H"] * sc[2]
        if lv == "S1":
            floor = [vt["S1"][f"pedicle_top_{n}"] * sc[2] for _i, n, _s in SIDES]
            cw = vt["S1"]["canal_width"] * sc[0]
            # Centred where the floor was measured: under the L5 pedicles.
            x_floor = 0.5 * sum(abs(vt["L5"][f"pedicle_{n}"]["centre_local"][0])
                                for _i, n, _s in SIDES) * sc[0]
            w = max(2.0 * (x_floor - 0.5 * cw), 4.0)
            pw = (w, w)
            ph = (S1_PEDICLE_HEIGHT_MM, S1_PEDICLE_HEIGHT_MM)
            pb = tuple(z - S1_PEDICLE_HEIGHT_MM for z in floor)
            pc = (np.array([0.5 * cw + 0.5 * pw[0], 0.5 * D + 4.0, pb[0] + 0.5 * ph[0]]),
                  np.array([-(0.5 * cw + 0.5 * pw[1]), 0.5 * D + 4.0, pb[1] + 0.5 * ph[1]]))
            cd = vt["S1"]["canal_depth"] * sc[1]
            tips = None
        else:
            peds = [vt[lv][f"pedicle_{n}"] for _i, n, _s in SIDES]
            cw = (peds[0]["medial"] + peds[1]["medial"]) * sc[0]
            pw = tuple(d["width"] * sc[0] for d in peds)
            ph = tuple(d["height"] * sc[2] for d in peds)
            pb = tuple(d["bottom"] * sc[2] for d in peds)
            pc = (np.asarray(peds[0]["centre_local"], float) * sc,
                  np.asarray(peds[1]["centre_local"], float) * sc)
            cd = vt[lv]["canal_depth"] * sc[1]
            tips = tuple(np.asarray(vt[lv][f"transverse_tip_{n}"], float) * sc
                         for _i, n, _s in SIDES)
        geo[lv] = VertebraGeometry(
            name=lv, frame=frames[lv], body_width_mm=W, body_depth_mm=D, body_height_mm=H,
            canal_width_mm=cw, canal_depth_mm=cd, pedicle_width_mm=pw, pedicle_height_mm=ph,
            pedicle_bottom_mm=pb, pedicle_centre=pc, transverse_tip=tips,
            superior_endplate=_surface(f"{lv}_body", True, sc, -DISC_OVERLAP_MM),
            inferior_endplate=_surface(f"{lv}_body", False, sc, DISC_OVERLAP_MM),
            outline=body_outline)
    return Spine(vertebrae=geo, disc_bulge_mm=q.disc_bulge_mm,
                 disc_posterior_height_mm={"L5S1": q.disc_l5s1_posterior_mm,
                                           "L4L5": q.disc_l4l5_posterior_mm})


def _rim_point(frame: dict, side_sign: float, angle_deg: float, top: bool) -> np.ndarray:
    """Real-local point on a body's endplate rim (elliptic outline), ``angle_deg`` from
    posterior towards the side."""
    a = np.deg2rad(angle_deg)
    return np.array([side_sign * 0.5 * frame["W"] * np.sin(a), 0.5 * frame["D"] * np.cos(a),
                     (0.5 if top else -0.5) * frame["H"]])


def place_bones(frames: dict[str, S.Frame],
                var: RealVariation) -> tuple[dict[str, PlacedBone], HipDeformation]:
    """The five real bones placed on the procedural frames (``L4``, ``L5``, ``S1``), and the hip
    bones' deformation (pelvic incidence, crest raise) they were placed with."""
    L = load_landmarks()
    sc = var.scale_xyz
    fr, vt = L["frames"], L["vertebrae"]
    bumps: dict[str, list[Bump]] = {"L4": [], "L5": [], "sacrum": []}
    for i, _n, s in SIDES:
        h = var.sap_hypertrophy_mm[i]
        if h > 0:
            for lv, bone in (("L5", "L5"), ("S1", "sacrum")):
                tip = np.asarray(vt[lv][f"sap_tip_{_n}"], float)
                bumps[bone].append(Bump(tip - np.array([0.0, 0.0, 5.0]), h, SAP_RADIUS_MM))
    for o in var.osteophytes:
        lv = "L5" if o.level == "L5" else "S1"
        c = _rim_point(fr[lv], SIDES[o.side][2], o.angle_deg, top=(lv == "S1"))
        bumps["L5" if lv == "L5" else "sacrum"].append(Bump(c, o.height_mm, OSTEOPHYTE_RADIUS_MM))
    placed = {}
    for bone, lv in (("L4", "L4"), ("L5", "L5"), ("sacrum", "S1")):
        placed[bone] = PlacedBone(bone, frames[lv], _frame(fr[lv]), sc, var.warps.get(bone),
                                  bumps=bumps[bone])
    pel = L["pelvis"]
    z_si = 0.5 * (pel["si_joint_centre_left"][2] + pel["si_joint_centre_right"][2])
    z_crest = 0.5 * (pel["iliac_crest_top_left"][2] + pel["iliac_crest_top_right"][2])
    deform = HipDeformation(np.asarray(pel["si_joint_centre_left"], float),
                            np.asarray(pel["si_joint_centre_right"], float),
                            var.pelvic_incidence_delta_deg, var.crest_raise_mm,
                            z0=z_si + 20.0, z1=z_crest)
    for _i, n, _s in SIDES:
        placed[f"hip_{n}"] = PlacedBone(f"hip_{n}", frames["S1"], _frame(fr["S1"]), sc,
                                        var.warps.get(f"hip_{n}"), native_map=deform.inverse,
                                        native_forward=deform.forward)
    return placed, deform


def build_real_anatomy(p: PhantomParams, var: RealVariation) -> tuple[Anatomy, PhantomParams]:
    """The real-bone anatomy of parameters ``p`` and variation ``var`` (patient frame).

    Returns
    -------
    anatomy : Anatomy
        Parts in paint order, frames, landmarks (patient frame, mm), field of view; ``derived``
        adds the wedges, foramen heights, the iliac crest top's height above the L4/L5 disc
        centre and the gap from each L5 transverse tip to the ilium.
    params : PhantomParams
        The parameters actually used (``p`` with the real bones' sizes put in).
    """
    q = real_params(p, var)
    fr_chain = build_frames(q)
    frames = fr_chain.as_dict()
    derived: dict[str, object] = dict(fr_chain.derived)
    spine = real_spine(frames, var, q)
    canal = build_canal(spine)
    sac = build_sac(spine, width_mm=q.dural_sac_width_mm, depth_mm=q.dural_sac_depth_mm,
                    end_mm=q.dural_sac_end_mm)
    roots = build_roots(spine, sac, q)
    soft = build_soft_tissue(spine, q)
    foramina = build_foraminal_fat(spine)
    discs = build_discs(spine)
    placed, deform = place_bones(frames, var)
    L = load_landmarks()
    fr, vt = L["frames"], L["vertebrae"]
    root_carve = [(name, *ROOT_CLEARANCE) for name in roots.tubes]

    def bone_part(bone: str, inst: str, carve: list, cache: bool) -> Part:
        pb = placed[bone]
        cort = q.cortical_thickness_mm if bone in ("L4", "L5", "sacrum") else HIP_CORTEX_MM
        return Part(inst, bone_fields(pb, cort), pb.bbox(), bone_layers(inst),
                    cache=cache, carve=carve)

    s1f = _frame(fr["S1"])
    crest_top = {}
    for _i, n, _s in SIDES:
        c_native = deform.forward(np.asarray(L["pelvis"][f"iliac_crest_top_{n}"], float))
        crest_top[n] = placed["sacrum"].point((c_native - s1f.t) @ s1f.R)

    muscle_parts = []
    for _i, n, _s in SIDES:
        pb = placed[f"hip_{n}"]
        z_top = float(crest_top[n][2]) + 2.0

        def muscle(x, y, z, pb=pb, z_top=z_top):
            return {"muscle": S.smax(pb.distance(x, y, z) - ILIAC_MUSCLE_MM, z - z_top, 4.0)}
        lo, hi = pb.bbox(ILIAC_MUSCLE_MM + 4.0)
        hi[2] = min(hi[2], z_top + 6.0)
        muscle_parts.append(Part(f"ilium_muscle_{n}", muscle, (lo, hi),
                                 [Layer("muscle", key="muscle")]))
    # Each vertebra is carved from the one above by a joint space where they meet (the facets),
    # its cortex following the carved face (the subchondral plate of a joint).
    joint = (FACET_JOINT_SPACE_MM, q.cortical_thickness_mm)
    bones = [bone_part("L4", "L4", root_carve, True),
             bone_part("L5", "L5", [("L4", *joint)] + root_carve, True),
             bone_part("sacrum", "S1", [("L5", *joint)] + root_carve, True)]
    bones += [bone_part(f"hip_{n}", f"ilium_{n}", [("S1", *SI_JOINT_CLEARANCE)] + root_carve, False)
              for _i, n, _s in SIDES]
    sac_part = sac.part
    sac_part.carve = [(b, SAC_CLEARANCE_MM, 0.0) for b in ("L4", "L5", "S1")]
    # The procedural phantom's paint order; the real facets have no capsules.
    parts = paint_order(soft_tissue=soft.parts, muscle=muscle_parts, canal=canal.part,
                        capsules=[], foraminal_fat=foramina.parts, roots=roots, discs=discs.parts,
                        bones=bones, sac=sac_part, body_box=soft.body.part.bbox)

    lm: dict[str, object] = {"dural_sac_centreline": sac.line}
    lm.update(roots.landmarks)
    lm.update(foramina.landmarks)
    lm.update(discs.landmarks)
    lm.update(spine_landmarks(fr_chain))
    # --- landmarks measured on the real bones ---------------------------------------------------
    P = placed
    for lv in ("L4", "L5"):
        for _i, n, s in SIDES:
            pd = vt[lv][f"pedicle_{n}"]
            c = np.asarray(pd["centre_local"], float)
            lm[f"{lv.lower()}_pedicle_centre_{n}"] = P[lv].point(c)
            lm[f"{lv.lower()}_pedicle_lower_margin_{n}"] = P[lv].point([c[0], c[1], pd["bottom"]])
            lm[f"{lv.lower()}_pedicle_axis_direction_{n}"] = frames[lv].vector(
                np.asarray(pd["axis_local"], float))
            lm[f"{lv.lower()}_sap_tip_{n}"] = P[lv].point(vt[lv][f"sap_tip_{n}"])
            lm[f"{lv.lower()}_transverse_tip_{n}"] = P[lv].point(vt[lv][f"transverse_tip_{n}"])
    for _i, n, s in SIDES:
        lm[f"s1_pedicle_centre_{n}"] = spine["S1"].frame.point(spine["S1"].pedicle_centre[_i])
        lm[f"s1_sap_tip_{n}"] = P["sacrum"].point(vt["S1"][f"sap_tip_{n}"])
        lm[f"iliac_crest_top_{n}"] = crest_top[n]
        # Facet joint centre: between the upper vertebra's IAP tip and the lower one's SAP tip.
        lm[f"l5s1_facet_centre_{n}"] = 0.5 * (P["L5"].point(vt["L5"][f"iap_tip_{n}"])
                                              + lm[f"s1_sap_tip_{n}"])
        lm[f"l4l5_facet_centre_{n}"] = 0.5 * (P["L4"].point(vt["L4"][f"iap_tip_{n}"])
                                              + lm[f"l5_sap_tip_{n}"])
    from spinect_core.phantom.builders.fat import FORAMINA, foramen_span
    for up, low, lname in FORAMINA:
        derived[f"foramen_height_{lname}_mm"] = [
            float(np.linalg.norm(np.subtract(*foramen_span(spine[up], spine[low], i))))
            for i, _n, _s in SIDES]
    l45 = np.asarray(lm["l4l5_disc_centre"], float)
    derived["iliac_crest_above_l4l5_disc_mm"] = [float(crest_top[n][2] - l45[2])
                                                 for _i, n, _s in SIDES]
    # ANATOMY.md's "10-30 mm lateral to the L5 transverse tip": the gap from the tip to the
    # (deformed, scaled) hip bone's surface.
    derived["l5_transverse_tip_to_ilium_mm"] = [
        P[f"hip_{n}"].surface_distance(lm[f"l5_transverse_tip_{n}"]) for _i, n, _s in SIDES]
    derived["skin_y_mm"] = float(soft.body.y_skin)
    internals = {"spine": spine, "real_bones": placed, "hip_deformation": deform,
                 "bulge": q.disc_bulge_mm, "sac_w": sac.width_mm, "sac_d": sac.depth_mm,
                 "sac_y": sac.y_mm}
    anatomy = Anatomy(parts=parts, frames=frames, landmarks=lm, fov_lo=soft.body.fov_lo,
                      fov_hi=soft.body.fov_hi, body_centre=soft.body.centre,
                      derived=derived,  # type: ignore[arg-type]  # lists of per-side values too
                      internals=internals)
    return anatomy, q
