"""Sample sheets of SynthFashion: a labelled grid, and counterfactual rows with their masks."""

from __future__ import annotations

import numpy as np

from amgan_tf.data import synthfashion
from amgan_tf.visualize import labelled_grid, mask_rgb

_SHORT = {"three_quarter": "3/4", "sleeveless": "no-sl"}


def _caption(labels: dict) -> list[str]:
    return [f"{_SHORT.get(labels['sleeve'], labels['sleeve'])} {labels['colour']}",
            f"{labels['pattern']} {labels['category']}"]


def sample_grid(seed: int = 0, size: int = 64, count: int = 32, cols: int = 8, start: int = 0,
                scale: int = 2):
    ds = synthfashion.SynthFashion(seed, size)
    images, labels = ds.arrays(start, count)
    captions = [_caption(ds.schema.labels_to_dict(row)) for row in labels]
    return labelled_grid(images, captions, cols=cols, scale=scale)


def counterfactual_sheet(seed: int = 0, size: int = 64, index: int = 0, scale: int = 2):
    """Row per manipulated attribute: the same example rendered with every value of it; last row:
    the original and its garment, sleeve, torso and arm masks."""
    ds = synthfashion.SynthFashion(seed, size)
    tiles, captions = [], []
    cols = max(len(a.values) for a in ds.schema.manipulated)
    for attr in ds.schema.manipulated:
        for value in attr.values:
            tiles.append(ds.example(index, **{attr.name: value})[0])
            captions.append([f"{attr.name}=", value])
        for _ in range(cols - len(attr.values)):
            tiles.append(np.full((size, size, 3), 255, np.uint8))
            captions.append(["", ""])
    image, labels, masks = ds.example(index)
    row = [image] + [mask_rgb(masks[n]) for n in synthfashion.MASK_NAMES]
    row_caps = [["original", ""]] + [[f"{n} mask", ""] for n in synthfashion.MASK_NAMES]
    while len(row) % cols:
        row.append(np.full((size, size, 3), 255, np.uint8))
        row_caps.append(["", ""])
    return labelled_grid(np.stack(tiles + row), captions + row_caps, cols=cols, scale=scale)
