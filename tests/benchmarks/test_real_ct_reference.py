"""The real-CT benchmark's reference L5/S1 disc centre (``benchmarks/real_ct_reference.py``)."""

from __future__ import annotations

import numpy as np

from spinect_core.volume import Volume
from tests.benchmarks import load_benchmark

real_ct_reference = load_benchmark("real_ct_reference")


def _boxes(shape: tuple[int, int, int], origin_lps_mm: tuple[float, float, float]):
    """A 1 mm grid of ``shape`` (z, y, x) at ``origin_lps_mm``, and a maker of boxes on it from
    LPS mm ranges (x, y, z: each (low, high), high excluded)."""
    grid = Volume(array=np.zeros(shape, np.uint8), spacing_mm=(1.0, 1.0, 1.0),
                  origin_lps_mm=origin_lps_mm)
    ox, oy, oz = (-int(v) for v in origin_lps_mm)

    def box(x, y, z):
        m = np.zeros(shape, bool)
        m[z[0] + oz:z[1] + oz, y[0] + oy:y[1] + oy, x[0] + ox:x[1] + ox] = True
        return m

    return grid, box


def test_the_reference_disc_centre_is_the_middle_of_the_whole_disc():
    """L5 (a body with a spinous process behind its canal) 10 mm above a sacrum of the same
    section: the disc's centre is the middle of the space between the bodies, not its front
    half (the reference once cut "in front of the canal" at the median of the whole L5 mask,
    inside the body, and lost the disc's back half)."""
    grid, box = _boxes((70, 80, 60), (-30.0, -30.0, -30.0))

    l5 = box((-20, 20), (-15, 15), (10, 35)) | box((-4, 4), (25, 45), (15, 35))
    sacrum = box((-20, 20), (-15, 15), (-25, 0)) | box((-10, 10), (25, 40), (-25, 0))
    centre = np.asarray(real_ct_reference.reference_disc_centre(l5, sacrum, grid))
    # Voxel centres of the 10 mm gap (z 0..9) span x -20..19, y -15..14: its middle is -0.5.
    # The gap's rim in front of the bodies counts as between them, the back one is cut at the
    # wall: up to 3 mm forward. The old cut, 5 mm in front of the L5 mask's median, gave -10.
    assert abs(centre[0] + 0.5) < 1.0 and abs(centre[2] - 4.5) < 1.0
    assert -4.0 < centre[1] < 0.0


def test_the_space_between_a_transverse_process_and_the_ala_is_not_disc():
    """The same L5 with a transverse process on its left reaching down towards a sacral ala
    (8 mm apart, beside the body): that space lies between the two masks too, but not between
    the bodies; the centre stays at the disc's middle (on TotalSegmentator's example CT such
    space put the reference 4.2 mm right of L5's centroid)."""
    grid, box = _boxes((70, 80, 100), (-50.0, -30.0, -30.0))

    body = box((-20, 20), (-15, 15), (10, 35))
    l5 = body | box((-4, 4), (25, 45), (15, 35)) | box((20, 45), (0, 10), (20, 30))
    sacrum = (box((-20, 20), (-15, 15), (-25, 0)) | box((-10, 10), (25, 40), (-25, 0))
              | box((20, 45), (-10, 12), (-25, 12)))
    centre = np.asarray(real_ct_reference.reference_disc_centre(l5, sacrum, grid))
    assert abs(centre[0] + 0.5) < 1.5 and abs(centre[2] - 4.5) < 1.5


def test_landmarks_of_a_phantom_s_labels_agree_with_those_of_its_own_instances():
    """A phantom's labels against its per-level instances given as reference masks (named as
    TotalSegmentator names them): the levels derived from the labels' bone find the same L5/S1
    within a few millimetres. The reference's disc is the space between its L5 and sacrum masks
    (without it the reference endplate is where those masks touch: at the facet joints)."""
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.phantom import generate_phantom
    from spinect_core.phantom.params import PhantomOptions

    ph = generate_phantom(seed=0, spacing_mm=(1.5, 1.5, 1.5),
                          options=PhantomOptions(blur=False, noise=False, streaks=False,
                                                 texture=False))
    ins = np.asarray(ph.instances.array)
    masks = {key: ins == ph.instance_table.id_of(name)
             for key, name in real_ct_reference.REFERENCE_INSTANCES.items()}
    assert all(m.any() for m in masks.values())
    out = real_ct_reference.landmark_errors(ph.ct, masks, ph.labels, DEFAULT_LABELS)

    assert "error" not in out, out
    assert out["disc_centre_mm"] < 3.5 and out["s1_normal_deg"] < 6.0
    for side in ("left", "right"):
        assert set(out[side]) == {"pedicle_centre_mm", "pedicle_lower_margin_mm",
                                  "foramen_centre_mm"}
        assert max(out[side].values()) < 4.0, (side, out[side])
