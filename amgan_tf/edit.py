"""The one function that applies an edit: the manipulate CLI, evaluation and the exported
SavedModel/TFLite graphs all call `apply_edit`, so they cannot drift apart.

Images of any size are brought to the training size the way the model's training data was
(`resize`: padded to a square with the mean border colour, stretched, or centre-cropped; a model
trained on stretched photos sees stretched arms) and edited there; the result goes back onto the
ORIGINAL pixels through the mask mapped back the same way, x* = a z + (1 - a) x at full
resolution, so nothing outside the edited region loses detail (with 'crop', nothing outside the
square the model saw changes).

Region edits (PAPER.md Eq. 12, generalised): the mask a1 of another edit (e.g. sleeve ->
sleeveless marks the sleeves) restricts the edit to inside that region (mask a1) or to outside it
(mask (1 - a1) a2). The threshold is relative, as for D_C's crop: a1 is the region mask divided
by its per-image maximum, with values below `threshold` set to 0. A trained mask often peaks well
below 1 (the quick start's sleeve masks), and an absolute threshold then left an empty region.

The attention floor (`AmganConfig.attention_floor`; training's losses see the raw mask unless
`train_attention_floor`) maps a to max(a - floor, 0) / (1 - floor) before anything else: a trained
mask rarely reaches 0 outside the edited region, and there every leaked share of z changes the
image.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from amgan_tf.imaging import crop_offsets, pad_offsets, resize_images, to_float, to_uint8

REGION_MODES = ("inside", "outside")
# Default region threshold, a share of the region mask's maximum (CLI, SavedModel clients, TFLite,
# TF.js and the demo page all start from this one).
REGION_THRESHOLD = 0.5
# generate(x float [B, S, S, 3] in [-1, 1], m [B, N + M]) -> (a [B, S, S, 1], z [B, S, S, 3]).
GenerateFn = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


def floored_attention(a, floor: float):
    """a -> max(a - floor, 0) / (1 - floor): 0 below the floor, 1 stays 1, continuous (no hard
    edge at the floor). floor 0 leaves a as it is, in the graph too."""
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"The attention floor must be in [0, 1) (0 = the raw mask); got {floor}.")
    if floor == 0.0:
        return a
    return tf.maximum(a - floor, 0.0) / (1.0 - floor)


def region_mask(a_region, a_edit, threshold, inside) -> tf.Tensor:
    """Eq. 12: the region mask scaled to a maximum of 1 and thresholded (inside), or the edit's
    mask outside it."""
    peak = tf.reduce_max(a_region, axis=[1, 2, 3], keepdims=True)
    a1 = a_region / tf.maximum(peak, 1e-6)
    a1 = tf.where(a1 >= threshold, a1, tf.zeros_like(a1))
    return tf.where(tf.cast(inside, tf.bool), a1, (1.0 - a1) * a_edit)


def apply_edit(generate: GenerateFn, images, m, size: int, m_region=None,
               threshold=REGION_THRESHOLD, inside=True, resize: str = "pad",
               attention_floor: float = 0.0):
    """uint8 [B, H, W, 3] images of any H, W -> (uint8 [B, H, W, 3] edited, float32 [B, H, W, 1]
    mask at full resolution). `m_region` (same shape as m) turns on a region edit; `resize` is
    the training data's mode (`amgan_tf.imaging.RESIZE_MODES`); `attention_floor` the run's
    (`floored_attention`)."""
    images = tf.convert_to_tensor(images)
    x = to_float(resize_images(images, size, resize))
    a, z = generate(x, m)
    a = floored_attention(a, attention_floor)
    if m_region is not None:
        a_region = floored_attention(generate(x, m_region)[0], attention_floor)
        a = region_mask(a_region, a, threshold, inside)
    return _composite(images, a, z, resize)


def apply_stacked_edit(generate: GenerateFn, image, ms, size: int, threshold=REGION_THRESHOLD,
                       inside=True, antialias: bool = True, resize: str = "pad",
                       attention_floor: float = 0.0):
    """`apply_edit` for graphs without control flow or string ops (TFLite, TF.js): ONE uint8
    image [1, H, W, 3] and ms [K, N + M], K = 1 for a plain edit, K = 2 for a region edit with
    ms[1] naming the region. G runs once on the K stacked copies, so a plain edit costs one
    generator pass; with antialias=True the result equals `apply_edit` on the same inputs
    (portable graphs pass False: see `resize_images`)."""
    image = tf.convert_to_tensor(image)
    x = to_float(resize_images(image, size, resize, antialias))
    k = tf.shape(ms)[0]
    a, z = generate(tf.repeat(x, k, axis=0), ms)
    a = floored_attention(a, attention_floor)
    a_edit, z_edit, a_region = a[:1], z[:1], a[k - 1:]
    mask = tf.where(k > 1, region_mask(a_region, a_edit, threshold, inside), a_edit)
    return _composite(image, mask, z_edit, resize)


def _to_full_size(t, h, w, resize: str):
    """A map at the training size back onto the h x w image, undoing `resize_images`: 'pad' cuts
    the padding off, 'stretch' resizes, 'crop' puts the square back with zeros around it."""
    if resize == "stretch":
        return tf.image.resize(t, (h, w), "bilinear")
    if resize == "crop":
        side, top, left = crop_offsets(h, w)
        t = tf.image.resize(t, (side, side), "bilinear")
        return tf.pad(t, [[0, 0], [top, h - side - top], [left, w - side - left], [0, 0]])
    side, top, left = pad_offsets(h, w)
    return tf.image.resize(t, (side, side), "bilinear")[:, top:top + h, left:left + w]


def _composite(images, a, z, resize: str):
    """x* = a z + (1 - a) x at the images' full resolution (a, z at the training size)."""
    h, w = tf.shape(images)[1], tf.shape(images)[2]
    mask = _to_full_size(a, h, w, resize)
    z_full = _to_full_size(z, h, w, resize)
    out = mask * z_full + (1.0 - mask) * to_float(images)
    return to_uint8(out), mask
