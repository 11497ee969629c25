"""Manipulate user images with a trained AMGAN: any size, aspect ratio or colour mode.

Reading files and naming edits; the edit itself is `amgan_tf.edit.apply_edit`, shared with
evaluation and the exported graphs (see there for the full-resolution blend and region edits).
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from amgan_tf.edit import REGION_MODES, REGION_THRESHOLD
from amgan_tf.imaging import decode_image_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class ImageReadError(ValueError):
    """An input image cannot be read; the message names the file."""


class ImageEditError(ValueError):
    """One image could not be edited (e.g. a server refused it); the message names the file."""


@dataclasses.dataclass
class Edit:
    attribute: str
    value: str


@dataclasses.dataclass
class Region:
    """The region of another edit's mask: where `attribute=value` would be edited."""

    attribute: str
    value: str
    threshold: float = REGION_THRESHOLD
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


def define_edit_flags(fv) -> None:
    """The flags of an edit request, shared by `amgan_tf.manipulate` and the serving client
    (`fv` is the binary's absl FlagValues)."""
    from absl import flags
    flags.DEFINE_string("image", None, "Image file or folder of images.", flag_values=fv)
    flags.DEFINE_string("attribute", None, "Attribute to change, e.g. sleeve.", flag_values=fv)
    flags.DEFINE_string("value", None, "Target value, e.g. sleeveless.", flag_values=fv)
    flags.DEFINE_string("output", None, "Output image path (or folder when --image is a folder).",
                        flag_values=fv)
    flags.DEFINE_string("region_attribute", "", "Restrict the edit to the mask of this "
                        "attribute...", flag_values=fv)
    flags.DEFINE_string("region_value", "", "...set to this value (Eq. 12).", flag_values=fv)
    flags.DEFINE_float("region_threshold", REGION_THRESHOLD, "Region: mask values below this "
                       "share of the region mask's maximum become 0 (the rest is scaled to a "
                       "maximum of 1).",
                       flag_values=fv)
    flags.DEFINE_enum("region_mode", "inside", list(REGION_MODES), "Edit inside or outside.",
                      flag_values=fv)
    flags.DEFINE_boolean("save_attention", True, "Also write <output>_attention.png.",
                         flag_values=fv)
    flags.mark_flags_as_required(["image", "attribute", "value", "output"], flag_values=fv)


def edit_request(values) -> tuple[Edit, Region | None]:
    """(Edit, Region or None) from parsed `define_edit_flags` values; ValueError if inconsistent."""
    if bool(values.region_attribute) != bool(values.region_value):
        raise ValueError("--region_attribute and --region_value go together.")
    region = (Region(values.region_attribute, values.region_value, values.region_threshold,
                     values.region_mode) if values.region_attribute else None)
    return Edit(values.attribute, values.value), region


def output_paths(inputs: list[str], image_arg: str, output: str) -> list[str]:
    """Where each input's result goes: `output` itself, or `output/<name>.png` for a folder
    (`<name>_<ext>.png` where two inputs share a name, e.g. a.jpg and a.png)."""
    if not os.path.isdir(image_arg):
        return [output]
    stems = [os.path.splitext(os.path.basename(p)) for p in inputs]
    counts = {}
    for stem, _ in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [os.path.join(output, (stem if counts[stem] == 1 else f"{stem}_{ext.lstrip('.')}")
                         + ".png") for stem, ext in stems]


class Manipulator:
    """Applies named edits with a trained model: anything with `.schema`, `.image_size` and
    `.edit(images, m, m_region, threshold, inside)`, such as `amgan_tf.trained.TrainedGenerator`."""

    def __init__(self, model):
        self.model = model
        self.schema = model.schema
        self.size = model.image_size

    def _m(self, attribute: str, value: str) -> tf.Tensor:
        r = self.schema.r_index(attribute)
        v = self.schema.value_index(attribute, value)
        return tf.constant(self.schema.encode_batch(np.array([r]), np.array([v])))

    def manipulate_image(self, image: np.ndarray, edit: Edit, region: Region | None = None):
        """uint8 [H, W, 3] of any size -> (uint8 result [H, W, 3], float mask [H, W])."""
        m = self._m(edit.attribute, edit.value)  # clear errors for bad names before any work
        m_region = None if region is None else self._m(region.attribute, region.value)
        out, mask = self.model.edit(tf.constant(image[None]), m, m_region,
                                    threshold=region.threshold if region else 0.0,
                                    inside=region is None or region.mode == "inside")
        return out.numpy()[0], mask.numpy()[0, ..., 0]


def manipulate_files(inputs: list[str], image_arg: str, output: str, manipulate_one,
                     save_attention: bool = True) -> int:
    """`manipulate_one(path) -> (uint8 result, float mask)` over every input, each result written
    beside its mask; an unreadable or refused image is reported and skipped. Returns how many
    failed."""
    failures = 0
    for path, out in zip(inputs, output_paths(inputs, image_arg, output)):
        try:
            result, mask = manipulate_one(path)
        except (ImageReadError, ImageEditError) as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        try:
            written = save_outputs(np.asarray(result), np.asarray(mask), out, save_attention)
        except (OSError, ValueError) as e:  # e.g. an unknown extension or an unwritable folder
            print(f"error: cannot write {out!r}: {e}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path} -> {', '.join(written)}")
    if failures:
        print(f"{failures} of {len(inputs)} image(s) failed.", file=sys.stderr)
    return failures


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
