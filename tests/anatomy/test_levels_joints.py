"""The parts of a label map a voxel wider than the bone (the CT bone model's): the facet joints
it bridges part L5 from its neighbours where the CT shows them (issue 12: the plan from the
segmentation agrees with the plan from the true labels)."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy import identify_lumbosacral
from spinect_core.anatomy.levels import LevelOptions, _joint_spaces, _seedable
from spinect_core.labels import DEFAULT_LABELS


def test_joint_spaces_mark_a_bridged_gap_and_not_wide_marrow() -> None:
    hu = np.full((20, 20, 40), 40.0, np.float32)
    bone = np.zeros(hu.shape, bool)
    # Two cortical plates 3 voxels thick with a 1-voxel joint between them, which the labels
    # fill; the joint reads 300 HU (partial volume of the plates and the joint's tissue).
    hu[4:16, 4:16, 4:7] = 1000.0
    hu[4:16, 4:16, 7] = 300.0
    hu[4:16, 4:16, 8:11] = 1000.0
    bone[4:16, 4:16, 4:11] = True
    # A body: 1-voxel cortex around 10 voxels of 150 HU marrow.
    hu[4:16, 4:16, 20:32] = 1000.0
    hu[5:15, 5:15, 21:31] = 150.0
    bone[4:16, 4:16, 20:32] = True
    joints = _joint_spaces(hu, bone, np.ones(3), reach_mm=2.0)
    assert joints[5:15, 5:15, 7].all()
    assert not joints[5:15, 5:15, 4:7].any() and not joints[5:15, 5:15, 8:11].any()
    # Only the marrow's outer shell (within reach of the cortex on both sides of some axis:
    # none here, the marrow is 10 wide) could be marked.
    assert not joints[7:13, 7:13, 23:29].any()
    assert not joints[~bone].any()


@pytest.fixture(scope="module")
def ct_bone_case():
    """Procedural phantom seed 2 at 1 mm, its true labels with the bone replaced by the CT bone
    model's, and the landmarks planned from its per-level instances."""
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.phantom import generate_phantom

    ph = generate_phantom(seed=2, spacing_mm=(1.0, 1.0, 1.0))
    bone_id = DEFAULT_LABELS.id_of("bone")
    arr = ph.labels.array.copy()
    arr[arr == bone_id] = 0
    arr[segment_bone_from_ct(ph.ct).mask.array > 0] = bone_id
    truth = identify_lumbosacral(ph.labels, DEFAULT_LABELS, instances=ph.instances,
                                 instance_table=ph.instance_table, ct=ph.ct)
    return ph, ph.labels.with_array(arr), truth


@pytest.mark.parametrize("side", ["left", "right"])
def test_ct_bone_labels_keep_l5s_arch_and_pedicles(ct_bone_case, side) -> None:
    # Before the joints parted the arch, both pedicle centres were found 11-13 mm off (the
    # arch went to S1 through the bridged facets and the ala) and the foramina 11 mm off.
    ph, labels, truth = ct_bone_case
    found = identify_lumbosacral(labels, DEFAULT_LABELS, ct=ph.ct)
    t, f = truth.sides[side], found.sides[side]
    assert np.linalg.norm(f.pedicle_centre_lps - t.pedicle_centre_lps) <= 4.0
    assert np.linalg.norm(f.foramen_centre_lps - t.foramen_centre_lps) <= 4.0


def _block_core() -> tuple[np.ndarray, np.ndarray]:
    """A bone block 40 x 40 x 60 voxels (1 mm) and its core (label 1: deeper than 7 mm)."""
    from scipy import ndimage as ndi

    bone = np.zeros((50, 50, 70), bool)
    bone[5:45, 5:45, 5:65] = True
    core = (ndi.distance_transform_edt(bone) >= LevelOptions().core_mm).astype(np.int32)
    return bone, core


def test_a_joint_across_a_core_ends_it() -> None:
    # Two articular processes and the facet joint between them, filled by thick labels, make
    # one mass deep enough for a core; the joint (a sheet the CT shows) is its surface, so the
    # core's voxels within 7 mm of it seed nothing (the bone beyond is flooded from its own
    # core or from across the joint, as the watershed's elevation decides).
    bone, core = _block_core()
    joints = np.zeros_like(bone)
    joints[5:45, 5:45, 45] = True
    seed = _seedable(core, bone, joints, np.ones(3), LevelOptions())
    x = np.nonzero(seed)[2]
    assert seed.any() and not seed[..., 39:52].any()
    assert set(np.unique(x)) == set(range(11, 39)) | set(range(52, 59))
    assert not (seed & ~(core > 0)).any()


def test_dark_trabecular_spots_do_not_take_a_bodys_core() -> None:
    # _joint_spaces also marks dark spots between brighter trabeculae in marrow (single voxels,
    # small clusters): taken as surface they left a real-bone phantom's L5 no core voxel. A
    # core that loses most of its voxels so is taken with only large joint spaces as surface.
    bone, core = _block_core()
    rng = np.random.default_rng(0)
    spots = bone & (rng.random(bone.shape) < 0.03)
    seed = _seedable(core, bone, spots, np.ones(3), LevelOptions())
    np.testing.assert_array_equal(seed, core > 0)
    # With a joint sheet as well, the sheet still ends the core and the spots do not.
    joints = spots.copy()
    joints[5:45, 5:45, 45] = True
    seed = _seedable(core, bone, joints, np.ones(3), LevelOptions())
    x = np.indices(bone.shape)[2]
    assert not seed[..., 39:52].any()
    # (Spots touching the sheet join it, and end the core a voxel or two further out.)
    far = (x <= 32) | (x >= 57)
    np.testing.assert_array_equal(seed[far], (core > 0)[far])


@pytest.mark.slow
def test_ct_bone_labels_keep_l5s_arch_on_real_bones() -> None:
    # Real-bone phantom seed 100 at 1 mm with the CT bone model's bone: the articular processes
    # and their filled facet joint gave S1 a core inside L5's inferior articular processes,
    # and S1 took L5's laminae and spinous process (10951 voxels of L5 in S1; pedicle centres
    # 7.8 / 8.7 mm off). With the joints ending the cores: none, 1.9 / 1.4 mm.
    from spinect_core.anatomy.parts import PART_ID
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.phantom import PhantomOptions, generate_phantom

    ph = generate_phantom(seed=100, spacing_mm=(1.0, 1.0, 1.0),
                          options=PhantomOptions(anatomy="real"))
    bone_id = DEFAULT_LABELS.id_of("bone")
    arr = ph.labels.array.copy()
    arr[arr == bone_id] = 0
    bone = segment_bone_from_ct(ph.ct).mask.array > 0
    arr[bone] = bone_id
    truth = identify_lumbosacral(ph.labels, DEFAULT_LABELS, instances=ph.instances,
                                 instance_table=ph.instance_table, ct=ph.ct)
    found = identify_lumbosacral(ph.labels.with_array(arr), DEFAULT_LABELS, ct=ph.ct)
    true_l5 = (ph.instances.array == ph.instance_table.id_of("L5")) & bone
    assert np.count_nonzero(true_l5 & (found.parts.array == PART_ID["S1"])) < 500
    for side in ("left", "right"):
        t, f = truth.sides[side], found.sides[side]
        assert np.linalg.norm(f.pedicle_centre_lps - t.pedicle_centre_lps) <= 4.0
        assert np.linalg.norm(f.foramen_centre_lps - t.foramen_centre_lps) <= 4.0
