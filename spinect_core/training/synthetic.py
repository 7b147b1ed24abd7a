"""A training data folder of synthetic phantoms (for demos, smoke runs and pipeline tests).

``write_phantom_dataset("data/", n_cases=10)`` writes ``data/phantom_000/ct.nii.gz`` +
``labels.nii.gz`` (+ sidecar), ... one folder per case in the layout :func:`discover_cases`
reads, with the phantom's 5-class table (background, bone, nerve, disc, dura).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from spinect_core.progress import ProgressCallback, report, sub_progress

__all__ = ["write_phantom_dataset"]


def write_phantom_dataset(out_dir: str | os.PathLike, *, n_cases: int, seed: int = 0,
                          spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
                          overwrite: bool = False,
                          progress: ProgressCallback | None = None) -> list[Path]:
    """Generate ``n_cases`` phantoms with seeds ``seed, seed + 1, ...`` and write them.

    Parameters
    ----------
    out_dir : path-like
        Receives one sub-folder ``phantom_<seed>`` per case.
    n_cases : int
    seed : int
        Seed of the first phantom.
    spacing_mm : 3 floats
        Voxel size (x, y, z), millimetres.
    overwrite : bool
        Replace existing phantom files.
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    list of Path
        The case folders.
    """
    # Imported here: the phantom package is optional for training real data.
    from spinect_core.phantom import generate_phantom, write_phantom

    folders = []
    for i in range(int(n_cases)):
        s = int(seed) + i
        part = sub_progress(progress, i / n_cases, (i + 1) / n_cases, f"phantom {i + 1}/{n_cases}: ")
        phantom = generate_phantom(seed=s, spacing_mm=spacing_mm, progress=part)
        folder = Path(out_dir) / f"phantom_{s:03d}"
        write_phantom(phantom, folder, overwrite=overwrite)
        folders.append(folder)
    report(progress, 1.0, f"wrote {len(folders)} phantoms")
    return folders
