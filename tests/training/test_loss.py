import numpy as np
import torch
from torch.nn import functional as F

from spinect_core.training import (
    UNLABELLED, PreparedCase, SegmentationLoss, class_voxel_counts, class_weights,
)
from spinect_core.training.loss import soft_dice_loss


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


# --- unlabelled voxels (255) ------------------------------------------------------------------

def _partial_target(seed=0, shape=(2, 6, 8, 8), classes=3):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, shape, generator=g)
    unlabelled = torch.rand(shape, generator=g) < 0.4
    return target.masked_fill(unlabelled, UNLABELLED), unlabelled


def test_loss_ignores_unlabelled_voxels():
    target, unlabelled = _partial_target()
    safe = target.masked_fill(unlabelled, 0)
    perfect = F.one_hot(safe, 3).movedim(-1, 1).float() * 8.0
    # wrong only where nothing is labelled: confidently another class than the one hidden there
    other = F.one_hot((safe + 1) % 3, 3).movedim(-1, 1).float() * 8.0
    wrong = torch.where(unlabelled.unsqueeze(1), other, perfect)
    assert (wrong.argmax(1)[unlabelled] != safe[unlabelled]).all()
    for kind in ("ce", "dice_ce"):
        loss = SegmentationLoss(kind=kind, weights=[0.5, 1.0, 2.0])
        a, b = loss(perfect, target), loss(wrong, target)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        assert torch.isfinite(a)
        # ... while the same error on labelled voxels does cost
        assert loss(wrong, safe) > a + 0.1


def test_cross_entropy_is_the_weighted_mean_over_labelled_voxels():
    target, unlabelled = _partial_target(seed=1)
    logits = torch.randn(2, 3, 6, 8, 8, generator=torch.Generator().manual_seed(2))
    w = torch.tensor([0.5, 1.0, 2.0])
    got = SegmentationLoss(kind="ce", weights=w.tolist())(logits, target)
    keep = ~unlabelled
    flat_logits = logits.movedim(1, -1)[keep]  # (n, C) of the labelled voxels only
    expected = F.cross_entropy(flat_logits, target[keep], weight=w)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_soft_dice_leaves_unlabelled_voxels_out():
    target, unlabelled = _partial_target(seed=3)
    logits = torch.randn(2, 3, 6, 8, 8, generator=torch.Generator().manual_seed(4))
    probs = torch.softmax(logits, 1).movedim(1, -1)[~unlabelled]  # (n, C)
    onehot = F.one_hot(target[~unlabelled], 3).float()
    dice = (2 * (probs * onehot).sum(0) + 1e-5) / (probs.sum(0) + onehot.sum(0) + 1e-5)
    torch.testing.assert_close(soft_dice_loss(logits, target), 1 - dice[1:].mean(),
                               rtol=1e-5, atol=1e-6)


def test_all_unlabelled_batch_is_a_finite_no_op():
    target = torch.full((1, 4, 4, 4), UNLABELLED, dtype=torch.long)
    logits = torch.randn(1, 3, 4, 4, 4, requires_grad=True)
    for kind in ("ce", "dice_ce"):
        loss = SegmentationLoss(kind=kind, weights=[0.5, 1.0, 2.0])(logits, target)
        assert float(loss.detach()) == 0.0
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all() and float(grad.abs().max()) == 0.0


def test_class_counts_and_weights_ignore_unlabelled():
    labels = np.concatenate([np.zeros(900), np.ones(90), np.full(10, 2),
                             np.full(5000, UNLABELLED)]).astype(np.uint8).reshape(1, 60, 100)
    case = PreparedCase(case_id="p", image=np.zeros(labels.shape, np.float32), labels=labels)
    counts = class_voxel_counts([case], 3)
    np.testing.assert_array_equal(counts, [900, 90, 10])
    np.testing.assert_allclose(class_weights(counts), [0.1, 1.0, 9.0], rtol=1e-5)
