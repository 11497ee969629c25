"""SavedModel export for TF Serving: the manipulation signatures of a trained generator.

Only G and the schema leave the workdir (no critics, no optimizer state). All pre- and
post-processing is in the graph, through the same `apply_edit` as the manipulate CLI, so a server
needs nothing but the SavedModel. Layout: `BASE/<model_name>/<version>/`, written to a temporary
folder first and renamed, so a polling server never sees half a version.

Signatures (named inputs -> named outputs):
- serving_default: images uint8 [B, H, W, 3] (any H, W up to MAX_SIDE), attribute and value
  strings (scalar, or one per image) -> images uint8 [B, H, W, 3], attention float32 [B, H, W, 1].
- manipulate_region: the same plus region_attribute, region_value (strings), region_threshold
  (float scalar) and region_mode ("inside" | "outside"): Eq. 12 as in the CLI.
- manipulate_bytes: images_bytes (encoded JPEG/PNG strings [B]), attribute, value ->
  images_bytes (PNG strings), attention_bytes (PNG strings). REST clients send and receive base64
  (TF Serving base64-encodes outputs whose alias ends in `_bytes`).
- schema: no input -> attributes, manipulable, values (padded with ""), num_values, image_size,
  max_side; a client discovers what it may ask for.
Bad requests fail with InvalidArgument naming the problem (tf.debugging.Assert in the graph).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from amgan_tf.attributes import AttributeSchema
from amgan_tf.edit import REGION_MODES, apply_edit

MAX_SIDE = 4096  # largest accepted image height or width, checked before any pixel work
# Largest batch x side^2: images are padded to squares at full resolution (the mask and colour
# are upsampled there too), so a batch of thin images must not become a batch of huge squares.
MAX_SQUARE_PIXELS = 2 * MAX_SIDE * MAX_SIDE
MAX_ENCODED_BYTES = 32 * 1024 * 1024  # largest accepted encoded image
SCHEMA_FILE = "schema.json"  # written beside the SavedModel in assets.extra/
METADATA_FILE = "export.json"

_U8 = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
_NAME = tf.TensorSpec(None, tf.string)  # scalar or one per image
_SCALAR_STR = tf.TensorSpec([], tf.string)
_SCALAR_F32 = tf.TensorSpec([], tf.float32)


class _SchemaLookup:
    """Attribute/value names -> manipulation vectors, in graph ops (no lookup tables)."""

    def __init__(self, schema: AttributeSchema):
        self.schema = schema
        names = list(schema.names)
        r_of = [schema.manipulated.index(a) if a.manipulated else -1 for a in schema.attributes]
        self.names = tf.constant(names)
        self.r_of = tf.constant(r_of, tf.int32)
        keys, slots = [], []
        for r, (attr, offset) in enumerate(zip(schema.manipulated, schema.offsets)):
            for v, value in enumerate(attr.values):
                keys.append(f"{attr.name}\x1f{value}")
                slots.append(offset + v)
        self.keys, self.slots = tf.constant(keys), tf.constant(slots, tf.int32)
        self.valid_attributes = ", ".join(a.name for a in schema.manipulated)
        self.reference_only = ", ".join(a.name for a in schema.reference_only) or "none"
        self.values_text = "; ".join(f"{a.name}: {', '.join(a.values)}"
                                     for a in schema.manipulated)

    def m(self, attribute, value, batch, what: str = "") -> tf.Tensor:
        """float32 [batch, N + M] for `attribute` = `value` (each a scalar or [batch] strings)."""
        attribute, value = (_per_image(t, batch, f"{what}{n}")
                            for t, n in ((attribute, "attribute"), (value, "value")))
        hit = tf.equal(attribute[:, None], self.names[None, :])
        known = tf.reduce_any(hit, axis=1)
        r = tf.gather(self.r_of, tf.argmax(tf.cast(hit, tf.int32), axis=1, output_type=tf.int32))
        key = tf.strings.join([attribute, value], separator="\x1f")
        hit_v = tf.equal(key[:, None], self.keys[None, :])
        known_v = tf.reduce_any(hit_v, axis=1)
        checks = [
            tf.debugging.Assert(tf.reduce_all(known), [
                f"Unknown {what}attribute", _unique(tf.boolean_mask(attribute, ~known)),
                f"valid attributes: {self.valid_attributes}"], summarize=8),
            tf.debugging.Assert(tf.reduce_all(r >= 0), [
                f"{what}attribute", _unique(tf.boolean_mask(attribute, r < 0)),
                f"is used only for reference matching and cannot be manipulated "
                f"(reference-only: {self.reference_only}); manipulated attributes: "
                f"{self.valid_attributes}"], summarize=8)]
        with tf.control_dependencies(checks):  # the attribute's error first, then the value's
            checks.append(tf.debugging.Assert(tf.reduce_all(known_v), [
                f"Unknown {what}value", _unique(tf.boolean_mask(value, ~known_v)), "for attribute",
                _unique(tf.boolean_mask(attribute, ~known_v)), f"valid values: {self.values_text}"],
                summarize=8))
        slot = tf.gather(self.slots, tf.argmax(tf.cast(hit_v, tf.int32), axis=1,
                                               output_type=tf.int32))
        n = self.schema.num_values
        with tf.control_dependencies(checks):
            return (tf.one_hot(slot, self.schema.m_dim)
                    + tf.one_hot(n + tf.maximum(r, 0), self.schema.m_dim))


def _unique(names) -> tf.Tensor:
    return tf.unique(names).y


def _per_image(t, batch, name) -> tf.Tensor:
    """A scalar or [batch] string tensor as [batch]."""
    flat = tf.reshape(t, [-1])
    n = tf.size(flat)
    check = tf.debugging.Assert(tf.logical_or(tf.equal(n, 1), tf.equal(n, batch)), [
        f"{name} must be a scalar or have one entry per image; got", n, "entries for", batch,
        "images"])
    with tf.control_dependencies([check]):
        return tf.cond(tf.equal(n, 1), lambda: tf.fill([batch], flat[0]), lambda: flat)


def _checked(value, checks) -> tf.Tensor:
    """`value`, available only after every check passed (graph ops otherwise run in any order)."""
    with tf.control_dependencies(checks):
        return tf.identity(value)


def _check_images(images) -> tf.Tensor:
    shape = tf.shape(images)
    return _checked(images, [
        tf.debugging.Assert(shape[0] > 0, ["images is an empty batch (0 images)"]),
        tf.debugging.Assert(tf.logical_and(shape[1] > 0, shape[2] > 0), [
            "images has zero height or width:", shape]),
        tf.debugging.Assert(tf.logical_and(shape[1] <= MAX_SIDE, shape[2] <= MAX_SIDE), [
            f"image too large: at most {MAX_SIDE} px per side, got", shape[1:3]]),
        tf.debugging.Assert(
            tf.cast(shape[0], tf.int64) * tf.cast(tf.maximum(shape[1], shape[2]), tf.int64) ** 2
            <= MAX_SQUARE_PIXELS,
            [f"batch too large: images x (longer side)^2 must be at most {MAX_SQUARE_PIXELS}; "
             f"got", shape[0], "images of", shape[1:3], "- send fewer images per request"])])


def _encoded_shape(data) -> tf.Tensor:
    """(height, width) of one JPEG or PNG string from its header, without decoding pixels."""
    head = tf.strings.substr(data, 0, 8)
    is_png = tf.equal(head, b"\x89PNG\r\n\x1a\n")
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 2), b"\xff\xd8")
    data = _checked(data, [
        tf.debugging.Assert(tf.strings.length(data) <= MAX_ENCODED_BYTES, [
            f"encoded image larger than {MAX_ENCODED_BYTES} bytes:", tf.strings.length(data)]),
        tf.debugging.Assert(tf.logical_or(is_png, is_jpeg), [
            "images_bytes entry is neither a PNG nor a JPEG (first bytes:", head, ")"])])

    def png_shape():
        header = _checked(data, [tf.debugging.Assert(tf.strings.length(data) >= 24, [
            "truncated PNG: no complete header"])])
        wh = tf.cast(tf.io.decode_raw(tf.strings.substr(header, 16, 8), tf.uint8), tf.int64)
        w = wh[0] * 2 ** 24 + wh[1] * 2 ** 16 + wh[2] * 2 ** 8 + wh[3]
        h = wh[4] * 2 ** 24 + wh[5] * 2 ** 16 + wh[6] * 2 ** 8 + wh[7]
        return tf.stack([h, w])

    return data, tf.cond(is_png, png_shape,
                         lambda: tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64))


def check_exportable(trained) -> None:
    """Every export holds G alone: refuse a run whose mask needs the attribute CNN."""
    if trained.config.amgan.attention_source == "cam":
        raise ValueError("This run is the CAM-attention ablation: its mask comes from the "
                         "attribute CNN at inference, which the export does not include. Export a "
                         "run with generator attention (the default).")


class GeneratorModule(tf.Module):
    """Base of every exported object: G's backing tf.Variables and its `generate` for
    `amgan_tf.edit`.

    Keras objects stay out of the tracked graph (DESIGN.md: a SavedModel tracking Keras 3
    variables converts to a TFLite model that silently returns NaN), so G is held untracked and
    only `[v.value for v in G.variables]` is saved."""

    def __init__(self, generator, image_size: int, subpixel: bool = False, resize: str = "pad",
                 attention_floor: float = 0.0):
        super().__init__()
        self.__dict__["_generator"] = generator  # untracked
        self.generator_variables = [v.value for v in generator.variables]
        self.__dict__["_size"] = int(image_size)
        self.__dict__["_subpixel"] = bool(subpixel)  # see networks.transpose_conv_as_subpixel
        self.__dict__["_resize"] = resize  # the training data's, see amgan_tf.edit
        self.__dict__["_floor"] = float(attention_floor)  # the run's, see amgan_tf.edit

    def _generate(self, x, m):
        _, a, z = self._generator(x, m, subpixel=self._subpixel)
        return a, z


class ManipulationModule(GeneratorModule):
    """The SavedModel: G, the schema and the signatures."""

    def __init__(self, generator, schema: AttributeSchema, image_size: int, resize: str = "pad",
                 attention_floor: float = 0.0):
        super().__init__(generator, image_size, resize=resize, attention_floor=attention_floor)
        self.__dict__["_lookup"] = _SchemaLookup(schema)
        self.__dict__["_schema"] = schema

    def _edit(self, images, attribute, value, region=None):
        images = _check_images(images)
        batch = tf.shape(images)[0]
        m = self._lookup.m(attribute, value, batch)
        if region is None:
            return apply_edit(self._generate, images, m, self._size, resize=self._resize,
                              attention_floor=self._floor)
        region_attribute, region_value, threshold, mode = region
        images = _checked(images, [
            tf.debugging.Assert(tf.reduce_any(tf.equal(mode, list(REGION_MODES))), [
                "region_mode must be one of", ", ".join(REGION_MODES), "; got", mode]),
            tf.debugging.Assert(tf.logical_and(threshold >= 0.0, threshold < 1.0), [
                "region_threshold must be in [0, 1); got", threshold])])
        m_region = self._lookup.m(region_attribute, region_value, batch, what="region ")
        return apply_edit(self._generate, images, m, self._size, m_region, threshold,
                          tf.equal(mode, "inside"), self._resize, self._floor)

    @tf.function(input_signature=[_U8, _NAME, _NAME])
    def manipulate(self, images, attribute, value):
        out, mask = self._edit(images, attribute, value)
        return {"images": out, "attention": mask}

    @tf.function(input_signature=[_U8, _NAME, _NAME, _NAME, _NAME, _SCALAR_F32, _SCALAR_STR])
    def manipulate_region(self, images, attribute, value, region_attribute, region_value,
                          region_threshold, region_mode):
        out, mask = self._edit(images, attribute, value,
                               (region_attribute, region_value, region_threshold, region_mode))
        return {"images": out, "attention": mask}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), _NAME, _NAME])
    def manipulate_bytes(self, images_bytes, attribute, value):
        batch = tf.shape(images_bytes)[0]
        images_bytes = _checked(images_bytes, [tf.debugging.Assert(batch > 0, [
            "images_bytes is an empty batch (0 images)"])])
        attribute = _per_image(attribute, batch, "attribute")
        value = _per_image(value, batch, "value")

        def one(args):
            data, attr, val = args
            data, hw = _encoded_shape(data)
            data = _checked(data, [  # before any pixel is decoded
                tf.debugging.Assert(tf.reduce_all(hw > 0), ["image has zero height or width:", hw]),
                tf.debugging.Assert(tf.reduce_all(hw <= MAX_SIDE), [
                    f"image too large: at most {MAX_SIDE} px per side, got", hw])])
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            out, mask = self._edit(image[None], attr, val)
            mask8 = tf.cast(tf.round(mask[0] * 255.0), tf.uint8)
            return tf.io.encode_png(out[0]), tf.io.encode_png(mask8)

        png, attention = tf.map_fn(one, (images_bytes, attribute, value),
                                   fn_output_signature=(tf.string, tf.string))
        return {"images_bytes": png, "attention_bytes": attention}

    @tf.function(input_signature=[])
    def schema(self):
        s = self._schema
        width = max(len(a.values) for a in s.attributes)
        values = [list(a.values) + [""] * (width - len(a.values)) for a in s.attributes]
        return {"attributes": tf.constant(list(s.names)),
                "manipulable": tf.constant([a.manipulated for a in s.attributes]),
                "values": tf.constant(values),
                "num_values": tf.constant([len(a.values) for a in s.attributes], tf.int32),
                "image_size": tf.constant(self._size, tf.int32),
                "max_side": tf.constant(MAX_SIDE, tf.int32)}

    def signatures(self) -> dict:
        return {"serving_default": self.manipulate, "manipulate_region": self.manipulate_region,
                "manipulate_bytes": self.manipulate_bytes, "schema": self.schema}


@dataclasses.dataclass
class ExportResult:
    path: str
    version: int
    bytes: int
    generator_parameters: int


def next_version(model_dir: str) -> int:
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()] if os.path.isdir(
        model_dir) else []
    return max(versions, default=0) + 1


def directory_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
               for f in files)


def export_saved_model(trained, base: str, model_name: str = "amgan",
                       version: int | None = None) -> ExportResult:
    """Write `trained` (an `amgan_tf.trained.TrainedGenerator`) to BASE/model_name/version."""
    check_exportable(trained)
    model_dir = os.path.join(base, model_name)
    version = next_version(model_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"--version must be a positive integer, got {version}.")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists already; choose another --version or leave it "
                              f"out to use the next one ({next_version(model_dir)}).")
    os.makedirs(model_dir, exist_ok=True)
    module = ManipulationModule(trained.G, trained.schema, trained.image_size, trained.resize,
                                trained.attention_floor)
    tmp = tempfile.mkdtemp(prefix=f".{version}.tmp", dir=model_dir)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        trained.schema.save(os.path.join(extra, SCHEMA_FILE))
        with open(os.path.join(extra, METADATA_FILE), "w") as f:
            json.dump({"step": trained.step, "image_size": trained.image_size,
                       "resize": trained.resize, "attention_floor": trained.attention_floor,
                       "generator": dataclasses.asdict(trained.G.config),
                       "max_side": MAX_SIDE}, f, indent=2)
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the version from a serving user
        os.rename(tmp, final)  # atomic: a polling server sees all of a version or none
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    params = int(sum(np.prod(v.shape) for v in trained.G.variables))
    return ExportResult(final, version, directory_bytes(final), params)
