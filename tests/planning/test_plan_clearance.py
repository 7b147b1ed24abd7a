"""The needle's clearance reads the windows' surface (issue 18 part 2): each structure's signed
distance is :func:`spinect_core.planning.scene.signed_distance_mm`, the boundary on the voxel
faces, so the clearance to a voxelised edge is the distance to the voxel cubes, as a window's
edge is placed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.planning.scene import signed_distance_mm
from spinect_core.planning.trajectory import check_clearance
from spinect_core.volume import Volume

S = 1.0  # voxel size, mm


@pytest.fixture(scope="module")
def nerve_box() -> Volume:
    """Nerve voxels x <= 0, y <= 0 (LPS mm of voxel centres), all z: an edge along z whose
    cubes end at x = y = 0.5 mm."""
    arr = np.zeros((24, 24, 24), np.uint8)
    arr[:, :13, :13] = DEFAULT_LABELS.id_of("nerve")
    return Volume(array=arr, spacing_mm=(S, S, S), origin_lps_mm=(-12.0, -12.0, -12.0))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_clearance_to_a_voxel_edge_is_the_distance_to_the_cubes(nerve_box, k) -> None:
    # A needle along z through voxel centres k voxels diagonally off the edge's last voxel: the
    # nearest point of the nerve's cubes is their edge at (0.5, 0.5), (k - 0.5) sqrt(2) away.
    x = y = float(k)
    rep = check_clearance((x, y, 8.0), (x, y, -8.0), nerve_box, DEFAULT_LABELS)
    exact = (k - 0.5) * math.sqrt(2.0) * S
    assert rep.clearance_by_structure_mm["nerve"] == pytest.approx(exact, abs=1e-4)
    # The windows' own field reads the same number there.
    sdf = signed_distance_mm(nerve_box.array == DEFAULT_LABELS.id_of("nerve"), (S, S, S), 30.0)
    i = 12 + k
    assert float(sdf[12, i, i]) == pytest.approx(rep.clearance_by_structure_mm["nerve"], abs=1e-4)


def test_clearance_to_a_voxel_face_is_the_distance_to_the_face(nerve_box) -> None:
    # Along z at y = 3.3 over the middle of the face y = 0.5 (x = -6, far from the edge).
    rep = check_clearance((-6.0, 3.3, 8.0), (-6.0, 3.3, -8.0), nerve_box, DEFAULT_LABELS)
    assert rep.clearance_by_structure_mm["nerve"] == pytest.approx(3.3 - 0.5, abs=1e-4)
