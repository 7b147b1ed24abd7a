"""``generate_phantom``: one seeded synthetic lumbosacral CT with exact labels and landmarks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spinect_core import __version__
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.phantom import render as R
from spinect_core.phantom import shapes as S
from spinect_core.phantom.anatomy import build_anatomy
from spinect_core.phantom.params import PhantomOptions, PhantomParams, sample_params
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import CTMetadata, Volume

#: Instance label table (id -> name) of ``instances``.
INSTANCE_LABELS = LabelTable({i: n for i, n in enumerate(R.INSTANCES)})
#: Instance table of patient-like phantoms (``PhantomOptions(realism="patient")``): the default
#: ids plus the levels above L4, their discs and roots, ribs, femora, arm bones and metal.
PATIENT_INSTANCE_LABELS = LabelTable({i: n for i, n in enumerate(R.PATIENT_INSTANCES)})
#: Tissue table of the auxiliary ``tissues`` map (not written by default).
TISSUE_LABELS = LabelTable({i: n for i, n in enumerate(R.TISSUES)})

PHANTOM_FORMAT_VERSION = 1


@dataclass
class Phantom:
    """A synthetic CT and its ground truth, all on one grid (LPS, direction = identity).

    Attributes
    ----------
    ct : Volume
        HU, shape (nz, ny, nx), int16 (default) or float32.
    labels : Volume
        uint8 ids of :data:`spinect_core.labels.DEFAULT_LABELS` (0 background, 1 bone,
        2 nerve, 3 disc, 4 dura incl. CSF), label of the voxel centre; in patient-like
        phantoms also 255 (unlabelled) on and around metal.
    instances : Volume
        uint8 ids of :attr:`instance_table` (per level and side).
    instance_table : LabelTable
    tissues : Volume
        uint8 ids of :data:`TISSUE_LABELS` (air, fat, muscle, cortical, cancellous, ...), for
        tests and checks of HU levels.
    params : PhantomParams
    meta : dict
        JSON-ready: seed, parameters, geometry, version, ``coordinate_system`` ``"LPS"`` and
        analytic ``landmarks`` in LPS mm (see :func:`generate_phantom`).
    """

    ct: Volume
    labels: Volume
    instances: Volume
    instance_table: LabelTable
    tissues: Volume
    params: PhantomParams
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label_table(self) -> LabelTable:
        return DEFAULT_LABELS


def tissue_hu(p: PhantomParams) -> dict[str, float]:
    """HU of every tissue class for parameters ``p``."""
    return {
        "air": -1000.0, "skin": p.hu_skin, "subcutaneous_fat": p.hu_subcutaneous_fat,
        "fat": p.hu_fat, "muscle": p.hu_muscle, "bowel": 30.0, "vessel": p.hu_vessel,
        "ligament": p.hu_ligament, "disc": p.hu_disc, "disc_nucleus": p.hu_disc - 8.0,
        "cortical": p.hu_cortical, "cancellous": p.hu_cancellous, "nerve": p.hu_nerve,
        "dura": p.hu_nerve, "csf": p.hu_csf,
    }


def patient_pose(p: PhantomParams, body_centre: np.ndarray) -> R.Pose:
    """Seeded rotation/tilt of the patient and its position relative to the scanner isocentre.

    The body centre lands at ``(offset_x, offset_y)`` from the isocentre in the axial plane and
    the S1 endplate centre at the table position ``table_z_mm``.
    """
    Rm = S.rot_z(p.pose_axial_rotation_deg) @ S.rot_y(p.pose_coronal_tilt_deg) @ S.rot_x(
        p.pose_sagittal_pitch_deg)
    target = np.array([p.pose_offset_x_mm, p.pose_offset_y_mm, 0.0])
    T = target - Rm @ np.array([body_centre[0], body_centre[1], 0.0])
    T[2] = p.table_z_mm
    return R.Pose(Rm, T)


def scanner_grid(lo_patient: np.ndarray, hi_patient: np.ndarray, pose: R.Pose,
                 spacing_mm: np.ndarray) -> R.Grid:
    """Axial grid of the patient box's size, centred on the box's (posed) centre.

    Like a scanner's targeted reconstruction: the axes are the scanner's (identity direction),
    the slice positions and the in-plane origin are rounded to 0.01 mm.
    """
    size = hi_patient - lo_patient
    centre = pose.to_world(0.5 * (lo_patient + hi_patient))
    n = np.maximum(np.round(size / spacing_mm).astype(int), 8)
    origin = np.round(centre - 0.5 * (n - 1) * spacing_mm, 2)
    return R.Grid(shape=(int(n[2]), int(n[1]), int(n[0])), spacing_mm=spacing_mm.copy(),
                  origin_lps_mm=origin)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def generate_phantom(*, seed: int, spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
                     options: PhantomOptions | None = None,
                     progress: ProgressCallback | None = None) -> Phantom:
    """Generate a synthetic lumbosacral CT (L4-S2 with ilia) and its exact ground truth.

    Parameters
    ----------
    seed : int
        Non-negative seed; the same seed and spacing give identical arrays on every platform
        (``numpy.random.Generator(PCG64(seed))``, float64 geometry, fixed evaluation order).
    spacing_mm : sequence of 3 floats
        Voxel size along x, y, z in mm (0.6 x 0.6 x 0.6 to 1 x 1 x 3 are typical).
    options : PhantomOptions, optional
        Scanner effects, output dtype, crop and parameter overrides; ``realism="patient"``
        for a patient-like training case (:mod:`spinect_core.phantom.patient`): the same
        L4-S1 anatomy inside a randomised torso, ``instances`` on
        :data:`PATIENT_INSTANCE_LABELS`, metal labelled 255, ``meta["patient"]`` the draws.
        ``anatomy="real"``: the bones are real surfaces varied per seed
        (:mod:`spinect_core.phantom.real`), ``meta["real_variation"]`` the draws and
        ``meta["parameters"]`` the procedural parameters with the real bones' sizes put in.
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    Phantom
        ``ct`` (HU), ``labels`` (default table), ``instances`` (+ table), ``tissues``, ``params``
        and ``meta``. ``meta["landmarks"]`` holds LPS points/vectors (mm): disc centres,
        S1 superior endplate centre and normal, L5 inferior endplate normal, pedicle centres and
        lower margins, foramen centres, facet centres, S1 SAP tips, iliac crest tops, transverse
        process tips, root centrelines with radii, dural-sac centreline.
    """
    options = options or PhantomOptions()
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    spacing = np.asarray(spacing_mm, dtype=np.float64).reshape(3)
    if np.any(spacing <= 0.05) or np.any(spacing > 5.0):
        raise ValueError(f"spacing must be within (0.05, 5] mm, got {spacing.tolist()}")
    if options.ct_dtype not in ("int16", "float32"):
        raise ValueError(f"ct_dtype must be 'int16' or 'float32', got {options.ct_dtype!r}")
    report(progress, 0.0, "sampling parameters")
    params = sample_params(int(seed), options.overrides)
    if options.realism == "patient":
        return _generate_patient(int(seed), spacing, params, options, progress)
    extra_meta = None
    if options.anatomy == "real":
        from spinect_core.phantom.real import build_real_anatomy, sample_variation

        report(progress, 0.005, "placing the real bones")
        variation = sample_variation(int(seed))
        anatomy, params = build_real_anatomy(params, variation)
        extra_meta = {"anatomy": "real", "real_variation": variation.to_dict(),
                      "real_bones": "Visible Human lumbosacral meshes (assets/anatomy_meshes)"}
    else:
        anatomy = build_anatomy(params)
    pose = patient_pose(params, anatomy.body_centre)
    lo, hi = anatomy.fov_lo.copy(), anatomy.fov_hi.copy()
    if options.crop_mm is not None:
        c = 0.5 * (anatomy.landmarks["l5s1_foramen_centre_left"]
                   + anatomy.landmarks["l5s1_foramen_centre_right"])
        half = 0.5 * float(options.crop_mm)
        lo, hi = c - half, c + half
    grid = scanner_grid(lo, hi, pose, spacing)

    hu = tissue_hu(params)
    label_ids = {n: DEFAULT_LABELS.id_of(n) for n in ("bone", "nerve", "disc", "dura")}
    out = R.rasterise(anatomy, grid, pose, hu, label_ids, sub_progress(progress, 0.02, 0.8))

    # Scanner effects use their own stream so anatomy never depends on them.
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 7])))
    ct = out.ct
    if options.texture:
        report(progress, 0.82, "texture")
        R.add_texture(ct, out.tissues, spacing, rng)
    if options.blur:
        report(progress, 0.86, "blur")
        ct = R.blur(ct, spacing, params.blur_fwhm_mm)
    if options.streaks and params.streak_hu > 0:
        anchors = pose.to_world(np.array([anatomy.landmarks["l5s1_disc_centre"],
                                          anatomy.landmarks["iliac_crest_top_left"],
                                          anatomy.landmarks["iliac_crest_top_right"]]))
        R.add_streaks(ct, out.tissues, grid, anchors, params.streak_hu)
    if options.noise:
        report(progress, 0.92, "noise")
        R.add_noise(ct, params.noise_sd_hu, params.noise_correlation_vox, rng)
    meta_ct = CTMetadata(modality="CT", series_description=f"SPINECT phantom seed {int(seed)}",
                         convolution_kernel="synthetic", manufacturer="SPINECT phantom",
                         source_format="synthetic", slice_thickness_mm=float(spacing[2]))
    return _assemble(ct, out, grid=grid, pose=pose, anatomy=anatomy, params=params,
                     options=options, hu=hu, seed=seed, meta_ct=meta_ct,
                     instance_table=INSTANCE_LABELS, progress=progress, extra_meta=extra_meta)


def _assemble(ct: np.ndarray, out, *, grid, pose: R.Pose, anatomy, params: PhantomParams,
              options: PhantomOptions, hu: dict, seed: int, meta_ct: CTMetadata,
              instance_table: LabelTable, progress: ProgressCallback | None,
              extra_meta: dict | None = None) -> Phantom:
    """The :class:`Phantom` of a rendered CT (float HU, cast to ``options.ct_dtype``) and its
    rasterised maps ``out``, with the JSON-ready ``meta`` (``extra_meta`` added to it)."""
    if options.ct_dtype == "int16":
        ct = np.clip(np.rint(ct), -1024, 3071).astype(np.int16)
    else:
        ct = ct.astype(np.float32, copy=False)
    geo = dict(spacing_mm=grid.spacing_mm, origin_lps_mm=grid.origin_lps_mm, direction=np.eye(3))
    ct_vol = Volume(array=ct, metadata=meta_ct, **geo)
    seg_meta = CTMetadata(modality="SEG", source_format="synthetic")
    labels = Volume(array=out.labels, metadata=seg_meta, **geo)
    instances = Volume(array=out.instances, metadata=seg_meta, **geo)
    tissues = Volume(array=out.tissues, metadata=seg_meta, **geo)
    meta = {
        "format": "spinect-phantom", "format_version": PHANTOM_FORMAT_VERSION,
        "generator_version": __version__, "seed": int(seed), "coordinate_system": "LPS",
        "units": {"length": "mm", "angle": "deg", "intensity": "HU"},
        "geometry": ct_vol.geometry_dict(),
        "options": _options_meta(options),
        "parameters": params.to_dict(), "derived": _jsonable(anatomy.derived),
        "tissue_hu": hu,
        "pose": {"rotation_patient_to_lps": pose.R, "translation_lps_mm": pose.T,
                 "patient_frame": "origin at the S1 superior endplate centre; x left, "
                                  "y posterior, z superior (before the pose rotation)"},
        "landmarks": _world_landmarks(anatomy, pose),
        "label_table": DEFAULT_LABELS.to_json()["labels"],
        "instance_table": instance_table.to_json()["labels"],
    }
    meta.update(extra_meta or {})
    report(progress, 1.0, "phantom ready")
    return Phantom(ct=ct_vol, labels=labels, instances=instances, instance_table=instance_table,
                   tissues=tissues, params=params, meta=_jsonable(meta))


def _options_meta(options: PhantomOptions) -> dict:
    """JSON-ready options; the patient-mode fields only when used (default meta unchanged)."""
    d = dataclasses.asdict(options)
    if options.realism == "default":
        d.pop("realism", None)
        d.pop("patient_overrides", None)
    if options.anatomy == "procedural":
        d.pop("anatomy", None)   # the default phantom's meta stays as it was
    return _jsonable(d)


def _world_landmarks(anatomy, pose: R.Pose) -> dict:
    landmarks = {}
    for name, value in anatomy.landmarks.items():
        v = np.asarray(value, float)
        if name.endswith(("normal", "direction")):
            landmarks[name] = pose.vector_to_world(v)
        elif name.endswith("radius"):
            landmarks[name] = v
        else:
            landmarks[name] = pose.to_world(v)
    return landmarks


def _generate_patient(seed: int, spacing: np.ndarray, params: PhantomParams,
                      options: PhantomOptions, progress: ProgressCallback | None) -> Phantom:
    """``generate_phantom`` with ``realism="patient"`` (see :mod:`spinect_core.phantom.patient`).

    The lumbosacral anatomy is the default one of ``params`` (bone density and soft-tissue HU
    replaced); the torso, the acquisition and the metal come from their own random streams.
    """
    from spinect_core.phantom import acquisition as A
    from spinect_core.phantom.patient import (
        ACQUISITION_STREAM, adjust_params, patient_tissue_hu, sample_patient_params,
    )
    from spinect_core.phantom.torso import extend_anatomy

    q = sample_patient_params(seed, options.patient_overrides)
    params = adjust_params(params, q)
    report(progress, 0.01, "building the patient")
    base = build_anatomy(params)
    anatomy, info = extend_anatomy(base, params, q)
    pose = patient_pose(params, anatomy.body_centre)
    lo, hi = anatomy.fov_lo.copy(), anatomy.fov_hi.copy()
    if options.crop_mm is not None:
        c = 0.5 * (anatomy.landmarks["l5s1_foramen_centre_left"]
                   + anatomy.landmarks["l5s1_foramen_centre_right"])
        half = 0.5 * float(options.crop_mm)
        lo, hi = c - half, c + half
    grid = scanner_grid(lo, hi, pose, spacing)
    hu = patient_tissue_hu(tissue_hu(params), q)
    label_ids = {n: DEFAULT_LABELS.id_of(n) for n in ("bone", "nerve", "disc", "dura")}
    label_ids["unlabelled"] = A.UNLABELLED
    out = R.rasterise(anatomy, grid, pose, hu, label_ids, sub_progress(progress, 0.02, 0.8))

    report(progress, 0.82, "scanner effects")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, ACQUISITION_STREAM])))
    lm = anatomy.landmarks
    anchors = pose.to_world(np.array([lm["l5s1_disc_centre"], lm["iliac_crest_top_left"],
                                      lm["iliac_crest_top_right"], *info.femoral_heads]))
    ct = A.apply_acquisition(out.ct, out.tissues, grid, q, anchors, rng, texture=options.texture,
                             streaks=options.streaks, blur=options.blur, noise=options.noise)
    n_metal = A.mark_metal(out.labels, out.tissues, grid.spacing_mm)
    meta_ct = CTMetadata(modality="CT", series_description=f"SPINECT patient-like phantom seed {seed}",
                         convolution_kernel=f"synthetic {q.kernel}", manufacturer="SPINECT phantom",
                         source_format="synthetic", slice_thickness_mm=float(q.slice_thickness_mm))
    return _assemble(ct, out, grid=grid, pose=pose, anatomy=anatomy, params=params,
                     options=options, hu=hu, seed=seed, meta_ct=meta_ct,
                     instance_table=PATIENT_INSTANCE_LABELS, progress=progress,
                     extra_meta={"realism": "patient", "patient": q.to_dict(),
                                 "unlabelled_value": A.UNLABELLED, "unlabelled_voxels": n_metal})
