"""Lumbosacral anatomy (L4, L5, S1/sacrum, ilia, discs, dural sac, roots, soft tissue) as SDF parts.

Everything here lives in the *patient frame*: millimetres, axes as LPS (x = patient left,
y = posterior, z = superior), origin at the centre of the S1 superior endplate. The renderer later
applies the seeded pose (rotation, tilt, table position) to place it in the scanner.

:func:`build_anatomy` chains one builder per structure (:mod:`spinect_core.phantom.builders`):
frames -> pedicles (vertebrae) -> facets -> canal, sac -> roots -> soft tissue -> ilium ->
fat -> discs -> bones -> landmarks. A :class:`Part` is one paintable object: a function
returning named signed-distance arrays for patient-frame points, a conservative bounding box,
and layers saying which tissue, class label and instance each distance array paints. Parts are
returned in paint order (later wins).

The names below the imports (``Vertebra``, ``_facet``, ``disc_field_function``, ...) are kept for
:mod:`spinect_core.phantom.torso`, which extends this anatomy.
"""

from __future__ import annotations

from spinect_core.phantom.builders.bones import build_bones
from spinect_core.phantom.builders.canal import build_canal
from spinect_core.phantom.builders.discs import build_discs, disc_fields
from spinect_core.phantom.builders.facets import build_facets
from spinect_core.phantom.builders.facets import facet_joint as _facet  # noqa: F401
from spinect_core.phantom.builders.fat import build_foraminal_fat
from spinect_core.phantom.builders.frames import build_frames
from spinect_core.phantom.builders.ilium import build_ilium
from spinect_core.phantom.builders.landmarks import spine_landmarks
from spinect_core.phantom.builders.paint import paint_order
from spinect_core.phantom.builders.pedicles import build_vertebrae, procedural_spine
from spinect_core.phantom.builders.record import (  # noqa: F401
    SIDES, Anatomy, FieldFn, Layer, Part,
)
from spinect_core.phantom.builders.record import axis_frame as _axis_frame  # noqa: F401
from spinect_core.phantom.builders.record import box_of_points as _box_of_points  # noqa: F401
from spinect_core.phantom.builders.record import local_box as _local_box  # noqa: F401
from spinect_core.phantom.builders.roots import build_roots
from spinect_core.phantom.builders.sac import build_sac
from spinect_core.phantom.builders.soft_tissue import build_soft_tissue
from spinect_core.phantom.builders.vertebra import (  # noqa: F401
    Vertebra, sd_body,
)
from spinect_core.phantom.builders.vertebra import body_outline_radius as _outline_radius  # noqa: F401
from spinect_core.phantom.params import PhantomParams


def disc_field_function(low: Vertebra, up: Vertebra, bulge: float) -> FieldFn:
    """Signed-distance fields (mm, patient frame) of the disc between two procedural vertebrae
    (see :func:`spinect_core.phantom.builders.discs.disc_fields`)."""
    return disc_fields(low.geometry(), up.geometry(), bulge)


def build_anatomy(p: PhantomParams) -> Anatomy:
    """Assemble every part of the phantom from sampled parameters (patient frame)."""
    frames = build_frames(p)
    derived: dict[str, float] = dict(frames.derived)
    verts = build_vertebrae(p, frames)
    derived.update(verts.derived)
    facets = build_facets(p, verts)
    spine = procedural_spine(verts, p)
    canal = build_canal(spine)
    sac = build_sac(spine, width_mm=p.dural_sac_width_mm, depth_mm=p.dural_sac_depth_mm,
                    end_mm=p.dural_sac_end_mm)
    roots = build_roots(spine, sac, p)
    soft = build_soft_tissue(spine, p)
    body = soft.body
    ilium = build_ilium(spine, p, z_bottom=body.big[0][2])
    foramina = build_foraminal_fat(spine)
    discs = build_discs(spine)
    bones = build_bones(p, verts, ilium, list(roots.tubes))

    parts = paint_order(soft_tissue=soft.parts, muscle=ilium.muscle_parts, canal=canal.part,
                        capsules=facets.capsules, foraminal_fat=foramina.parts, roots=roots,
                        discs=discs.parts, bones=bones.parts, sac=sac.part,
                        body_box=body.part.bbox)
    lm: dict[str, object] = {}
    lm.update(facets.landmarks)
    lm["dural_sac_centreline"] = sac.line
    lm.update(roots.landmarks)
    lm.update(ilium.landmarks)
    lm.update(foramina.landmarks)
    lm.update(discs.landmarks)
    lm.update(spine_landmarks(frames))
    derived["skin_y_mm"] = float(body.y_skin)
    internals = {
        "vertebrae": verts.as_dict(), "bulge": p.disc_bulge_mm, "sac_w": sac.width_mm,
        "sac_d": sac.depth_mm, "sac_y": sac.y_mm, "canal_d": verts.canal_depth_mm,
        "y_skin": body.y_skin, "x_si": ilium.x_si, "t_wing": ilium.wing_thickness_mm,
        "sacrum_fields": bones.sacrum_fields, "ilium_fields": dict(ilium.fields),
        "ilium_geometry": ilium.geometry,
        "l4_wedge_deg": frames.l4_body_wedge_deg, "skin_thickness": body.skin_mm,
        "subcutaneous_fat": body.subcutaneous_fat_mm,
        "body_half_width": body.half_width, "body_half_depth": body.half_depth,
    }
    return Anatomy(parts=parts, frames=frames.as_dict(), landmarks=lm, fov_lo=body.fov_lo,
                   fov_hi=body.fov_hi, body_centre=body.centre, derived=derived, internals=internals)
