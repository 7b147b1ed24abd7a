"""Tiny synthetic training cases: fat background, a bone block and a thin nerve tube."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinect_core.labels import LabelTable, STUDY_LABELS
from spinect_core.model import UNetConfig
from spinect_core.training import AugmentOptions, Case, TrainOptions
from spinect_core.volume import Volume

SHAPE = (32, 48, 48)


def make_arrays(seed: int, shape=SHAPE, *, nerve_yx: tuple[int, int] | None = None,
                sides: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """CT (HU, float32) and labels (uint8) of shape (z, y, x).

    Bone (id 1): a block; nerve (id 2): a tube of radius ~1.5 voxels along z. With ``sides`` the
    tube at low x is ``nerve_left`` (2) and a second tube at high x ``nerve_right`` (3).
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    labels = np.zeros(shape, dtype=np.uint8)
    by, bx = int(rng.integers(8, 14)), int(rng.integers(8, 14))
    labels[:, by:by + 14, bx:bx + 16] = 1
    zz, yy, xx = np.mgrid[:nz, :ny, :nx]
    cy, cx = nerve_yx if nerve_yx is not None else (int(rng.integers(30, 38)), int(rng.integers(14, 34)))
    labels[((yy - cy) ** 2 + (xx - cx) ** 2) <= 2.5] = 2
    if sides:
        labels[((yy - cy) ** 2 + (xx - (nx - 1 - cx)) ** 2) <= 2.5] = 3
    hu = np.array([-100.0, 700.0, 60.0, 60.0], dtype=np.float32)[labels]
    ct = hu + rng.normal(0, 20, size=shape).astype(np.float32)
    return ct.astype(np.float32), labels


def make_case(case_id: str, seed: int, *, table: LabelTable = STUDY_LABELS, **kw) -> Case:
    ct, labels = make_arrays(seed, **kw)
    vol = Volume(array=ct, spacing_mm=(1.0, 1.0, 1.0), origin_lps_mm=(0.0, 0.0, 0.0))
    return Case(case_id=case_id, ct=vol, labels=vol.with_array(labels), table=table)


def tiny_options(**overrides) -> TrainOptions:
    base = dict(architecture=UNetConfig(base_channels=4, depth=3), patch_size=(16, 32, 32),
                batch_size=2, iterations=8, val_every=4, val_stride=(16, 32, 32), log_every=1,
                device="cpu", seed=3, augment=AugmentOptions.none(), learning_rate=3e-3)
    base.update(overrides)
    return TrainOptions(**base)


def write_case_folder(root: Path, case_id: str, seed: int) -> Path:
    """``root/case_id/ct.nii.gz`` + ``labels.nii.gz`` (+ sidecar), as the phantom writer does."""
    from spinect_core.io import save_label_map, write_image

    case = make_case(case_id, seed)
    folder = root / case_id
    folder.mkdir(parents=True)
    write_image(case.ct, folder / "ct.nii.gz")
    save_label_map(case.labels, case.table, folder / "labels.nii.gz")
    return folder
