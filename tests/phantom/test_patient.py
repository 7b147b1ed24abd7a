"""Patient-like phantoms (``PhantomOptions(realism="patient")``): structures, HU, labels, streams.

Kept fast: whole patients at 3-4 mm, the exactness check on a 50 mm crop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import PhantomOptions, generate_phantom
from spinect_core.phantom.patient import (
    DENSITY_RANGES, PHASE_RANGES, PatientParams, sample_patient_params,
)
from spinect_core.phantom.render import TISSUE_ID

BONE, NERVE, DISC, DURA = (DEFAULT_LABELS.id_of(n) for n in ("bone", "nerve", "disc", "dura"))
UNLABELLED = 255
CLEAN = dict(blur=False, noise=False, streaks=False, texture=False, ct_dtype="float32")
#: A case with everything in view: lower thorax (T11) to below the femoral heads, arterial
#: contrast, osteoporotic bone, screws L4-S1 and a left hip prosthesis.
FULL = {"contrast_phase": "arterial", "bone_density": "osteoporotic", "screws": "L4-S1",
        "hip_prosthesis": "left", "fov_top_level": "T11", "fov_to_femoral_heads": True,
        "fov_max_z_mm": 500.0, "fov_bottom_mm": 45.0, "arms_down": True, "table": True}


@pytest.fixture(scope="module")
def clean():
    return generate_phantom(seed=21, spacing_mm=(3.0, 3.0, 3.0), options=PhantomOptions(
        realism="patient", patient_overrides=FULL, **CLEAN))


def _ids(ph, *names):
    return [ph.instance_table.id_of(n) for n in names]


def test_patient_params_seeded_and_overridable():
    a, b = sample_patient_params(4), sample_patient_params(4)
    assert a == b and a != sample_patient_params(5)
    forced = sample_patient_params(4, {"bone_density": "osteoporotic", "contrast_phase": "portal"})
    lo, hi = DENSITY_RANGES["osteoporotic"][0]
    assert lo <= forced.hu_cancellous <= hi
    assert PHASE_RANGES["portal"]["artery"][0] <= forced.hu_artery <= PHASE_RANGES["portal"]["artery"][1]
    # Forcing a choice does not move the other draws.
    assert forced.aorta_radius_mm == a.aorta_radius_mm and forced.bowel_seed == a.bowel_seed
    with pytest.raises(KeyError):
        sample_patient_params(1, {"no_such_field": 1})
    with pytest.raises(ValueError):
        sample_patient_params(1, {"contrast_phase": "venous"})
    with pytest.raises(ValueError):
        PhantomOptions(realism="photoreal")
    with pytest.raises(ValueError):
        PhantomOptions(patient_overrides={"screws": "L4-L5"})   # needs realism="patient"
    # Over many seeds every choice occurs.
    qs = [sample_patient_params(s) for s in range(60)]
    assert {q.contrast_phase for q in qs} == {"none", "arterial", "portal"}
    assert {q.bone_density for q in qs} == {"osteoporotic", "normal", "sclerotic"}
    assert {q.kernel for q in qs} == {"smooth", "sharp"}
    thick = [q.slice_thickness_mm for q in qs]
    assert 0.5 <= min(thick) < 1.0 and 3.0 < max(thick) <= 5.0
    noise = [q.noise_sd_hu for q in qs]
    assert 8.0 <= min(noise) and max(noise) <= 40.0
    assert isinstance(json.loads(json.dumps(a.to_dict())), dict)
    assert isinstance(a, PatientParams)


def test_structures_present_with_labels(clean):
    ph = clean
    ins, lab, tis = ph.instances.array, ph.labels.array, ph.tissues.array
    present = {ph.instance_table.name_of(int(i)) for i in np.unique(ins)}
    for name in ("L1", "L2", "L3", "T12", "femur_left", "femur_right", "rib_T12_left",
                 "rib_T11_right", "disc_L3L4", "root_L3_left", "metal", "L5", "root_L5_left"):
        assert name in present, name
    # Bones of the torso are bone; discs, roots above L4 are disc and nerve.
    for name in ("L2", "T12", "femur_right", "rib_T12_left", "rib_T11_right"):
        (i,) = _ids(ph, name)
        m = ins == i
        assert m.sum() > 10 and np.all((lab[m] == BONE) | (lab[m] == UNLABELLED)), name
    assert np.all(lab[ins == ph.instance_table.id_of("disc_L2L3")] == DISC)
    assert np.all(lab[ins == ph.instance_table.id_of("root_L2_right")] == NERVE)
    # The right femoral head (no prosthesis there) is bone at its centre.
    c = np.array(ph.meta["landmarks"]["femoral_head_centre_right"])
    k = np.round(ph.labels.lps_to_index(c)).astype(int)
    assert lab[k[2], k[1], k[0]] == BONE
    # Organs, vessels, bowel, table: background (or unlabelled next to metal).
    lab = np.where(lab == UNLABELLED, 0, lab)
    for tissue in ("artery", "vein", "liver", "spleen", "kidney_cortex", "kidney_medulla",
                   "bowel_wall", "gas", "table", "lung", "urine", "plaque", "cartilage",
                   "polyethylene"):
        m = tis == TISSUE_ID[tissue]
        if tissue in ("plaque", "lung"):     # small or FOV-dependent
            assert np.all(lab[m] == 0), tissue
            continue
        assert m.sum() > 5, tissue
        assert np.all(lab[m] == 0), tissue


def test_labels_agree_with_tissues(clean):
    """Every bone / nerve / disc / dura label is painted from its own tissue (exact labels)."""
    lab, tis = clean.labels.array, clean.tissues.array
    bone_t = [TISSUE_ID[t] for t in ("cortical", "cancellous", "marrow")]
    rim = lab == UNLABELLED
    assert np.array_equal(np.isin(tis, bone_t) & ~rim, (lab == BONE))
    assert np.array_equal((tis == TISSUE_ID["nerve"]) & ~rim, lab == NERVE)
    assert np.array_equal(np.isin(tis, [TISSUE_ID["disc"], TISSUE_ID["disc_nucleus"]]) & ~rim,
                          lab == DISC)
    dura_t = [TISSUE_ID["dura"], TISSUE_ID["csf"]]
    assert np.array_equal(np.isin(tis, dura_t) & ~rim, lab == DURA)


def test_metal_is_unlabelled(clean):
    lab, tis = clean.labels.array, clean.tissues.array
    metal = tis == TISSUE_ID["metal"]
    assert metal.sum() > 20
    assert np.all(lab[metal] == UNLABELLED)
    rim = (lab == UNLABELLED) & ~metal
    assert rim.sum() > 0
    assert np.all(ndimage.binary_dilation(metal, structure=np.ones((3, 3, 3), bool))[rim])
    assert clean.meta["unlabelled_voxels"] == int((lab == UNLABELLED).sum())
    assert float(np.median(clean.ct.array[metal])) >= 4000.0   # float32 output: not clipped


def test_hu_of_contrast_and_osteoporotic_bone(clean):
    ct, tis, ins = clean.ct.array, clean.tissues.array, clean.instances.array
    q = clean.meta["patient"]
    aorta = ndimage.binary_erosion(tis == TISSUE_ID["artery"])
    assert aorta.sum() > 10
    assert 150.0 <= float(np.median(ct[aorta])) <= 450.0
    assert abs(float(np.median(ct[aorta])) - q["hu_artery"]) < 1.0
    assert np.all(clean.labels.array[tis == TISSUE_ID["artery"]] == 0)
    bodies = np.isin(ins, _ids(clean, "L1", "L2", "L3", "L4", "L5"))
    canc = ndimage.binary_erosion((tis == TISSUE_ID["cancellous"]) & bodies)
    assert canc.sum() > 50
    assert 60.0 <= float(np.median(ct[canc])) <= 150.0
    for organ in ("liver", "spleen", "kidney_cortex"):
        m = ndimage.binary_erosion(tis == TISSUE_ID[organ])
        assert m.sum() > 5, organ
        assert 100.0 <= float(np.median(ct[m])) <= 250.0 or organ == "liver", organ


def test_scanner_effects_and_int16():
    ph = generate_phantom(seed=8, spacing_mm=(4.0, 4.0, 4.0), options=PhantomOptions(
        realism="patient", patient_overrides={"kernel": "sharp", "noise_sd_hu": 30.0,
                                              "contrast_phase": "portal", "screws": "L5-S1"}))
    ct, tis = ph.ct.array, ph.tissues.array
    assert ct.dtype == np.int16 and ct.max() <= 3071 and ct.min() >= -1024
    fat = ndimage.binary_erosion(tis == TISSUE_ID["subcutaneous_fat"], iterations=1)
    assert fat.sum() > 50
    assert 10.0 < float(ct[fat].std()) < 80.0
    assert ph.meta["realism"] == "patient" and ph.meta["patient"]["kernel"] == "sharp"
    assert (ph.labels.array == UNLABELLED).any()


def test_separate_streams_keep_geometry():
    """Contrast, density and scanner draws do not move the anatomy; the seed does."""
    opts = dict(realism="patient", **CLEAN)
    a = generate_phantom(seed=33, spacing_mm=(5.0, 5.0, 5.0), options=PhantomOptions(
        patient_overrides={"contrast_phase": "none", "screws": "none", "hip_prosthesis": "none"},
        **opts))
    b = generate_phantom(seed=33, spacing_mm=(5.0, 5.0, 5.0), options=PhantomOptions(
        patient_overrides={"contrast_phase": "arterial", "screws": "none",
                           "hip_prosthesis": "none", "kernel": "sharp"}, **opts))
    assert np.array_equal(a.labels.array, b.labels.array)
    assert np.array_equal(a.tissues.array, b.tissues.array)
    artery = a.tissues.array == TISSUE_ID["artery"]
    assert float(np.median(b.ct.array[artery])) > float(np.median(a.ct.array[artery])) + 80.0
    c = generate_phantom(seed=33, spacing_mm=(5.0, 5.0, 5.0), options=PhantomOptions(
        patient_overrides={"contrast_phase": "none", "screws": "none", "hip_prosthesis": "none"},
        **opts))
    assert np.array_equal(a.ct.array, c.ct.array) and a.meta == c.meta


def test_lumbosacral_labels_same_as_default():
    """Around L5/S1 the patient-like phantom has the default phantom's exact labels."""
    for seed in (2, 7):
        d = generate_phantom(seed=seed, spacing_mm=(1.5, 1.5, 1.5),
                             options=PhantomOptions(crop_mm=40.0, noise=False))
        p = generate_phantom(seed=seed, spacing_mm=(1.5, 1.5, 1.5), options=PhantomOptions(
            crop_mm=40.0, noise=False, realism="patient",
            patient_overrides={"screws": "none", "hip_prosthesis": "none"}))
        assert d.ct.same_grid(p.ct)
        assert np.array_equal(d.labels.array, p.labels.array), seed
        assert np.array_equal(d.instances.array, p.instances.array), seed


def test_patient_mode_imports_without_io_libraries():
    code = (
        "import sys\n"
        "for m in ('SimpleITK', 'nibabel', 'pydicom', 'vtk', 'PySide6', 'PyQt5', 'PyQt6'):\n"
        "    sys.modules[m] = None\n"
        "from spinect_core.phantom import PhantomOptions, generate_phantom\n"
        "p = generate_phantom(seed=1, spacing_mm=(5.0, 5.0, 5.0),\n"
        "                     options=PhantomOptions(realism='patient'))\n"
        "assert p.ct.array.size > 1000\n"
        "bad = [m for m in ('SimpleITK', 'nibabel', 'pydicom', 'vtk')\n"
        "       if sys.modules.get(m) is not None]\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_cli_patient_writes_unlabelled_metal(tmp_path):
    from spinect_core.cli import phantom as cli
    from spinect_core.errors import InputError

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["phantom", str(tmp_path / "p"), "--seed", "4", "--spacing", "5",
                              "5", "5", "--patient", "--patient-set", "screws=L4-S1",
                              "--patient-set", "contrast_phase=arterial", "--quiet"])
    assert args.handler(args) == 0
    sidecar = json.loads((tmp_path / "p" / "labels.labels.json").read_text())
    assert sidecar["unlabelled_value"] == 255
    assert {e["name"] for e in sidecar["labels"]} == {"background", "bone", "nerve", "disc", "dura"}
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["patient"]["screws"] == "L4-S1" and meta["patient"]["contrast_phase"] == "arterial"
    import SimpleITK as sitk
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "p" / "labels.nii.gz")))
    assert (labels == 255).any()
    bad = parser.parse_args(["phantom", str(tmp_path / "q"), "--seed", "4", "--patient",
                             "--patient-set", "contrast_phase=venous", "--quiet"])
    with pytest.raises(InputError):
        bad.handler(bad)
    bad = parser.parse_args(["phantom", str(tmp_path / "q"), "--seed", "4",
                             "--patient-set", "screws=L4-S1", "--quiet"])
    with pytest.raises(InputError):
        bad.handler(bad)
