"""One builder per structure of the lumbosacral phantom, and the typed records between them.

Everything is in the *patient frame*: millimetres, LPS axes (x = patient left, y = posterior,
z = superior), origin at the centre of the S1 superior endplate. Every builder returns
:class:`~spinect_core.phantom.builders.record.Part` objects (signed-distance fields, a box and the
layers they paint) and the landmarks of what it built; :func:`spinect_core.phantom.anatomy.build_anatomy`
chains them and puts the parts in paint order.

Builders and what they read
---------------------------
====================  ======================================================  ==========================
module                builds                                                  reads
====================  ======================================================  ==========================
``frames``            S1, L5, L4 frames (sacral slope, wedges)                 params
``pedicles``          the procedural vertebrae, pedicles from foramen heights  params, Frames
``facets``            articular processes, joint capsules                      params, Vertebrae
``canal``             canal centreline and epidural fat                        Spine
``sac``               dural sac (dura, CSF)                                    Spine, sac sizes
``roots``             exiting L4/L5 roots with ganglia, traversing S1 roots    Spine, Sac, params
``soft_tissue``       body/skin, field of view, bowel, muscles, vessels        Spine, params
``ilium``             iliac wings and the muscle around them                   Spine, params
``fat``               foraminal fat                                            Spine
``discs``             L5/S1 and L4/L5 discs (annulus, nucleus)                 Spine
``bones``             L4, L5, sacrum, ilia (cortex, cancellous), carving       Vertebrae, Ilium, roots
``landmarks``         endplate centre/normals, body centres                    Frames
``paint``             the paint order of all parts (both anatomies)            every builder's parts
====================  ======================================================  ==========================

Named parameters
----------------
Sampled values (sizes that vary between patients) come from
:class:`~spinect_core.phantom.params.PhantomParams`. Every fixed number of a structure's shape is
a field of a frozen keyword-only dataclass beside its builder, with its unit and reason
(``CanalShape``, ``SacShape``, ``RootShape``, ``DiscShape``, ``ForaminalFatShape``,
``SoftTissueShape``, ``IliumShape``, ``FacetShape``, ``VertebraeShape``, ``PosteriorShape``,
``SacrumShape``, ``FrameLimits``); the module-level default instance (``CANAL``, ``SAC``, ``ROOT``,
...) is what the phantom uses, and every builder takes another as its last argument, e.g.
``build_discs(spine, DiscShape(nucleus_inset_mm=6.0))``.

Using the soft-tissue builders with other bones
-----------------------------------------------
The canal, sac, roots, soft-tissue, ilium, fat and disc builders never look at how the bones
were made: they read a :class:`~spinect_core.phantom.builders.record.Spine`, a record of one
:class:`~spinect_core.phantom.builders.record.VertebraGeometry` per level (``"L4"``, ``"L5"``,
``"S1"``) plus the disc bulge and posterior disc heights. A caller with other bones (meshes of
real vertebrae) measures, per vertebra:

* ``frame``: origin at the body centre, z along the body axis (from the inferior to the superior
  endplate centre), y posterior (the endplate's AP axis), x = y cross z (patient left);
* body width, depth and height (posterior wall at local y = depth / 2, endplate centres at
  local z = +-height / 2), the interpedicular distance (``canal_width_mm``) and canal depth;
* per pedicle: width, height, local z of its lower margin and its local centre; the
  transverse process tips (L4, L5);
* ``superior_endplate(x, y)`` / ``inferior_endplate(x, y)``: local z of the endplate surfaces
  (e.g. interpolated from the mesh), and ``outline(x, y, width, depth)``: the body's axial
  outline as a 2D signed distance scaled to a size (e.g. a measured polygon scaled), which the
  discs and the roots' posterolateral rim use.

Then, for instance::

    spine = Spine(vertebrae={"L4": g4, "L5": g5, "S1": g1}, disc_bulge_mm=p.disc_bulge_mm,
                  disc_posterior_height_mm={"L5S1": 6.0, "L4L5": 7.5})
    sac = build_sac(spine, width_mm=p.dural_sac_width_mm, depth_mm=p.dural_sac_depth_mm,
                    end_mm=p.dural_sac_end_mm)
    roots = build_roots(spine, sac, p)        # the root passes under the given pedicle
    discs = build_discs(spine)                # between the given endplates
    fat = build_foraminal_fat(spine)          # between the given pedicles
    soft = build_soft_tissue(spine, p)        # body, bowel, muscles, vessels
    canal = build_canal(spine)

``p`` is a :class:`~spinect_core.phantom.params.PhantomParams` (``sample_params(seed)``); these
builders read only its soft-tissue fields (sac, roots, skin, fat, field of view), never the
procedural bones' sizes. Bone parts (``Part`` with layers ``cortical``/``cancellous`` and
``carve=[(root name, 1.0, 1.0), ("canal", 0.0, 0.0)]``) come from the caller; put every part in
the one paint order, :func:`~spinect_core.phantom.builders.paint.paint_order` (soft tissue, fat
and ligaments, discs, bones, nerves, sac), so that nerves and sac win over bone.
"""

from spinect_core.phantom.builders.canal import CANAL, Canal, CanalShape, build_canal
from spinect_core.phantom.builders.discs import DISC, Discs, DiscShape, build_discs, disc_fields
from spinect_core.phantom.builders.fat import (
    FORAMINAL_FAT, ForaminalFat, ForaminalFatShape, build_foraminal_fat, foramen_span,
)
from spinect_core.phantom.builders.paint import paint_order
from spinect_core.phantom.builders.record import (
    SIDES, Anatomy, Layer, Part, Spine, VertebraGeometry,
)
from spinect_core.phantom.builders.roots import ROOT, Roots, RootShape, build_roots
from spinect_core.phantom.builders.sac import SAC, Sac, SacShape, build_sac
from spinect_core.phantom.builders.soft_tissue import (
    SOFT_TISSUE, Body, SoftTissue, SoftTissueShape, build_body, build_bowel, build_muscles,
    build_soft_tissue, build_vessels,
)

__all__ = [
    "CANAL", "DISC", "FORAMINAL_FAT", "ROOT", "SAC", "SIDES", "SOFT_TISSUE", "Anatomy", "Body",
    "Canal", "CanalShape", "DiscShape", "Discs", "ForaminalFat", "ForaminalFatShape", "Layer",
    "Part", "RootShape", "Roots", "Sac", "SacShape", "SoftTissue", "SoftTissueShape", "Spine",
    "VertebraGeometry", "build_body", "build_bowel", "build_canal", "build_discs",
    "build_foraminal_fat", "build_muscles", "build_roots", "build_sac", "build_soft_tissue",
    "build_vessels", "disc_fields", "foramen_span", "paint_order",
]
