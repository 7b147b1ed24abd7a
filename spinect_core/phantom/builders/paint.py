"""The paint order of the phantom's parts: the one list both anatomies (procedural and real) use.

Parts are painted in list order and a later part wins where two overlap, so the order is what
makes nerves and the dural sac win over bone, bone over discs, and discs over fat and soft tissue.
All parts are in the patient frame (mm, LPS axes, origin at the S1 superior endplate's centre).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spinect_core.phantom.builders.record import Part
from spinect_core.phantom.builders.roots import Roots


def paint_order(*, soft_tissue: Sequence[Part], muscle: Sequence[Part], canal: Part,
                capsules: Sequence[Part], foraminal_fat: Sequence[Part], roots: Roots,
                discs: Sequence[Part], bones: Sequence[Part], sac: Part,
                body_box: tuple[np.ndarray, np.ndarray]) -> list[Part]:
    """Every part of the phantom in paint order (later wins).

    1. soft tissue (body, skin, fat, bowel, muscles, vessels), then the muscle around the ilia;
    2. the canal's epidural fat, the facet joint capsules (none on the real bones: their joint
       space is left as the tissue around it), the foraminal fat and the roots' fat sleeves;
    3. the discs, then the bones (carved around the roots and the canal);
    4. the nerves (drawn from the sleeves' cached fields, over ``body_box``: the body's patient
       frame box, (lo (3,), hi (3,)) mm), then the dural sac on top of everything.

    Returns
    -------
    list of Part
    """
    return (list(soft_tissue) + list(muscle) + [canal] + list(capsules) + list(foraminal_fat)
            + roots.fat_sleeves() + list(discs) + list(bones) + roots.nerve_parts(body_box)
            + [sac])
