"""Mesh-based (real-bone) phantom: determinism, dimensions inside docs/ANATOMY.md, roots under
their own pedicles, labels, DICOM.

The default tests build the anatomy only (no distance grids, no rendering: ~3 s cold); the
rendered phantom (the bones' distance grids take ~10-30 s to compute on a cold cache) is
``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.phantom import PhantomOptions, generate_phantom, sample_params
from spinect_core.phantom.real import build_real_anatomy, sample_variation
from spinect_core.phantom.real.meshes import load_landmarks
from spinect_core.phantom.real.variation import RANGES

#: Seeds not used elsewhere (unseen by the bundled network's training either).
SEEDS = tuple(range(100, 110))
#: The draws are uniform over a box of scale factors; the Visible Human's proportions (a deep,
#: low L5 with tall pedicles) put a corner of that box up to this far outside a range.
TOL_MM = 1.5


@pytest.fixture(scope="module")
def anatomies():
    out = {}
    for seed in SEEDS:
        var = sample_variation(seed)
        anatomy, params = build_real_anatomy(sample_params(seed), var)
        out[seed] = (anatomy, params, var)
    return out


def test_variation_is_seeded_and_inside_its_ranges():
    a, b, c = sample_variation(7), sample_variation(7), sample_variation(8)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()
    for seed in SEEDS:
        v = sample_variation(seed)
        assert RANGES["size_scale"][0] <= v.size_scale <= RANGES["size_scale"][1]
        assert all(RANGES["aspect"][0] <= x <= RANGES["aspect"][1] for x in v.aspect)
        lo, hi = RANGES["crest_raise_mm"]
        assert lo <= v.crest_raise_mm <= hi
        for disc, (ant, post) in v.disc_heights_mm.items():
            assert v.degenerate_discs[disc]
            assert post <= RANGES["degenerate_disc_posterior_mm"][1] < ant


def test_anatomy_is_deterministic_per_seed(anatomies):
    anatomy, _p, _v = anatomies[SEEDS[0]]
    again, _q = build_real_anatomy(sample_params(SEEDS[0]), sample_variation(SEEDS[0]))
    assert set(again.landmarks) == set(anatomy.landmarks)
    for name, value in anatomy.landmarks.items():
        assert np.array_equal(np.asarray(value), np.asarray(again.landmarks[name])), name
    other = anatomies[SEEDS[1]][0]
    assert not np.allclose(other.landmarks["l5_pedicle_centre_left"],
                           anatomy.landmarks["l5_pedicle_centre_left"])


def test_l5_body_pedicles_and_foramina_inside_anatomy_ranges(anatomies):
    for seed, (anatomy, _p, var) in anatomies.items():
        l5 = anatomy.internals["spine"]["L5"]
        for value, (lo, hi) in ((l5.body_width_mm, (45, 55)), (l5.body_depth_mm, (33, 38)),
                                (l5.body_height_mm, (24, 30))):
            assert lo - TOL_MM <= value <= hi + TOL_MM, (seed, value)
        for i in (0, 1):
            assert 12 - TOL_MM <= l5.pedicle_width_mm[i] <= 18 + TOL_MM, seed
            assert 13 - TOL_MM <= l5.pedicle_height_mm[i] <= 16 + TOL_MM, seed
        # Foramen heights (upper pedicle's lower margin -> lower pedicle's top, 3 mm behind the
        # bodies): ANATOMY.md has 15-21 mm at L5/S1 and the procedural phantom 17-22 at L4/L5.
        # The Visible Human's L5/S1 foramen is lower (his S1 pedicle reaches 2-3 mm above the
        # endplate's plane right behind the body): 9-12 mm with a normal disc, down to ~6 with a
        # collapsed one (<= 15 mm compresses the root: Hasegawa 1995). Checked against what the
        # real bones give, so a change that moves a root's foramen shows up here.
        l5s1 = anatomy.derived["foramen_height_l5s1_mm"]
        l4l5 = anatomy.derived["foramen_height_l4l5_mm"]
        low = 5.0 if var.degenerate_discs["L5S1"] else 8.5
        assert all(low <= h <= 21 + TOL_MM for h in l5s1), (seed, l5s1)
        low = 8.0 if var.degenerate_discs["L4L5"] else 10.0
        assert all(low <= h <= 22 + TOL_MM for h in l4l5), (seed, l4l5)


def test_pedicles_measured_on_the_real_l5_match_the_literature():
    ped = load_landmarks()["vertebrae"]["L5"]
    for side in ("left", "right"):
        assert 12.0 <= ped[f"pedicle_{side}"]["width"] <= 18.0
        assert 13.0 <= ped[f"pedicle_{side}"]["height"] <= 16.5


def test_exiting_root_passes_under_its_own_pedicle(anatomies):
    for seed, (anatomy, _p, _v) in anatomies.items():
        spine = anatomy.internals["spine"]
        for level in ("L4", "L5"):
            v = spine[level]
            for i, side, s in ((0, "left", 1.0), (1, "right", -1.0)):
                line = np.asarray(anatomy.landmarks[f"root_{level}_{side}_centreline"])
                radius = np.asarray(anatomy.landmarks[f"root_{level}_{side}_radius"])
                x, y, z = v.frame.to_local(line[:, 0], line[:, 1], line[:, 2])
                xc = s * (0.5 * v.canal_width_mm + 0.5 * v.pedicle_width_mm[i])
                # The central half of the pedicle's width (at its medial wall the root is still
                # turning down from the canal to pass under it).
                under = ((np.abs(x - xc) <= 0.25 * v.pedicle_width_mm[i])
                         & (y >= 0.5 * v.body_depth_mm) & (y <= 0.5 * v.body_depth_mm + 12.0)
                         & (z < v.pedicle_bottom_mm[i]))
                assert under.any(), (seed, level, side)
                # Beneath this pedicle: the centreline always below its lower margin (the tube
                # grazes the margin where it slides down the medial wall, by < 1 mm), the whole
                # tube below it at the ganglion, and above the body's lower endplate (not in the
                # next level's foramen).
                zs, rs = z[under], radius[under]
                bottom = v.pedicle_bottom_mm[i]
                assert np.all(zs < bottom), (seed, level, side)
                assert np.all(zs + rs < bottom + 1.0), (seed, level, side)
                assert np.min(zs + rs) < bottom, (seed, level, side)
                assert np.any(zs > -0.5 * v.body_height_mm), (seed, level, side)


def test_field_of_view_holds_l4_down_to_below_s2(anatomies):
    """The field of view spans L4 to S2 (not the femoral heads: those are the patient-like
    phantom's): level counting needs 30 mm of sacrum below the L5/S1 disc to call it S1; the
    draws give 46-60 mm below the S1 endplate centre on seeds 100-109."""
    for seed, (anatomy, _p, _v) in anatomies.items():
        lo, hi, lm = anatomy.fov_lo, anatomy.fov_hi, anatomy.landmarks
        below = float(lm["s1_superior_endplate_centre"][2] - lo[2])
        assert below >= 45.0, (seed, below)
        for name in ("l4_body_centre", "l5_body_centre", "s1_body_centre", "iliac_crest_top_left",
                     "iliac_crest_top_right"):
            p = np.asarray(lm[name], float)
            assert np.all(lo < p) and np.all(p < hi), (seed, name)


# --- rendered phantom (distance grids, rasterising): slow ------------------------------------------
@pytest.fixture(scope="module")
def rendered():
    return generate_phantom(seed=SEEDS[0], spacing_mm=(1.5, 1.5, 1.5),
                            options=PhantomOptions(anatomy="real"))


@pytest.mark.slow
def test_every_label_and_instance_present_and_l5_volume(rendered):
    lab, ins = rendered.labels.array, rendered.instances.array
    for cls in (1, 2, 3, 4):
        assert (lab == cls).sum() > 50, cls
    names = rendered.instance_table.to_json()["labels"]
    ids = {str(n): int(i) for i, n in names.items()} if isinstance(names, dict) else {}
    for name in ("L4", "L5", "S1", "ilium_left", "ilium_right", "disc_L4L5", "disc_L5S1",
                 "dura", "root_L4_left", "root_L4_right", "root_L5_left", "root_L5_right",
                 "root_S1_left", "root_S1_right"):
        assert (ins == ids.get(name, rendered.instance_table.id_of(name))).sum() > 10, name
    voxel_ml = float(np.prod(rendered.ct.spacing_mm)) / 1000.0
    l5_ml = (ins == rendered.instance_table.id_of("L5")).sum() * voxel_ml
    var = sample_variation(SEEDS[0])
    expected = 76.2 * float(np.prod(var.scale_xyz))   # the Visible Human L5: 76.2 mL
    # Roots carve their path (1 mm clearance) and partial volume shaves the surface.
    assert 0.8 * expected <= l5_ml <= 1.05 * expected, (l5_ml, expected)
    assert 45.0 <= l5_ml <= 90.0
    assert rendered.meta["anatomy"] == "real"
    assert rendered.meta["coordinate_system"] == "LPS"


@pytest.mark.slow
def test_facet_joints_leave_a_joint_space(rendered):
    # Where the placed bones meet (the facets, pressed together by the seed's lordosis and SAP
    # hypertrophy) the lower vertebra is carved by a joint space. Without it, here L4 touched L5
    # at 179 voxel faces and L5 touched S1 at 158 (none now), with no dark line between them on
    # the CT: no segmentation could part the levels there.
    from scipy import ndimage as ndi

    ins, table = rendered.instances.array, rendered.instance_table
    for upper, lower in (("L4", "L5"), ("L5", "S1")):
        a, b = ins == table.id_of(upper), ins == table.id_of(lower)
        touching = b & ndi.binary_dilation(a, ndi.generate_binary_structure(3, 1))
        assert touching.sum() <= 10, (upper, lower, int(touching.sum()))


@pytest.mark.slow
def test_pedicle_lower_margin_is_where_the_rendered_bone_ends(rendered):
    lab = rendered.labels.array
    lm = rendered.meta["landmarks"]
    for level in ("l4", "l5"):
        for side in ("left", "right"):
            top = np.asarray(lm[f"{level}_pedicle_lower_margin_{side}"], float)

            def label_at(p):
                idx = np.asarray(rendered.ct.lps_to_index(p))[::-1]
                return lab[tuple(int(round(v)) for v in idx)]
            # Bone (the real pedicle) just above its measured lower margin, the open foramen
            # (fat, nerve) just below it: the landmark is where the real bone ends.
            assert label_at(top + np.array([0.0, 0.0, 2.5])) == 1, (level, side)
            assert label_at(top - np.array([0.0, 0.0, 2.5])) != 1, (level, side)


@pytest.mark.slow
def test_crop_is_deterministic_and_dicom_reads_back(tmp_path):
    from spinect_core.phantom import write_phantom

    opts = PhantomOptions(anatomy="real", crop_mm=40.0)
    a = generate_phantom(seed=SEEDS[1], spacing_mm=(2.0, 2.0, 2.0), options=opts)
    b = generate_phantom(seed=SEEDS[1], spacing_mm=(2.0, 2.0, 2.0), options=opts)
    assert np.array_equal(a.ct.array, b.ct.array)
    assert np.array_equal(a.labels.array, b.labels.array)
    paths = write_phantom(a, tmp_path / "d", dicom=True)
    from spinect_core.io.load import load_ct
    vol = load_ct(paths["dicom"])
    assert np.allclose(vol.spacing_mm, a.ct.spacing_mm, atol=1e-3)
    assert np.allclose(vol.origin_lps_mm, a.ct.origin_lps_mm, atol=1e-2)
    assert np.array_equal(np.asarray(vol.array).astype(np.int16), a.ct.array)


def test_cli_takes_anatomy_real_and_refuses_it_with_patient(tmp_path):
    import argparse

    from spinect_core.cli import phantom as cli
    from spinect_core.errors import InputError

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["phantom", str(tmp_path / "c"), "--seed", "2", "--anatomy", "real",
                              "--patient", "--quiet"])
    assert args.anatomy == "real"
    with pytest.raises(InputError, match="--anatomy real"):
        args.handler(args)
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="anatomy"):
        PhantomOptions(anatomy="boxes")


def test_a_bone_grid_computed_here_equals_the_cached_one(tmp_path, monkeypatch):
    """A phantom must not depend on whether this process computed a bone's distance grid or read
    it from the cache (float16 on disk): before, real-bone phantoms of one seed differed by a
    few voxels between a machine's first run and its later ones."""
    from spinect_core.phantom.real import meshes

    monkeypatch.setenv("SPINECT_CACHE_DIR", str(tmp_path))
    meshes.bone_sdf.cache_clear()
    try:
        computed = meshes.bone_sdf("L5")
        assert any(tmp_path.iterdir())                 # written to the cache
        meshes.bone_sdf.cache_clear()
        read_back = meshes.bone_sdf("L5")
    finally:
        meshes.bone_sdf.cache_clear()                  # the other tests' grids: from their cache
    assert read_back is not computed
    np.testing.assert_array_equal(computed.values, read_back.values)
    np.testing.assert_array_equal(computed.origin_mm, read_back.origin_mm)
