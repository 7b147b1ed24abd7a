"""Training the SPINECT U-Net: cases, patches, augmentation, loss, loop, checkpoints, DDP.

Typical use::

    from spinect_core.training import (LabelMapping, TrainOptions, discover_cases, load_cases,
                                       split_for_fold, train)
    files = discover_cases("data/")
    cases = load_cases(files, mapping=LabelMapping.from_file("mapping.json"))
    split = split_for_fold([c.case_id for c in cases], folds=5, fold=0)
    by_id = {c.case_id: c for c in cases}
    result = train([by_id[i] for i in split.train], val_cases=[by_id[i] for i in split.val],
                   options=TrainOptions.study(iterations=20000), out_dir="runs/fold0",
                   split=split.to_dict())

See :mod:`.loop` for the recipe, :mod:`.checkpoint` for resuming and :mod:`.ddp` for several GPUs.
Label maps may hold :data:`UNLABELLED` (255) where there is no reference label (partial
annotation); :mod:`.real_ct` turns a real CT with bone-only labels into such a case.
Nothing here imports Qt; matplotlib (training curves) is imported only when a log is written.
"""

from spinect_core.training.augment import (
    AugmentOptions, augment_intensity, augment_patch, extract_patch, flip_patch, lr_axis_of,
    side_swap_lookup,
)
from spinect_core.training.cases import (
    Case, CaseFiles, LabelMapping, SlicerSegment, discover_cases, load_case, load_cases,
    read_slicer_segmentation, summarise_cases,
)
from spinect_core.training.checkpoint import (
    Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint,
)
from spinect_core.training.dataset import (
    PatchSampler, PreparedCase, class_voxel_counts, prepare_case, prepare_cases,
)
from spinect_core.training.log import TrainingLog
from spinect_core.training.loop import TrainResult, train
from spinect_core.training.loss import UNLABELLED, SegmentationLoss, class_weights
from spinect_core.training.options import TrainOptions
from spinect_core.training.real_ct import (
    BoneOnlyCase, BoneOnlyOptions, axial_slab, bone_mask_reference, bone_only_case,
)
from spinect_core.training.splits import Split, kfold_splits, split_for_fold
from spinect_core.training.synthetic import write_phantom_dataset
from spinect_core.training.validation import validate

__all__ = [
    "AugmentOptions", "augment_intensity", "augment_patch", "extract_patch", "flip_patch",
    "lr_axis_of", "side_swap_lookup",
    "Case", "CaseFiles", "LabelMapping", "SlicerSegment", "discover_cases", "load_case",
    "load_cases", "read_slicer_segmentation", "summarise_cases",
    "Checkpoint", "CheckpointError", "latest_checkpoint", "load_checkpoint", "save_checkpoint",
    "PatchSampler", "PreparedCase", "class_voxel_counts", "prepare_case", "prepare_cases",
    "TrainingLog",
    "TrainOptions", "TrainResult", "train", "validate",
    "UNLABELLED", "SegmentationLoss", "class_weights",
    "BoneOnlyCase", "BoneOnlyOptions", "axial_slab", "bone_mask_reference", "bone_only_case",
    "Split", "kfold_splits", "split_for_fold", "write_phantom_dataset",
]
