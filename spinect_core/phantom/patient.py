"""Patient-like phantoms: the per-case draws of ``PhantomOptions(realism="patient")``.

The default phantom is L4-S1 with the ilia in a box of soft tissue. A network trained on it alone
labelled contrast-filled vessels and organs as bone and missed osteoporotic vertebral bodies on
real CT. In patient mode every case also draws, from its own random stream
(``SeedSequence([seed, 11])``, so the default phantom's draws do not move):

* **bone density** (all bones): one of three classes, then values within the class

  ============== ================= ============== ===================
  class (share)  cancellous HU     cortical HU    cortex (body), mm
  ============== ================= ============== ===================
  osteoporotic   60-150            700-1200       0.5-1.0
  (35 %)
  normal (45 %)  150-350           1000-1800      1.0-2.0
  sclerotic      350-700           1400-2000      1.5-3.0
  (20 %)
  ============== ================= ============== ===================

  Normal: ``docs/ANATOMY.md`` (cortical 700-1800, cancellous 120-350 falling with age).
  Osteoporotic: 60-150 HU as asked by issue 11; opportunistic-CT studies put L1 trabecular bone
  of osteoporotic patients at or below 110-160 HU (Pickhardt et al., Ann Intern Med 2013), and
  the real lumbar crop in ``../shared/data`` has low-density bodies. Sclerotic: diffuse
  sclerosis (renal osteodystrophy, Paget, blastic disease) raises trabecular bone to several
  hundred HU. Cortical HU is the material value; thin cortices look fainter through partial
  volume, as on real scans.
* **contrast phase** none (40 %), arterial (25 %), portal (35 %): HU of blood and organs

  ============= ============ ============= ===========
  tissue        none         arterial      portal
  ============= ============ ============= ===========
  arteries      30-55        150-450       150-220
  veins (IVC)   30-55        40-110        110-200
  liver         45-70        55-90         100-150
  spleen        40-55        100-250       100-160
  kidney cortex 25-40        150-250       140-220
  kidney medul. 25-40        60-130        110-200
  bowel wall    30-45        60-110        70-120
  ============= ============ ============= ===========

  Ranges from issue 11 (enhanced aorta 150-450 arterial, ~150-200 portal; enhanced kidney,
  liver, spleen 100-250) and checked against the real contrast CT in ``../shared/data/
  real_ct_chest`` (a late arterial phase, medians: aorta 406, spleen 179, kidney 221 with a
  cortex near 270 and medulla near 100, liver 74, infrarenal IVC 72 HU).
* **oral contrast** in a third of the cases: bowel content 200-800 HU (issue 11); otherwise
  fluid 0-30 HU; gas -1000 HU in bowel, stomach and colon in every case.
* other soft tissue: fat -120 to -80, subcutaneous fat -120 to -90, skin 20-50, CSF 0-15
  (ANATOMY.md); muscle 25-60 (40-60 in ANATOMY.md, down to 25 with the fatty infiltration of
  older patients); lung bases -900 to -800; urine 0-20; costal cartilage 80-180; calcified
  plaque 300-1200 HU; long-bone marrow -80 to 40 HU.
* **field of view**: the top at L2, L1, T12, T11 or T10, the bottom in three of four cases below
  the femoral heads (otherwise at S2-S4), at most 240-320 mm long (a longer one loses its top
  or its bottom, at random; L4-S1 always stays); width 260-360 mm (up to 380 mm to show the
  arms when they lie beside the body, 30 %), depth from 5-25 mm in front of the belly to the
  table (90 %). At 1 mm that is typically 300-380 x 270-310 x 240-320 voxels.
* **metal** in about one case in five: pedicle screws and rods (L4-L5, L5-S1 or L4-S1; 10 %)
  and hip prostheses (one side 8 %, both 2 %); metal 4000-10000 HU before the output's int16
  clip at 3071; its voxels are labelled 255 (unlabelled), not bone or background.
* **acquisition**: smooth kernel (55 %, blur 1.0-1.6 mm FWHM, noise SD 8-28 HU, correlated) or
  sharp kernel (45 %, blur 0.6-0.9 mm, edge enhancement gain 0.4-1.2, noise SD 15-40 HU, fine);
  slice thickness 0.5-5 mm (partial volume along z); beam-hardening bands in 60 % of cases
  (20-100 HU) and metal streaks (150-500 HU) where there is metal.

Everything here is a plain dataclass of numbers and choices (``meta["patient"]``); the anatomy
is built in :mod:`.torso` and the acquisition applied in :mod:`.acquisition`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from spinect_core.phantom.params import PhantomParams

#: Stream ids of ``SeedSequence([seed, id])`` (7 is the default phantom's scanner stream).
PATIENT_STREAM = 11
ACQUISITION_STREAM = 13

DENSITY_CLASSES = ("osteoporotic", "normal", "sclerotic")
PHASES = ("none", "arterial", "portal")
TOP_LEVELS = ("L2", "L1", "T12", "T11", "T10")
SCREW_CHOICES = ("none", "L4-L5", "L5-S1", "L4-S1")
HIP_CHOICES = ("none", "left", "right", "both")
KERNELS = ("smooth", "sharp")

#: (cancellous HU, cortical HU, cortical thickness mm, posterior cortical thickness mm).
DENSITY_RANGES = {
    "osteoporotic": ((60.0, 150.0), (700.0, 1200.0), (0.5, 1.0), (0.8, 1.5)),
    "normal": ((150.0, 350.0), (1000.0, 1800.0), (1.0, 2.0), (1.5, 2.5)),
    "sclerotic": ((350.0, 700.0), (1400.0, 2000.0), (1.5, 3.0), (2.0, 3.5)),
}

#: Phase-dependent HU ranges (see the module docstring).
PHASE_RANGES = {
    "none": {"artery": (30.0, 55.0), "vein": (30.0, 55.0), "liver": (45.0, 70.0),
             "spleen": (40.0, 55.0), "kidney_cortex": (25.0, 40.0),
             "kidney_medulla": (25.0, 40.0), "bowel_wall": (30.0, 45.0)},
    "arterial": {"artery": (150.0, 450.0), "vein": (40.0, 110.0), "liver": (55.0, 90.0),
                 "spleen": (100.0, 250.0), "kidney_cortex": (150.0, 250.0),
                 "kidney_medulla": (60.0, 130.0), "bowel_wall": (60.0, 110.0)},
    "portal": {"artery": (150.0, 220.0), "vein": (110.0, 200.0), "liver": (100.0, 150.0),
               "spleen": (100.0, 160.0), "kidney_cortex": (140.0, 220.0),
               "kidney_medulla": (110.0, 200.0), "bowel_wall": (70.0, 120.0)},
}

#: Per-level shape of the vertebrae above L4: body (W, D, H) relative to L4; disc anterior and
#: posterior heights (mm) and the segmental angle (deg, lordosis > 0) of the segment *below*
#: the level; pedicle width and height; pedicle convergence; interpedicular distance;
#: transverse-process tip from the midline; spinous length; facet angle to the sagittal plane.
UPPER_LEVELS: dict[str, dict[str, Any]] = {
    "L3": dict(scale=(0.97, 0.98, 1.00), disc_a=(10.0, 13.0), disc_p=(6.0, 8.0), seg=(6.0, 12.0),
               ped_w=(8.0, 12.0), ped_h=(13.0, 16.0), conv=(8.0, 15.0), canal_w=(22.0, 26.0),
               tp=(40.0, 50.0), sp=(26.0, 34.0), facet=(30.0, 45.0)),
    "L2": dict(scale=(0.93, 0.95, 0.98), disc_a=(9.0, 12.0), disc_p=(5.0, 7.0), seg=(3.0, 8.0),
               ped_w=(7.0, 10.0), ped_h=(13.0, 16.0), conv=(5.0, 12.0), canal_w=(21.0, 25.0),
               tp=(34.0, 44.0), sp=(26.0, 34.0), facet=(25.0, 40.0)),
    "L1": dict(scale=(0.88, 0.92, 0.95), disc_a=(8.0, 11.0), disc_p=(5.0, 7.0), seg=(0.0, 5.0),
               ped_w=(6.0, 9.0), ped_h=(13.0, 16.0), conv=(3.0, 10.0), canal_w=(20.0, 24.0),
               tp=(26.0, 34.0), sp=(24.0, 32.0), facet=(20.0, 35.0)),
    "T12": dict(scale=(0.80, 0.88, 0.90), disc_a=(6.0, 9.0), disc_p=(4.0, 6.0), seg=(-3.0, 2.0),
                ped_w=(6.0, 9.0), ped_h=(14.0, 17.0), conv=(0.0, 8.0), canal_w=(18.0, 22.0),
                tp=(18.0, 26.0), sp=(26.0, 34.0), facet=(30.0, 60.0)),
    "T11": dict(scale=(0.75, 0.84, 0.86), disc_a=(5.0, 8.0), disc_p=(4.0, 6.0), seg=(-5.0, 0.0),
                ped_w=(6.0, 9.0), ped_h=(14.0, 17.0), conv=(0.0, 6.0), canal_w=(17.0, 20.0),
                tp=(24.0, 32.0), sp=(30.0, 38.0), facet=(60.0, 75.0)),
    "T10": dict(scale=(0.70, 0.80, 0.82), disc_a=(5.0, 7.0), disc_p=(4.0, 5.0), seg=(-6.0, -2.0),
                ped_w=(5.0, 8.0), ped_h=(14.0, 17.0), conv=(0.0, 6.0), canal_w=(16.0, 19.0),
                tp=(30.0, 38.0), sp=(32.0, 40.0), facet=(65.0, 80.0)),
    "T9": dict(scale=(0.67, 0.78, 0.80), disc_a=(4.0, 6.0), disc_p=(3.5, 5.0), seg=(-6.0, -2.0),
               ped_w=(5.0, 8.0), ped_h=(14.0, 17.0), conv=(0.0, 6.0), canal_w=(16.0, 19.0),
               tp=(30.0, 38.0), sp=(32.0, 40.0), facet=(65.0, 80.0)),
}
UPPER_ORDER = ("L3", "L2", "L1", "T12", "T11", "T10", "T9")


@dataclass(frozen=True, kw_only=True)
class PatientParams:
    """Per-case draws of a patient-like phantom (see the module docstring for the ranges).

    Choices are strings, numbers are floats (mm, deg, HU), per-side values ``(left, right)``,
    per-level values dicts keyed by level name. Build with :func:`sample_patient_params`.
    """

    # --- choices ---
    bone_density: str
    contrast_phase: str
    oral_contrast: bool
    arms_down: bool
    table: bool
    fov_top_level: str
    fov_to_femoral_heads: bool
    screws: str
    hip_prosthesis: str
    kernel: str
    # --- bone ---
    hu_cancellous: float
    hu_cortical: float
    cortical_thickness_mm: float
    posterior_cortical_thickness_mm: float
    hu_marrow: float
    # --- soft tissue and contrast ---
    hu_fat: float
    hu_subcutaneous_fat: float
    hu_muscle: float
    hu_skin: float
    hu_artery: float
    hu_vein: float
    hu_liver: float
    hu_spleen: float
    hu_kidney_cortex: float
    hu_kidney_medulla: float
    hu_bowel_wall: float
    hu_bowel_fluid: float
    hu_oral_contrast: float
    hu_lung: float
    hu_urine: float
    hu_cartilage: float
    hu_plaque: float
    hu_table_shell: float
    hu_table_core: float
    hu_metal: float
    hu_polyethylene: float
    # --- field of view ---
    fov_x_mm: float
    fov_top_margin_mm: float
    fov_bottom_mm: float            # below the femoral head centres, or below S1 without them
    fov_anterior_air_mm: float
    # --- upper spine (per level) ---
    level_scale: dict               # level -> (W, D, H) factors relative to L4
    level_disc: dict                # level -> (anterior, posterior) height of the disc below, mm
    level_segment_deg: dict         # level -> segmental angle of the segment below, deg
    level_pedicle: dict             # level -> (width, height), mm
    level_convergence_deg: dict
    level_canal_w: dict
    level_tp_tip: dict
    level_spinous: dict
    level_facet_deg: dict
    rib_radius_mm: float
    conus_level_z: float            # conus tip between L1 (0) and L2 (1) bodies
    # --- pelvis and hips ---
    pelvic_tilt_deg: float
    sacro_femoral_mm: float         # S1 endplate centre -> hip axis midpoint
    hip_half_distance_mm: float
    femoral_head_radius_mm: float
    neck_shaft_deg: float
    femoral_anteversion_deg: float
    acetabular_inclination_deg: float
    acetabular_anteversion_deg: float
    # --- body, arms, table ---
    wall_muscle_mm: float
    pelvis_width_factor: float
    thorax_width_factor: float
    arm_radius_mm: float
    arm_gap_mm: float
    elbow_level: float              # elbow height: 0 = L4 centre, 1 = L1 centre
    table_thickness_mm: float
    table_curvature: float          # 1/mm (top y = y0 - c x^2)
    table_gap_mm: float
    # --- organs and vessels ---
    aorta_radius_mm: float
    aorta_x_mm: float
    ivc_radius_mm: float
    ivc_x_mm: float
    bifurcation_offset_mm: float
    n_calcifications: int
    kidney_z_mm: tuple
    kidney_size: tuple              # (rx, ry, rz) mm
    liver_size: tuple
    spleen_size: tuple
    bladder_size: tuple
    bowel_seed: int
    bowel_threshold: float
    gas_threshold: float
    # --- metal ---
    screw_radius_mm: float
    # --- acquisition ---
    blur_fwhm_mm: float
    edge_gain: float
    edge_sigma_mm: float
    slice_thickness_mm: float
    noise_sd_hu: float
    noise_corr_mm: float
    streak_hu: float
    metal_streak_hu: float
    # --- field of view length (drawn last) ---
    fov_max_z_mm: float             # longer fields of view are cut to this length ...
    fov_trim_top: bool              # ... at the top (thorax) or else at the bottom (hips)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        def conv(v):
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, (tuple, list)):
                return [conv(x) for x in v]
            if isinstance(v, (bool, str)):
                return v
            if isinstance(v, (int, np.integer)):
                return int(v)
            return float(v)
        return {f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)}


_CHOICE_FIELDS = {
    "bone_density": (DENSITY_CLASSES, (0.35, 0.45, 0.20)),
    "contrast_phase": (PHASES, (0.40, 0.25, 0.35)),
    "oral_contrast": ((False, True), (0.67, 0.33)),
    "arms_down": ((False, True), (0.70, 0.30)),
    "table": ((False, True), (0.10, 0.90)),
    "fov_top_level": (TOP_LEVELS, (0.10, 0.15, 0.25, 0.30, 0.20)),
    "fov_to_femoral_heads": ((False, True), (0.25, 0.75)),
    "screws": (SCREW_CHOICES, (0.90, 0.03, 0.04, 0.03)),
    "hip_prosthesis": (HIP_CHOICES, (0.90, 0.04, 0.04, 0.02)),
    "kernel": (KERNELS, (0.55, 0.45)),
}


def sample_patient_params(seed: int, overrides: Mapping[str, Any] | None = None) -> PatientParams:
    """Draw a patient-like case from ``Generator(PCG64(SeedSequence([seed, 11])))``.

    Parameters
    ----------
    seed : int
        The phantom's seed (non-negative).
    overrides : mapping, optional
        Field values to force. Choices (``bone_density``, ``contrast_phase``, ...) are forced
        *before* the values that depend on them are drawn (forcing ``bone_density=
        "osteoporotic"`` gives osteoporotic HU); other values after. The draws of a seed do not
        depend on the overrides.
    """
    overrides = dict(overrides or {})
    names = {f.name for f in dataclasses.fields(PatientParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise KeyError(f"unknown patient parameters: {unknown}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), PATIENT_STREAM])))
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    v: dict[str, Any] = {}
    for name, (choices, probs) in _CHOICE_FIELDS.items():
        i = int(rng.choice(len(choices), p=np.asarray(probs) / np.sum(probs)))
        v[name] = choices[i]
        if name in overrides:
            value = overrides[name]
            if value not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
            v[name] = value

    # Bone (class-dependent ranges): uniform draws in [0, 1) scaled to the class's range so the
    # stream is the same whatever class is forced.
    canc, cort, ct, pct = DENSITY_RANGES[v["bone_density"]]
    for key, (lo, hi) in (("hu_cancellous", canc), ("hu_cortical", cort),
                          ("cortical_thickness_mm", ct), ("posterior_cortical_thickness_mm", pct)):
        v[key] = lo + (hi - lo) * float(rng.uniform())
    v["hu_marrow"] = u(-80.0, 40.0)
    # Soft tissue; phase-dependent HU use one uniform each, scaled to the phase's range.
    v.update(hu_fat=u(-120.0, -80.0), hu_subcutaneous_fat=u(-120.0, -90.0), hu_muscle=u(25.0, 60.0),
             hu_skin=u(20.0, 50.0))
    for key in ("artery", "vein", "liver", "spleen", "kidney_cortex", "kidney_medulla",
                "bowel_wall"):
        lo, hi = PHASE_RANGES[v["contrast_phase"]][key]
        v[f"hu_{key}"] = lo + (hi - lo) * float(rng.uniform())
    if v["contrast_phase"] == "none":
        # One blood value for arteries and veins without contrast.
        v["hu_vein"] = v["hu_artery"]
    v.update(hu_bowel_fluid=u(0.0, 30.0), hu_oral_contrast=u(200.0, 800.0), hu_lung=u(-900.0, -800.0),
             hu_urine=u(0.0, 20.0), hu_cartilage=u(80.0, 180.0), hu_plaque=u(300.0, 1200.0),
             hu_table_shell=u(100.0, 500.0), hu_table_core=u(-950.0, -800.0),
             hu_metal=u(4000.0, 10000.0), hu_polyethylene=u(-100.0, -60.0))
    # Field of view.
    v.update(fov_x_mm=u(260.0, 360.0), fov_top_margin_mm=u(-10.0, 15.0),
             fov_bottom_mm=u(20.0, 60.0) if v["fov_to_femoral_heads"] else u(55.0, 90.0),
             fov_anterior_air_mm=u(5.0, 25.0))
    # Upper spine.
    per = {k: {} for k in ("level_scale", "level_disc", "level_segment_deg", "level_pedicle",
                           "level_convergence_deg", "level_canal_w", "level_tp_tip",
                           "level_spinous", "level_facet_deg")}
    for level in UPPER_ORDER:
        L = UPPER_LEVELS[level]
        per["level_scale"][level] = tuple(s * u(0.96, 1.04) for s in L["scale"])
        per["level_disc"][level] = (u(*L["disc_a"]), u(*L["disc_p"]))
        per["level_segment_deg"][level] = u(*L["seg"])
        per["level_pedicle"][level] = (u(*L["ped_w"]), u(*L["ped_h"]))
        per["level_convergence_deg"][level] = u(*L["conv"])
        per["level_canal_w"][level] = u(*L["canal_w"])
        per["level_tp_tip"][level] = u(*L["tp"])
        per["level_spinous"][level] = u(*L["sp"])
        per["level_facet_deg"][level] = u(*L["facet"])
    v.update(per)
    v.update(rib_radius_mm=u(3.5, 5.0), conus_level_z=u(0.0, 1.0))
    # Pelvis (pelvic incidence = tilt + sacral slope, 40-80 deg for slopes of 35-45 deg).
    v.update(pelvic_tilt_deg=u(5.0, 25.0), sacro_femoral_mm=u(95.0, 125.0),
             hip_half_distance_mm=u(80.0, 95.0), femoral_head_radius_mm=u(21.0, 27.0),
             neck_shaft_deg=u(122.0, 138.0), femoral_anteversion_deg=u(5.0, 25.0),
             acetabular_inclination_deg=u(38.0, 50.0), acetabular_anteversion_deg=u(12.0, 25.0))
    # Body, arms, table.
    v.update(wall_muscle_mm=u(6.0, 15.0), pelvis_width_factor=u(0.95, 1.12),
             thorax_width_factor=u(0.82, 0.95), arm_radius_mm=u(35.0, 50.0), arm_gap_mm=u(3.0, 30.0),
             elbow_level=u(0.0, 0.8), table_thickness_mm=u(8.0, 20.0),
             table_curvature=u(0.0, 4e-4), table_gap_mm=u(0.0, 4.0))
    # Organs and vessels.
    v.update(aorta_radius_mm=u(8.0, 13.0), aorta_x_mm=u(5.0, 22.0), ivc_radius_mm=u(8.0, 12.0),
             ivc_x_mm=u(-28.0, -15.0), bifurcation_offset_mm=u(-15.0, 5.0),
             n_calcifications=int(rng.integers(0, 16)) if rng.uniform() < 0.6 else 0,
             kidney_z_mm=(u(-10.0, 15.0), u(-25.0, 0.0)),
             kidney_size=(u(24.0, 32.0), u(20.0, 27.0), u(50.0, 65.0)),
             liver_size=(u(110.0, 140.0), u(85.0, 110.0), u(90.0, 130.0)),
             spleen_size=(u(25.0, 35.0), u(50.0, 70.0), u(45.0, 65.0)),
             bladder_size=(u(35.0, 55.0), u(25.0, 40.0), u(25.0, 45.0)),
             bowel_seed=int(rng.integers(0, 2 ** 31 - 1)), bowel_threshold=u(0.1, 0.5),
             gas_threshold=u(0.3, 1.2))
    v["screw_radius_mm"] = u(2.75, 3.5)
    # Acquisition.
    smooth = v["kernel"] == "smooth"
    r = [float(rng.uniform()) for _ in range(4)]
    v["blur_fwhm_mm"] = (1.0 + 0.6 * r[0]) if smooth else (0.6 + 0.3 * r[0])
    v["edge_gain"] = 0.0 if smooth else 0.4 + 0.8 * r[1]
    v["edge_sigma_mm"] = u(0.8, 1.5)
    v["noise_sd_hu"] = (8.0 + 20.0 * r[2]) if smooth else (15.0 + 25.0 * r[2])
    v["noise_corr_mm"] = (0.6 + 0.6 * r[3]) if smooth else (0.2 + 0.3 * r[3])
    # Slice thickness: thin (0.5-1.5) in half of the cases, 2-3 mm in a third, up to 5 mm else.
    band = float(rng.uniform())
    t = float(rng.uniform())
    v["slice_thickness_mm"] = (0.5 + 1.0 * t if band < 0.5 else 2.0 + 1.0 * t if band < 0.83
                               else 3.0 + 2.0 * t)
    v["streak_hu"] = u(20.0, 100.0) if rng.uniform() < 0.6 else 0.0
    v["metal_streak_hu"] = u(150.0, 500.0)
    v["fov_max_z_mm"] = u(240.0, 320.0)
    v["fov_trim_top"] = bool(rng.uniform() < 0.5)

    for key, value in overrides.items():
        if key not in _CHOICE_FIELDS:
            v[key] = value
    return PatientParams(**v)


def adjust_params(p: PhantomParams, q: PatientParams) -> PhantomParams:
    """The default parameters with the patient's bone density and soft-tissue HU.

    Geometry is untouched except the cortical thicknesses (which move only the cortical /
    cancellous boundary, not the bone label).
    """
    return p.replace(hu_cancellous=q.hu_cancellous, hu_cortical=q.hu_cortical,
                     cortical_thickness_mm=q.cortical_thickness_mm,
                     posterior_cortical_thickness_mm=q.posterior_cortical_thickness_mm,
                     hu_fat=q.hu_fat, hu_subcutaneous_fat=q.hu_subcutaneous_fat,
                     hu_muscle=q.hu_muscle, hu_skin=q.hu_skin, hu_vessel=q.hu_vein)


def patient_tissue_hu(base: Mapping[str, float], q: PatientParams) -> dict[str, float]:
    """HU of every tissue (``render.TISSUES``) of a patient-like case.

    ``base`` is :func:`~spinect_core.phantom.generate.tissue_hu` of the adjusted parameters.
    """
    hu = dict(base)
    hu.update({
        "lung": q.hu_lung, "liver": q.hu_liver, "spleen": q.hu_spleen,
        "kidney_cortex": q.hu_kidney_cortex, "kidney_medulla": q.hu_kidney_medulla,
        "artery": q.hu_artery, "vein": q.hu_vein, "bowel_wall": q.hu_bowel_wall,
        "bowel_fluid": q.hu_bowel_fluid, "oral_contrast": q.hu_oral_contrast,
        "colon_content": -60.0, "urine": q.hu_urine, "cartilage": q.hu_cartilage,
        "plaque": q.hu_plaque, "table": q.hu_table_shell, "table_core": q.hu_table_core,
        "metal": q.hu_metal, "polyethylene": q.hu_polyethylene, "marrow": q.hu_marrow,
        "gas": -1000.0,
    })
    return hu
