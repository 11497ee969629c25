"""Where the attribute CNN's CAMs land, measured against SynthFashion's ground-truth masks."""

from __future__ import annotations

import numpy as np

from amgan_tf import metrics
from amgan_tf.data.datasets import ExampleSet
from amgan_tf.imaging import to_float
from amgan_tf.data.synthfashion import MASK_NAMES
from amgan_tf.models.attribute_cnn import AttributeCNN
from amgan_tf.visualize import labelled_grid, overlay


def true_value_cams(model: AttributeCNN, data: ExampleSet, column: int, batch_size: int = 128,
                    smoothing: float | None = None) -> np.ndarray:
    """[n, H, W] CAM of each image's ground-truth value of attribute `column` (Eq. 8's m')."""
    out = []
    for lo in range(0, len(data), batch_size):
        x = to_float(data.images[lo:lo + batch_size])
        out.append(model.cam(x, column, data.labels[lo:lo + batch_size, column],
                             smoothing=smoothing).numpy())
    return np.concatenate(out)


def cam_report(model: AttributeCNN, data: ExampleSet) -> dict:
    if data.masks is None:
        raise ValueError("CAM checks need ground-truth masks (SynthFashion).")
    m = {name: data.masks[..., i] for i, name in enumerate(MASK_NAMES)}
    report = {"garment_area_share": float(m["garment"].mean())}
    for attr in model.schema.manipulated:
        col = model.schema.column(attr.name)
        cams = true_value_cams(model, data, col)
        entry = {"mass_in_garment": float(metrics.mass_inside(cams, m["garment"]).mean()),
                 "argmax_in_garment": float(metrics.argmax_inside(cams, m["garment"]).mean())}
        if attr.name == "sleeve":
            sleeve_or_arm = np.maximum(m["sleeve"], m["arm"])
            entry["argmax_in_sleeve_or_arm"] = float(
                metrics.argmax_inside(cams, sleeve_or_arm).mean())
            entry["mass_in_sleeve_or_arm"] = float(
                metrics.mass_inside(cams, sleeve_or_arm).mean())
            entry["sleeve_or_arm_area_share"] = float(sleeve_or_arm.mean())
            if model.config.cam_smoothing:  # the same check on the unsmoothed map, for reference
                entry["argmax_in_sleeve_or_arm_unsmoothed"] = float(metrics.argmax_inside(
                    true_value_cams(model, data, col, smoothing=0.0), sleeve_or_arm).mean())
        report[attr.name] = entry
    return report


def cam_grid(model: AttributeCNN, data: ExampleSet, rows: int = 8, scale: int = 2):
    """Per row: the image, then its CAM overlay for each manipulated attribute's true value."""
    rows = min(rows, len(data))
    sub = data.subset(np.arange(rows))
    tiles, captions = [], []
    cams = [true_value_cams(model, sub, model.schema.column(a.name))
            for a in model.schema.manipulated]
    for i in range(rows):
        tiles.append(sub.images[i])
        captions.append(["image"])
        for a, c in zip(model.schema.manipulated, cams):
            tiles.append(overlay(sub.images[i], c[i]))
            value = a.values[sub.labels[i, model.schema.column(a.name)]]
            captions.append([f"{a.name}={value}"])
    return labelled_grid(np.stack(tiles), captions, cols=1 + len(cams), scale=scale)
