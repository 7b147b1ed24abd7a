import numpy as np
import pytest

from spinect_core.labels import LabelTable
from spinect_core.training import (
    AugmentOptions, augment_patch, extract_patch, flip_patch, lr_axis_of, side_swap_lookup,
)

SIDES = LabelTable({0: "background", 1: "bone", 2: "nerve_left", 3: "nerve_right",
                    4: "L5 root left", 5: "L5 root right", 6: "left-psoas"})


def test_side_swap_lookup():
    lut = side_swap_lookup(SIDES)
    assert lut.tolist() == [0, 1, 3, 2, 5, 4, 6]  # left-psoas has no right partner: unchanged
    plain = LabelTable({0: "background", 1: "bone", 2: "nerve"})
    assert side_swap_lookup(plain).tolist() == [0, 1, 2]


def test_lr_flip_swaps_side_labels_and_mirrors_image():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, 6, 8)).astype(np.float32)
    labels = np.zeros((4, 6, 8), np.uint8)
    labels[:, :, 1] = 2  # left nerve at low x
    labels[:, :, 6] = 3  # right nerve at high x
    labels[:, 2, 3] = 1
    img2, lab2 = flip_patch(image, labels, axes=[2], lr_axis=2, swap_lookup=side_swap_lookup(SIDES))
    np.testing.assert_array_equal(img2, image[:, :, ::-1])
    # after mirroring, the tube at x=6 (was x=1, left) is the patient's right now: and vice versa
    assert (lab2[:, :, 6] == 3).all() and (lab2[:, :, 1] == 2).all()
    assert (lab2[:, 2, 8 - 1 - 3] == 1).all()
    # flipping along another axis mirrors without swapping
    _, lab3 = flip_patch(image, labels, axes=[1], lr_axis=2, swap_lookup=side_swap_lookup(SIDES))
    assert (lab3[:, :, 1] == 2).all()


def test_lr_axis_from_direction():
    assert lr_axis_of(np.eye(3)) == 2
    # x index axis pointing P, y index axis pointing L: the L/R axis is array axis 1 (y)
    d = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], float)
    assert lr_axis_of(d) == 1


def test_augment_patch_is_reproducible_and_keeps_label_values():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    image = np.zeros((8, 8, 8), np.float32)
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[2:4, 2:4, 1:3] = 2
    opts = AugmentOptions(noise_p=1.0, flip_p=1.0, intensity_p=1.0)
    a = augment_patch(image, labels, options=opts, rng=rng_a, swap_lookup=side_swap_lookup(SIDES))
    b = augment_patch(image, labels, options=opts, rng=rng_b, swap_lookup=side_swap_lookup(SIDES))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].dtype == np.float32 and a[0].std() > 0
    assert set(np.unique(a[1])) == {0, 3}  # flipped for sure: left became right


def test_extract_patch_spatial_and_padding():
    rng = np.random.default_rng(1)
    image = np.arange(10 * 12 * 14, dtype=np.float32).reshape(10, 12, 14)
    labels = (image % 3).astype(np.uint8)
    img, lab = extract_patch(image, labels, (4.5, 5.5, 6.5), (4, 4, 4),
                             options=AugmentOptions.none(), rng=rng, pad_value=-1)
    np.testing.assert_array_equal(img, image[3:7, 4:8, 5:9])
    np.testing.assert_array_equal(lab, labels[3:7, 4:8, 5:9])
    # a centre near the corner pads with pad_value / background
    img, lab = extract_patch(image, labels, (0, 0, 0), (4, 4, 4), options=AugmentOptions.none(),
                             rng=rng, pad_value=-1)
    assert img[0, 0, 0] == -1 and lab[0, 0, 0] == 0 and img[-1, -1, -1] == image[1, 1, 1]
    # zoom / elastic: shapes and label ids preserved
    opts = AugmentOptions(noise_p=0, flip_p=0, scale_p=1.0, elastic_p=1.0)
    img, lab = extract_patch(image, labels, (5, 6, 7), (4, 8, 8), options=opts, rng=rng,
                             pad_value=-1)
    assert img.shape == (4, 8, 8) and lab.dtype == np.uint8
    assert set(np.unique(lab)) <= {0, 1, 2}


def test_unlabelled_survives_flips_side_swap_and_zoom():
    from spinect_core.training import UNLABELLED

    labels = np.zeros((8, 10, 12), np.uint8)
    labels[:, :, 1] = 2  # nerve_left
    labels[:, :, 10] = 3  # nerve_right
    labels[2:6, 3:7, 4:8] = UNLABELLED
    image = np.zeros(labels.shape, np.float32)
    _, flipped = flip_patch(image, labels, axes=[2], lr_axis=2,
                            swap_lookup=side_swap_lookup(SIDES))
    np.testing.assert_array_equal(flipped == UNLABELLED, (labels == UNLABELLED)[:, :, ::-1])
    assert (flipped[:, :, 10] == 3).all() and (flipped[:, :, 1] == 2).all()  # sides swapped
    opts = AugmentOptions(noise_p=0, flip_p=0, scale_p=1.0, elastic_p=1.0)
    _, lab = extract_patch(image, labels, (3.5, 4.5, 5.5), (8, 10, 12), options=opts,
                           rng=np.random.default_rng(2), pad_value=-1)
    values = set(np.unique(lab).tolist())
    assert UNLABELLED in values and values <= {0, 2, 3, UNLABELLED}  # nearest: no blends


# --- SynthSeg-style contrast randomisation ---------------------------------------------------------
def _ct_like_patch(seed: int = 0):
    """A normalised patch with tissue-like levels (air, fat, soft tissue, bone) and labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((12, 14, 16), np.uint8)
    image = np.full(labels.shape, -2.6, np.float32)             # air
    image[:, 2:12, 2:14] = -0.4                                  # fat
    image[:, 4:10, 4:12] = 0.1                                   # soft tissue
    image[3:9, 5:9, 6:10] = 1.5                                  # bone
    labels[3:9, 5:9, 6:10] = 1
    labels[0, 0, 0] = 255                                        # an unlabelled voxel
    image += rng.normal(0.0, 0.05, image.shape).astype(np.float32)
    return image, labels


def test_randomise_contrast_keeps_labels_and_is_deterministic():
    from spinect_core.training.augment import randomise_contrast

    image, labels = _ct_like_patch()
    opts = AugmentOptions.synthseg()
    assert opts.remap_p > 0 and opts.gamma_p > 0 and opts.bias_p > 0
    no_flip = AugmentOptions(noise_p=0.0, flip_p=0.0, remap_p=1.0, gamma_p=1.0, bias_p=1.0)
    a_img, a_lab = augment_patch(image, labels, options=no_flip, rng=np.random.default_rng(7))
    b_img, b_lab = augment_patch(image, labels, options=no_flip, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, labels)          # labels untouched, 255 included
    assert a_img.dtype == np.float32 and a_img.shape == image.shape
    assert float(np.abs(a_img - image).mean()) > 0.02     # the intensities did change
    c_img, _ = augment_patch(image, labels, options=no_flip, rng=np.random.default_rng(8))
    assert not np.array_equal(a_img, c_img)               # another draw, another contrast
    # Every step is monotone at a voxel: a remap alone keeps the intensity order exactly.
    remap = AugmentOptions(noise_p=0.0, flip_p=0.0, remap_p=1.0, remap_strength=1.0)
    out = randomise_contrast(image, options=remap, rng=np.random.default_rng(3))
    order = np.argsort(image.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[order]) >= -1e-5)


def test_tissue_knots_remap_each_range():
    from spinect_core.training.augment import TISSUE_KNOTS_HU, randomise_contrast, tissue_knots

    knots = tissue_knots(mean_hu=50.0, std_hu=400.0)
    assert len(knots) == len(TISSUE_KNOTS_HU)
    assert knots[0] == pytest.approx((-1000.0 - 50.0) / 400.0)
    assert all(b > a for a, b in zip(knots, knots[1:]))
    opts = AugmentOptions(noise_p=0.0, flip_p=0.0, remap_p=1.0, remap_knots=knots,
                          remap_strength=1.0)
    # Values at the knots move, but the two ends of the knot range stay put.
    x = np.array(knots, np.float32).reshape(1, 1, -1)
    y = randomise_contrast(x, options=opts, rng=np.random.default_rng(11)).ravel()
    assert y[0] == pytest.approx(knots[0], abs=1e-5) and y[-1] == pytest.approx(knots[-1], abs=1e-4)
    assert np.all(np.diff(y) > 0) and np.abs(y - np.array(knots)).max() > 0.05
    with pytest.raises(ValueError):
        AugmentOptions(remap_knots=(1.0, 0.5))
    with pytest.raises(ValueError):
        AugmentOptions(gamma_p=2.0)


def test_default_options_do_not_randomise_contrast():
    """The study's default and 'strong' recipes draw exactly as before (reproducible runs)."""
    from spinect_core.training.augment import augment_intensity

    image, _ = _ct_like_patch()
    for opts in (AugmentOptions(), AugmentOptions.strong()):
        assert opts.remap_p == opts.gamma_p == opts.bias_p == 0.0
        rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
        out = augment_intensity(image, options=opts, rng=rng_a)
        ref = np.asarray(image, np.float32)
        if opts.intensity_p > 0 and rng_b.random() < opts.intensity_p:
            ref = ref * np.float32(rng_b.uniform(*opts.intensity_scale)) + np.float32(
                rng_b.uniform(*opts.intensity_shift))
        if opts.noise_p > 0 and rng_b.random() < opts.noise_p:
            std = rng_b.uniform(*opts.noise_std)
            ref = ref + rng_b.normal(0.0, std, size=ref.shape).astype(np.float32)
        np.testing.assert_array_equal(out, ref)
