"""Evaluation metrics as pure math over arrays (compute activations once, score many ways)."""

from __future__ import annotations

import numpy as np


def argmax_inside(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """bool [B]: whether each map's maximum falls inside its region (maps, regions [B, H, W])."""
    maps, regions = np.asarray(maps), np.asarray(regions)
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return regions.reshape(len(regions), -1)[np.arange(len(maps)), flat] > 0


def mass_inside(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """float [B]: share of each non-negative map's total inside its region."""
    maps = np.clip(np.asarray(maps, np.float64), 0, None)
    inside = (maps * (np.asarray(regions) > 0)).sum(axis=(1, 2))
    return inside / np.maximum(maps.sum(axis=(1, 2)), 1e-12)


def classification_accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Share of predictions equal to the target, over targets that are known (>= 0)."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    known = target >= 0
    return float((predicted[known] == target[known]).mean()) if known.any() else float("nan")


# ---- ground truth (SynthFashion counterfactuals) ---------------------------------------------------
PSNR_CAP = 100.0  # dB given to identical images (their PSNR is infinite), so means stay finite


def dilate(mask: np.ndarray, pixels: int = 1) -> np.ndarray:
    """bool [B, H, W]: the mask grown by `pixels` in the 8-neighbourhood (square structuring)."""
    out = np.asarray(mask, bool).copy()
    for _ in range(pixels):
        p = np.pad(out, ((0, 0), (1, 1), (1, 1)))
        h, w = out.shape[1:]
        out = np.max([p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)
    return out


def mask_scores(attention: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """IoU, precision and recall of `attention >= threshold` against the bool `truth` region,
    pooled over all pixels of all images. An empty denominator scores 1 (nothing predicted: no
    false positives; nothing to find: nothing missed; both empty: they agree)."""
    pred = np.asarray(attention) >= threshold
    truth = np.asarray(truth, bool)
    tp = float(np.logical_and(pred, truth).sum())
    union, n_pred, n_true = (float(np.logical_or(pred, truth).sum()), float(pred.sum()),
                             float(truth.sum()))
    return {"iou": tp / union if union else 1.0, "precision": tp / n_pred if n_pred else 1.0,
            "recall": tp / n_true if n_true else 1.0}


def best_threshold_iou(attention: np.ndarray, truth: np.ndarray,
                       thresholds=np.round(np.arange(0.05, 1.0, 0.05), 2)) -> tuple[float, float]:
    """(best IoU, its threshold) over `thresholds`: how good the mask's ranking is, whatever its
    calibration. Ties go to the lowest threshold."""
    scores = [mask_scores(attention, truth, t)["iou"] for t in thresholds]
    best = int(np.argmax(scores))
    return scores[best], float(thresholds[best])


def psnr(x: np.ndarray, y: np.ndarray, max_val: float = 255.0) -> np.ndarray:
    """float [B]: per-image PSNR in dB of [B, H, W, C] images (PSNR_CAP for identical ones)."""
    diff = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    mse = (diff ** 2).reshape(len(diff), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(max_val ** 2 / mse)
    return np.minimum(out, PSNR_CAP)


def ssim(x: np.ndarray, y: np.ndarray, max_val: float = 255.0) -> np.ndarray:
    """float [B]: per-image SSIM (tf.image.ssim: 11x11 Gaussian window, sigma 1.5)."""
    import tensorflow as tf
    return tf.image.ssim(tf.constant(x, tf.float32), tf.constant(y, tf.float32),
                         max_val=max_val).numpy()
