"""The benchmark of L5's landmarks from the CT bone model's bone (``benchmarks/landmarks_ct_bone.py``)."""

from __future__ import annotations

import numpy as np

from tests.benchmarks import load_benchmark

landmarks_ct_bone = load_benchmark("landmarks_ct_bone")


def test_thick_bone_takes_the_nearest_true_instance():
    # Two bones (ids 1 and 2) two voxels apart on a line, a disc (id 7) between them; the thick
    # bone fills the gap and misses one true voxel of bone 2.
    ins = np.zeros((1, 1, 8), np.uint8)
    ins[0, 0, :3] = 1
    ins[0, 0, 3] = 7
    ins[0, 0, 5:] = 2
    bone = np.zeros(ins.shape, bool)
    bone[0, 0, :7] = True
    out = landmarks_ct_bone.nearest_instances(ins, [1, 2], bone)
    np.testing.assert_array_equal(out[0, 0], [1, 1, 1, 1, 2, 2, 2, 0])


def test_the_summary_counts_sides_with_both_landmarks_within_reach():
    recs = [{"seed": 0, "left": {"pedicle_centre": 1.0, "foramen_centre": 3.9,
                                  "arch_warned": False},
             "right": {"pedicle_centre": 4.5, "foramen_centre": 0.2, "arch_warned": True}},
            {"seed": 1, "refused": "no sacrum"}]
    out = landmarks_ct_bone.summary(recs)
    assert (out["sides"], out["within"], out["worst_mm"], out["refused"]) == (2, 1, 4.5, [1])
    assert (out["off_warned"], out["within_warned"]) == (1, 0)
