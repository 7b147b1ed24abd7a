import numpy as np

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
