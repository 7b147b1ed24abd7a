"""Landmarks builder: endplate centre and normals and body centres from the vertebra frames.

The other landmarks (facets, foramina, pedicles, roots, discs, iliac crests, transverse tips)
come from the builder that makes the structure; :func:`spine_landmarks` adds the frame ones.
"""

from __future__ import annotations

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.builders.frames import Frames


def spine_landmarks(frames: Frames) -> dict[str, np.ndarray]:
    """S1 superior endplate centre (the patient-frame origin) and normal, L5 inferior endplate
    normal (L5's axis tilted by half its body wedge) and the L5, L4, S1 body centres (mm)."""
    return {
        "s1_superior_endplate_centre": np.zeros(3),
        "s1_superior_endplate_normal": frames.s1.R[:, 2].copy(),
        "l5_inferior_endplate_normal": (frames.l5.R @ S.rot_x(0.5 * frames.l5_body_wedge_deg))[:, 2],
        "l5_body_centre": frames.l5.t.copy(),
        "l4_body_centre": frames.l4.t.copy(),
        "s1_body_centre": frames.s1.t.copy(),
    }
