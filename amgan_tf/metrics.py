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


def changed_region(image: np.ndarray, truth: np.ndarray, grow: int = 0) -> np.ndarray:
    """bool [B, H, W]: pixels where the true counterfactual differs from the input in any channel
    (compared as floats, so uint8 cannot wrap), grown by `grow` px for the antialiased edge that
    SynthFashion's masks leave out. The one definition every ground-truth score uses."""
    changed = np.abs(np.asarray(image, np.float32) - np.asarray(truth, np.float32)).max(-1) > 0
    return dilate(changed, grow) if grow else changed


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


# ---- retrieval (the paper's top-k) ---------------------------------------------------------------
def retrieval_hits(query_features: np.ndarray, wanted: np.ndarray, gallery_features: np.ndarray,
                   gallery_labels: np.ndarray, ks=range(1, 31)) -> dict[int, float]:
    """{k: share of queries with a top-k gallery item that has exactly the wanted attributes}.

    Neighbours by Euclidean distance between features ([Q, D], [G, D]); `wanted` [Q, A] holds the
    attribute values each query should have (-1 = not compared), `gallery_labels` [G, A]."""
    q = np.asarray(query_features, np.float64)
    g = np.asarray(gallery_features, np.float64)
    wanted, gallery_labels = np.asarray(wanted), np.asarray(gallery_labels)
    d = (q ** 2).sum(1)[:, None] - 2 * q @ g.T + (g ** 2).sum(1)[None]
    order = np.argsort(d, axis=1, kind="stable")
    match = _matches(wanted, gallery_labels)
    ranked = np.take_along_axis(match, order, axis=1)
    # rank of the first match; never a hit when nothing in the gallery matches, whatever k
    first_hit = np.where(ranked.any(1), ranked.argmax(1), np.iinfo(np.int64).max)
    return {int(k): float((first_hit < k).mean()) for k in ks}


def _matches(wanted: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """bool [Q, G]: gallery item g has every known (>= 0) wanted label of query q."""
    known = wanted >= 0
    return np.all((gallery_labels[None] == wanted[:, None]) | ~known[:, None], axis=2)


def retrieval_ceiling(wanted: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Share of queries whose wanted labels exist in the gallery at all: the best any k reaches."""
    return float(_matches(np.asarray(wanted), np.asarray(gallery_labels)).any(axis=1).mean())


# ---- realism: Frechet and kernel distances between feature sets ---------------------------------
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID's formula on any features [N, D]: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    from scipy import linalg
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(linalg.sqrtm(sa @ sb))  # (`disp=False` is deprecated in SciPy 1.17)
    return float(max(mu @ mu + np.trace(sa + sb - 2 * root), 0.0))


def kernel_distance(a: np.ndarray, b: np.ndarray, subsets: int = 10, subset_size: int = 100,
                    seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel (x.y / D + 1)^3, as (mean, std) over
    random subsets (the subset size is capped by the smaller set)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dim, m = a.shape[1], min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((p @ q.T / dim + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        off = ~np.eye(m, dtype=bool)
        scores.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(scores)), float(np.std(scores))
