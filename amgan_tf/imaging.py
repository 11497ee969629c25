"""Image helpers shared by training, the manipulate CLI, evaluation and the exported graphs.

TensorFlow and PIL only (no tensorflow-datasets), so exports and servers can import them cheaply.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

RESIZE_MODES = ("pad", "stretch", "crop")


def to_float(images) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images) -> tf.Tensor:
    """float [-1, 1] -> uint8, rounding."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)


def pad_offsets(h, w):
    """(side, top, left): the square that 'pad' mode places an h x w image in, centred."""
    side = tf.maximum(h, w)
    return side, (side - h) // 2, (side - w) // 2


def crop_offsets(h, w):
    """(side, top, left): the centred square that 'crop' mode keeps of an h x w image."""
    side = tf.minimum(h, w)
    return side, (h - side) // 2, (w - side) // 2


def resize_images(images, size: int, mode: str = "pad", antialias: bool = True) -> tf.Tensor:
    """uint8 [b, h, w, 3] -> uint8 [b, size, size, 3] with antialiasing; keeps the aspect ratio
    by padding with the mean border colour ('pad') or centre-cropping ('crop'). antialias=False
    (plain bilinear) is for TFLite/TF.js graphs, which lack the antialiasing kernel's op."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"Unknown resize mode {mode!r}; choose one of: {', '.join(RESIZE_MODES)}.")
    h, w = tf.shape(images)[1], tf.shape(images)[2]
    x = tf.cast(images, tf.float32)
    if mode == "pad":
        border = tf.concat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
        fill = tf.reduce_mean(border, axis=1)[:, None, None, :]
        side, top, left = pad_offsets(h, w)
        x = tf.pad(x - fill, [[0, 0], [top, side - h - top], [left, side - w - left], [0, 0]])
        x = x + fill
    elif mode == "crop":
        side, top, left = crop_offsets(h, w)
        x = tf.image.crop_to_bounding_box(x, top, left, side, side)
    x = tf.image.resize(x, (size, size), method="bilinear", antialias=antialias)
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


def decode_image_file(path: str) -> np.ndarray:
    """RGB uint8 from any PIL-readable file; EXIF rotation applied, alpha composited on white.

    Images over PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS, 89 Mpixel) raise
    ValueError instead of being decoded into gigabytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"{path}: {e} Downscale the image first.") from None


def _decode(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(canvas, rgba)
        return np.asarray(im.convert("RGB"), np.uint8)
