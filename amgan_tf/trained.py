"""The one loader of trained AMGAN models: what training writes into a workdir and how to read it.

Training writes through these names (config, schema, checkpoint layout); the manipulate CLI,
evaluation and export read through `load_generator` (G and the schema only: no critics, no
optimizer state, no training code) or `load_trained` (the whole AMGAN, for evaluation).
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from amgan_tf import loop
from amgan_tf.attributes import AttributeSchema
from amgan_tf.configs import TrainConfig, config_from_dict
from amgan_tf.edit import REGION_THRESHOLD, apply_edit
from amgan_tf.models.amgan import AMGAN, AmganConfig
from amgan_tf.models.attribute_cnn import MODEL_DIR, AttributeCNN, load_attribute_cnn
from amgan_tf.models.networks import Generator

CONFIG_FILE = "train_config.json"
SCHEMA_FILE = "schema.json"
CHECKPOINT_DIR = "checkpoints"
CLASSIFIER_DIR = "classifier"


def network_weights(network) -> dict:
    """{variable path: variable} of a network, for the checkpoint.

    Keras 3 keeps sub-layers held in Python lists (G's trunk, the critics' conv stacks) in
    TrackedLists, which tf.train.Checkpoint does not follow: `Checkpoint(G=G)` alone saves only
    G's two heads. Training still resumed exactly because the optimizers track every trainable
    variable, but G could not be restored without its optimizer. Naming every variable here makes
    the networks restorable on their own."""
    return {v.path: v for v in network.variables}


def checkpoint(model: AMGAN, step: tf.Variable) -> tf.train.Checkpoint:
    """The checkpoint layout: networks (also by variable path), both optimizers and the step."""
    parts = {"G": model.G, "D_I": model.D_I, "g_opt": model.g_opt, "d_opt": model.d_opt,
             "step": step, "G_weights": network_weights(model.G),
             "D_I_weights": network_weights(model.D_I)}
    if model.D_C is not None:
        parts["D_C"] = model.D_C
        parts["D_C_weights"] = network_weights(model.D_C)
    return tf.train.Checkpoint(**parts)


def save_config(workdir: str, config: TrainConfig) -> None:
    loop.write_json_atomic(os.path.join(workdir, CONFIG_FILE), config.to_dict())


def read_config(workdir: str) -> TrainConfig:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir!r} is not an AMGAN training workdir (no {CONFIG_FILE}); "
                                f"train one with `python -m amgan_tf.train --workdir=...`.")
    try:
        with open(path) as f:
            return config_from_dict(json.load(f))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a readable AMGAN training config ({e}); was it written "
                         f"by `python -m amgan_tf.train`?") from None


def _with_floor(config: TrainConfig, attention_floor: float | None) -> TrainConfig:
    """The run's config with its edit-time attention floor replaced (None: kept)."""
    if attention_floor is None:
        return config
    return dataclasses.replace(config, amgan=dataclasses.replace(
        config.amgan, attention_floor=float(attention_floor)))


def read_schema(workdir: str) -> AttributeSchema:
    path = os.path.join(workdir, SCHEMA_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {SCHEMA_FILE} in {workdir!r}: training has not started there.")
    return AttributeSchema.load(path)


def restore_latest(workdir: str, restore) -> str:
    """Call `restore(prefix)` on the newest readable checkpoint of a workdir (damaged ones are
    skipped with a warning and left in place); its prefix."""
    latest = loop.restore_newest_good(restore, os.path.join(workdir, CHECKPOINT_DIR),
                                      quarantine=False)
    if latest is None:
        raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, CHECKPOINT_DIR)} yet; "
                                f"training writes one every --checkpoint_every steps.")
    return latest


def attribute_cnn_dir(config: TrainConfig, workdir: str) -> str:
    """The training workdir of the run's attribute CNN (trained first if missing)."""
    return config.classifier_workdir or os.path.join(workdir, CLASSIFIER_DIR)


def _cnn_model_dir(config: TrainConfig, workdir: str) -> str | None:
    path = os.path.join(attribute_cnn_dir(config, workdir), MODEL_DIR)
    return path if os.path.exists(path) else None


def build_model(schema: AttributeSchema, config: AmganConfig, cnn_dir: str | None,
                strategy: tf.distribute.Strategy | None = None):
    """(AMGAN with all variables, the frozen attribute CNN or None) under `strategy`'s scope."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        cnn = load_attribute_cnn(cnn_dir) if cnn_dir else None
        if cnn is not None and cnn.schema.names != schema.names:
            raise ValueError(f"The attribute CNN in {cnn_dir} was trained on attributes "
                             f"{cnn.schema.names}, the data has {schema.names}.")
        model = AMGAN(schema, config, cnn if config.needs_attribute_cnn else None).build_all()
    return model, cnn


def load_trained(workdir: str, attention_floor: float | None = None):
    """(AMGAN restored from the latest checkpoint, the attribute CNN or None, TrainConfig).
    `attention_floor` replaces the run's edit-time floor (None: the run's)."""
    config = _with_floor(read_config(workdir), attention_floor)
    schema = read_schema(workdir)
    model, cnn = build_model(schema, config.amgan, _cnn_model_dir(config, workdir))
    ckpt = checkpoint(model, tf.Variable(0, dtype=tf.int64))
    restore_latest(workdir, lambda prefix: ckpt.restore(prefix).expect_partial())
    return model, cnn, config


@dataclasses.dataclass
class TrainedGenerator:
    """A restored G with what it needs to manipulate: the schema, the run's config and, for the
    CAM-attention ablation only, the attribute CNN whose CAM is the mask."""

    G: Generator
    schema: AttributeSchema
    config: TrainConfig
    step: int
    cnn: AttributeCNN | None = None

    @property
    def image_size(self) -> int:
        return self.config.amgan.image_size

    @property
    def resize(self) -> str:
        """How its training images were made square; every edit brings its input there alike."""
        return self.config.data.resize

    @property
    def attention_floor(self) -> float:
        """The run's edit-time mask floor (`amgan_tf.edit.floored_attention`)."""
        return self.config.amgan.attention_floor

    def attention_and_colour(self, x, m):
        """(a, z) of G at the training size, the `generate` of `amgan_tf.edit.apply_edit`."""
        override = None
        if self.config.amgan.attention_source == "cam":
            r = tf.argmax(m[:, self.schema.num_values:], axis=-1, output_type=tf.int32)
            column = tf.gather(tf.constant(self.schema.manipulated_columns), r)
            labels = self.cnn.predict_labels(x)
            c_of_x = tf.gather(labels, column, batch_dims=1)
            override = self.cnn.cam(x, column, c_of_x)[..., None]
        _, a, z = self.G(x, m, attention_override=override)
        return a, z

    def edit(self, images, m, m_region=None, threshold=REGION_THRESHOLD, inside=True):
        """`amgan_tf.edit.apply_edit` with this run's size, resize mode and attention floor."""
        return apply_edit(self.attention_and_colour, images, m, self.image_size, m_region,
                          threshold, inside, self.resize, self.attention_floor)


def load_generator(workdir: str, dtype_policy: str = "float32",
                   attention_floor: float | None = None) -> TrainedGenerator:
    """G restored alone from the latest checkpoint (critics and optimizer state are not read), in
    `dtype_policy` whatever it trained in (bfloat16-trained weights are float32 variables);
    `attention_floor` replaces the run's edit-time floor (None: the run's)."""
    config = _with_floor(read_config(workdir), attention_floor)
    schema = read_schema(workdir)
    g_config = dataclasses.replace(config.amgan.generator, dtype_policy=dtype_policy)
    G = Generator(g_config, name="G")
    s = config.amgan.image_size
    G(tf.zeros((1, s, s, 3)), tf.zeros((1, schema.m_dim)))
    step = tf.Variable(0, dtype=tf.int64)

    def restore(prefix):
        if any(name.startswith("G_weights/") for name, _ in tf.train.list_variables(prefix)):
            tf.train.Checkpoint(step=step, G_weights=network_weights(G)).restore(prefix) \
                .expect_partial().assert_existing_objects_matched()
            return
        # Written before G_weights existed: G is reachable only through its optimizer, so restore
        # a whole model (without the attribute CNN, which only shapes training losses).
        skeleton = dataclasses.replace(
            config.amgan, attention_source="generator",
            weights=dataclasses.replace(config.amgan.weights, lambda_a=0.0, lambda_p=0.0))
        model = AMGAN(schema, skeleton).build_all()
        tf.train.Checkpoint(G=model.G, g_opt=model.g_opt, step=step).restore(prefix) \
            .expect_partial().assert_existing_objects_matched()
        for mine, theirs in zip(G.variables, model.G.variables, strict=True):
            mine.assign(tf.cast(theirs, mine.dtype))

    restore_latest(workdir, restore)
    cnn = None
    if config.amgan.attention_source == "cam":
        cnn_dir = _cnn_model_dir(config, workdir)
        if cnn_dir is None:
            raise FileNotFoundError(f"This run uses the attribute CNN's CAM as its mask, but its "
                                    f"CNN is missing from {attribute_cnn_dir(config, workdir)}.")
        cnn = load_attribute_cnn(cnn_dir)
    return TrainedGenerator(G, schema, config, int(step), cnn)
