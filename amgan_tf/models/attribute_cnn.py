"""The attribute CNN: one softmax head per attribute on globally average-pooled last-conv features.

Heads sit directly on the pooled features (one Dense, no hidden layer) so that the class
activation map of Eq. 8, `sum_k w_k^c f_k(x)`, is exact: the logit of class c is the spatial mean
of its CAM plus a bias. The frozen network gives the generator its attention targets (CAMs), the
perceptual loss its features (conv5 and avg-pool) and the evaluation its judge.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from amgan_tf.attributes import AttributeSchema
from amgan_tf.models import alignment, backbones

CONFIG_FILE = "attribute_cnn.json"
MODEL_DIR = "attribute_cnn"  # the trained model's folder inside a classifier workdir
WEIGHTS_FILE = "attribute_cnn.weights.h5"


@dataclasses.dataclass
class AttributeCNNConfig:
    image_size: int = 64
    backbone: str = "small_resnet"  # small_resnet | resnet50
    # small_resnet only. Output stride 2 (32x32 CAMs at 64 px: only the stem is strided) and a
    # 27 px receptive field: thin arms need fine maps from local features. Measured on SynthFashion
    # (sleeve CAM maximum inside the sleeve or arm): 41% with a 71 px field at stride 4, 68-73% with
    # 39 px at stride 4, 78-80% with this layout, 89% adding `cam_smoothing` (BUILD_NOTES.md).
    widths: tuple[int, ...] = (32, 48, 64)
    strides: tuple[int, ...] = (1, 1, 1)
    blocks: tuple[int, ...] = (1, 1, 1)
    dilations: tuple[int, ...] = (1, 1, 1)
    stem_stride: int = 2
    input_size: int = 0  # resnet50 only: resize inputs to this size first (0 = image_size)
    imagenet_weights: str = ""  # resnet50 only: local notop .h5 file; '' trains from scratch
    # CAM upsampling: Gaussian smoothing with this standard deviation in feature cells. Features of a
    # 27 px field vary little from one 2 px cell to the next, so the peak of the raw map is decided
    # by ripple; smoothing at the cell scale moves it to the centre of the evidence. 0 = off.
    cam_smoothing: float = 1.0

    def __post_init__(self):
        if self.cam_smoothing < 0:
            raise ValueError(f"cam_smoothing must be >= 0 (feature cells), got {self.cam_smoothing}.")
        if self.backbone not in backbones.BACKBONES:
            raise ValueError(f"Unknown backbone {self.backbone!r}; choose one of: "
                             f"{', '.join(backbones.BACKBONES)}.")
        self.widths, self.strides, self.blocks, self.dilations = (
            tuple(int(v) for v in t) for t in (self.widths, self.strides, self.blocks,
                                               self.dilations))


class AttributeCNN(keras.Model):
    """Logits for every attribute of `schema`, concatenated in schema order."""

    def __init__(self, schema: AttributeSchema, config: AttributeCNNConfig, **kwargs):
        super().__init__(**kwargs)
        self.schema, self.config = schema, config
        if config.backbone == "resnet50":
            self.backbone = backbones.resnet50(config.image_size, config.input_size,
                                               config.imagenet_weights)
        else:
            self.backbone = backbones.small_resnet(config.image_size, config.widths,
                                                   config.strides, config.blocks, config.dilations,
                                                   config.stem_stride)
        sizes = [len(a.values) for a in schema.attributes]
        self.head_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
        self.head_sizes = np.array(sizes, np.int32)
        self.head = keras.layers.Dense(int(sum(sizes)), name="heads")
        self.grid = alignment.feature_grid(self.backbone)  # where conv5's cells sit on the image

    def features(self, x, training=False) -> dict[str, tf.Tensor]:
        """conv5 (last conv map), avgpool (its global mean) and logits."""
        conv5 = self.backbone(x, training=training)
        avgpool = tf.reduce_mean(conv5, axis=[1, 2])
        return {"conv5": conv5, "avgpool": avgpool, "logits": self.head(avgpool)}

    def call(self, x, training=False):
        return self.features(x, training=training)["logits"]

    # ---- logits by attribute ---------------------------------------------------------------------
    def split_logits(self, logits) -> list[tf.Tensor]:
        return tf.split(logits, self.head_sizes.tolist(), axis=-1)

    def predict_labels(self, x) -> tf.Tensor:
        """int32 [B, A] argmax value per attribute."""
        return tf.stack([tf.argmax(l, -1, output_type=tf.int32)
                         for l in self.split_logits(self(x, training=False))], axis=-1)

    # ---- class activation maps -------------------------------------------------------------------
    def raw_cam(self, conv5: tf.Tensor, attribute: str | int | tf.Tensor, value) -> tf.Tensor:
        """Eq. 8 at feature resolution, float [B, h, w]: `sum_k w_k^c f_k`, whose spatial mean plus
        the head bias is the class logit. `attribute` is a name or label column (scalar or [B]);
        `value` a name, an index, or int [B]."""
        batch = tf.shape(conv5)[0]
        column = self.schema.column(attribute) if isinstance(attribute, str) else attribute
        if isinstance(value, str):
            value = self.schema.attributes[column].value_index(value)
        column = tf.broadcast_to(tf.cast(column, tf.int32), [batch])
        value = tf.broadcast_to(tf.cast(value, tf.int32), [batch])
        slot = tf.gather(tf.constant(self.head_offsets), column) + value
        w = tf.transpose(tf.gather(tf.transpose(self.head.kernel), slot))  # [K, B]
        return tf.einsum("bhwk,kb->bhw", conv5, tf.cast(w, conv5.dtype))

    def cam(self, images, attribute: str | int | tf.Tensor, value, normalise: bool = True,
            size: int | None = None, conv5: tf.Tensor | None = None,
            smoothing: float | None = None) -> tf.Tensor:
        """CAM of Eq. 8 for (attribute, value) per image: float [B, H, W] at the image size (or
        `size`), normalised to [0, 1] per image. Upsampling puts every feature cell on the pixel its
        receptive field is centred on (`alignment.feature_grid`), not where a plain resize would,
        then smooths by `smoothing` cells (default `config.cam_smoothing`). Pass `conv5` to reuse
        computed features."""
        if conv5 is None:
            conv5 = self.features(images, training=False)["conv5"]
        raw = tf.cast(self.raw_cam(conv5, attribute, value), tf.float32)
        if size is None:
            size = int(images.shape[1]) if images is not None else self.config.image_size
        if smoothing is None:
            smoothing = self.config.cam_smoothing
        rows, cols = (tf.constant(alignment.interpolation_matrix(axis, n, size, smoothing))
                      for axis, n in zip(self.grid, self.backbone.inputs[0].shape[1:3]))
        out = tf.einsum("yh,bhw,xw->byx", rows, raw, cols)
        if not normalise:
            return out
        # Normalised after upsampling, so every map spans exactly [0, 1] at image resolution.
        lo = tf.reduce_min(out, axis=[1, 2], keepdims=True)
        hi = tf.reduce_max(out, axis=[1, 2], keepdims=True)
        return (out - lo) / tf.maximum(hi - lo, 1e-8)

    # ---- persistence -----------------------------------------------------------------------------
    def build_on_zeros(self):
        s = self.config.image_size
        self(tf.zeros((1, s, s, 3)), training=False)
        return self

    def save_to(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, CONFIG_FILE), "w") as f:
            json.dump({"schema": self.schema.to_dict(),
                       "config": dataclasses.asdict(self.config)}, f, indent=2)
        self.save_weights(os.path.join(directory, WEIGHTS_FILE))


def masked_classification_loss(logits_per_attribute: list[tf.Tensor], labels: tf.Tensor,
                               attribute_weights=None) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Sum over attributes of the mean cross-entropy over examples labelled for that attribute
    (label -1 = missing: no loss). Returns (total, per-attribute losses)."""
    per_attr = []
    for i, logits in enumerate(logits_per_attribute):
        y = labels[:, i]
        known = tf.cast(y >= 0, logits.dtype)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(y, 0), logits)
        loss = tf.reduce_sum(ce * known) / tf.maximum(tf.reduce_sum(known), 1.0)
        if attribute_weights is not None:
            loss = loss * attribute_weights[i]
        per_attr.append(loss)
    return tf.add_n(per_attr), per_attr


def load_attribute_cnn(path: str, trainable: bool = False) -> AttributeCNN:
    """Load from a workdir (or its `attribute_cnn/` folder) holding attribute_cnn.json + weights."""
    for candidate in (path, os.path.join(path, MODEL_DIR)):
        if os.path.exists(os.path.join(candidate, CONFIG_FILE)):
            path = candidate
            break
    else:
        raise FileNotFoundError(
            f"No trained attribute CNN in {path!r} (looked for {CONFIG_FILE} there and in "
            f"{MODEL_DIR}/). Train one with `python -m amgan_tf.train_classifier "
            f"--flagfile=configs/classifier_synthfashion.cfg --workdir=...`.")
    with open(os.path.join(path, CONFIG_FILE)) as f:
        meta = json.load(f)
    config = AttributeCNNConfig(**{**meta["config"], "imagenet_weights": ""})
    model = AttributeCNN(AttributeSchema.from_dict(meta["schema"]), config).build_on_zeros()
    model.load_weights(os.path.join(path, WEIGHTS_FILE))
    model.trainable = trainable
    return model
