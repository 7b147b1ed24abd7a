"""Bone Dice and the L5/S1 disc centre on a real CT with a per-structure reference segmentation.

For a real lumbosacral CT that is not in ``../shared/data`` (and may not be shipped), with a
reference segmentation as one mask per structure in a folder (TotalSegmentator's output:
``vertebrae_L5.nii.gz``, ``sacrum.nii.gz``, ``hip_left.nii.gz``, ``rib_left_12.nii.gz``, ...,
on the CT's grid). It reports

* bone Dice, precision and recall of the CT bone model (``--bone ct``'s bone) and of the issue's
  yardstick, ``HU > 120`` with slice-wise hole filling
  (:func:`spinect_core.training.demo_weights.threshold_bone_baseline`), against the union of
  the bone masks;
* the recall of each bone structure;
* the reference L5/S1 disc centre (LPS mm): the centroid of the space between the L5 mask and
  the sacrum's, in front of the canal (the voxels whose distances to the two add up to at most
  the narrowest gap plus 4 mm);
* with ``--plan plan.json`` (written by ``spinect plan`` on the same CT): the distance from the
  plan's L5/S1 disc centre to the reference one (issue 11's target: 6 mm).

Measured 2026-12-05 on TotalSegmentator's example CT (Apache-2.0; ``tests/reference_files/
example_ct.nii.gz`` and the per-structure masks of ``example_seg/`` at the commit before
d2907f6, its v1 output: an abdomen-pelvis CT without contrast, 3 mm isotropic, T11 to the
femoral heads): CT bone model 0.868 (0.770 before the marrow of coarse scans joined), yardstick
0.862; ``spinect plan`` refuses it (the sacrum's fatty marrow is left out of the bone, see the
README's real-CT section).

    .venv/bin/python benchmarks/real_ct_reference.py CT.nii.gz MASKS_DIR [--plan plan.json] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Mask name prefixes of bone (TotalSegmentator's names).
BONE_PREFIXES = ("vertebrae_", "sacrum", "coccyx", "hip_", "femur_", "rib_", "humerus_",
                 "scapula_", "clavicula_", "sternum", "skull")


def reference_disc_centre(l5: Any, sacrum: Any, grid: Any) -> list[float] | None:
    """The L5/S1 disc centre (LPS mm) between the L5 and sacrum masks (bool, (z, y, x)) on
    ``grid`` (a Volume), in front of the canal (more than 5 mm in front of L5's median, where
    the facets do not reach): the centroid of the voxels whose distances to the two bodies add
    up to at most the bodies' narrowest gap plus 4 mm; None without both bodies."""
    import numpy as np
    from scipy import ndimage as ndi

    from spinect_core.anatomy import geometry as G

    if not l5.any() or not sacrum.any():
        return None
    zz, yy, xx = np.indices(l5.shape)
    lps_y = grid.index_to_lps(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
                              .astype(float))[:, 1].reshape(l5.shape)
    front = lps_y < np.median(lps_y[l5]) - 5.0                  # LPS +y is posterior
    body5, body1 = l5 & front, sacrum & front
    if not body5.any() or not body1.any():
        return None
    sp = np.asarray(grid.spacing_mm, float)[::-1]
    d5 = ndi.distance_transform_edt(~body5, sampling=sp)
    d1 = ndi.distance_transform_edt(~body1, sampling=sp)
    gap = float(d1[body5].min())                        # the bodies' narrowest gap
    between = front & ~body5 & ~body1 & (d5 + d1 <= gap + 4.0)
    if not between.any():
        return None
    return G.voxel_points(grid, between).mean(axis=0).tolist()


def measure(ct_path: Path, masks_dir: Path, plan_path: Path | None) -> dict[str, Any]:
    import numpy as np

    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.io import load_ct
    from spinect_core.io.labelmap import read_label_image
    from spinect_core.training.demo_weights import bone_metrics, threshold_bone_baseline

    ct = load_ct(ct_path)
    masks = {}
    for f in sorted(masks_dir.glob("*.nii*")):
        name = f.name.split(".")[0]
        if name.startswith(BONE_PREFIXES):
            m = read_label_image(f)
            if not m.same_grid(ct):
                raise SystemExit(f"{f.name} is not on the CT's grid")
            if np.asarray(m.array).any():
                masks[name] = np.asarray(m.array) > 0
    if not masks:
        raise SystemExit(f"no bone masks ({', '.join(BONE_PREFIXES)}...) in {masks_dir}")
    ref = np.zeros(ct.array.shape, bool)
    for m in masks.values():
        ref |= m

    def scores(mask: np.ndarray) -> dict[str, float]:
        m = bone_metrics(mask, ref)
        return {k: round(float(m[k] or 0.0), 4) for k in ("dice", "precision", "recall")}

    result = segment_bone_from_ct(ct)
    bone = result.mask.array > 0
    out: dict[str, Any] = {
        "ct": str(ct_path.name), "shape_zyx": list(bone.shape),
        "spacing_xyz_mm": [float(v) for v in ct.spacing_mm],
        "ct_bone_model": scores(bone), "hu120_fill": scores(threshold_bone_baseline(ct)),
        "ct_bone_thresholds_hu": result.thresholds_hu, "ct_bone_rejected": result.rejected,
        "recall_per_structure": {n: round(float((bone & m).sum() / m.sum()), 3)
                                 for n, m in masks.items() if m.sum() >= 50},
    }
    disc = None
    if "vertebrae_L5" in masks and "sacrum" in masks:
        disc = reference_disc_centre(masks["vertebrae_L5"], masks["sacrum"], ct)
    out["reference_l5s1_disc_centre_lps_mm"] = disc
    if plan_path is not None:
        plan = json.loads(plan_path.read_text())
        found = plan.get("anatomy", {}).get("disc_centre_lps_mm")
        out["plan_disc_centre_lps_mm"] = found
        if found is not None and disc is not None:
            out["plan_disc_centre_error_mm"] = round(
                float(np.linalg.norm(np.subtract(found, disc))), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ct", type=Path, help="the CT (NIfTI, NRRD, MHA or a DICOM folder)")
    ap.add_argument("masks", type=Path, help="folder of reference masks, one per structure")
    ap.add_argument("--plan", type=Path, default=None, help="plan.json of `spinect plan` on it")
    ap.add_argument("--json", action="store_true", help="one JSON line")
    args = ap.parse_args(argv)
    out = measure(args.ct, args.masks, args.plan)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
