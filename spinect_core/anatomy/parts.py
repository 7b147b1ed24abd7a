"""The parts map of the lumbosacral junction and how it is built from instance labels.

A *parts* map is a uint8 volume on the label grid whose ids are named by :data:`PARTS_TABLE`.
The planning code selects target and blockers by these names (target = ``L5`` body +
``disc_L5S1``; blockers = everything else), so the names are the contract; ids may change.

Input label tables are matched by name, case-insensitively, with a few common aliases
(TotalSegmentator's ``vertebrae_L5``, ``sacrum``, ``hip_left``, ...).
"""

from __future__ import annotations

import numpy as np

from spinect_core.errors import AnatomyError, InputError
from spinect_core.labels import LabelTable
# Names meaning one of the generic classes: the structure vocabulary's table (roots.py and the
# parts builders read it from here too).
from spinect_core.vocabulary import CLASS_ALIASES
from spinect_core.volume import Volume

#: Part names in id order (id 0 = background).
PART_NAMES = ("background", "L5", "S1", "disc_L5S1", "ilium_left", "ilium_right", "other_bone",
              "root_L5_left", "root_L5_right", "other_nerve", "dura", "disc_other")
#: The label table of :attr:`LumbosacralAnatomy.parts`.
PARTS_TABLE = LabelTable({i: n for i, n in enumerate(PART_NAMES)})
PART_ID = {n: i for i, n in enumerate(PART_NAMES)}
#: The parts that are bone.
BONE_PARTS = ("L5", "S1", "ilium_left", "ilium_right", "other_bone")

#: Part a voxel of a generic class falls into when nothing more specific is known.
CLASS_TO_PART = {"bone": "other_bone", "nerve": "other_nerve", "disc": "disc_other",
                 "dura": "dura"}

#: Accepted instance names (lower case) for the specific parts.
ALIASES: dict[str, tuple[str, ...]] = {
    "L5": ("l5", "vertebrae_l5", "vertebra_l5"),
    "S1": ("s1", "sacrum", "vertebrae_s1", "vertebra_s1"),
    "disc_L5S1": ("disc_l5s1", "disc_l5_s1", "l5s1_disc", "intervertebral_disc_l5_s1"),
    "ilium_left": ("ilium_left", "hip_left", "iliac_left", "ilium_l"),
    "ilium_right": ("ilium_right", "hip_right", "iliac_right", "ilium_r"),
    "root_L5_left": ("root_l5_left", "nerve_l5_left", "l5_root_left"),
    "root_L5_right": ("root_l5_right", "nerve_l5_right", "l5_root_right"),
    "dura": ("dura", "dural_sac", "thecal_sac"),
}


def find_ids(table: LabelTable, aliases: tuple[str, ...]) -> list[int]:
    """Ids of ``table`` whose lower-cased name is one of ``aliases`` (id 0 never)."""
    wanted = set(aliases)
    return [i for i, n in table.names.items() if i != 0 and n.lower() in wanted]


def class_masks(labels: Volume, table: LabelTable) -> dict[str, np.ndarray]:
    """Boolean (nz, ny, nx) masks of the generic classes ``bone``, ``nerve``, ``disc``, ``dura``.

    A class absent from the table gives an all-False mask.
    """
    arr = labels.array
    out = {}
    for cls, aliases in CLASS_ALIASES.items():
        ids = find_ids(table, aliases)
        out[cls] = np.isin(arr, ids) if ids else np.zeros(arr.shape, bool)
    return out


def _instance_class(name: str, votes: dict[str, int]) -> str:
    """Generic class of an unknown instance: the label map's majority, else its name."""
    if votes and max(votes.values()) > 0:
        return max(votes, key=votes.get)
    low = name.lower()
    if "root" in low or "nerve" in low:
        return "nerve"
    if "disc" in low:
        return "disc"
    if "dura" in low or "sac" in low:
        return "dura"
    return "bone"


def has_level_instances(instance_table: LabelTable | None) -> bool:
    """True when the instance table names both L5 and S1 (or the sacrum)."""
    if instance_table is None:
        return False
    return bool(find_ids(instance_table, ALIASES["L5"])) and bool(
        find_ids(instance_table, ALIASES["S1"]))


def parts_from_instances(labels: Volume, table: LabelTable, instances: Volume,
                         instance_table: LabelTable) -> np.ndarray:
    """Build the parts map directly from per-level instance labels.

    Parameters
    ----------
    labels : Volume
        Class label map (bone, nerve, disc, dura, ...), shape (nz, ny, nx).
    table : LabelTable
        Its table.
    instances : Volume
        Instance map on the same grid.
    instance_table : LabelTable
        Must name ``L5`` and ``S1`` (or aliases, see :data:`ALIASES`).

    Returns
    -------
    np.ndarray, shape (nz, ny, nx), uint8
        Ids of :data:`PARTS_TABLE`. Instances with other names (L4, disc_L4L5, root_S1_left, ...)
        go to ``other_bone`` / ``other_nerve`` / ``disc_other`` / ``dura`` by the class the label
        map gives most of their voxels; labelled voxels without an instance go by their class.
    """
    if not labels.same_grid(instances):
        raise InputError("the instance map is not on the label map's grid; resample it first")
    if not has_level_instances(instance_table):
        raise AnatomyError("the instance labels name no L5 and S1/sacrum: L5/S1 is not in the field "
                           "of view or not labelled; provide labels that include L5 and the sacrum")
    masks = class_masks(labels, table)
    parts = np.zeros(labels.array.shape, np.uint8)
    for cls, mask in masks.items():
        parts[mask] = PART_ID[CLASS_TO_PART[cls]]
    inst = instances.array
    specific = {i: part for part, al in ALIASES.items() for i in find_ids(instance_table, al)}
    present = set(np.unique(inst).tolist()) - {0}
    for i in sorted(present):
        if i not in instance_table.names:
            raise InputError(f"instance id {i} is not in the instance table")
        sel = inst == i
        if i in specific:
            parts[sel] = PART_ID[specific[i]]
            continue
        votes = {cls: int(np.count_nonzero(m[sel])) for cls, m in masks.items()}
        parts[sel] = PART_ID[CLASS_TO_PART[_instance_class(instance_table.name_of(i), votes)]]
    return parts
