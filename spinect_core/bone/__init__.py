"""Bone from the CT itself: a model-free bone segmentation and its uses.

* :func:`segment_bone_from_ct` (``ct_model``): bone of any CT from its own histogram (hysteresis
  from cortical seeds into cancellous bone, closed shells filled), with the table, contrast-filled
  vessels and organs, calcified plaque and bowel contrast rejected;
* :func:`combine_bone` (``fusion``): the bone class of a network's label map replaced by the CT's
  bone (``"ct"``) or fused with it (``"fused"``);
* the agreement check between a network's bone and the CT's bone per level lives in
  ``agreement``;
* metal in the CT (``metal``): pieces of 2500 HU or more and their distance to a point, whose
  streaks make the bone and roots found near them unreliable.
"""

from spinect_core.bone.ct_model import CTBone, CTBoneOptions, segment_bone_from_ct
from spinect_core.bone.fusion import BONE_MODES, BoneMode, FusionOptions, combine_bone

__all__ = ["BONE_MODES", "BoneMode", "CTBone", "CTBoneOptions", "FusionOptions", "combine_bone",
           "segment_bone_from_ct"]
