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
