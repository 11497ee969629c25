"""Manipulate user images with a trained AMGAN: any size, aspect ratio or colour mode.

Images are padded to square (mean border colour), resized to the training size, manipulated, and
the result is mapped back onto the ORIGINAL pixels through the attention mask
(x* = a * z + (1 - a) * x at full resolution), so nothing outside the edited region loses detail.

Region-specific manipulation (PAPER.md Eq. 12, generalised): the mask of one edit (e.g. sleeve ->
sleeveless marks the sleeves), thresholded (values below `threshold` -> 0), restricts another edit
(e.g. colour -> orange) to inside that region, or to outside it with (1 - a1*) * a2.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from amgan_tf.data.builders import decode_image_file
from amgan_tf.data.datasets import resize_images
from amgan_tf.data.pipeline import to_float

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
REGION_MODES = ("inside", "outside")


class ImageReadError(ValueError):
    """An input image cannot be read; the message names the file."""


@dataclasses.dataclass
class Edit:
    attribute: str
    value: str


@dataclasses.dataclass
class Region:
    """The region of another edit's mask: where `attribute=value` would be edited."""

    attribute: str
    value: str
    threshold: float = 0.9
    mode: str = "inside"

    def __post_init__(self):
        if self.mode not in REGION_MODES:
            raise ValueError(f"Region mode must be one of {REGION_MODES}, got {self.mode!r}.")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"Region threshold must be in [0, 1), got {self.threshold}.")


def read_image(path: str) -> np.ndarray:
    """uint8 RGB [H, W, 3] from any common format (grayscale, RGBA, palette, EXIF-rotated)."""
    if not os.path.isfile(path):
        raise ImageReadError(f"Image {path!r} does not exist.")
    try:
        image = decode_image_file(path)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"Cannot read image {path!r}: {e}. Use a JPEG, PNG, BMP, WebP, GIF or "
                             f"TIFF file.") from None
    if min(image.shape[:2]) < 8:
        raise ImageReadError(f"Image {path!r} is {image.shape[1]}x{image.shape[0]} px; at least "
                             f"8x8 is needed.")
    return image


def list_images(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise ImageReadError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path!r}.")
        return files
    return [path]


class Manipulator:
    """Applies edits with a trained model (an `AMGAN` with `.schema`, `.generate`, `.config`)."""

    def __init__(self, model, attribute_cnn=None):
        self.model, self.cnn = model, attribute_cnn
        self.schema = model.schema
        self.size = model.config.image_size

    def _m(self, edit: Edit, n: int):
        r = self.schema.r_index(edit.attribute)
        v = self.schema.value_index(edit.attribute, edit.value)
        return r, tf.constant(self.schema.encode_batch(np.full(n, r), np.full(n, v)))

    def _run(self, x, edit: Edit):
        r, m = self._m(edit, int(x.shape[0]))
        c_of_x = None
        if self.model.config.attention_source == "cam":
            column = self.schema.manipulated_columns[r]
            c_of_x = self.cnn.predict_labels(x)[:, column]
        _, a, z = self.model.generate(x, m, tf.fill([int(x.shape[0])], r), c_of_x)
        return a, z

    def manipulate_square(self, x, edit: Edit, region: Region | None = None):
        """x float [B, S, S, 3] in [-1, 1] at the training size -> (x*, mask, z)."""
        self.schema.value_index(edit.attribute, edit.value)  # clear error before any work
        a2, z2 = self._run(x, edit)
        if region is None:
            mask = a2
        else:
            a1, _ = self._run(x, Edit(region.attribute, region.value))
            a1 = tf.where(a1 >= region.threshold, a1, tf.zeros_like(a1))
            mask = a1 if region.mode == "inside" else (1.0 - a1) * a2
        return mask * z2 + (1.0 - mask) * x, mask, z2

    def manipulate_image(self, image: np.ndarray, edit: Edit, region: Region | None = None):
        """uint8 [H, W, 3] of any size -> (uint8 result [H, W, 3], float mask [H, W])."""
        h, w = image.shape[:2]
        side = max(h, w)
        x = to_float(resize_images(tf.constant(image[None]), self.size, "pad"))
        _, mask, z = self.manipulate_square(x, edit, region)
        # Back to the padded square at full resolution, then crop the padding away.
        top, left = (side - h) // 2, (side - w) // 2
        mask_full = tf.image.resize(mask, (side, side), "bilinear")[0, top:top + h, left:left + w]
        z_full = tf.image.resize(z, (side, side), "bilinear")[0, top:top + h, left:left + w]
        original = to_float(image)
        out = mask_full * z_full + (1.0 - mask_full) * original
        out = tf.cast(tf.clip_by_value(tf.round((out + 1.0) * 127.5), 0, 255), tf.uint8)
        return out.numpy(), mask_full.numpy()[..., 0]


def save_outputs(result: np.ndarray, mask: np.ndarray, output: str, save_mask: bool = True):
    """Write the result (format from the extension) and `<name>_attention.png` beside it."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    Image.fromarray(result).save(output)
    written = [output]
    if save_mask:
        stem = os.path.splitext(output)[0]
        Image.fromarray(np.clip(np.round(mask * 255), 0, 255).astype(np.uint8)).save(
            f"{stem}_attention.png")
        written.append(f"{stem}_attention.png")
    return written
