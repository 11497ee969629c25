"""Ground-truth metrics on cases whose answers are worked out by hand."""

import numpy as np
import pytest

from amgan_tf import metrics


def test_dilate_grows_by_one_pixel_in_eight_directions():
    m = np.zeros((1, 5, 5), bool)
    m[0, 2, 2] = True
    grown = metrics.dilate(m, 1)
    assert grown.sum() == 9 and grown[0, 1:4, 1:4].all()
    assert metrics.dilate(m, 2).sum() == 25
    assert metrics.dilate(np.zeros((2, 4, 4), bool)).sum() == 0


def test_mask_scores_of_known_masks():
    truth = np.zeros((1, 4, 4), bool)
    truth[0, :2, :3] = True  # 6 pixels
    attention = np.zeros((1, 4, 4))
    attention[0, :2, :2] = 0.9  # 4 predicted, all inside
    attention[0, 3, 3] = 0.6  # 1 predicted outside
    attention[0, 0, 2] = 0.4  # inside the truth, below 0.5
    s = metrics.mask_scores(attention, truth, 0.5)
    assert s == {"iou": 4 / 7, "precision": 4 / 5, "recall": 4 / 6}
    assert metrics.mask_scores(attention, truth, 0.3) == {"iou": 5 / 7, "precision": 5 / 6,
                                                          "recall": 5 / 6}
    iou, threshold = metrics.best_threshold_iou(attention, truth)
    assert (iou, threshold) == (5 / 7, 0.05)  # 0.05..0.4 all give 5/7: the first is reported
    assert metrics.mask_scores(np.zeros((1, 2, 2)), np.zeros((1, 2, 2), bool)) == {
        "iou": 1.0, "precision": 1.0, "recall": 1.0}


def test_psnr_and_ssim_known_values():
    x = np.full((2, 16, 16, 3), 100, np.uint8)
    y = x.astype(int) + np.array([0, 1])[:, None, None, None]  # image 0 equal, image 1 off by 1
    p = metrics.psnr(x, y)
    assert p[0] == metrics.PSNR_CAP and p[1] == pytest.approx(20 * np.log10(255), abs=1e-9)
    rng = np.random.default_rng(0)
    z = rng.integers(0, 256, (1, 16, 16, 3))
    assert metrics.ssim(z, z)[0] == pytest.approx(1.0)
    assert metrics.ssim(z, 255 - z)[0] < 0


def test_retrieval_hits_on_a_toy_gallery():
    # gallery on a line; labels [attribute a, attribute b]
    gallery = np.array([[0.0], [1.0], [2.0], [3.0]])
    labels = np.array([[0, 0], [0, 1], [1, 1], [1, 0]])
    queries = np.array([[0.1], [0.1], [2.9], [1.2]])
    wanted = np.array([[0, 0], [1, 1], [1, -1], [0, 0]])  # -1: b is not compared
    hits = metrics.retrieval_hits(queries, wanted, gallery, labels, ks=[1, 2, 3, 4])
    # nearest-first ranks of the first match: q0 -> 0 (item 0), q1 -> 2 (item 2 after 0 and 1),
    # q2 -> 0 (item 3 has a=1), q3 -> 2 (order 1, 2, 0: item 0 third)
    assert hits == {1: 0.5, 2: 0.5, 3: 1.0, 4: 1.0}
    none = metrics.retrieval_hits(queries[:1], np.array([[2, 2]]), gallery, labels, ks=[4, 30])
    assert none == {4: 0.0, 30: 0.0}  # k beyond the gallery's size finds nothing new
    assert metrics.retrieval_ceiling(wanted, labels) == 1.0
    assert metrics.retrieval_ceiling(np.array([[2, 2], [0, -1]]), labels) == 0.5


def test_frechet_and_kernel_distances_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([3.0, 0.0, 0.0, 0.0])
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-6)  # |mu|^2 only
    wide = rng.normal(size=(2000, 4)) * 2.0  # N(0, 4I): Tr(I + 4I - 2 * 2I) = 4
    assert metrics.frechet_distance(a, wide) == pytest.approx(4.0, abs=0.3)
    same_mean, same_std = metrics.kernel_distance(a, a, subset_size=200)
    other_mean, _ = metrics.kernel_distance(a, a + shift, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3 and other_mean > 100 * max(abs(same_mean), 1e-3)
    assert metrics.kernel_distance(a, a, seed=1) == metrics.kernel_distance(a, a, seed=1)


def test_changed_region_compares_all_channels_and_grows():
    image = np.zeros((1, 5, 5, 3), np.uint8)
    truth = image.copy()
    truth[0, 2, 2, 1] = 1  # one channel of one pixel, one level: changed
    truth[0, 0, 4, 0] = 0  # equal: not changed
    np.testing.assert_array_equal(metrics.changed_region(image, truth)[0],
                                  np.eye(5, dtype=bool) & (np.arange(5) == 2)[:, None])
    grown = metrics.changed_region(image, truth, grow=1)[0]
    assert grown.sum() == 9 and grown[1:4, 1:4].all()
