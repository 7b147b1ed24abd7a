"""Phantom parameters (anatomy, pose, tissue HU, scanner) sampled from a seed, and render options.

Every geometric value is sampled uniformly over the ranges of ``docs/ANATOMY.md`` (the whole range,
not around a mean) with ``numpy.random.Generator(PCG64(seed))`` in a fixed field order, so one seed
gives the same phantom on every platform. Per-side values are ``(left, right)`` tuples; left is
patient left (+x in LPS).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

Pair = tuple[float, float]

#: Sampling ranges ``name -> (low, high, per_side)``. Units are in the names (mm, deg, hu).
#: Order matters for reproducibility: new fields go at the end.
RANGES: dict[str, tuple[float, float, bool]] = {
    # --- patient pose in the scanner (small: patients lie roughly straight) ---
    "pose_axial_rotation_deg": (-5.0, 5.0, False),
    "pose_coronal_tilt_deg": (-4.0, 4.0, False),
    "pose_sagittal_pitch_deg": (-5.0, 5.0, False),
    "pose_offset_x_mm": (-15.0, 15.0, False),
    "pose_offset_y_mm": (-10.0, 10.0, False),
    "table_z_mm": (-450.0, -150.0, False),
    # --- field of view ---
    "fov_x_mm": (180.0, 240.0, False),
    "fov_anterior_margin_mm": (20.0, 45.0, False),   # in front of the L5 body
    "fov_posterior_air_mm": (6.0, 20.0, False),      # behind the skin
    "fov_inferior_mm": (45.0, 60.0, False),          # below the S1 endplate centre
    "fov_superior_margin_mm": (-4.0, 10.0, False),   # above the L4 body top
    # --- alignment ---
    "sacral_slope_deg": (35.0, 45.0, False),
    "segmental_angle_l5s1_deg": (10.0, 20.0, False),
    "segmental_angle_l4l5_deg": (8.0, 16.0, False),
    "listhesis_l5_mm": (-1.0, 2.0, False),
    # --- discs ---
    "disc_l5s1_anterior_mm": (10.0, 14.0, False),
    "disc_l5s1_posterior_mm": (5.0, 8.0, False),
    "disc_l4l5_anterior_mm": (10.0, 14.0, False),
    "disc_l4l5_posterior_mm": (6.0, 9.0, False),
    "disc_bulge_mm": (0.5, 1.5, False),
    # --- vertebral bodies ---
    "l5_body_width_mm": (45.0, 55.0, False),
    "l5_body_depth_mm": (33.0, 38.0, False),
    "l5_body_height_mm": (24.0, 30.0, False),
    "l4_body_width_mm": (43.0, 52.0, False),
    "l4_body_depth_mm": (32.0, 37.0, False),
    "l4_body_height_mm": (25.0, 30.0, False),
    "s1_body_width_mm": (44.0, 54.0, False),
    "s1_body_depth_mm": (31.0, 37.0, False),
    "s1_body_height_mm": (24.0, 29.0, False),
    "endplate_concavity_mm": (0.8, 2.5, False),
    "cortical_thickness_mm": (1.0, 2.0, False),
    "posterior_cortical_thickness_mm": (1.5, 2.5, False),
    # --- pedicles and canal ---
    "l5_pedicle_width_mm": (12.0, 18.0, True),
    "l5_pedicle_height_mm": (13.0, 16.0, True),
    "l4_pedicle_width_mm": (9.0, 13.0, True),
    "l4_pedicle_height_mm": (13.0, 16.0, True),
    "s1_pedicle_width_mm": (14.0, 20.0, True),
    "pedicle_convergence_l5_deg": (20.0, 30.0, False),
    "pedicle_convergence_l4_deg": (10.0, 20.0, False),
    "canal_width_mm": (22.0, 28.0, False),          # interpedicular distance at L5
    "canal_depth_mm": (15.0, 20.0, False),
    "dural_sac_width_mm": (13.0, 18.0, False),
    "dural_sac_depth_mm": (10.0, 15.0, False),
    "dural_sac_end_mm": (22.0, 40.0, False),        # below the S1 endplate (S1-S2)
    # --- foramina and facets ---
    "foramen_height_l5s1_mm": (15.0, 21.0, True),
    "foramen_width_l5s1_mm": (6.0, 10.0, True),
    "foramen_height_l4l5_mm": (17.0, 22.0, True),
    "foramen_width_l4l5_mm": (7.0, 11.0, True),
    "facet_angle_l5s1_deg": (40.0, 60.0, True),     # joint plane to the sagittal plane
    "facet_angle_l4l5_deg": (35.0, 55.0, True),
    "s1_sap_height_mm": (12.0, 18.0, True),
    # --- processes ---
    "l5_transverse_tip_mm": (38.0, 48.0, True),     # tip distance from the midline
    "l4_transverse_tip_mm": (38.0, 46.0, True),
    "spinous_length_mm": (24.0, 32.0, False),
    # --- roots ---
    "root_diameter_l4_mm": (4.0, 5.5, True),
    "root_diameter_l5_mm": (4.0, 6.0, True),
    "root_diameter_s1_mm": (4.0, 5.0, True),
    "ganglion_scale": (1.2, 1.35, False),
    "root_exit_angle_l4_deg": (28.0, 55.0, True),   # to the sagittal plane
    "root_exit_angle_l5_deg": (28.0, 55.0, True),
    "root_disc_gap_mm": (0.0, 1.0, True),
    "root_caudal_share_deg": (50.0, 70.0, False),   # caudal vs anterior split in the sagittal plane
    # --- pelvis ---
    "iliac_crest_height_mm": (-10.0, 20.0, True),   # crest top above the L4/L5 disc centre
    "iliac_crest_gap_mm": (10.0, 30.0, True),       # lateral gap L5 transverse tip -> ilium
    "sacral_ala_width_mm": (15.0, 24.0, False),
    "ilium_wing_thickness_mm": (5.0, 9.0, False),
    # --- soft tissue ---
    "skin_depth_mm": (75.0, 110.0, False),          # posterior L5 body wall -> posterior skin
    "subcutaneous_fat_mm": (8.0, 40.0, False),
    "body_half_width_mm": (150.0, 190.0, False),
    "body_half_depth_mm": (100.0, 130.0, False),
    "skin_thickness_mm": (1.5, 2.5, False),
    # --- tissue HU (120 kVp, ANATOMY.md) ---
    "hu_cortical": (1100.0, 1700.0, False),
    "hu_cancellous": (130.0, 330.0, False),
    "hu_disc": (75.0, 105.0, False),
    "hu_nerve": (30.0, 45.0, False),
    "hu_csf": (3.0, 12.0, False),
    "hu_fat": (-110.0, -80.0, False),
    "hu_subcutaneous_fat": (-115.0, -95.0, False),
    "hu_muscle": (42.0, 58.0, False),
    "hu_skin": (20.0, 50.0, False),
    "hu_vessel": (35.0, 50.0, False),
    "hu_ligament": (60.0, 90.0, False),
    # --- scanner ---
    "blur_fwhm_mm": (0.8, 1.2, False),
    "noise_sd_hu": (10.0, 30.0, False),
    "noise_correlation_vox": (0.0, 0.8, False),
    "streak_hu": (0.0, 60.0, False),
    # --- drawn after everything else (see _DRAWN_LAST) ---
    "root_subpedicle_drop_mm": (0.5, 3.0, True),    # pedicle lower margin -> exiting root's top
                                                    # where it crosses the body's lateral rim
}


def _make_params_class() -> type:
    fields = []
    for name, (_lo, _hi, per_side) in RANGES.items():
        fields.append((name, Pair if per_side else float))
    return dataclasses.make_dataclass("_PhantomParamsBase", fields, kw_only=True, frozen=True)


@dataclass(frozen=True, kw_only=True)
class PhantomParams(_make_params_class()):  # type: ignore[misc]
    """All numbers that define one phantom; see :data:`RANGES` for names, units and ranges.

    Per-side fields are ``(left, right)`` tuples. Build with :func:`sample_params` (from a seed)
    or directly with keywords (every field required); :meth:`replace` changes a few.
    """

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = [float(v[0]), float(v[1])] if isinstance(v, tuple) else float(v)
        return out

    def replace(self, **changes: Any) -> "PhantomParams":
        fixed = {k: (tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v))
                 for k, v in changes.items()}
        return dataclasses.replace(self, **fixed)

    def side(self, name: str, side: int) -> float:
        """Value of a per-side field for ``side`` 0 = left, 1 = right."""
        return float(getattr(self, name)[side])


#: Parameters added after the first release, drawn after all others so that every earlier
#: parameter of a seed keeps its value.
_DRAWN_LAST = ("root_subpedicle_drop_mm",)


def sample_params(seed: int, overrides: Mapping[str, Any] | None = None) -> PhantomParams:
    """Sample every parameter uniformly over its range with ``Generator(PCG64(seed))``.

    Parameters
    ----------
    seed : int
        Non-negative integer.
    overrides : mapping, optional
        Field values to force (after sampling, so other fields do not change).
    """
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    values: dict[str, Any] = {}

    def draw(name: str) -> None:
        lo, hi, per_side = RANGES[name]
        if per_side:
            values[name] = (float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
        else:
            values[name] = float(rng.uniform(lo, hi))

    for name in RANGES:
        if name not in _DRAWN_LAST:
            draw(name)
    # Half of the scans show no streaks at all (modern reconstructions).
    if rng.uniform() < 0.5:
        values["streak_hu"] = 0.0
    for name in _DRAWN_LAST:
        draw(name)
    params = PhantomParams(**values)
    if overrides:
        unknown = sorted(set(overrides) - set(RANGES))
        if unknown:
            raise KeyError(f"unknown phantom parameters: {unknown}")
        params = params.replace(**dict(overrides))
    return params


@dataclass(frozen=True, kw_only=True)
class PhantomOptions:
    """How to render a phantom (not what anatomy it has).

    Attributes
    ----------
    blur, noise, streaks, texture : bool
        Scanner effects and tissue texture; switch off for clean, exactly reproducible HU levels.
    ct_dtype : str
        ``"int16"`` (rounded HU, like a scanner) or ``"float32"``.
    crop_mm : float or None
        If set, render only a cube of this edge (mm, scanner axes) centred on the L5/S1 foramen
        region instead of the full field of view: fast tests at fine spacing.
    overrides : mapping or None
        Parameter values forced over the seeded ones (see :func:`sample_params`).
    realism : {"default", "patient"}
        ``"default"``: L4-S1 and the ilia in a box of soft tissue (the demo and test phantom; a
        seed gives the same volumes as before this option existed). ``"patient"``: the same
        lumbosacral anatomy inside a randomised patient (lower thorax to the femoral heads,
        organs, contrast phases, bowel, table, arms, metal, bone density, scanner kernels and
        slice thickness; :mod:`spinect_core.phantom.patient`), drawn from separate random
        streams. Metal voxels are labelled 255 (unlabelled).
    patient_overrides : mapping or None
        With ``realism="patient"``: values forced over the drawn patient parameters (field
        names of :class:`~spinect_core.phantom.patient.PatientParams`, e.g.
        ``{"contrast_phase": "arterial", "bone_density": "osteoporotic"}``).
    anatomy : {"procedural", "real"}
        ``"procedural"``: bones built from shapes (the default). ``"real"``: the bones are
        real surfaces (Visible Human L4, L5, sacrum, hip bones) varied per seed
        (:mod:`spinect_core.phantom.real`); with ``realism="default"`` only.
    """

    blur: bool = True
    noise: bool = True
    streaks: bool = True
    texture: bool = True
    ct_dtype: str = "int16"
    crop_mm: float | None = None
    overrides: Mapping[str, Any] | None = field(default=None)
    realism: str = "default"
    patient_overrides: Mapping[str, Any] | None = field(default=None)
    anatomy: str = "procedural"

    def __post_init__(self) -> None:
        if self.realism not in REALISMS:
            raise ValueError(f"realism must be one of {list(REALISMS)}, got {self.realism!r}")
        if self.anatomy not in ANATOMIES:
            raise ValueError(f"anatomy must be one of {list(ANATOMIES)}, got {self.anatomy!r}")
        if self.anatomy == "real" and self.realism != "default":
            raise ValueError("anatomy='real' is not available with realism='patient' yet")
        if self.patient_overrides and self.realism != "patient":
            raise ValueError("patient_overrides need realism='patient'")


#: Values of :attr:`PhantomOptions.realism`.
REALISMS = ("default", "patient")
#: Values of :attr:`PhantomOptions.anatomy`.
ANATOMIES = ("procedural", "real")
