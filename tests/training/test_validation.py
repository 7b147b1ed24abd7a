"""Validation metrics leave voxels without a reference label (255) out of every class's counts."""

import numpy as np
import torch

from spinect_core.labels import STUDY_LABELS
from spinect_core.training import UNLABELLED, PreparedCase, validate

from tests.training.synthetic import tiny_options


class _ImageIsTheAnswer(torch.nn.Module):
    """Predicts class ``round(image)``: the test chooses the prediction voxel by voxel."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # the predictor wants a device to move

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x[:, 0].round().clamp(0, 2).long()
        return torch.nn.functional.one_hot(ids, 3).movedim(-1, 1).float() * 10.0


def test_validation_dice_ignores_unlabelled_reference_voxels():
    shape = (16, 32, 32)
    reference = np.zeros(shape, np.uint8)
    reference[4:12, 8:20, 8:20] = 1
    reference[:, 26, 26] = 2
    prediction = reference.copy()
    # the network "finds" bone and a nerve where nobody labelled anything...
    prediction[:, :4, :] = 1
    prediction[2:6, 28:, 28:] = 2
    labels = reference.copy()
    labels[:, :4, :] = UNLABELLED
    labels[:, 28:, 28:] = UNLABELLED
    case = PreparedCase(case_id="v", image=prediction.astype(np.float32), labels=labels)
    metrics = validate(_ImageIsTheAnswer(), [case], STUDY_LABELS,
                       options=tiny_options(patch_size=(16, 32, 32)), device="cpu")
    # ... which is neither right nor wrong: perfect agreement on the labelled voxels
    assert metrics["per_class"]["bone"]["dice"] == 1.0
    assert metrics["per_class"]["nerve"]["dice"] == 1.0
    assert metrics["mean_dice"] == 1.0
    # the same predictions where the reference says background do count
    case.labels = reference
    metrics = validate(_ImageIsTheAnswer(), [case], STUDY_LABELS,
                       options=tiny_options(patch_size=(16, 32, 32)), device="cpu")
    assert metrics["per_class"]["bone"]["dice"] < 0.9
    assert metrics["per_class"]["nerve"]["dice"] < 0.9
