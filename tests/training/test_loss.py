import numpy as np
import torch

from spinect_core.training import SegmentationLoss, class_weights


def test_median_frequency_weights():
    w = class_weights([900, 90, 10])
    np.testing.assert_allclose(w, [0.1, 1.0, 9.0], rtol=1e-5)
    assert class_weights([900, 100, 0])[2] == 100.0  # absent class: clipped, not infinite
    np.testing.assert_array_equal(class_weights([5, 5], scheme="none"), [1, 1])


def test_losses_fall_when_prediction_matches():
    target = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    target[0, 1:3, 1:3, 1:3] = 1
    good = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float() * 10
    bad = torch.zeros_like(good)
    for kind in ("ce", "dice_ce"):
        loss = SegmentationLoss(kind=kind, weights=[0.5, 1.0, 2.0])
        assert loss(good, target) < loss(bad, target)
        assert set(loss.last_terms) == ({"ce"} if kind == "ce" else {"ce", "dice"})
