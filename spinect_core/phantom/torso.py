"""The patient-like torso around the lumbosacral phantom (``PhantomOptions(realism="patient")``).

:func:`extend_anatomy` takes the default anatomy (L4-S1, ilia, discs, dural sac, roots, built
unchanged from the same parameters, so its labels stay exact) and adds, in the same patient
frame (mm; x left, y posterior, z superior; origin at the S1 superior endplate centre):

* the spine above L4: L3-L1 and T12-T9 (the vertebra, disc and root construction of L4 with
  per-level sizes from :data:`~.patient.UPPER_LEVELS`), the spinal canal, dural sac and cord
  continued upwards (the default canal and sac parts are extended, not duplicated), ribs on
  T9-T12 (with costal cartilage on T9-T10, background), all bone label 1;
* the lower sacrum and coccyx, the lower hip bone (acetabulum, iliac body, pubic and ischial
  rami; the ilium part is extended) and the femora with their heads in the acetabula;
* a body outline from the lower thorax to the thighs with skin, subcutaneous fat, abdominal
  wall and visceral fat, lung bases above the diaphragm, liver, spleen, stomach, kidneys,
  small bowel and colon (gas, fluid, oral contrast), bladder, aorta / iliac / femoral arteries,
  IVC / iliac veins, renal vessels, calcified plaques, psoas / paraspinal / quadratus /
  gluteal / hip muscles, the scanner table and, sometimes, the arms (bones labelled 1);
* metal (pedicle screws with rods, hip prostheses) labelled 255 (unlabelled).

Everything new is background (0) except bones (1) and, above L4, discs (3), roots (2), dura and
cord (4). Shapes are analytic (signed distances of ``shapes.py``); long structures use the
piecewise :func:`~.shapes.sd_tube_fast` so a 1 mm torso renders in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from spinect_core.phantom import shapes as S
from spinect_core.phantom.anatomy import (
    SIDES, Anatomy, Layer, Part, Vertebra, _axis_frame, _box_of_points, _facet, _local_box,
    _outline_radius, disc_field_function, sd_body,
)
from spinect_core.phantom.params import PhantomParams
from spinect_core.phantom.patient import UPPER_ORDER, PatientParams

#: Distance (mm) returned far from a part evaluated only on a sub-box.
_FAR = 10.0


@dataclass
class TorsoInfo:
    """What the acquisition needs to know about the torso (patient frame, mm)."""

    femoral_heads: list          # centres (3,), left then right
    metal: bool
    levels: dict                 # level name -> Vertebra (S1 .. T9)


def _wrap_union(part: Part, extra: Callable, extra_box, keys: tuple[str, ...],
                combine: Callable | None = None) -> None:
    """Extend ``part`` (in place) by ``extra`` fields over ``extra_box``.

    The part's own fields are evaluated only in its original box and ``extra`` only in
    ``extra_box``; ``combine(old, new)`` merges the two dicts of ``keys`` (default: element-wise
    minimum), so the default part keeps its exact surfaces where the extension is far.
    """
    old_fn, (olo, ohi) = part.fields, part.bbox
    elo, ehi = (np.asarray(b, float) for b in extra_box)

    def far(x):
        return {k: np.full(np.shape(x), _FAR) for k in keys}

    def fields(x, y, z):
        old = S.eval_in_box(old_fn, x, y, z, olo, ohi, _FAR)
        new = S.eval_in_box(extra, x, y, z, elo, ehi, _FAR)
        old = far(x) if "__empty__" in old else old
        new = far(x) if "__empty__" in new else new
        if combine is not None:
            return combine(old, new)
        return {k: np.minimum(old[k], new[k]) for k in keys}

    part.fields = fields
    part.bbox = (np.minimum(olo, elo), np.maximum(ohi, ehi))


def _smooth_union_dict(k: float) -> Callable:
    def combine(old, new):
        return {key: S.smin(old[key], new[key], k) for key in old if key in new}
    return combine


# --- spine above L4 -------------------------------------------------------------------------------
def _upper_vertebrae(I: dict, p: PhantomParams, q: PatientParams) -> list[Vertebra]:
    v4: Vertebra = I["vertebrae"]["L4"]
    lower, lower_wedge = v4, float(I["l4_wedge_deg"])
    out = []
    for level in UPPER_ORDER:
        sw, sd, sh = q.level_scale[level]
        W, D, H = v4.W * sw, v4.D * sd, v4.H * sh
        ha, hp = q.level_disc[level]
        wd = float(np.rad2deg(np.arctan2(ha - hp, 0.5 * (lower.D + D))))
        wb = float(np.clip(q.level_segment_deg[level] - wd, -8.0, 10.0))
        R = lower.frame.R @ S.rot_x(-(0.5 * lower_wedge + wd + 0.5 * wb))
        base = lower.frame.point([0.0, 0.0, 0.5 * lower.H + 0.5 * (ha + hp)])
        frame = S.Frame(R, base + R @ np.array([0.0, 0.0, 0.5 * H]))
        pw, ph = q.level_pedicle[level]
        thoracic = level.startswith("T")
        canal_d = float(I["canal_d"]) - (1.5 if thoracic else 0.0)
        v = Vertebra(level, frame, W, D, H, wb, conc=p.endplate_concavity_mm,
                     cort=p.cortical_thickness_mm, post_cort=p.posterior_cortical_thickness_mm,
                     ped_w=(pw, pw), ped_h=(ph, ph), ped_bottom=(0.5 * H - 1.5 - ph,) * 2,
                     conv_deg=q.level_convergence_deg[level], canal_w=q.level_canal_w[level],
                     canal_d=canal_d, tp_tip=(q.level_tp_tip[level],) * 2,
                     tp_rise=6.0 if thoracic else 2.0, spinous_len=q.level_spinous[level])
        out.append(v)
        lower, lower_wedge = v, wb
    # Facets: L4's own superior process (a nominal one in the default anatomy) meets L3's
    # inferior process; above, every pair gets both.
    chain = [v4] + out
    for i in range(1, len(chain)):
        low, up = chain[i - 1], chain[i]
        for side, _n, _s in SIDES:
            if i == 1:
                fj = _facet(low, up, side, 35.0, 13.0, 8.0)
            else:
                fj = _facet(low, up, side, q.level_facet_deg[low.name], 13.0, 8.0)
                low.extras.append(fj["sap"])
            up.extras.append(fj["iap"])
    top = chain[-1]
    for side, _n, _s in SIDES:
        top.extras.append(_facet(top, top, side, q.level_facet_deg[top.name], 12.0, 8.0)["sap"])
    return out


_MARGIN = 8.0   # mm around a primitive's surface within which it is evaluated exactly


def _sampled_box(fn: Callable, lo, hi, step: float = 3.0, reach: float = 6.0):
    """Box (patient mm) of where ``fn(x, y, z)`` (a distance) is below ``reach``, or None.

    Found on a ``step`` grid over lo..hi and padded; for primitives at least ``2 step`` thick.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    ax = [np.arange(lo[a], hi[a] + step, step) for a in range(3)]
    X, Y, Z = np.meshgrid(*ax, indexing="ij")
    near = np.asarray(fn(X, Y, Z)) < reach
    if not near.any():
        return None
    P = np.stack([X[near], Y[near], Z[near]], axis=1)
    return P.min(axis=0) - reach - step, P.max(axis=0) + reach + step


def _fold(out: np.ndarray, pieces, xa, ya, za, k: float) -> np.ndarray:
    """Smooth union (left fold, blend ``k`` mm) of ``out`` with every ``(fn, lo, hi)`` piece,
    each evaluated and merged only on its own box (in place; returns ``out``).

    Outside a piece's box its distance is taken as at least ``_MARGIN`` mm, so merging it there
    changes nothing that matters (``smin(a, b, k) == a`` exactly once ``b >= a + k``).
    """
    shape = np.shape(xa)
    aff = S.index_affine(xa, ya, za)
    for fn, lo, hi in pieces:
        if aff is None:
            sl = (slice(None),) * len(shape)
        else:
            sl = S.box_slices(aff, shape, lo, hi)
            if sl is None:
                continue
        out[sl] = S.smin(out[sl], fn(xa[sl], ya[sl], za[sl]), k)
    return out


def _pedicle_piece(v: Vertebra, side: str, extra_mm: float, pad):
    """Signed distance of a pedicle (elliptic section, ``extra_mm`` longer than the pedicle
    towards the body) and its local box: ``(fn, lo, hi)``."""
    pf = v.pedicle_frame(side)
    half = 0.5 * v.ped_len() + extra_mm
    shift = half - 0.5 * v.ped_len() - 2.0
    pw, ph = 0.5 * v.ped_w[side], 0.5 * v.ped_h[side]

    def ped(a_, b_, c_):
        a, b, c = pf.to_local(a_, b_, c_)
        return S.smax(S.sd_ellipse2(a, c, pw, ph), np.abs(b + shift) - half, 2.0)
    return (ped, *_local_box(pf, np.array([-pw, -shift - half, -ph]) - pad,
                             np.array([pw, -shift + half, ph]) + pad))


def _vertebra_fields_fast(v: Vertebra) -> Callable:
    """``Vertebra.local_parts`` + extras with every primitive evaluated only near itself.

    The same distances as the plain evaluation within :data:`_MARGIN` of each primitive (the
    smooth unions blend over 2-2.5 mm); farther away a primitive reads as 10 mm. A vertebra's
    box is mostly empty, so this is several times faster.
    """
    M = _MARGIN
    local: list[tuple[Callable, np.ndarray, np.ndarray]] = []   # vertebra-local primitives
    pad = np.array([M, M, M])
    body_lo = np.array([-0.5 * v.W, -0.5 * v.D, -0.5 * v.H - 4.0]) - pad
    body_hi = np.array([0.5 * v.W, 0.5 * v.D, 0.5 * v.H + 4.0]) + pad
    body_fn = (body_lo, body_hi)
    lam_y = 0.5 * v.D + v.canal_d
    for side, _name, s in SIDES:
        local.append(_pedicle_piece(v, side, 8.0 if not v.sacrum else 6.0, pad))
        J = v.junction(side)
        if not v.sacrum:
            base = np.array([0.0, lam_y + 3.5, J[2] - 4.0])
            mid = 0.5 * (J + base)
            axis = base - J
            lf = _axis_frame(mid, np.array([axis[1], -axis[0], 0.0]) * s)
            half_len = 0.5 * np.hypot(axis[0], axis[1]) + 3.0
            hb = np.array([half_len, 3.5, 11.0])

            def lam(a_, b_, c_, lf=lf, hb=hb):
                return S.sd_round_box(*lf.to_local(a_, b_, c_), hb, 2.5)
            local.append((lam, *_local_box(lf, -hb - pad, hb + pad)))
            tip = np.array([s * v.tp_tip[side], J[1] - 6.0, J[2] + v.tp_rise])
            root = J + np.array([-s * 2.0, -4.0, 0.0])

            def tp(a_, b_, c_, root=root, tip=tip):
                return S.sd_capsule(a_, b_, c_, root, tip, 6.5, 4.0)
            local.append((tp, *_box_of_points([root, tip], 6.5 + M)))
    if not v.sacrum:
        L = v.spinous_len
        J0 = v.junction(0)
        sf = S.Frame(S.rot_x(12.0), np.array([0.0, lam_y + 3.0 + 0.5 * L, J0[2] - 7.0]))
        hs = np.array([3.5, 0.5 * L + 2.0, 9.0])

        def spin(a_, b_, c_, sf=sf, hs=hs):
            return S.sd_round_box(*sf.to_local(a_, b_, c_), hs, 3.0)
        local.append((spin, *_local_box(sf, -hs - pad, hs + pad)))
    vlo, vhi = _local_box(v.frame, *v.bbox_local())
    extras = []
    for f in v.extras:
        box = _sampled_box(f, vlo - 10.0, vhi + 10.0)
        if box is not None:
            extras.append((f, box[0] - M, box[1] + M))

    body_piece = [(lambda a, b, c: sd_body(a, b, c, v.W, v.D, v.H, v.wedge_deg, v.conc),
                   *body_fn)]

    def fields(x, y, z):
        xl, yl, zl = v.frame.to_local(x, y, z)
        body = _fold(np.full(np.shape(x), 2 * _FAR), body_piece, xl, yl, zl, 3.0)
        post = _fold(np.full(np.shape(x), 2 * _FAR), local, xl, yl, zl, 2.5)
        post = _fold(post, extras, x, y, z, 2.0)
        return {"outer": S.smin(body, post, 2.0),
                "inner": S.smin(body + v.cort, post + v.post_cort, 2.0)}
    return fields


def _vertebra_part(v: Vertebra, carve) -> Part:
    return Part(v.name, _vertebra_fields_fast(v), _local_box(v.frame, *v.bbox_local()), [
        Layer("cortical", key="outer", label="bone", instance=v.name),
        Layer("cancellous", key="inner", label="bone", instance=v.name)], carve=carve)


def _sacrum_fields_fast(v: Vertebra, I: dict, p: PhantomParams) -> Callable:
    """The default ``sacrum_fields`` of ``anatomy.py`` (S1-S3, alae, lateral masses, dorsal wall,
    crest, facets) with every primitive evaluated only near itself (as
    :func:`_vertebra_fields_fast`)."""
    M = _MARGIN
    pad = np.array([M, M, M])
    H1, W1, D1 = v.H, v.W, v.D
    cw1, ala_w, x_si, t_wing = v.canal_w, p.sacral_ala_width_mm, float(I["x_si"]), float(I["t_wing"])
    f2 = S.Frame(S.rot_x(-12.0), np.array([0.0, 3.0, -0.5 * H1 - 11.5]))
    f3 = S.Frame(S.rot_x(-25.0), np.array([0.0, 9.0, -0.5 * H1 - 33.0]))
    bodies = [
        (lambda a, b, c: sd_body(a, b, c, v.W, v.D, v.H, v.wedge_deg, v.conc),
         np.array([-0.5 * W1, -0.5 * D1, -0.5 * H1 - 4.0]) - pad,
         np.array([0.5 * W1, 0.5 * D1, 0.5 * H1 + 4.0]) + pad),
        (lambda a, b, c: sd_body(*f2.to_local(a, b, c), 0.82 * W1, 0.82 * D1, 24.0, 0.0, 0.0),
         *_local_box(f2, np.array([-0.41 * W1, -0.41 * D1, -13.0]) - pad,
                     np.array([0.41 * W1, 0.41 * D1, 13.0]) + pad)),
        (lambda a, b, c: sd_body(*f3.to_local(a, b, c), 0.62 * W1, 0.65 * D1, 20.0, 0.0, 0.0),
         *_local_box(f3, np.array([-0.31 * W1, -0.33 * D1, -11.0]) - pad,
                     np.array([0.31 * W1, 0.33 * D1, 11.0]) + pad)),
    ]
    peds = []
    for side, _n, s in SIDES:
        peds.append(_pedicle_piece(v, side, 6.0, pad))
    boxes = []

    def rbox(frame, half, r):
        half = np.asarray(half, float)
        boxes.append((lambda a, b, c: S.sd_round_box(*frame.to_local(a, b, c), half, r),
                      *_local_box(frame, -half - pad, half + pad)))
    for side, _n, s in SIDES:
        xs = x_si - 0.5 * t_wing * 0.5 + 2.5
        cx = 0.5 * (0.5 * W1 - 8.0 + xs)
        fa = S.Frame(S.rot_y(s * 14.0), np.array([s * cx, 0.5 * (-0.5 * D1 + 6.0 + 0.5 * D1 + 4.0),
                                                   0.5 * (-0.5 * H1 - 20.0 + 0.5 * H1 - 3.0)]))
        rbox(fa, (0.5 * (xs - (0.5 * W1 - 8.0)), 0.5 * (D1 - 2.0), 0.5 * (H1 + 17.0)), 5.0)
        fm = S.Frame(S.rot_x(-18.0), np.array([s * (0.5 * cw1 + 0.5 * (ala_w + 4)), 10.0,
                                               -0.5 * H1 - 22.0]))
        rbox(fm, (0.5 * (ala_w + 8), 0.5 * D1 + 4.0, 20.0), 5.0)
    yb = 0.5 * D1 + v.canal_d + 3.0
    rbox(S.Frame(S.rot_x(-15.0), np.array([0.0, yb, -19.0])), (0.5 * cw1 + 12.0, 4.0, 0.5 * H1 + 21.0), 3.0)
    rbox(S.Frame(S.rot_x(-15.0), np.array([0.0, yb + 7.0, -6.0])), (3.5, 6.0, 0.5 * H1 + 6.0), 2.5)
    vlo, vhi = _local_box(v.frame, np.array([-(x_si + 12.0), -0.5 * D1 - 8.0, -0.5 * H1 - 60.0]),
                          np.array([x_si + 12.0, 0.5 * D1 + v.canal_d + 30.0, 0.5 * H1 + 28.0]))
    extras = []
    for f in v.extras:
        box = _sampled_box(f, vlo - 10.0, vhi + 10.0)
        if box is not None:
            extras.append((f, box[0] - M, box[1] + M))

    def fields(x, y, z):
        xl, yl, zl = v.frame.to_local(x, y, z)
        bd = _fold(np.full(np.shape(x), 2 * _FAR), bodies, xl, yl, zl, 3.0)
        post = _fold(np.full(np.shape(x), 2 * _FAR), peds, xl, yl, zl, 2.5)
        post_all = _fold(post, boxes, xl, yl, zl, 3.0)
        post_all = _fold(post_all, extras, x, y, z, 3.0)
        return {"outer": S.smin(bd, post_all, 3.0),
                "inner": S.smin(bd + v.cort, post_all + v.post_cort, 3.0)}
    return fields


def _ilium_in_slabs(fn: Callable, bbox, geometry, s: float, slab_mm: float = 20.0) -> Callable:
    """The default ilium's fields, evaluated in z-slabs whose x-range follows the wing's shear.

    The wing (``anatomy.py``) is a polyline profile extruded along z and sheared laterally by
    ``shear`` mm per mm; its box must hold the whole sheared range at every height, so most of
    it is empty. Each slab here holds the profile shifted to that slab's height (plus the
    thickness and a margin), with the same values as the plain evaluation there.
    """
    ctrl, thick, shear, z_ref = geometry
    lo, hi = (np.asarray(b, float) for b in bbox)
    reach = 0.5 * float(np.max(thick)) + 5.0 + _MARGIN + 0.5 * slab_mm * shear

    def fields(x, y, z):
        aff = S.index_affine(x, y, z)
        if aff is None:
            return fn(x, y, z)
        out = {k: np.full(np.shape(x), _FAR) for k in ("outer", "inner", "muscle")}
        for z0 in np.arange(lo[2], hi[2] + slab_mm, slab_mm):
            zc = z0 + 0.5 * slab_mm
            xs = ctrl[:, 0] + s * shear * (zc - z_ref)
            sl = S.box_slices(aff, np.shape(x), np.array([xs.min() - reach, lo[1], z0 - 1.0]),
                              np.array([xs.max() + reach, hi[1], z0 + slab_mm + 1.0]))
            if sl is None:
                continue
            part = fn(x[sl], y[sl], z[sl])
            for k in out:
                np.minimum(out[k][sl], part[k], out=out[k][sl])
        return out
    return fields


def _disc_part(low: Vertebra, up: Vertebra, bulge: float) -> tuple[Part, np.ndarray]:
    disc_fields = disc_field_function(low, up, bulge)
    inst = f"disc_{up.name}{low.name}"
    c = 0.5 * (low.frame.point([0, 0, 0.5 * low.H]) + up.frame.point([0, 0, -0.5 * up.H]))
    return Part(inst, disc_fields, _box_of_points([c], 0.5 * max(low.W, up.W) + 12.0), [
        Layer("disc", key="outer", label="disc", instance=inst),
        Layer("disc_nucleus", key="inner", label="disc", instance=inst)]), c


def _root_line(v: Vertebra, side: int, I: dict, diam: float, angle_deg: float,
               caudal_deg: float, drop: float, thoracic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exiting root of ``v`` (the L4 construction of ``anatomy.py`` with nominal values)."""
    s = SIDES[side][2]
    bulge, sac_w, sac_d = float(I["bulge"]), float(I["sac_w"]), float(I["sac_d"])
    sac_y = bulge + 1.0 + 0.5 * sac_d
    r = 0.5 * diam
    g = min(r * 1.25, 4.0)
    pw, ph, zb = v.ped_w[side], v.ped_h[side], v.ped_bottom[side]
    theta = np.deg2rad(52.0)
    rho = _outline_radius(v.W, v.D, theta) + bulge
    rim = np.array([s * rho * np.sin(theta), rho * np.cos(theta)])
    out = np.array([s * np.sin(theta), np.cos(theta)])
    p3 = rim + (g + 0.5) * out
    ctrl_local = [
        [s * (0.5 * sac_w - 1.5), 0.5 * v.D + sac_y + 1.0, 0.5 * v.H - 2.0],
        [s * (0.5 * v.canal_w - r - 0.3), 0.5 * v.D + r + 1.0, zb + 0.45 * ph],
        [s * (0.5 * v.canal_w + 0.45 * pw), 0.5 * v.D + g + 0.4, zb - g - 1.2],
        [p3[0], p3[1], zb - drop - 0.95 * g],
    ]
    if thoracic:
        # Intercostal course: out laterally under the rib rather than down into the psoas.
        ctrl_local[3] = [s * (0.5 * v.canal_w + pw + g + 4.0), 0.5 * v.D + 2.0, zb - g - 2.0]
    ctrl = [v.frame.point(c) for c in ctrl_local]
    A, C = np.deg2rad(angle_deg), np.deg2rad(caudal_deg)
    d1 = v.frame.vector([s * np.sin(A), -np.cos(A) * np.cos(C), -np.cos(A) * np.sin(C)])
    ctrl.append(ctrl[-1] + 14.0 * d1)
    d2 = d1 + np.array([0.0, -0.1, -0.5 if not thoracic else -0.1])
    ctrl.append(ctrl[-1] + 22.0 * d2 / np.linalg.norm(d2))
    ctrl = np.array(ctrl)
    radii = np.array([0.9 * r, r, g, 0.95 * g, 1.05 * r, 1.1 * r])
    line = S.catmull_rom(ctrl, 6)
    return line, S.resample_values(ctrl, radii, line)


def _ellipsoid_box(frame: S.Frame, radii, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Tight patient-frame box of an ellipsoid with semi-axes ``radii`` in ``frame``."""
    half = np.sqrt(((frame.R * np.asarray(radii, float)[None, :]) ** 2).sum(axis=1)) + margin
    return frame.t - half, frame.t + half


def _canal_pt(v: Vertebra, zl: float, y_off: float) -> np.ndarray:
    return v.frame.point([0.0, 0.5 * v.D + y_off, zl])


# --- main ---------------------------------------------------------------------------------------
def extend_anatomy(an: Anatomy, p: PhantomParams, q: PatientParams) -> tuple[Anatomy, TorsoInfo]:
    """The patient-like anatomy: ``an`` (default anatomy of ``p``) plus the torso of ``q``.

    Returns a new :class:`Anatomy` (parts in paint order, new field of view and landmarks; the
    default parts are reused, some extended in place) and a :class:`TorsoInfo`.
    """
    I = an.internals
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(q.bowel_seed), 3])))
    v4: Vertebra = I["vertebrae"]["L4"]
    v5: Vertebra = I["vertebrae"]["L5"]
    v1: Vertebra = I["vertebrae"]["S1"]
    f_s1 = v1.frame
    lm = dict(an.landmarks)
    uppers = _upper_vertebrae(I, p, q)
    levels = {"S1": v1, "L5": v5, "L4": v4}
    levels.update({v.name: v for v in uppers})
    for v in uppers:
        lm[f"{v.name.lower()}_body_centre"] = v.frame.t.copy()
    bulge = float(I["bulge"])
    skin_t, fat_t = float(I["skin_thickness"]), float(I["subcutaneous_fat"])
    wall_t = q.wall_muscle_mm

    # --- spine profile along z (for soft tissue that follows the lordosis) --------------------
    chain = [v1, v5, v4] + uppers
    zc = np.array([v.frame.t[2] for v in chain])
    y_front = np.array([v.frame.point([0, -0.5 * v.D, 0])[1] for v in chain])
    y_post = np.array([v.frame.point([0, 0.5 * v.D, 0])[1] for v in chain])
    y_centre = np.array([v.frame.t[1] for v in chain])
    y_lam = np.array([v.frame.point([0, 0.5 * v.D + v.canal_d + 6.0, 0])[1] for v in chain])
    order = np.argsort(zc)
    zc, y_front, y_post, y_centre, y_lam = (a[order] for a in (zc, y_front, y_post, y_centre, y_lam))

    def zf(name: str) -> float:
        return float(levels[name].frame.t[2])

    # --- hips ---------------------------------------------------------------------------------
    pt = np.deg2rad(q.pelvic_tilt_deg)
    hy, hz = -q.sacro_femoral_mm * np.sin(pt), -q.sacro_femoral_mm * np.cos(pt)
    hips = [np.array([s * q.hip_half_distance_mm, hy, hz]) for _i, _n, s in SIDES]
    Rh = q.femoral_head_radius_mm
    for (side, sname, s), c in zip(SIDES, hips):
        lm[f"femoral_head_centre_{sname}"] = c

    # --- field of view (z) --------------------------------------------------------------------
    top_v = levels[q.fov_top_level]
    z_top = float(top_v.frame.point([0, 0, 0.5 * top_v.H])[2]) + q.fov_top_margin_mm
    z_bot = hz - q.fov_bottom_mm if q.fov_to_femoral_heads else -q.fov_bottom_mm
    if z_top - z_bot > q.fov_max_z_mm:
        # Too long: cut the thorax or the hips, never above L3 nor below S2.
        keep_hi = zf("L3") + 0.5 * levels["L3"].H + 10.0
        if q.fov_trim_top:
            z_top = max(z_bot + q.fov_max_z_mm, keep_hi)
        else:
            z_bot = min(z_top - q.fov_max_z_mm, -60.0)
    z_lo_all, z_hi_all = z_bot - 40.0, z_top + 40.0

    # --- body outline -------------------------------------------------------------------------
    bw0, bd0 = float(I["body_half_width"]), float(I["body_half_depth"])
    depth = p.skin_depth_mm
    # Knots of the posterior skin (y) and half sizes along z: thorax (T11 and up), abdomen,
    # sacrum, hips (buttocks), thighs.
    zk = np.array([hz - 80.0, hz, -40.0, zf("L5"), zf("L3"), zf("L1"), zf("T11"), zf("T9") + 60])
    # Supine on the table: the back lies flat where it touches (at L5 as in the default
    # phantom: posterior L5 wall + skin depth), lifted a little under the lumbar lordosis,
    # the buttocks pressed flat below (the table cuts them), never closer than 25 mm behind
    # the laminae.
    y_contact = float(np.interp(zf("L5"), zc, y_post)) + depth
    lord = float(rng.uniform(0.0, 12.0))
    ysk = y_contact + np.array([12.0, 15.0, 8.0, 0.0, -lord, -0.4 * lord, -2.0, -4.0])
    ysk = np.maximum(ysk, np.interp(zk, zc, y_lam) + 25.0)
    tw, pw_ = q.thorax_width_factor, q.pelvis_width_factor
    bwk = bw0 * np.array([0.88 * pw_, pw_, 0.5 * (1 + pw_), 1.0, 1.0, 0.5 * (1 + tw), tw, tw])
    bdk = bd0 * np.array([0.85, 0.95, 0.97, 1.0, 1.0, 1.0, 1.02, 1.05])
    yck = ysk - bdk

    y_table0 = y_contact + q.table_gap_mm
    curv = q.table_curvature

    def table_top(x):
        return y_table0 - curv * x * x

    def body_d(x, y, z):
        bw = np.interp(z, zk, bwk)
        bd = np.interp(z, zk, bdk)
        yy = y - np.interp(z, zk, yck)
        d = S.sd_superellipse2(x, yy, bw, bd, 2.6)
        d = d + 4.0 * np.exp(-(x / 12.0) ** 2) * np.clip(yy / bd, 0, 1) ** 4
        if q.table:
            d = np.maximum(d, y - table_top(x))   # flattened on the table
        return d

    x_half = float(bwk.max()) + 10.0
    y_lo_body = float((yck - bdk).min()) - 5.0
    BODY = (np.array([-x_half, y_lo_body, z_lo_all]), np.array([x_half, float(ysk.max()) + 5.0,
                                                                z_hi_all]))
    inset = skin_t + fat_t + wall_t
    parts_soft: list[Part] = [Part("body_patient", lambda x, y, z: {"d": body_d(x, y, z)}, BODY, [
        Layer("skin"), Layer("subcutaneous_fat", offset_mm=skin_t),
        Layer("muscle", offset_mm=skin_t + fat_t), Layer("fat", offset_mm=inset)])]

    # --- table --------------------------------------------------------------------------------
    th = q.table_thickness_mm
    if q.table:
        def table_fields(x, y, z):
            yt = table_top(x)
            return {"d": np.maximum(np.abs(y - yt - 0.5 * th) - 0.5 * th, np.abs(x) - 230.0)}
        parts_soft.append(Part("table", table_fields, (
            np.array([-235.0, y_table0 - curv * 235.0 ** 2 - 2.0, z_lo_all]),
            np.array([235.0, y_table0 + th + 2.0, z_hi_all])),
            [Layer("table"), Layer("table_core", offset_mm=1.5)]))

    # --- arms (soft tissue here, bones later) -------------------------------------------------
    arm_bones: list[Part] = []
    if q.arms_down:
        Ra = q.arm_radius_mm
        z_e = zf("L4") + q.elbow_level * (zf("L1") - zf("L4"))
        for side, sname, s in SIDES:
            xa = s * (float(np.interp(z_e, zk, bwk)) + q.arm_gap_mm + Ra)
            ya = (table_top(xa) - Ra - 2.0) if q.table else float(np.interp(z_e, zk, yck)) + 20.0
            sh_pt = np.array([xa + s * 15.0, ya, z_e + 320.0])
            el = np.array([xa, ya, z_e])
            wr = np.array([xa - s * 10.0, ya - 25.0, z_e - 250.0])
            for nm, a, b, r in (("upper", sh_pt, el, Ra), ("fore", el, wr, 0.8 * Ra)):
                parts_soft.append(Part(f"arm_{nm}_{sname}", (lambda a, b, r: lambda x, y, z: {
                    "d": S.sd_capsule(x, y, z, a, b, r)})(a, b, r), _box_of_points([a, b], r + 3.0),
                    [Layer("skin"), Layer("subcutaneous_fat", offset_mm=1.5),
                     Layer("muscle", offset_mm=1.5 + 0.2 * r)]))
            hum_r = 0.27 * Ra
            h_top, h_bot = sh_pt + np.array([0, 0, -20.0]), el + np.array([0, 0, 12.0])
            epi = S.Frame(np.eye(3), el + np.array([0.0, 0.0, 10.0]))

            def humerus(x, y, z, a=h_top, b=h_bot, r=hum_r, epi=epi):
                d = S.smin(S.sd_capsule(x, y, z, a, b, r),
                           S.sd_ellipsoid(*epi.to_local(x, y, z), (2.3 * r, 1.1 * r, 1.3 * r)), 6.0)
                return {"outer": d, "inner": d + 3.5}
            arm_bones.append(Part(f"humerus_{sname}", humerus,
                                  _box_of_points([h_top, h_bot], 2.5 * hum_r + 3.0), [
                Layer("cortical", key="outer", label="bone", instance=f"humerus_{sname}"),
                Layer("marrow", key="inner", label="bone", instance=f"humerus_{sname}")]))
            off = np.array([s * 9.0, -4.0, 0.0])
            ra_, ul = (el + np.array([0, 0, -12.0]) + off, wr + off), \
                (el + np.array([0, 0, -8.0]) - off, wr - off)

            def forearm(x, y, z, ra_=ra_, ul=ul, r=0.55 * hum_r):
                d = np.minimum(S.sd_capsule(x, y, z, ra_[0], ra_[1], r),
                               S.sd_capsule(x, y, z, ul[0], ul[1], r))
                return {"outer": d, "inner": d + 2.5}
            arm_bones.append(Part(f"forearm_{sname}", forearm,
                                  _box_of_points([*ra_, *ul], 0.55 * hum_r + 3.0), [
                Layer("cortical", key="outer", label="bone", instance=f"forearm_{sname}"),
                Layer("marrow", key="inner", label="bone", instance=f"forearm_{sname}")]))

    # --- diaphragm, lungs ---------------------------------------------------------------------
    z_recess = zf("L1") + 0.5 * levels["L1"].H + 5.0
    z_apex = zf("T10") + 25.0

    yc_ap, bw_ap, bd_ap = (float(np.interp(z_apex, zk, a)) for a in (yck, bwk, bdk))

    def z_dome(x, y):
        # Two broad domes (flat on top, steep towards the costophrenic recesses at the walls),
        # the left one lower.
        r = np.sqrt(((np.abs(x) - 0.42 * bw_ap) / (0.55 * bw_ap)) ** 2
                    + ((y - yc_ap + 0.1 * bd_ap) / (0.85 * bd_ap)) ** 2)
        apex = z_apex - 12.0 * (x > 0)
        return np.maximum(apex - (apex - z_recess) * np.minimum(r, 1.3) ** 4, z_recess - 25.0)

    def lung_fields(x, y, z):
        d_in = body_d(x, y, z) + inset + 10.0
        d = np.maximum(np.maximum(d_in, z_dome(x, y) - z), 22.0 - np.abs(x))
        # The heart and the mediastinum in front of the spine are not lung.
        heart = S.sd_ellipse2(x, y - (yc_ap - 0.35 * bd_ap), 70.0, 0.5 * bd_ap)
        return {"d": np.maximum(d, -heart)}
    parts_soft.append(Part("lungs", lung_fields, (np.array([-x_half, y_lo_body, z_recess - 30.0]),
                                                  np.array([x_half, float(ysk.max()), z_hi_all])),
                           [Layer("lung")]))

    # --- muscles ------------------------------------------------------------------------------
    muscles: list[Part] = []
    lam_z = lambda z: np.interp(z, zc, y_lam)  # noqa: E731
    z_para_lo = -0.5 * v1.H - 45.0
    for side, sname, s in SIDES:
        def para(x, y, z, s=s):
            lam = lam_z(z)
            fascia = np.interp(z, zk, ysk) - skin_t - fat_t - 2.0
            cy = 0.5 * (lam - 12.0 + fascia)
            hyy = np.maximum(0.5 * (fascia - lam + 12.0), 12.0)
            d = S.sd_superellipse2(x - s * 32.0, y - cy, 30.0, hyy, 2.4)
            d = S.smax(d, 2.5 - s * x, 2.0)
            return {"d": np.maximum(d, z_para_lo - z)}
        muscles.append(Part(f"paraspinal_patient_{sname}", para, (
            np.array([min(s * 64.0, 0.0) - 2.0, float(y_lam.min()) - 20.0, z_para_lo - 2.0]),
            np.array([max(s * 64.0, 0.0) + 2.0, float(ysk.max()) + 2.0, z_hi_all])), [Layer("muscle")]))
        # Psoas from T12/L1 down to the existing psoas at L4, and the iliopsoas to the hip.
        ctrl = np.array([levels["T12"].frame.point([s * (0.5 * levels["T12"].W + 2.0), -2.0, 0.0]),
                         levels["L1"].frame.point([s * (0.5 * levels["L1"].W + 4.0), -2.0, 0.0]),
                         levels["L2"].frame.point([s * (0.5 * levels["L2"].W + 6.0), -3.0, 0.0]),
                         levels["L3"].frame.point([s * (0.5 * levels["L3"].W + 8.0), -3.0, 0.0]),
                         v4.frame.point([s * (0.5 * v4.W + 9.0), -3.0, 8.0])])
        line = S.catmull_rom(ctrl, 6)
        rr = S.resample_values(ctrl, np.array([4.0, 7.0, 10.0, 12.0, 13.0]), line)
        muscles.append(Part(f"psoas_upper_{sname}", (lambda L, R: lambda x, y, z: {
            "d": S.sd_tube_fast(x, y, z, L, R)})(line, rr), _box_of_points(line, 20.0),
            [Layer("muscle")]))
        hc = hips[side]
        ctrl = np.array([f_s1.point([s * (0.5 * v1.W + 30.0), -0.5 * v1.D - 14.0, -45.0]),
                         hc + np.array([-s * 15.0, -Rh - 12.0, 15.0]),
                         hc + np.array([-s * 5.0, -Rh - 8.0, -40.0])])
        line = S.catmull_rom(ctrl, 6)
        rr = S.resample_values(ctrl, np.array([20.0, 18.0, 16.0]), line)
        muscles.append(Part(f"iliopsoas_{sname}", (lambda L, R: lambda x, y, z: {
            "d": S.sd_tube_fast(x, y, z, L, R)})(line, rr), _box_of_points(line, 25.0),
            [Layer("muscle")]))
        l1 = levels["L1"]
        a = l1.frame.point([s * (l1.tp_tip[side] + 15.0), 20.0, 15.0])
        b = v4.frame.point([s * (p.l4_transverse_tip_mm[side] + 6.0), 20.0, 20.0])
        muscles.append(Part(f"quadratus_upper_{sname}", (lambda a, b: lambda x, y, z: {
            "d": S.sd_capsule(x, y, z, a, b, 9.0)})(a, b), _box_of_points([a, b], 12.0),
            [Layer("muscle")]))
        # Muscles around the hip joint and the proximal femur.
        ax_a = hc + np.array([s * 10.0, 0.0, 10.0])
        ax_b = hc + np.array([s * 25.0, 5.0, -160.0])
        muscles.append(Part(f"hip_muscles_{sname}", (lambda a, b: lambda x, y, z: {
            "d": S.sd_capsule(x, y, z, a, b, 55.0)})(ax_a, ax_b), _box_of_points([ax_a, ax_b], 58.0),
            [Layer("muscle")]))
    z_crest = min(float(an.landmarks["iliac_crest_top_left"][2]),
                  float(an.landmarks["iliac_crest_top_right"][2]))

    y_glut = float(f_s1.t[1]) + 5.0

    def gluteal(x, y, z):
        # Behind the sacrum and the iliac wings, below the crests, either side of the cleft.
        d = body_d(x, y, z) + skin_t + fat_t
        d = np.maximum(d, z - (z_crest - 10.0))
        d = np.maximum(d, y_glut - y)
        return {"d": np.maximum(d, 12.0 - np.abs(x))}
    muscles.append(Part("gluteal", gluteal, (np.array([-x_half, y_glut - 3.0, z_lo_all]),
                                              np.array([x_half, float(ysk.max()) + 2.0, z_crest])),
                        [Layer("muscle")]))

    # Obturator internus: the muscle lining the pelvic side wall, medial to the acetabulum.
    for side, sname, s in SIDES:
        hc = hips[side]
        a = hc + np.array([-s * (Rh + 16.0), 5.0, 10.0])
        b = hc + np.array([-s * (Rh + 4.0), 22.0, -45.0])
        muscles.append(Part(f"obturator_{sname}", (lambda a, b: lambda x, y, z: {
            "d": S.sd_capsule(x, y, z, a, b, 13.0)})(a, b), _box_of_points([a, b], 16.0),
            [Layer("muscle")]))

    # --- organs -------------------------------------------------------------------------------
    organs: list[Part] = []
    z_l3, z_l1, z_t12, z_t11 = zf("L3"), zf("L1"), zf("T12"), zf("T11")
    yc_at = lambda z: float(np.interp(z, zk, yck))  # noqa: E731
    bw_at = lambda z: float(np.interp(z, zk, bwk))  # noqa: E731
    bd_at = lambda z: float(np.interp(z, zk, bdk))  # noqa: E731
    lr = np.asarray(q.liver_size)
    liver_c = np.array([-(bw_at(z_t12) - lr[0] + 15.0), yc_at(z_t12) - 10.0, z_l3 + 0.85 * lr[2]])

    y_post_z = lambda z: np.interp(z, zc, y_post)  # noqa: E731

    def retro(x, y, z):
        # > 0 in the spine column and the back muscles, where no intraperitoneal organ lies.
        ax = np.abs(x)
        col = np.minimum(50.0 - ax, y - (np.interp(z, zc, y_front) - 10.0))
        back = np.minimum(75.0 - ax, y - (y_post_z(z) + 5.0))
        return np.maximum(col, back)

    def liver(x, y, z):
        d = S.sd_ellipsoid(x - liver_c[0], y - liver_c[1], z - liver_c[2], lr)
        d = np.maximum(d, body_d(x, y, z) + inset + 3.0)
        d = np.maximum(d, retro(x, y, z))
        return {"d": np.maximum(d, z - z_dome(x, y))}
    liver_lo = liver_c - lr - 3.0
    liver_hi = np.minimum(liver_c + lr + 3.0, [100.0, np.inf, z_apex + 5.0])
    organs.append(Part("liver", liver, (liver_lo, liver_hi), [Layer("liver")]))
    sr = np.asarray(q.spleen_size)
    spleen_c = np.array([bw_at(z_t11) - sr[0] - inset - 12.0, yc_at(z_t11) + 0.35 * bd_at(z_t11),
                         z_t12 + 10.0])
    f_sp = S.Frame(S.rot_z(-40.0), spleen_c)

    def spleen(x, y, z):
        d = S.sd_ellipsoid(*f_sp.to_local(x, y, z), sr)
        d = np.maximum(d, body_d(x, y, z) + inset + 2.0)
        return {"d": np.maximum(d, z - z_dome(x, y))}
    organs.append(Part("spleen", spleen, _ellipsoid_box(f_sp, sr, 4.0),
                       [Layer("spleen")]))
    st_c = np.array([55.0, yc_at(z_t12) - 0.45 * bd_at(z_t12), z_t12 - 5.0])
    st_r = (55.0, 38.0, 60.0)

    def stomach(x, y, z):
        d = S.sd_ellipsoid(x - st_c[0], y - st_c[1], z - st_c[2], st_r)
        d = np.maximum(np.maximum(d, z - z_dome(x, y) - 3.0), retro(x, y, z))
        return {"d": d, "gas": np.maximum(d + 3.0, y - (st_c[1] - 0.2 * st_r[1]))}
    organs.append(Part("stomach", stomach, _box_of_points([st_c], 62.0), [
        Layer("bowel_wall"), Layer("oral_contrast" if q.oral_contrast else "bowel_fluid",
                                   offset_mm=3.0), Layer("gas", key="gas")]))
    kr = np.asarray(q.kidney_size)
    kidney_centres = []
    for side, sname, s in SIDES:
        l1 = levels["L1"]
        z_k = 0.5 * (zf("L1") + zf("L2")) + q.kidney_z_mm[side]
        c = np.array([s * (0.5 * l1.W + 22.0 + kr[0]), float(np.interp(z_k, zc, y_centre)) + 12.0,
                      z_k])
        kidney_centres.append(c)
        fk = S.Frame(S.rot_z(s * 30.0) @ S.rot_y(s * 15.0), c)
        hil = fk.point([-s * 0.8 * kr[0], -0.1 * kr[1], 0.0])
        fh = S.Frame(fk.R, hil)

        def kidney(x, y, z, fk=fk, fh=fh):
            return {"d": S.sd_ellipsoid(*fk.to_local(x, y, z), kr),
                    "sinus": S.sd_ellipsoid(*fh.to_local(x, y, z), (0.55 * kr[0], 0.45 * kr[1],
                                                                    0.45 * kr[2]))}
        organs.append(Part(f"kidney_{sname}", kidney, _ellipsoid_box(fk, kr, 4.0), [
            Layer("kidney_cortex"), Layer("kidney_medulla", offset_mm=7.0),
            Layer("fat", key="sinus")]))
        lm[f"kidney_centre_{sname}"] = c

    # Bowel: loops where a smooth random field exceeds a threshold, inside the abdominal cavity.
    z_b_hi = 0.5 * (zf("L1") + zf("L2"))
    z_b_lo = hz - 20.0
    b_lo = np.array([-(bwk.max() - inset), y_lo_body + inset, z_b_lo])
    b_hi = np.array([bwk.max() - inset, float(y_front.max()) + 40.0, z_b_hi])
    step = 4.0
    nb = np.maximum(np.ceil((b_hi - b_lo) / step).astype(int) + 1, 2)
    rb = np.random.Generator(np.random.PCG64(int(q.bowel_seed)))
    fld = ndimage.gaussian_filter(rb.standard_normal(tuple(nb)), 7.0 / step, mode="wrap")
    fld /= max(float(fld.std()), 1e-9)
    cfl = ndimage.gaussian_filter(rb.standard_normal(tuple(nb)), 10.0 / step, mode="wrap")
    cfl /= max(float(cfl.std()), 1e-9)
    gmean = float(np.mean(np.sqrt(sum(g * g for g in np.gradient(fld, step)))))
    cmean = float(np.mean(np.sqrt(sum(g * g for g in np.gradient(cfl, step)))))
    fld32, cfl32 = fld.astype(np.float32), cfl.astype(np.float32)

    def sample(field, x, y, z):
        coords = np.stack([(x - b_lo[0]) / step, (y - b_lo[1]) / step, (z - b_lo[2]) / step])
        return ndimage.map_coordinates(field, coords.astype(np.float32), order=1, mode="nearest")

    # Below the pelvic brim the cavity narrows to the inside of the pelvic ring.
    ring_z = np.array([hz - 30.0, -40.0, -10.0])
    ring_w = np.array([q.hip_half_distance_mm - Rh - 15.0, q.hip_half_distance_mm, 400.0])

    def cavity_d(x, y, z):
        d = body_d(x, y, z) + inset + 6.0
        back = np.interp(z, zc, y_front) + 10.0 + 0.25 * np.abs(x)
        d = np.maximum(d, y - back)
        d = np.maximum(d, np.abs(x) - np.interp(z, ring_z, ring_w))
        return np.maximum(d, np.maximum(z - z_b_hi, z_b_lo - z))

    wall_b = 2.5
    y_mid = float(np.interp(0.0, zk, yck))

    def bowel(x, y, z):
        f = sample(fld32, x, y, z)
        c = sample(cfl32, x, y, z)
        d = np.maximum((q.bowel_threshold - f) / gmean, cavity_d(x, y, z))
        # Gas gathers anteriorly (patient supine): the content field is biased towards -y.
        cg = c + (y_mid - y) / 60.0
        out = {"d": d, "gas": np.maximum(d + wall_b, (q.gas_threshold - cg) / cmean)}
        if q.oral_contrast:
            out["contrast"] = np.maximum(d + wall_b, (c - 0.4) / cmean)
        return out
    layers = [Layer("bowel_wall"), Layer("bowel_fluid", offset_mm=wall_b)]
    if q.oral_contrast:
        layers.append(Layer("oral_contrast", key="contrast"))
    layers.append(Layer("gas", key="gas"))
    bowels = [Part("small_bowel", bowel, (b_lo, b_hi), layers)]

    # Colon: one tube from the caecum to the rectum.
    def sac_front(zl):
        return f_s1.point([0.0, -0.5 * v1.D + 3.0 + 0.3 * (-zl - 0.5 * v1.H), zl])

    xr = lambda z, m: bw_at(z) - inset - m  # noqa: E731
    colon_ctrl = np.array([
        [-xr(-40.0, 40.0), yc_at(-40.0) - 0.2 * bd_at(-40.0), -40.0],            # caecum
        [-xr(z_l3, 35.0), yc_at(z_l3), z_l3],                                     # ascending
        [-xr(z_l1, 45.0), yc_at(z_l1) - 0.3 * bd_at(z_l1), z_l1 - 5.0],          # hepatic flexure
        [0.0, yc_at(z_l3) - bd_at(z_l3) + inset + 30.0, z_l3 - 20.0],             # transverse
        [xr(z_t12, 45.0), yc_at(z_t12) - 0.1 * bd_at(z_t12), z_t12 - 5.0],       # splenic flexure
        [xr(z_l3, 30.0), yc_at(z_l3) + 0.15 * bd_at(z_l3), z_l3],               # descending
        [xr(-30.0, 45.0), yc_at(-30.0) - 0.3 * bd_at(-30.0), -30.0],            # sigmoid
        [15.0, float(sac_front(-0.5 * v1.H - 30.0)[1]) - 40.0, -70.0],
        sac_front(-0.5 * v1.H - 45.0) + np.array([0.0, -22.0, 0.0]),              # rectum
        sac_front(-0.5 * v1.H - 75.0) + np.array([0.0, -25.0, -15.0]),
    ])
    colon_line = S.catmull_rom(colon_ctrl, 8)
    colon_r = S.resample_values(colon_ctrl, np.array([28, 24, 24, 22, 24, 20, 18, 17, 22, 20.0]),
                                colon_line)

    def colon(x, y, z):
        d = S.sd_tube_fast(x, y, z, colon_line, colon_r)
        gas = np.maximum(d + wall_b, (y - (np.interp(z, zk, yck) - 0.05 * bd0)) / 4.0 + 0.5)
        return {"d": d, "gas": gas}
    bowels.append(Part("colon", colon, _box_of_points(colon_line, 32.0), layers=[
        Layer("bowel_wall"), Layer("colon_content", offset_mm=wall_b), Layer("gas", key="gas")]))
    bl = np.asarray(q.bladder_size)
    sym = np.array([0.0, hy - 55.0, hz - 22.0])
    bl_c = np.array([0.0, sym[1] + 8.0 + bl[1], hz + 0.3 * bl[2]])
    organs.append(Part("bladder", lambda x, y, z: {"d": S.sd_ellipsoid(
        x - bl_c[0], y - bl_c[1], z - bl_c[2], bl)}, _box_of_points([bl_c], float(bl.max()) + 4.0),
        [Layer("muscle"), Layer("urine", offset_mm=3.0)]))

    # --- vessels ------------------------------------------------------------------------------
    ra, rv = q.aorta_radius_mm, q.ivc_radius_mm
    z_bif = zf("L4") + q.bifurcation_offset_mm
    z_conf = zf("L5") + 5.0
    up_z = [zf(n) for n in ("L3", "L2", "L1", "T12", "T11", "T10", "T9")]
    fy = lambda z: float(np.interp(z, zc, y_front))  # noqa: E731
    aorta = np.array([[q.aorta_x_mm, fy(z) - ra - 2.0, z] for z in [z_bif] + up_z][::-1])
    veins = np.array([[q.ivc_x_mm, fy(z) - rv - 1.0, z] for z in [z_conf] + up_z[:4]][::-1])
    art_lines, vein_lines = [(aorta, ra)], [(veins, rv)]
    for side, sname, s in SIDES:
        hc = hips[side]
        brim = np.array([s * 38.0, float(f_s1.point([0, -0.5 * v1.D, 0])[1]) - 22.0, -25.0])
        fem = hc + np.array([-s * 12.0, -Rh - 14.0, 0.0])
        art = np.array([aorta[-1], 0.5 * (aorta[-1] + brim) + np.array([0, -3.0, 0]), brim,
                        0.5 * (brim + fem) + np.array([s * 8.0, -8.0, 0.0]), fem,
                        fem + np.array([0.0, 0.0, -80.0])])
        art_lines.append((art, 0.62 * ra))
        internal = np.array([brim, brim + np.array([s * 5.0, 30.0, -30.0])])
        art_lines.append((internal, 0.35 * ra))
        vbrim = brim + np.array([-s * 6.0, 10.0, -5.0])
        vfem = fem + np.array([-s * 14.0, 4.0, 0.0])
        vein = np.array([veins[-1], 0.5 * (veins[-1] + vbrim), vbrim,
                         0.5 * (vbrim + vfem) + np.array([s * 6.0, -6.0, 0.0]), vfem,
                         vfem + np.array([0.0, 0.0, -80.0])])
        vein_lines.append((vein, 0.62 * rv))
        kc = kidney_centres[side]
        z_k = kc[2] + 5.0
        a_k = np.array([[q.aorta_x_mm, fy(z_k) - ra - 2.0, z_k], kc + np.array([-s * 20.0, -5.0, 5.0])])
        v_k = np.array([[q.ivc_x_mm, fy(z_k) - rv - 1.0, z_k - 8.0],
                        kc + np.array([-s * 20.0, -12.0, -3.0])])
        if s > 0:   # the left renal vein crosses in front of the aorta
            v_k = np.array([v_k[0], [q.aorta_x_mm, fy(z_k) - 2 * ra - 6.0, z_k - 8.0], v_k[1]])
        art_lines.append((a_k, 3.0))
        vein_lines.append((v_k, 4.5))
    lm["aorta_centreline"] = aorta

    def tube_union(lines):
        lines = [(S.catmull_rom(ln, 6) if len(ln) > 2 else ln, r) for ln, r in lines]

        def fields(x, y, z):
            d = None
            for line, r in lines:
                dd = S.sd_tube_fast(x, y, z, line, r)
                d = dd if d is None else np.minimum(d, dd)
            return {"d": d}
        pts = np.vstack([ln for ln, _r in lines])
        return fields, _box_of_points(pts, max(r for _l, r in lines) + 10.0)
    fa, ba = tube_union(art_lines)
    fv, bv = tube_union(vein_lines)
    vessels = [Part("veins", fv, bv, [Layer("vein")]), Part("arteries", fa, ba, [Layer("artery")])]
    # Calcified plaques on the wall of the lower aorta and the iliac arteries.
    wall_pts = np.vstack([S.catmull_rom(ln, 6) for ln, _r in art_lines[:3]])
    wall_pts = wall_pts[wall_pts[:, 2] < zf("L1")]
    for i in range(q.n_calcifications):
        if len(wall_pts) == 0:
            break
        c = wall_pts[int(rng.integers(len(wall_pts)))]
        ang = rng.uniform(0.0, 2 * np.pi)
        r_here = ra if c[2] > z_bif else 0.62 * ra
        pos = c + (r_here - 0.5) * np.array([np.cos(ang), np.sin(ang), 0.0])
        rad = rng.uniform(0.8, 2.2, size=3)
        vessels.append(Part(f"plaque_{i}", (lambda c, r: lambda x, y, z: {"d": S.sd_ellipsoid(
            x - c[0], y - c[1], z - c[2], r)})(pos, rad), _box_of_points([pos], 4.0),
            [Layer("plaque")]))

    # --- canal, dura and cord continued upwards ------------------------------------------------
    chain_up = [v4] + uppers
    canal_pts, canal_hw, canal_hd, sac_pts, sac_hw, sac_hd = [], [], [], [], [], []
    sac_y = bulge + 1.0 + 0.5 * float(I["sac_d"])
    for v in chain_up:
        for zl in (0.0, 0.5 * v.H + 4.0):
            canal_pts.append(_canal_pt(v, zl, 0.5 * v.canal_d))
            canal_hw.append(0.5 * v.canal_w)
            canal_hd.append(0.5 * v.canal_d)
            sac_pts.append(_canal_pt(v, zl, sac_y))
            shrink = 1.5 if v.name.startswith("T") else 0.0
            sac_hw.append(0.5 * (float(I["sac_w"]) - shrink))
            sac_hd.append(0.5 * float(I["sac_d"]))
    canal_pts, sac_pts = np.array(canal_pts), np.array(sac_pts)
    canal_line = S.catmull_rom(canal_pts, 4)
    cw = S.resample_values(canal_pts, np.array(canal_hw), canal_line)
    cd = S.resample_values(canal_pts, np.array(canal_hd), canal_line)
    sac_line = S.catmull_rom(sac_pts, 4)
    sw = S.resample_values(sac_pts, np.array(sac_hw), sac_line)
    sd = S.resample_values(sac_pts, np.array(sac_hd), sac_line)
    lm["dural_sac_upper_centreline"] = sac_line
    by_name = {pt.name: pt for pt in an.parts}
    _wrap_union(by_name["canal"], lambda x, y, z: {"d": S.sd_elliptic_tube_fast(
        x, y, z, canal_line, cw, cd)}, _box_of_points(canal_line, 16.0), ("d",))
    _wrap_union(by_name["dura"], lambda x, y, z: {"d": S.sd_elliptic_tube_fast(
        x, y, z, sac_line, sw, sd)}, _box_of_points(sac_line, 12.0), ("d",))
    # Cord from the top down to the conus (between the L1 and L2 bodies).
    z_conus = zf("L1") + q.conus_level_z * (zf("L2") - zf("L1"))
    keep = sac_line[:, 2] >= z_conus
    cord_line = sac_line[keep][::-1]
    cord_parts: list[Part] = []
    if len(cord_line) >= 2:
        cr = np.linspace(2.0, 4.5, len(cord_line))
        cord_parts.append(Part("cord", (lambda L, R: lambda x, y, z: {"d": S.sd_elliptic_tube_fast(
            x, y, z, L, R, 0.8 * R)})(cord_line, cr), _box_of_points(cord_line, 8.0),
            [Layer("dura", label="dura", instance="dura")]))

    # --- roots above L4 ------------------------------------------------------------------------
    root_sleeves, root_nerves, root_names = [], [], []
    for v in uppers:
        thoracic = v.name.startswith("T")
        for side, sname, _s in SIDES:
            diam = 4.0 if not thoracic else 3.0
            line, radii = _root_line(v, side, I, diam, 60.0 if thoracic else 40.0, 55.0, 1.5,
                                     thoracic)
            name = f"root_{v.name}_{sname}"
            root_names.append(name)
            lm[f"{name}_centreline"] = line
            root_sleeves.append(Part(name, (lambda L, R: lambda x, y, z: {"d": S.sd_tube_fast(
                x, y, z, L, R, step_mm=1.0)})(line, radii), _box_of_points(line, float(radii.max()) + 6.0),
                [Layer("fat", offset_mm=-2.5)], cache=True))
            root_nerves.append(Part(f"{name}_nerve", None, root_sleeves[-1].bbox, [
                Layer("nerve", label="nerve", instance=name)], from_cache=name))
    # L4 sits below the L3 roots: keep them clear of its bone as the default roots are.
    by_name["L4"].carve.extend((n, 1.0, 1.0) for n in root_names if n.startswith("root_L3"))

    # --- upper bones, discs, ribs -------------------------------------------------------------
    upper_discs = []
    lower = v4
    for v in uppers:
        part, c = _disc_part(lower, v, bulge)
        upper_discs.append(part)
        lm[f"{part.name.lower()[5:]}_disc_centre"] = c
        lower = v
    upper_bones = []
    for i, v in enumerate(uppers):
        near = [n for n in root_names if n.split("_")[1] in (v.name, uppers[i - 1].name if i else "L4")]
        upper_bones.append(_vertebra_part(v, [(n, 1.0, 1.0) for n in near] + [("canal", 0.0, 0.0)]))
    ribs, cartilage = [], []
    rib_spec = {"T12": (60.0, 25.0, 0.8), "T11": (100.0, 50.0, 0.9), "T10": (150.0, 85.0, 1.0),
                "T9": (158.0, 110.0, 1.0)}
    for lvl, (phi_end, drop, rscale) in rib_spec.items():
        v = levels[lvl]
        for side, sname, s in SIDES:
            rr = q.rib_radius_mm * rscale
            head = v.frame.point([s * (0.5 * v.W + rr + 1.0), 0.15 * v.D, 0.5 * v.H - 6.0])
            J = v.junction(side)
            tub = v.frame.point([s * (v.tp_tip[side] - 2.0), J[1] - 9.0, J[2] + v.tp_rise - 2.0])
            z0 = float(tub[2]) - 6.0
            pts = [head, tub]
            ri = skin_t + fat_t + 0.5 * wall_t + rr + 4.0
            a_ell = bw_at(z0) - ri
            phi_a = float(np.degrees(np.arcsin(np.clip((abs(tub[0]) + 22.0) / a_ell, 0, 1))))
            for phi in np.linspace(phi_a, phi_end, 7):
                t = (phi - phi_a) / max(phi_end - phi_a, 1e-6)
                zz = z0 - drop * t
                a_z, b_z, y_z = bw_at(zz) - ri, bd_at(zz) - ri, yc_at(zz)
                pts.append(np.array([s * a_z * np.sin(np.radians(phi)), y_z + b_z * np.cos(
                    np.radians(phi)), zz]))
            line = S.catmull_rom(np.array(pts), 6)
            name = f"rib_{lvl}_{sname}"
            ribs.append(Part(name, (lambda L, r: lambda x, y, z: (lambda d: {
                "outer": d, "inner": d + 1.0})(S.sd_tube_fast(x, y, z, L, r)))(line, rr),
                _box_of_points(line, rr + 4.0), [
                Layer("cortical", key="outer", label="bone", instance=name),
                Layer("cancellous", key="inner", label="bone", instance=name)]))
            lm[f"{name}_centreline"] = line
            if lvl in ("T9", "T10"):
                end = pts[-1]
                cc = np.array([end, 0.5 * (end + np.array([s * 40.0, end[1] + 10.0, end[2] + 35.0])),
                               np.array([s * 30.0, yc_at(end[2]) - bd_at(end[2]) + inset + 10.0,
                                         end[2] + 60.0])])
                cartilage.append(Part(f"cartilage_{lvl}_{sname}", (lambda L, r: lambda x, y, z: {
                    "d": S.sd_tube_fast(x, y, z, L, r)})(cc, 0.9 * rr), _box_of_points(cc, rr + 4.0),
                    [Layer("cartilage")]))

    # --- lower sacrum and coccyx (extend the S1 part) ------------------------------------------
    H1, W1, D1 = v1.H, v1.W, v1.D
    f3 = S.Frame(S.rot_x(-25.0), np.array([0.0, 9.0, -0.5 * H1 - 33.0]))
    f4 = f3.compose(S.Frame(S.rot_x(-15.0), np.array([0.0, 0.0, -21.0])))
    f5 = f4.compose(S.Frame(S.rot_x(-15.0), np.array([0.0, 0.0, -17.0])))
    cx0 = f5.point([0.0, 0.0, -9.0])
    cx1 = f5.point([0.0, -6.0, -35.0])

    def lower_sacrum(x, y, z):
        xl, yl, zl = f_s1.to_local(x, y, z)
        b4 = sd_body(*f4.to_local(xl, yl, zl), 0.48 * W1, 0.5 * D1, 17.0, 0.0, 0.0)
        b5 = sd_body(*f5.to_local(xl, yl, zl), 0.36 * W1, 0.42 * D1, 14.0, 0.0, 0.0)
        cox = S.sd_capsule(xl, yl, zl, cx0, cx1, 5.5, 3.5)
        d = S.union([b4, b5, cox], 3.0)
        return {"outer": d, "inner": d + v1.cort}
    lo_s, hi_s = _local_box(f_s1, np.array([-40.0, -40.0, -0.5 * H1 - 120.0]),
                            np.array([40.0, 45.0, -0.5 * H1 - 35.0]))
    by_name["S1"].fields = _sacrum_fields_fast(v1, I, p)
    _wrap_union(by_name["S1"], lower_sacrum, (lo_s, hi_s), ("outer", "inner"),
                _smooth_union_dict(3.0))

    # --- lower hip bone (extend the ilia) and femora --------------------------------------------
    femora, metal = [], []
    x_si, y_c1 = float(I["x_si"]), float(f_s1.t[1])
    z_cut = min(hz + 45.0, -45.0)
    R_in, R_out = Rh + 2.0, Rh + 12.0
    incl, av = np.radians(q.acetabular_inclination_deg), np.radians(q.acetabular_anteversion_deg)
    hip_sides = {"left": q.hip_prosthesis in ("left", "both"),
                 "right": q.hip_prosthesis in ("right", "both")}
    for side, sname, s in SIDES:
        c = hips[side]
        a_ax = np.array([s * np.sin(incl), -np.tan(av) * np.sin(incl), -np.cos(incl)])
        a_ax /= np.linalg.norm(a_ax)
        dirn = lambda v: np.asarray(v, float) / np.linalg.norm(v)  # noqa: E731
        A0 = c + (R_out - 5.0) * dirn([-s * 0.35, 0.45, 0.82])
        B0 = np.array([s * (x_si + 6.0), y_c1 - 2.0, z_cut + 12.0])
        P0 = c + (R_out - 4.0) * dirn([-s * 0.2, 0.75, -0.45])
        tub = c + np.array([-s * 12.0, 28.0, -50.0])
        Q0 = c + (R_out - 4.0) * dirn([-s * 0.45, -0.8, 0.1])
        sym_pt = np.array([s * 3.0, c[1] - 55.0, c[2] - 22.0])
        inf_pt = np.array([s * 5.0, c[1] - 48.0, c[2] - 42.0])

        def cup_fn(x, y, z, c=c, a_ax=a_ax):
            r = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
            cup = np.maximum(r - R_out, R_in - r)
            return np.maximum(cup, (x - c[0]) * a_ax[0] + (y - c[1]) * a_ax[1]
                              + (z - c[2]) * a_ax[2] - 2.0)
        caps = [(A0, B0, 16.0, 12.0), (P0, tub, 13.0, 11.0), (Q0, sym_pt, 10.0, 8.0),
                (tub, inf_pt, 8.0, 6.5)]
        cup_box = (c - R_out - _MARGIN, c + R_out + _MARGIN)

        pieces = [(cup_fn, *cup_box)] + [
            ((lambda x_, y_, z_, a=a, b=b, ra=ra, rb=rb: S.sd_capsule(x_, y_, z_, a, b, ra, rb)),
             *_box_of_points([a, b], ra + _MARGIN)) for a, b, ra, rb in caps]

        def pelvis_lower(x, y, z, c=c, pieces=pieces, cup_box=cup_box):
            d = _fold(np.full(np.shape(x), 2 * _FAR), pieces, x, y, z, 4.0)
            # Keep the socket free for the femoral head (only near it: elsewhere R_in - r << 0).
            aff = S.index_affine(x, y, z)
            sl = (slice(None),) * 3 if aff is None else S.box_slices(aff, np.shape(x), *cup_box)
            if sl is not None:
                r = np.sqrt((x[sl] - c[0]) ** 2 + (y[sl] - c[1]) ** 2 + (z[sl] - c[2]) ** 2)
                d[sl] = S.smax(d[sl], R_in - r, 1.0)
            return {"outer": d, "inner": d + 1.5}
        lo_p = np.minimum.reduce([c - R_out, B0 - 16.0, tub - 13.0, sym_pt - 10.0, inf_pt - 8.0])
        hi_p = np.maximum.reduce([c + R_out, B0 + 16.0, tub + 13.0, sym_pt + 10.0, inf_pt + 8.0])

        def ilium_combine(old, new, z_cut=z_cut):
            # The default ilium is a wing extruded downwards: end it above the acetabulum.
            return {"outer": S.smin(old["outer"], new["outer"], 8.0),
                    "inner": S.smin(old["inner"], new["inner"], 8.0)}
        ip = by_name[f"ilium_{sname}"]
        old_fn = _ilium_in_slabs(ip.fields, ip.bbox, I["ilium_geometry"][sname], s)
        ip.fields = (lambda fn, zc_: lambda x, y, z: (lambda o: {
            "outer": S.smax(o["outer"], zc_ - z, 6.0),
            "inner": S.smax(o["inner"], zc_ - z + 1.5, 6.0)})(fn(x, y, z)))(old_fn, z_cut)
        # The wing is extruded along z, so its box may grow downwards to the cut.
        ip.bbox = (np.array([ip.bbox[0][0] - 8.0, ip.bbox[0][1], z_cut - 12.0]), ip.bbox[1])
        _wrap_union(ip, pelvis_lower, (lo_p - 2.0, hi_p + 2.0), ("outer", "inner"),
                    ilium_combine)

        # Femur: head, neck, greater and lesser trochanter, shaft.
        e = np.radians(180.0 - q.neck_shaft_deg - 10.0)
        fav = np.radians(q.femoral_anteversion_deg)
        ndir = np.array([s * np.cos(e) * np.cos(fav), np.cos(e) * np.sin(fav), -np.sin(e)])
        T0 = c + 52.0 * ndir
        GT = T0 + np.array([s * 8.0, 6.0, 14.0])
        LT = T0 + np.array([-s * 12.0, 8.0, -40.0])
        shaft_end = T0 + np.array([-s * 20.0, 0.0, -200.0])
        prosthesis = hip_sides[sname]
        cut_pt = c + 24.0 * ndir

        def femur(x, y, z, c=c, T0=T0, GT=GT, LT=LT, shaft_end=shaft_end, ndir=ndir,
                  prosthesis=prosthesis, cut_pt=cut_pt):
            head = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) - Rh
            neck = S.sd_capsule(x, y, z, c, T0, 0.62 * Rh, 17.0)
            gt = S.sd_ellipsoid(x - GT[0], y - GT[1], z - GT[2], (15.0, 17.0, 22.0))
            lt = S.sd_ellipsoid(x - LT[0], y - LT[1], z - LT[2], (8.0, 8.0, 12.0))
            shaft = S.sd_capsule(x, y, z, T0, shaft_end, 17.0, 13.5)
            d = S.union([head, neck, gt, lt, shaft], 5.0)
            if prosthesis:
                d = np.maximum(d, (cut_pt[0] - x) * ndir[0] + (cut_pt[1] - y) * ndir[1]
                               + (cut_pt[2] - z) * ndir[2])
            cort = 1.5 + 3.5 * np.clip((T0[2] - 55.0 - z) / 40.0, 0.0, 1.0)
            return {"outer": d, "inner": d + cort,
                    "marrow": np.maximum(shaft + 5.0, z - (T0[2] - 75.0))}
        name = f"femur_{sname}"
        femora.append(Part(name, femur, _box_of_points([c, T0, GT, LT, shaft_end], Rh + 6.0), [
            Layer("cortical", key="outer", label="bone", instance=name),
            Layer("cancellous", key="inner", label="bone", instance=name),
            Layer("marrow", key="marrow", label="bone", instance=name)]))
        if prosthesis:
            Rb = min(0.7 * Rh, 18.0)
            stem_end = T0 + 0.6 * (shaft_end - T0)

            def hip_metal(x, y, z, c=c, a_ax=a_ax, T0=T0, stem_end=stem_end, Rb=Rb):
                r = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
                open_ = (x - c[0]) * a_ax[0] + (y - c[1]) * a_ax[1] + (z - c[2]) * a_ax[2]
                cup = np.maximum(np.maximum(r - R_in, (R_in - 3.5) - r), open_)
                ball = r - Rb
                stem = np.minimum(S.sd_capsule(x, y, z, c, T0, 6.5),
                                  S.sd_capsule(x, y, z, T0, stem_end, 9.0, 5.5))
                liner = np.maximum(np.maximum(r - (R_in - 3.5), (Rb + 0.3) - r), open_)
                return {"d": np.minimum(np.minimum(cup, ball), stem), "liner": liner}
            metal.append(Part(f"hip_prosthesis_{sname}", hip_metal,
                              _box_of_points([c, T0, stem_end], R_in + 10.0), [
                Layer("polyethylene", key="liner"),
                Layer("metal", label="unlabelled", instance="metal")]))
        lm[f"femur_shaft_top_{sname}"] = T0

    # --- pedicle screws and rods ---------------------------------------------------------------
    if q.screws != "none":
        lv = {"L4-L5": ("L4", "L5"), "L5-S1": ("L5", "S1"), "L4-S1": ("L4", "L5", "S1")}[q.screws]
        for side, sname, s in SIDES:
            heads = []
            shafts = []
            for name in lv:
                v = levels[name]
                pf = v.pedicle_frame(side)
                u_ax = pf.R[:, 1]                      # along the pedicle, posterior
                J = v.junction(side)
                length = (J[1] + 0.3 * v.D) / max(u_ax[1], 0.3)
                tip = v.frame.point(J - length * u_ax)
                head = v.frame.point(J + 7.0 * u_ax)
                shafts.append((tip, v.frame.point(J + 2.0 * u_ax)))
                heads.append(head)
            rod = np.array(heads)
            rod_ext = np.vstack([rod[0] + 0.3 * (rod[0] - rod[-1]) / max(len(rod) - 1, 1), rod,
                                 rod[-1] + 0.3 * (rod[-1] - rod[0]) / max(len(rod) - 1, 1)])

            def screws(x, y, z, shafts=shafts, heads=heads, rod=rod_ext):
                d = S.sd_capsule(x, y, z, rod[0], rod[-1], 2.75)
                for (a, b), h in zip(shafts, heads):
                    d = np.minimum(d, S.sd_capsule(x, y, z, a, b, q.screw_radius_mm, 0.9 * q.screw_radius_mm + 0.3))
                    d = np.minimum(d, S.sd_ellipsoid(x - h[0], y - h[1], z - h[2], (6.5, 6.5, 7.5)))
                return {"d": d}
            pts = np.vstack([np.array([a for a, _b in shafts]), rod_ext])
            metal.append(Part(f"screws_{sname}", screws, _box_of_points(pts, 10.0), [
                Layer("metal", label="unlabelled", instance="metal")]))
            lm[f"screw_heads_{sname}"] = rod

    # --- speed: exact but local evaluation of L4 and L5; soft tissue from coarse grids ----------
    for name in ("L4", "L5"):
        by_name[name].fields = _vertebra_fields_fast(levels[name])
    coarse = {"body_patient": 3.0, "lungs": 3.0, "liver": 3.0, "spleen": 3.0, "gluteal": 3.0,
              "kidney_left": 2.0, "kidney_right": 2.0, "bladder": 3.0,
              "stomach": 2.5, "small_bowel": 2.5, "colon": 2.5, "arteries": 2.0, "veins": 2.0}
    soft = parts_soft + muscles + organs + bowels + vessels + [
        pt for pt in an.parts if pt.name.startswith(("psoas_", "ilium_muscle_"))]
    for pt in soft:
        step = coarse.get(pt.name, 3.0 if pt.name.startswith((
            "paraspinal_", "psoas_", "iliopsoas_", "ilium_muscle_")) else None)
        if step is not None:
            pt.fields = S.CoarseFields(pt.fields, *pt.bbox, step_mm=step)

    # --- assemble in paint order --------------------------------------------------------------
    drop = {"body", "bowel"} | {pt.name for pt in an.parts if pt.name.startswith(
        ("bowel_gas_", "paraspinal_", "iliac_artery_", "iliac_vein_"))}
    default = [pt for pt in an.parts if pt.name not in drop]
    names = [pt.name for pt in default]
    i_sleeves = max(i for i, n in enumerate(names) if n.startswith("root_") and not n.endswith(
        "_nerve"))
    i_discs = names.index("disc_L5S1")
    i_nerves = min(i for i, n in enumerate(names) if n.endswith("_nerve"))
    i_dura = names.index("dura")
    default_muscles = [pt for pt in default[:i_sleeves + 1] if pt.name.startswith(
        ("psoas_", "quadratus_"))]
    before = [pt for pt in default[:i_sleeves + 1] if pt not in default_muscles]
    parts = (parts_soft + muscles + default_muscles + bowels + organs + vessels + before + root_sleeves
             + default[i_sleeves + 1:i_discs] + upper_discs + default[i_discs:i_nerves]
             + upper_bones + cartilage + ribs + femora + arm_bones + default[i_nerves:i_dura]
             + root_nerves + [default[i_dura]] + cord_parts + default[i_dura + 1:] + metal)

    half_x = 0.5 * q.fov_x_mm
    if q.arms_down:
        # Arms beside the body: show at least their inner part (truncated at the edge, as on
        # scans reconstructed for the spine), in a field of view up to 380 mm wide.
        half_x = max(half_x, min(float(bwk.max()) + q.arm_gap_mm + 0.6 * q.arm_radius_mm,
                                 190.0))
    # The belly's most anterior point within the field of view's z range.
    zz = np.linspace(z_bot, z_top, 64)
    y_front_skin = float(np.interp(zz, zk, yck - bdk).min())
    fov_lo = np.array([-half_x, y_front_skin - q.fov_anterior_air_mm, z_bot])
    y_back = (y_table0 + th + 8.0) if q.table else float(ysk.max()) + 10.0
    fov_hi = np.array([half_x, y_back, z_top])
    frames = dict(an.frames)
    frames.update({v.name: v.frame for v in uppers})
    derived = dict(an.derived)
    derived.update(fov_z_mm=float(z_top - z_bot), table_top_y_mm=float(y_table0))
    new = Anatomy(parts=parts, frames=frames, landmarks=lm, fov_lo=fov_lo, fov_hi=fov_hi,
                  body_centre=an.body_centre, derived=derived, internals=I)
    return new, TorsoInfo(femoral_heads=hips, metal=bool(metal), levels=levels)
