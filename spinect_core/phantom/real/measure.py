"""Measure the landmarks of the shipped real bones and store them beside the meshes (one-off).

``python -m spinect_core.phantom.real.measure`` writes ``assets/anatomy_meshes/landmarks.json``,
so no landmark of the real phantom is typed by hand. Everything is in the meshes' native LPS
frame (mm) unless a key says ``local``: then it is in that vertebra's body frame.

Definitions
-----------
Body frame (``L4``, ``L5``, ``S1``, from the ``*_body`` meshes)
    Endplate faces are the faces whose outward normal is within ~45 deg of the body axis (up for
    the superior endplate, down for the inferior one); each endplate's centre is their
    area-weighted centroid and its normal their area-weighted mean normal (iterated until the
    axis is stable: :func:`endplates`). The frame's z axis bisects the two normals
    (``n_sup - n_inf``), y is native posterior made orthogonal to it, x = y cross z (patient
    left), and the origin is the mid-height point centred on the body's outline (so
    the posterior wall lies at ``y = +D/2``, as in the procedural phantom). ``W`` and ``D`` are
    the body's largest width and depth (at the endplate rims), ``H`` the height between the
    planes fitted through the endplates' outer faces (the rims) on the body axis (the origin is
    midway), ``wedge_deg`` the sagittal angle between the endplates (positive:
    taller in front).
Pedicles (``L4``, ``L5``, in the body frame, from a 0.4 mm voxelisation of the whole vertebra)
    Coronal slices from 1 to 13 mm behind the posterior wall; on each side the bone of a slice
    in ``-H/2 < z < H/2 + 4`` lateral of 4 mm; the isthmus is the slice of least area (its y).
    ``bottom``/``top`` = the median over the middle half of the pedicle's width of each
    column's lowest / highest bone in that section (the foramen's roof is the bottom; the margin
    slopes down laterally into the transverse process's root), ``medial`` its medial wall |x|; ``canal_width`` = distance between the medial
    walls; the axis is the line fitted through the sections' centroids within 5 mm of the
    isthmus (rough: the L5 transverse process joins the pedicle). ``width`` = the narrowest
    passage from the body to the posterior elements in the axial slice through the section's
    mean height (:func:`bottleneck_width`, whatever the pedicle's convergence); ``height`` the
    same in the sagittal slice through the pedicle's middle (x = medial + width / 2), which is
    also the centre's x.
Canal depth
    Midline (|x| < 1 mm) distance from the posterior wall back to the first bone at the height
    of the pedicle centres.
SAP / IAP tips, transverse tips
    Highest (SAP) / lowest (IAP) point of the vertebra more than 8 mm lateral and more than
    4 mm behind the posterior wall; the most lateral point on each side (transverse tips).
S1 (sacrum)
    SAP tips as above (highest posterior point more than 8 mm lateral), ``canal_width`` from an
    axial section 4 mm below the endplate, ``canal_depth`` on the midline at the first level
    from 4 mm below the endplate down where the canal has a bony roof, ``pedicle_top`` the top
    of the bone at most 2 mm above the endplate's plane at the foramen (x = +- the L5 pedicle
    centres' mean |x|, y = D/2 + 4, i.e. right under the L5 pedicle): the L5/S1 foramen's
    floor.
Hip bones
    Crest top = highest vertex; SI joint centre = centroid of the hip-bone vertices within
    3 mm of a sacrum vertex (the joint surface).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy import ndimage

from spinect_core.phantom.real.meshes import MESH_FOLDER, load_mesh, voxelise
from spinect_core.resources import asset_path
from spinect_core.vectors import unit

SIDES = (("left", 1.0), ("right", -1.0))   # left = +x in LPS


def endplates(mesh: Any, axis: Any = (0.0, 0.0, 1.0), *, sacral: bool = False) -> dict:
    """Centres and outward normals (native) of the superior and inferior endplates of a body.

    Iterated to a fixed point (the selection cone follows the axis; the S1 endplate, tilted
    ~36 deg in the meshes' frame, needs ~5 passes): the axis is the bisector of the two normals,
    or with ``sacral`` the superior normal alone (the S1 body's lower face is no endplate).
    """
    fn = np.asarray(mesh.face_normals)
    fa = np.asarray(mesh.area_faces)
    fc = np.asarray(mesh.triangles_center)
    a = unit(axis)
    out = {}
    for _ in range(20):
        h = (fc - fc.mean(axis=0)) @ a
        res = {}
        for name, sign in (("superior", 1.0), ("inferior", -1.0)):
            sel = (sign * (fn @ a) > 0.7) & (sign * h > 0)
            w = fa[sel]
            res[name] = (np.average(fc[sel], axis=0, weights=w), unit((fn[sel] * w[:, None]).sum(0)))
        out = res
        new = res["superior"][1] if sacral else unit(res["superior"][1] - res["inferior"][1])
        if np.degrees(np.arccos(np.clip(new @ a, -1.0, 1.0))) < 0.05:
            break
        a = new
    return out


def body_frame(body_mesh: Any, *, sacral: bool = False) -> dict:
    """Body frame and dimensions of a vertebral body mesh (see the module docstring).

    ``sacral``: the S1 body's lower face is the fused S1/S2 junction, not an endplate; its
    frame's z axis is then the superior endplate's normal (so the sacral slope is that
    endplate's tilt, as in the procedural phantom) and ``H`` the body's extent along it, with
    the origin ``H/2`` below the superior endplate centre.
    """
    ep = endplates(body_mesh, sacral=sacral)
    (cs, ns), (ci, ni) = ep["superior"], ep["inferior"]
    z = ns if sacral else unit(ns - ni)
    y = unit(np.array([0.0, 1.0, 0.0]) - z[1] * z)
    x = np.cross(y, z)
    R = np.column_stack([x, y, z])
    # Heights are taken at the endplates' rims (the ring apophyses, where the disc's height is
    # measured and where the bodies would touch), not at their concave centres: the plane fitted
    # through the outer endplate faces, evaluated on the body axis.
    o = 0.5 * (cs + ci)
    fn = np.asarray(body_mesh.face_normals) @ R
    fc = (np.asarray(body_mesh.triangles_center) - o) @ R
    r2 = (fc[:, 0] / np.ptp(fc[:, 0]) * 2) ** 2 + (fc[:, 1] / np.ptp(fc[:, 1]) * 2) ** 2
    rim_z = {}
    for name, sign in (("superior", 1.0), ("inferior", -1.0)):
        sel = (sign * fn[:, 2] > 0.7) & (sign * fc[:, 2] > 0) & (r2 > 0.55)
        A = np.column_stack([np.ones(sel.sum()), fc[sel, 0], fc[sel, 1]])
        rim_z[name] = float(np.linalg.lstsq(A, fc[sel, 2], rcond=None)[0][0])
    if sacral:
        lowest = float(np.asarray((np.asarray(body_mesh.vertices) - o) @ R)[:, 2].min())
        H = rim_z["superior"] - lowest
        o = o + R @ np.array([0.0, 0.0, rim_z["superior"] - 0.5 * H])
    else:
        H = rim_z["superior"] - rim_z["inferior"]
        o = o + R @ np.array([0.0, 0.0, 0.5 * (rim_z["superior"] + rim_z["inferior"])])
    loc = (np.asarray(body_mesh.vertices) - o) @ R
    # Width and depth of the whole body (the endplate rims: bodies are waisted), as the
    # procedural phantom's W and D; the origin is centred on that outline.
    cx = 0.5 * (loc[:, 0].max() + loc[:, 0].min())
    cy = 0.5 * (loc[:, 1].max() + loc[:, 1].min())
    o = o + R @ np.array([cx, cy, 0.0])
    W = float(loc[:, 0].max() - loc[:, 0].min())
    D = float(loc[:, 1].max() - loc[:, 1].min())
    # Sagittal wedge: a body taller in front has both endplate normals tilted posteriorly (+y).
    a_s = np.degrees(np.arctan2(ns @ y, ns @ z))
    a_i = np.degrees(np.arctan2(ni @ y, -(ni @ z)))
    return {"origin": o, "R": R, "W": W, "D": D, "H": H, "wedge_deg": float(a_s + a_i),
            "superior_endplate_centre": cs, "superior_endplate_normal": ns,
            "inferior_endplate_centre": ci, "inferior_endplate_normal": ni}


def bottleneck_width(mask: np.ndarray, a_region: np.ndarray, b_region: np.ndarray,
                     pitch: float) -> float:
    """Width (mm) of the narrowest passage of a 2D bone mask between two regions.

    The largest ``r`` such that the pixels at least ``r`` deep inside the bone still connect
    the deepest pixel of ``a_region`` to the deepest pixel of ``b_region``; ``2 r`` is the
    diameter of the largest disc that can travel from one to the other: a pedicle's isthmus
    width between the body and the posterior elements, whatever the pedicle's direction.
    """
    e = ndimage.distance_transform_edt(mask, sampling=pitch)
    a = np.unravel_index(np.argmax(np.where(a_region, e, 0.0)), e.shape)
    b = np.unravel_index(np.argmax(np.where(b_region, e, 0.0)), e.shape)
    lo, hi = 0.0, float(min(e[a], e[b]))
    for _ in range(25):
        r = 0.5 * (lo + hi)
        lab, _n = ndimage.label(e >= r)
        lo, hi = (r, hi) if lab[a] and lab[a] == lab[b] else (lo, r)
    return 2.0 * lo


def _local_mask(mesh: Any, frame: dict, pitch: float, lo: Any,
                hi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxelise a mesh in a body frame's local coordinates (mask x, y, z; origin ``lo``)."""
    v = (np.asarray(mesh.vertices) - frame["origin"]) @ frame["R"]
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    n = np.ceil((hi - lo) / pitch).astype(int) + 1
    return voxelise(v, np.asarray(mesh.faces), lo, pitch, (int(n[0]), int(n[1]), int(n[2]))), lo, v


def vertebra_landmarks(mesh: Any, frame: dict, pitch: float = 0.4) -> dict:
    """Pedicles, canal, SAP/IAP and transverse tips of a lumbar vertebra (body-frame mm)."""
    H, D = frame["H"], frame["D"]
    v_loc = (np.asarray(mesh.vertices) - frame["origin"]) @ frame["R"]
    lo = v_loc.min(axis=0) - 2.0
    hi = v_loc.max(axis=0) + 2.0
    M, lo, _ = _local_mask(mesh, frame, pitch, lo, hi)
    xs = lo[0] + pitch * np.arange(M.shape[0])
    ys = lo[1] + pitch * np.arange(M.shape[1])
    zs = lo[2] + pitch * np.arange(M.shape[2])
    zsel = (zs > -0.5 * H) & (zs < 0.5 * H + 4.0)
    out: dict = {}
    for side, s in SIDES:
        secs = []
        for iy in np.nonzero((ys > 0.5 * D + 1.0) & (ys < 0.5 * D + 13.0))[0]:
            sl = M[:, iy, :] & zsel[None, :] & (s * xs[:, None] > 4.0)
            lab, n = ndimage.label(sl)
            if n == 0:
                continue
            sizes = ndimage.sum(sl, lab, range(1, n + 1))
            comp = lab == (1 + int(np.argmax(sizes)))
            ix, iz = np.nonzero(comp)
            secs.append((float(sizes.max()) * pitch ** 2, ys[iy], xs[ix], zs[iz]))
        k = int(np.argmin([a for a, *_ in secs]))
        area, yk, px, pz = secs[k]
        cents = np.array([[np.mean(sx), sy, np.mean(sz)] for _a, sy, sx, sz in secs
                          if abs(sy - yk) <= 5.0])
        c0 = cents.mean(axis=0)
        axis = np.linalg.svd(cents - c0)[2][0]
        axis = axis if axis[1] > 0 else -axis
        medial = float(np.abs(px).min() - 0.5 * pitch)
        zc = float(pz.mean())
        # Isthmus width: narrowest passage body -> posterior elements in the axial slice through
        # the pedicle's centre (this side only, so the path cannot go round the other pedicle).
        iz_c = int(np.argmin(np.abs(zs - zc)))
        side_x = (s * xs > 0)[:, None]
        body = (np.abs(xs)[:, None] < 15.0) & (np.abs(ys)[None, :] < 0.5 * D - 3.0)
        back = (ys[None, :] > 0.5 * D + 12.0) & (ys[None, :] < 0.5 * D + 30.0)
        width = bottleneck_width(M[:, :, iz_c] & side_x, body, back, pitch)
        # Height: the same in the sagittal slice through the pedicle's middle.
        xc = s * (medial + 0.5 * width)
        ix_c = int(np.argmin(np.abs(xs - xc)))
        body_s = (np.abs(ys)[:, None] < 0.5 * D - 3.0) & (np.abs(zs)[None, :] < 0.5 * H - 2.0)
        back_s = (ys[:, None] > 0.5 * D + 10.0) & (ys[:, None] < 0.5 * D + 30.0)
        height = bottleneck_width(M[ix_c], body_s, back_s, pitch)
        # Lower and upper margins under and over the pedicle's middle half (the isthmus section
        # also holds the transverse process's root, which reaches lower laterally).
        # The margin slopes down laterally: take the median over those columns of each
        # column's lowest (highest) bone.
        cols = [c for c in np.unique(px) if abs(c - xc) <= 0.25 * width]
        bottom = float(np.median([pz[px == c].min() for c in cols]) - 0.5 * pitch)
        top = float(np.median([pz[px == c].max() for c in cols]) + 0.5 * pitch)
        out[f"pedicle_{side}"] = {
            "centre_local": [xc, float(yk), zc], "axis_local": axis.tolist(),
            "coronal_area_mm2": area, "width": width, "height": height,
            "bottom": bottom, "top": top, "medial": medial}
    out["canal_width"] = out["pedicle_left"]["medial"] + out["pedicle_right"]["medial"]
    zc = 0.5 * (out["pedicle_left"]["centre_local"][2] + out["pedicle_right"]["centre_local"][2])
    ix0 = np.abs(xs) < 1.0
    iz0 = int(np.argmin(np.abs(zs - zc)))
    col = M[ix0][:, :, iz0].any(axis=0) & (ys > 0.5 * D + 2.0)
    out["canal_depth"] = float(ys[np.nonzero(col)[0][0]] - 0.5 * D - 0.5 * pitch)
    post = v_loc[:, 1] > 0.5 * D + 4.0
    for side, s in SIDES:
        lat = post & (s * v_loc[:, 0] > 8.0)
        out[f"sap_tip_{side}"] = v_loc[lat][np.argmax(v_loc[lat][:, 2])].tolist()
        out[f"iap_tip_{side}"] = v_loc[lat][np.argmin(v_loc[lat][:, 2])].tolist()
        out[f"transverse_tip_{side}"] = v_loc[np.argmax(s * v_loc[:, 0])].tolist()
    out["spinous_tip"] = v_loc[np.argmax(v_loc[:, 1])].tolist()
    return out


def sacrum_landmarks(mesh: Any, frame: dict, floor_x_mm: float, pitch: float = 0.5) -> dict:
    """S1 SAP tips, canal width/depth and the foramen floor (S1 body frame, mm); the floor is
    measured ``floor_x_mm`` from the midline (under the L5 pedicle centres)."""
    H, D = frame["H"], frame["D"]
    v_loc = (np.asarray(mesh.vertices) - frame["origin"]) @ frame["R"]
    lo = np.array([-45.0, -0.5 * D - 5.0, -0.5 * H - 10.0])
    hi = np.array([45.0, 0.5 * D + 45.0, 0.5 * H + 30.0])
    M, lo, _ = _local_mask(mesh, frame, pitch, lo, hi)
    xs = lo[0] + pitch * np.arange(M.shape[0])
    ys = lo[1] + pitch * np.arange(M.shape[1])
    zs = lo[2] + pitch * np.arange(M.shape[2])
    out: dict = {}
    post = v_loc[:, 1] > 0.5 * D + 4.0
    for side, s in SIDES:
        lat = post & (s * v_loc[:, 0] > 8.0) & (v_loc[:, 2] > 0.0)
        out[f"sap_tip_{side}"] = v_loc[lat][np.argmax(v_loc[lat][:, 2])].tolist()
    # Canal: the empty run across the midline behind the body, 4 mm below the endplate.
    iz = int(np.argmin(np.abs(zs - (0.5 * H - 4.0))))
    iy = int(np.argmin(np.abs(ys - (0.5 * D + 4.0))))
    row = M[:, iy, iz]
    mid = int(np.argmin(np.abs(xs)))
    lft = mid + int(np.argmax(row[mid:])) if row[mid:].any() else len(xs) - 1
    rgt = mid - int(np.argmax(row[:mid + 1][::-1])) if row[:mid + 1].any() else 0
    out["canal_width"] = float(xs[lft] - xs[rgt] - pitch)
    # Depth: the first bone behind the canal on the midline, at the first height (2 mm steps
    # down from 4 mm under the endplate) where the canal has a bony roof there.
    for dz in np.arange(4.0, 30.0, 2.0):
        izc = int(np.argmin(np.abs(zs - (0.5 * H - dz))))
        col = M[np.abs(xs) < 1.0][:, :, izc].any(axis=0) & (ys > 0.5 * D + 2.0)
        if col.any():
            out["canal_depth"] = float(ys[np.nonzero(col)[0][0]] - 0.5 * D - 0.5 * pitch)
            break
    for side, s in SIDES:
        ix = int(np.argmin(np.abs(xs - s * floor_x_mm)))
        # The floor lies at most 2 mm above the endplate's plane (higher bone in this column
        # is the superior articular process behind the foramen).
        colz = M[ix, iy, :] & (zs < 0.5 * H + 2.0)
        top = zs[np.nonzero(colz)[0]].max() if colz.any() else 0.5 * H
        out[f"pedicle_top_{side}"] = float(top + 0.5 * pitch)
    return out


def hip_landmarks() -> dict:
    from scipy.spatial import cKDTree

    # Nearest sacrum vertex (vertices are ~1-2 mm apart, far below the 3 mm threshold's scale).
    tree = cKDTree(np.asarray(load_mesh("sacrum").vertices))
    out = {}
    for side, _s in SIDES:
        hip = load_mesh(f"hip_{side}")
        v = np.asarray(hip.vertices)
        out[f"iliac_crest_top_{side}"] = v[np.argmax(v[:, 2])].tolist()
        near = v[tree.query(v)[0] < 3.0]
        out[f"si_joint_centre_{side}"] = near.mean(axis=0).tolist()
    return out


def measure_all() -> dict:
    """Every landmark of the shipped meshes (JSON-ready)."""
    res: dict = {"coordinate_system": "LPS", "units": "mm",
                 "source": "Visible Human lumbosacral meshes (assets/anatomy_meshes)",
                 "generated_by": "python -m spinect_core.phantom.real.measure",
                 "frames": {}, "vertebrae": {}}
    for lv, body, whole in (("L4", "L4_body", "L4"), ("L5", "L5_body", "L5"),
                            ("S1", "S1_body", "sacrum")):
        fr = body_frame(load_mesh(body), sacral=lv == "S1")
        res["frames"][lv] = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v)
                             for k, v in fr.items()}
        mesh = load_mesh(whole)
        if lv != "S1":
            res["vertebrae"][lv] = vertebra_landmarks(mesh, fr)
        else:
            l5 = res["vertebrae"]["L5"]
            px = 0.5 * (abs(l5["pedicle_left"]["centre_local"][0])
                        + abs(l5["pedicle_right"]["centre_local"][0]))
            res["vertebrae"][lv] = sacrum_landmarks(mesh, fr, px)
    res["pelvis"] = hip_landmarks()
    return res


def main() -> int:
    from spinect_core.io.atomic import write_text_atomic

    res = measure_all()
    path = asset_path(MESH_FOLDER, "landmarks.json")
    write_text_atomic(path, json.dumps(res, indent=1) + "\n", overwrite=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
