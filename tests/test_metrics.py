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
