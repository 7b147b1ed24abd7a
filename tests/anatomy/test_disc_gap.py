"""The unlabelled L5/S1 gap stays in front of the bodies' posterior wall (analytic boxes, known
answer).

TotalSegmentator's real 3 mm CT cropped below L2: the sacrum's core lay behind its body (its
canal and foramina filled with fatty marrow), S1's body reached up behind L5, and the gap taken
for the disc ran up along L5's back (disc centre 7.8 mm off; 4.1 mm with the bound).

A disc labelled in part is completed with the soft tissue of that gap (``_disc_completed``).
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy.levels import _disc_completed, _gap_between, _not_behind

SP = np.array([1.0, 1.0, 1.0])


def _bodies():
    """(z, y, x) on a 1 mm grid, y anterior with the index (step +1): L5's body above a 10 mm
    gap, S1's body below it, and a column of S1 bone rising behind L5 with 6 mm of free space
    between it and L5's back."""
    shape = (80, 80, 40)
    l5 = np.zeros(shape, bool)
    s1 = np.zeros(shape, bool)
    l5[45:70, 30:65, 5:35] = True             # posterior wall at y = 30
    s1[10:35, 28:65, 5:35] = True
    s1[10:62, 14:24, 5:35] = True             # behind L5's wall, up to its middle
    free = ~(l5 | s1)
    return l5, s1, free


def test_the_gap_behind_l5_is_not_the_disc() -> None:
    l5, s1, free = _bodies()
    unbounded = _gap_between(free, l5, s1, SP)
    assert unbounded is not None and unbounded[:, :27, :].any()     # up along L5's back
    bounded = _gap_between(free & _not_behind(l5, (1, 1), SP, 3.0), l5, s1, SP)
    assert bounded is not None
    assert not bounded[:, :27, :].any()
    # The disc between the two bodies is all there.
    assert bounded[36:44, 32:63, 8:32].all()


@pytest.mark.parametrize("step", [1, -1])
def test_not_behind_follows_the_anterior_direction(step) -> None:
    body = np.zeros((5, 20, 5), bool)
    body[:, 8:12, :] = True
    keep = _not_behind(body, (1, step), np.array([1.0, 2.0, 1.0]), 4.0)   # 2 voxels
    ys = np.nonzero(keep[0, :, 0])[0]
    if step > 0:                              # anterior is +y: behind is below index 8
        assert ys.min() == 6 and ys.max() == 19
    else:                                     # anterior is -y: behind is above index 11
        assert ys.min() == 0 and ys.max() == 13
    assert _not_behind(np.zeros((3, 3, 3), bool), (1, 1), SP, 3.0).all()


def _disc_between_boxes():
    """L5's body over a 10 mm gap over S1's body (1 mm grid): the gap is all soft tissue."""
    shape = (60, 50, 50)
    l5 = np.zeros(shape, bool)
    s1 = np.zeros(shape, bool)
    l5[35:55, 10:40, 10:40] = True
    s1[5:25, 10:40, 10:40] = True
    soft = ~(l5 | s1)
    return l5, s1, soft


def test_a_disc_labelled_at_one_edge_is_completed_with_the_soft_tissue_between_the_bodies():
    """A patient-like phantom at 3 mm: the network labelled 48 voxels at its disc's right edge
    and the plan was 11 mm off; the soft tissue between the bodies completes it."""
    l5, s1, soft = _disc_between_boxes()
    edge = np.zeros_like(soft)
    edge[25:35, 10:40, 10:14] = True                # a 4 mm strip of a 30 mm wide disc
    done = _disc_completed(edge, soft & ~edge, l5, s1, SP, min_fraction=0.4)
    assert done[25:35, 12:38, 12:38].all() and done[edge].all()
    centre_x = np.nonzero(done)[2].mean()
    assert abs(centre_x - 24.5) < 1.0               # the bodies' middle, not the strip's (11.5)


def test_a_disc_labelled_whole_is_left_as_it_is():
    l5, s1, soft = _disc_between_boxes()
    whole = np.zeros_like(soft)
    whole[25:35, 10:40, 10:40] = True               # all the space between the bodies
    done = _disc_completed(whole, soft & ~whole, l5, s1, SP, min_fraction=0.4)
    assert (done == whole).all()
    # Without soft tissue between the bodies (fat, canal fluid): nothing to add.
    part = np.zeros_like(soft)
    part[25:35, 10:40, 10:14] = True
    assert (_disc_completed(part, np.zeros_like(soft), l5, s1, SP, min_fraction=0.4) == part).all()
