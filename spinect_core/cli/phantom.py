"""``spinect phantom OUT_DIR --seed N``: write a synthetic lumbosacral CT with exact labels."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phantom", help="generate a synthetic lumbosacral CT phantom with labels",
        description="Generate a seeded synthetic L4-S1 CT (bone, nerve roots, discs, dural sac, "
        "ilia) and write ct.nii.gz, labels.nii.gz, instances.nii.gz, labels.json and meta.json "
        "(landmarks in LPS mm) into OUT_DIR. With --patient the same spine lies in a randomised "
        "patient (lower thorax to the femoral heads, organs, contrast, bowel, table, metal, "
        "scanner kernels), for training.")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if needed)")
    parser.add_argument("--seed", type=int, required=True, help="non-negative integer seed")
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0),
                        metavar=("X", "Y", "Z"), help="voxel size in mm (default 1 1 1)")
    parser.add_argument("--patient", action="store_true",
                        help="patient-like phantom (metal voxels are labelled 255, unlabelled)")
    parser.add_argument("--patient-set", action="append", default=[], metavar="NAME=VALUE",
                        help="with --patient: force a patient parameter, e.g. "
                        "contrast_phase=arterial, bone_density=osteoporotic, screws=L4-S1 "
                        "(repeatable)")
    parser.add_argument("--anatomy", choices=("procedural", "real"), default="procedural",
                        help="bones built from shapes (procedural, default) or real bone surfaces "
                        "(Visible Human L4-S1 and pelvis) varied per seed (real; not with "
                        "--patient)")
    parser.add_argument("--dicom", action="store_true",
                        help="also write the CT as a DICOM series into OUT_DIR/dicom")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def _patient_overrides(items: list[str]) -> dict:
    from spinect_core.errors import InputError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--patient-set takes NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from spinect_core.errors import InputError
    from spinect_core.phantom import PhantomOptions, generate_phantom
    from spinect_core.phantom.write import write_phantom
    from spinect_core.progress import TqdmProgress, sub_progress

    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    if any(s <= 0.05 or s > 5.0 for s in args.spacing):
        raise InputError(f"--spacing values must be within (0.05, 5] mm, got {args.spacing}")
    patient_set = getattr(args, "patient_set", []) or []
    if patient_set and not args.patient:
        raise InputError("--patient-set needs --patient")
    options = None
    anatomy = getattr(args, "anatomy", "procedural") or "procedural"
    if anatomy == "real" and getattr(args, "patient", False):
        raise InputError("--anatomy real is not available with --patient yet")
    if anatomy == "real":
        options = PhantomOptions(anatomy="real")
    if getattr(args, "patient", False):
        try:
            options = PhantomOptions(realism="patient",
                                     patient_overrides=_patient_overrides(patient_set) or None)
            from spinect_core.phantom.patient import sample_patient_params
            sample_patient_params(args.seed, options.patient_overrides)   # check the names
        except (KeyError, ValueError) as exc:
            raise InputError(f"--patient-set: {exc}".replace("\n", " ")) from None
    with TqdmProgress("phantom", disable=args.quiet) as bar:
        phantom = generate_phantom(seed=args.seed, spacing_mm=tuple(args.spacing),
                                   options=options, progress=sub_progress(bar, 0.0, 0.7))
        paths = write_phantom(phantom, args.out_dir, dicom=args.dicom, overwrite=args.force,
                              progress=sub_progress(bar, 0.7, 1.0))
    nx, ny, nz = phantom.ct.size_xyz
    kind = ("patient-like phantom" if options is not None and options.realism == "patient"
            else "real-bone phantom" if anatomy == "real" else "phantom")
    print(f"{kind} seed {args.seed}: {nx}x{ny}x{nz} voxels at "
          f"{' x '.join(f'{s:g}' for s in phantom.ct.spacing_mm)} mm -> {paths['ct'].parent}")
    return 0
