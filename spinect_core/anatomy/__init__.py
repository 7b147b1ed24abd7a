"""Lumbosacral anatomy from labels: L5, S1, the L5/S1 disc, endplate, pedicles, foramina, roots.

Entry point: :func:`identify_lumbosacral`, which returns a :class:`LumbosacralAnatomy` (a parts
map named by :data:`PARTS_TABLE` plus LPS landmarks and per-side :class:`LocalFrame`\\ s).
"""

from spinect_core.anatomy.frames import LocalFrame, side_frame
from spinect_core.anatomy.identify import AnatomyOptions, LumbosacralAnatomy, identify_lumbosacral
from spinect_core.anatomy.landmarks import SideAnatomy
from spinect_core.anatomy.levels import LevelOptions
from spinect_core.anatomy.parts import PART_NAMES, PARTS_TABLE

__all__ = ["AnatomyOptions", "LevelOptions", "LocalFrame", "LumbosacralAnatomy", "PART_NAMES",
           "PARTS_TABLE", "SideAnatomy", "identify_lumbosacral", "side_frame"]
