"""The real-CT converter: bone -> 1, spine surroundings -> 255, the rest -> 0, slab geometry."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.io import load_ct, write_image
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.training import (
    UNLABELLED, BoneOnlyOptions, axial_slab, bone_mask_reference, bone_only_case,
    discover_cases, load_cases,
)
from spinect_core.training.real_ct import slab_slices
from spinect_core.volume import Volume

SPACING = (0.7, 0.7, 2.5)  # x, y, z mm, as the real chest CT
SHAPE = (20, 40, 40)  # z, y, x
VERT_BOX = (slice(8, 10), slice(18, 22), slice(18, 22))  # z, y, x voxel box of "vertebrae_T1"
STRUCTURES = """group,original_idx,structure,id
vertebrae,1,vertebrae_T1,1
ribs,1,rib_left_1,2
ribs,26,costal_cartilages,3
organs,10,lung_upper_lobe_left,4
muscles,11,spinal_cord,5
skeleton,1,humerus_left,6
"""


def _write_inputs(tmp_path, *, direction=np.eye(3)):
    labels = np.zeros(SHAPE, np.uint8)
    labels[:, 30:36, 5:30] = 4  # lung, partly within the margin of the vertebra
    labels[VERT_BOX] = 1
    labels[9, 20, 24] = 5  # cord voxel beside the vertebra (within 20 mm)
    labels[:, 2:4, 2:6] = 2  # rib, far from the vertebra
    labels[9, 16:18, 22:26] = 2  # rib head touching the vertebra: bone wins over the margin
    labels[:, 36:38, 30:34] = 3  # costal cartilage, > 5 mm from the vertebra
    labels[0:2, 0:2, 36:40] = 6  # humerus
    ct = np.where(labels == 0, -100, 60).astype(np.int16)
    ct[np.isin(labels, [1, 2, 6])] = 700
    vol = Volume(array=ct, spacing_mm=SPACING, origin_lps_mm=(-10.0, 20.0, -300.0),
                 direction=direction)
    write_image(vol, tmp_path / "ct.nii.gz")
    write_image(vol.with_array(labels), tmp_path / "labels.nii.gz")
    (tmp_path / "structures.csv").write_text(STRUCTURES)
    return vol, labels


def _distance_to_box_mm() -> np.ndarray:
    """Exact Euclidean distance (mm) of every voxel centre to the vertebra box (0 inside)."""
    grids = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    d2 = np.zeros(SHAPE)
    for g, box, s in zip(grids, VERT_BOX, SPACING[::-1]):
        gap = np.maximum(np.maximum(box.start - g, g - (box.stop - 1)), 0) * s
        d2 += gap ** 2
    return np.sqrt(d2)


def _convert(tmp_path, **opts):
    return bone_only_case(tmp_path / "ct.nii.gz", tmp_path / "labels.nii.gz",
                          tmp_path / "structures.csv", tmp_path / "out",
                          options=BoneOnlyOptions(**opts))


def _read(path):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("margin", [5.0, 20.0])
def test_mapping_and_anisotropic_margin(tmp_path, margin):
    _, src = _write_inputs(tmp_path)
    out = _convert(tmp_path, unlabelled_margin_mm=margin)
    lab = _read(out.labels)
    bone = np.isin(src, [1, 2, 6])
    near = _distance_to_box_mm() <= margin
    expected = np.zeros(SHAPE, np.uint8)
    expected[near | (src == 3)] = UNLABELLED
    expected[bone] = 1
    np.testing.assert_array_equal(lab, expected)
    # the margin really is in millimetres on the 0.7 x 0.7 x 2.5 grid, not in voxels:
    # 7 in-plane voxels (4.9 mm) are near at 5 mm, 3 slices (7.5 mm) are not
    if margin == 5.0:
        assert lab[9, 20, 21 + 7] == UNLABELLED and lab[9, 20, 21 + 8] == 0
        assert lab[9 + 2, 20, 20] == UNLABELLED and lab[9 + 3, 20, 20] == 0
    assert lab[9, 20, 24] == UNLABELLED  # the cord beside the vertebra
    assert (lab[9, 16:18, 22:26] == 1).all()  # rib head inside the margin stays bone
    assert (lab[:, 36:38, 30:34] == UNLABELLED).all()  # cartilage: excluded everywhere
    assert out.voxels == {"background": int((expected == 0).sum()), "bone": int(bone.sum()),
                          "unlabelled": int((expected == UNLABELLED).sum())}
    sidecar = json.loads(out.label_table.read_text())
    assert sidecar["labels"] == DEFAULT_LABELS.to_json()["labels"]
    prov = json.loads(out.provenance.read_text())
    assert prov["structures"]["bone"] == ["humerus_left", "rib_left_1", "vertebrae_T1"]
    assert prov["structures"]["unlabelled"] == ["costal_cartilages"]
    # the case loads as training data, 255 intact, with the 5-class table
    (case,) = load_cases(discover_cases(tmp_path / "out"))
    assert case.table == DEFAULT_LABELS
    np.testing.assert_array_equal(case.labels.array, expected)


def test_costal_cartilage_can_be_background(tmp_path):
    _, src = _write_inputs(tmp_path)
    out = _convert(tmp_path, unlabelled_structures=(), unlabelled_margin_mm=5.0)
    assert (_read(out.labels)[src == 3] == 0).all()


@pytest.mark.parametrize("superior_sign", [1.0, -1.0])
def test_slab_geometry_and_held_out_reference(tmp_path, superior_sign):
    direction = np.diag([1.0, 1.0, superior_sign])
    vol, src = _write_inputs(tmp_path, direction=direction)
    out = _convert(tmp_path, z_range=(0.0, 0.5))
    n = SHAPE[0]
    # the top (most superior) half: the last 10 slices when z grows superiorly, else the first
    start = n // 2 if superior_sign > 0 else 0
    assert out.slab == (0, start, start + n // 2)
    ct = load_ct(out.ct)
    assert ct.shape_zyx == (n // 2, SHAPE[1], SHAPE[2])
    np.testing.assert_allclose(ct.spacing_mm, SPACING, atol=1e-5)
    np.testing.assert_allclose(ct.direction, direction, atol=1e-6)
    expected_origin = np.array([-10.0, 20.0, -300.0 + superior_sign * 2.5 * start])
    np.testing.assert_allclose(ct.origin_lps_mm, expected_origin, atol=1e-3)
    np.testing.assert_array_equal(ct.array, vol.array[start:start + n // 2])
    # every voxel keeps its world position
    np.testing.assert_allclose(ct.index_to_lps([3, 4, 5]), vol.index_to_lps([3, 4, 5 + start]),
                               atol=1e-3)
    # the held-out half's reference bone mask, and the two halves tile the scan
    lower = bone_mask_reference(tmp_path / "labels.nii.gz", tmp_path / "structures.csv",
                                z_range=(0.5, 1.0))
    upper = bone_mask_reference(tmp_path / "labels.nii.gz", tmp_path / "structures.csv",
                                z_range=(0.0, 0.5))
    full = np.isin(src, [1, 2, 6])
    parts = [upper, lower] if superior_sign < 0 else [lower, upper]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    np.testing.assert_array_equal(upper, _read(out.labels) == 1)


def test_complementary_slabs_partition_the_slices():
    for n in (20, 133, 7):
        vol = Volume(array=np.zeros((n, 2, 2), np.int16), spacing_mm=(1, 1, 2.5),
                     origin_lps_mm=(0, 0, 0))
        top = axial_slab(vol, (0.0, 0.67))
        rest = axial_slab(vol, (0.67, 1.0))
        assert top.shape_zyx[0] + rest.shape_zyx[0] == n
        # the rest ends where the top slab begins (z grows superiorly here)
        assert rest.origin_lps_mm[2] == 0.0
        assert top.origin_lps_mm[2] == pytest.approx(2.5 * rest.shape_zyx[0])
        zs = slab_slices(n, (0.0, 0.67), ct=vol)
        np.testing.assert_array_equal(vol.array[zs], top.array)
        flipped = Volume(array=vol.array, spacing_mm=(1, 1, 2.5), origin_lps_mm=(0, 0, 0),
                         direction=np.diag([1.0, 1.0, -1.0]))
        assert slab_slices(n, (0.0, 0.67), ct=flipped) == slice(0, top.shape_zyx[0])


def test_errors(tmp_path):
    _write_inputs(tmp_path)
    with pytest.raises(ValueError, match="z_range"):
        BoneOnlyOptions(z_range=(0.5, 0.5))
    with pytest.raises(ValueError, match="unlabelled_margin_mm"):
        BoneOnlyOptions(unlabelled_margin_mm=-1)
    with pytest.raises(InputError, match="keeps no slice"):
        _convert(tmp_path, z_range=(0.0, 0.01))
    _convert(tmp_path)
    with pytest.raises(FileExistsRefusedError):
        _convert(tmp_path)
    _convert(tmp_path, overwrite=True)
    # a label id the structure list does not name: wrong list, refused
    renumbered = STRUCTURES.replace("humerus_left,6", "humerus_left,16")
    (tmp_path / "structures.csv").write_text(renumbered)
    with pytest.raises(InputError, match=r"\[6\]"):
        _convert(tmp_path, overwrite=True)
    (tmp_path / "structures.csv").write_text("name,value\nx,1\n")
    with pytest.raises(InputError, match="columns"):
        _convert(tmp_path, overwrite=True)


def test_real_chest_ct(shared_data, tmp_path):
    src = shared_data / "real_ct_chest"
    if not (src / "ct.nii.gz").is_file():
        pytest.skip(f"{src} is absent")
    out = bone_only_case(src / "ct.nii.gz", src / "labels.nii.gz", src / "structures.csv",
                         tmp_path, options=BoneOnlyOptions(z_range=(0.0, 0.67)))
    (case,) = load_cases(discover_cases(tmp_path))
    assert case.case_id == "real_ct_chest" and case.table == DEFAULT_LABELS
    values = set(np.unique(case.labels.array).tolist())
    assert values == {0, 1, UNLABELLED}
    # the slab is the cranial 67 %: this scan's z index grows superiorly, so its last slices
    full = load_ct(src / "ct.nii.gz")
    n = full.shape_zyx[0]
    kept = int(np.floor(0.67 * n + 0.5))
    assert out.slab == (0, n - kept, n)
    assert case.ct.shape_zyx == (kept, *full.shape_zyx[1:])
    np.testing.assert_allclose(case.ct.origin_lps_mm, full.index_to_lps([0, 0, n - kept]),
                               atol=1e-3)
    np.testing.assert_allclose(case.ct.spacing_mm, full.spacing_mm, atol=1e-5)
    np.testing.assert_array_equal(case.ct.array, full.array[n - kept:])
    # bone in the case is the reference bone mask of the same slab
    ref = bone_mask_reference(src / "labels.nii.gz", src / "structures.csv", z_range=(0.0, 0.67))
    np.testing.assert_array_equal(case.labels.array == 1, ref)
    held_out = bone_mask_reference(src / "labels.nii.gz", src / "structures.csv",
                                   z_range=(0.67, 1.0))
    assert held_out.shape[0] == n - kept and held_out.any()
    # the canal is unlabelled: the spinal cord's voxels in the slab are all 255
    import SimpleITK as sitk

    full_labels = sitk.GetArrayFromImage(sitk.ReadImage(str(src / "labels.nii.gz")))[n - kept:]
    cord = full_labels == 79  # spinal_cord in structures.csv
    assert cord.any() and (case.labels.array[cord] == UNLABELLED).all()


# --- pseudo-labels: an unlabelled CT, bone from the CT bone model -------------------------------
from spinect_core.training.real_ct import (  # noqa: E402
    PseudoLabelOptions, pseudo_label_case, pseudo_label_map,
)

PHANTOM_SPACING = (1.5, 1.5, 1.5)  # coarse, and a 100 mm crop: 67^3 voxels, ~2 s


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory):
    """A phantom CT written under a name that could be a patient's, turned into a pseudo-label
    case; returns (phantom, written case, label array, CT bone mask)."""
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.phantom import generate_phantom
    from spinect_core.phantom.params import PhantomOptions

    root = tmp_path_factory.mktemp("pseudo")
    phantom = generate_phantom(seed=7, spacing_mm=PHANTOM_SPACING,
                               options=PhantomOptions(crop_mm=100.0))
    write_image(phantom.ct, root / "Doe_Jane_1957.nii.gz")
    out = pseudo_label_case(root / "Doe_Jane_1957.nii.gz", root / "data",
                            options=PseudoLabelOptions(case_id="pseudo_007"))
    bone = segment_bone_from_ct(load_ct(root / "Doe_Jane_1957.nii.gz")).mask.array.astype(bool)
    return phantom, out, _read(out.labels), bone


def _dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_pseudo_label_case_bone_where_the_phantoms_bone_is(phantom_case):
    phantom, out, lab, bone = phantom_case
    truth = phantom.labels.array == DEFAULT_LABELS.id_of("bone")
    assert set(np.unique(lab).tolist()) == {0, 1, UNLABELLED}
    # where the case teaches anything (not 255), its bone is the phantom's bone
    taught = lab != UNLABELLED
    assert _dice((lab == 1)[taught], truth[taught]) > 0.85
    # the CT bone model's mask itself (what the band trims; at 1.5 mm partial volume thickens
    # it, its own tests measure it at finer spacing) is close to the phantom's bone
    assert _dice(bone, truth) > 0.8
    assert (lab == 1).sum() > 0.4 * truth.sum()
    # nerve and dura, which the case cannot know, are never taught as background
    for name in ("nerve", "dura"):
        voxels = phantom.labels.array == DEFAULT_LABELS.id_of(name)
        assert voxels.any()
        assert np.mean(lab[voxels] == 0) < 0.01, name
    disc = phantom.labels.array == DEFAULT_LABELS.id_of("disc")
    assert (lab[disc] == 0).sum() == 0


def test_pseudo_label_case_margin_band_and_layout(phantom_case):
    from scipy import ndimage

    phantom, out, lab, bone = phantom_case
    sp = np.asarray(PHANTOM_SPACING)[::-1]
    dist = ndimage.distance_transform_edt(~bone, sampling=sp)
    # 255 around the bone: every non-bone voxel within 20 mm, background only beyond
    assert (lab[(dist > 0) & (dist <= 20.0)] == UNLABELLED).all()
    assert (dist[lab == 0] > 20.0).all()
    # the edge band: bone voxels on the surface and their outside neighbours are 255
    surface_in = bone & ~ndimage.binary_erosion(bone, border_value=1)
    surface_out = ndimage.binary_dilation(bone) & ~bone
    assert (lab[surface_in] == UNLABELLED).all() and (lab[surface_out] == UNLABELLED).all()
    # 1.5 mm voxels > the 1 mm band: exactly one voxel on each side
    assert (lab == 1).sum() == (bone & ~ndimage.binary_dilation(~bone)).sum()
    # the layout bone_only_case writes, read back as a training case with 255 intact
    assert {p.name for p in out.folder.iterdir()} == {
        "ct.nii.gz", "labels.nii.gz", "labels.labels.json", "conversion.json"}
    (case,) = load_cases(discover_cases(out.folder.parent))
    assert case.case_id == "pseudo_007" and case.table == DEFAULT_LABELS
    np.testing.assert_array_equal(case.labels.array, lab)
    np.testing.assert_array_equal(case.ct.array, phantom.ct.array)
    assert out.voxels == {"background": int((lab == 0).sum()), "bone": int((lab == 1).sum()),
                          "unlabelled": int((lab == UNLABELLED).sum())}
    # provenance: pseudo-labels, method and thresholds; never the source's name
    prov = json.loads(out.provenance.read_text())
    assert prov["pseudo_labels"] is True and prov["format"] == "spinect-pseudo-label-case"
    assert prov["method"]["name"] == "ct-threshold-model"
    assert {"seed", "grow"} <= set(prov["method"]["thresholds_hu"])
    assert prov["options"]["case_id"] == "pseudo_007"
    assert out.ct_bone["thresholds_hu"] == prov["method"]["thresholds_hu"]
    for path in out.paths:
        if path.suffix == ".json":
            text = path.read_text()
            assert "Doe" not in text and "Jane" not in text and "1957" not in text


def _ring_ct(open_slices=()):
    """A vertebral ring along z on a 0.7 x 0.7 x 2.5 mm grid: bone between radii 8 and 12 mm
    around a canal of radius 8 mm; the ring is open at the back in ``open_slices``."""
    shape = (24, 60, 60)
    zz, yy, xx = np.indices(shape)
    r = np.hypot((yy - 30) * 0.7, (xx - 30) * 0.7)
    bone = (r >= 8.0) & (r <= 12.0)
    for k in open_slices:
        bone[k, 30:, 27:34] = False  # a 4.9 mm gap at the back
    canal = np.broadcast_to(r < 8.0, shape)
    vol = Volume(array=np.where(bone, 700, 40).astype(np.int16), spacing_mm=(0.7, 0.7, 2.5),
                 origin_lps_mm=(0.0, 0.0, 0.0))
    return vol, bone, canal


def test_pseudo_labels_mark_the_canal_and_bridge_open_levels():
    vol, bone, canal = _ring_ct(open_slices=range(10, 15))  # 12.5 mm open
    opts = PseudoLabelOptions(case_id="ring", unlabelled_margin_mm=0.0, edge_band_mm=0.0)
    lab = pseudo_label_map(vol, bone, opts)
    assert (lab[bone] == 1).all()
    # the whole canal, the open slices included, is unlabelled; outside the ring is background
    inside = canal & ~bone
    assert (lab[inside] == UNLABELLED).all()
    zz, yy, xx = np.indices(bone.shape)
    outside = np.hypot((yy - 30) * 0.7, (xx - 30) * 0.7) > 13.0
    assert (lab[outside] == 0).all()
    # a gap longer than the bridge stays open: the canal there is background
    short = pseudo_label_map(vol, bone, dataclasses.replace(opts, canal_bridge_mm=5.0))
    assert (short[12][inside[12]] == 0).all() and (short[5][inside[5]] == UNLABELLED).all()
    # canal off: nothing is unlabelled at all
    assert not (pseudo_label_map(vol, bone, dataclasses.replace(opts, canal=False))
                == UNLABELLED).any()


def test_pseudo_label_edge_band_is_in_millimetres():
    vol, bone, _ = _ring_ct()
    opts = PseudoLabelOptions(case_id="ring", unlabelled_margin_mm=0.0, canal=False)
    one = pseudo_label_map(vol, bone, opts)  # 1 mm: one 0.7 mm voxel in-plane, one slice in z
    two = pseudo_label_map(vol, bone, dataclasses.replace(opts, edge_band_mm=1.5))  # 2 voxels
    row = bone[12, 30, :]  # a line across the ring at its centre slice
    edges = np.flatnonzero(np.diff(row.astype(int)))  # last/first index before each change
    outer_left = int(edges[0]) + 1  # first bone voxel on the left
    assert one[12, 30, outer_left - 1] == UNLABELLED and one[12, 30, outer_left - 2] == 0
    assert one[12, 30, outer_left] == UNLABELLED and one[12, 30, outer_left + 1] == 1
    assert two[12, 30, outer_left - 2] == UNLABELLED and two[12, 30, outer_left - 3] == 0
    assert two[12, 30, outer_left + 1] == UNLABELLED and two[12, 30, outer_left + 2] == 1
    # bone running out of the scan's first and last slices is not a surface there
    assert (one[0][bone[0]] != UNLABELLED).any()


def test_pseudo_label_options_and_errors(tmp_path):
    with pytest.raises(TypeError):
        PseudoLabelOptions()  # the case id is required: never derived from the input's name
    with pytest.raises(ValueError, match="case_id"):
        PseudoLabelOptions(case_id="../x")
    with pytest.raises(ValueError, match="edge_band_mm"):
        PseudoLabelOptions(case_id="a", edge_band_mm=-1)
    empty = Volume(array=np.full((8, 30, 30), 40, np.int16), spacing_mm=(1, 1, 1),
                   origin_lps_mm=(0, 0, 0))
    with pytest.raises(InputError, match="no bone"):
        pseudo_label_case(empty, tmp_path, options=PseudoLabelOptions(case_id="a"))
    assert not (tmp_path / "a").exists()


def test_pseudo_label_cli(tmp_path, phantom_case, capsys):
    from spinect_core.training import real_ct

    phantom, *_ = phantom_case
    write_image(phantom.ct, tmp_path / "scan.nii.gz")
    rc = real_ct.main(["pseudo", str(tmp_path / "scan.nii.gz"), str(tmp_path / "out"),
                       "--case-id", "cli_case", "--margin-mm", "10"])
    assert rc == 0
    prov = json.loads((tmp_path / "out" / "cli_case" / "conversion.json").read_text())
    assert prov["options"]["unlabelled_margin_mm"] == 10.0
    assert json.loads(capsys.readouterr().out)["voxels"]["bone"] > 0
    assert real_ct.main(["pseudo", str(tmp_path / "scan.nii.gz"), str(tmp_path / "out"),
                         "--case-id", "cli_case"]) == 2  # exists: refused, one-line error


def test_pseudo_label_cases_train_without_touching_unlabelled_voxels(tmp_path, phantom_case):
    """Issue #11: whatever the network outputs on a pseudo-label case's 255 voxels, the loss and
    every gradient are the same; and such a case runs through the training loop."""
    import torch

    from spinect_core.model import UNet3D, UNetConfig
    from spinect_core.training import SegmentationLoss, train
    from tests.training.synthetic import tiny_options

    _, out, lab, _ = phantom_case
    (case,) = load_cases(discover_cases(out.folder.parent))
    # a 16 x 32 x 32 patch with bone, 255 and background in it (the most bone of those)
    best, sl = -1, None
    for z in range(0, lab.shape[0] - 16, 4):
        for y in range(0, lab.shape[1] - 32, 4):
            for x in range(0, lab.shape[2] - 32, 4):
                win = (slice(z, z + 16), slice(y, y + 32), slice(x, x + 32))
                n_bone, n_bg = (lab[win] == 1).sum(), (lab[win] == 0).sum()
                if n_bg > 500 and n_bone > best:
                    best, sl = n_bone, win
    target = torch.as_tensor(lab[sl].astype(np.int64))[None]
    unlabelled = target == UNLABELLED
    assert unlabelled.any() and (target == 0).any() and (target == 1).any()
    image = torch.as_tensor((case.ct.array[sl].astype(np.float32) - 40.0) / 300.0)[None, None]
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(base_channels=4, depth=3, num_classes=DEFAULT_LABELS.num_classes))
    for kind in ("ce", "dice_ce"):
        loss_fn = SegmentationLoss(kind=kind, weights=[0.5, 1.0, 2.0, 2.0, 2.0])
        logits = net(image)
        logits.retain_grad()
        loss = loss_fn(logits, target)
        net.zero_grad()
        loss.backward()
        grad = logits.grad
        mask = unlabelled[:, None].expand_as(grad)
        assert float(grad[mask].abs().max()) == 0.0, kind  # nothing flows from 255 voxels
        assert float(grad[~mask].abs().max()) > 0.0, kind
        # any other output on the 255 voxels: the same loss
        noise = torch.randn_like(logits) * 10.0
        changed = torch.where(mask, logits.detach() + noise, logits.detach())
        torch.testing.assert_close(loss_fn(changed, target), loss.detach(), rtol=0, atol=1e-6)
    result = train([case], out_dir=tmp_path / "run",
                   options=tiny_options(iterations=2, val_every=100, foreground_fraction=0.5,
                                        spacing_mm=PHANTOM_SPACING))
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
