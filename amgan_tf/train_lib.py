"""AMGAN training (library behind `python -m amgan_tf.train`).

One command does everything: it trains the attribute CNN first when the configured one does not
exist yet, then trains AMGAN under the chosen tf.distribute strategy, writing checkpoints
(networks, both optimizers, step), TensorBoard scalars and sample sheets, and evaluating
manipulation accuracy with the frozen attribute CNN. Killing it at any moment and running the same
command again continues from the last checkpoint with the same learning rate, optimizer state and
data stream. A non-finite loss stops training without touching the last good checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from amgan_tf import classifier_lib, evaluation
from amgan_tf.attributes import AttributeSchema
from amgan_tf.data import datasets, pipeline
from amgan_tf.runtime import check_finite, hms
from amgan_tf.models.amgan import AMGAN, AmganConfig
from amgan_tf.models.attribute_cnn import load_attribute_cnn

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
CONFIG_FILE = "train_config.json"
SCHEMA_FILE = "schema.json"


@dataclasses.dataclass
class TrainConfig:
    data: datasets.DatasetConfig = dataclasses.field(default_factory=datasets.DatasetConfig)
    amgan: AmganConfig = dataclasses.field(default_factory=AmganConfig)
    classifier: classifier_lib.ClassifierConfig = dataclasses.field(
        default_factory=classifier_lib.ClassifierConfig)
    classifier_workdir: str = ""  # '' = <workdir>/classifier
    steps: int = 80000
    seed: int = 0
    strategy: str = "auto"
    devices: tuple[str, ...] = ()  # mirrored: explicit devices (e.g. two logical CPUs in tests)
    jit_compile: bool = False  # XLA is 2-7x slower than oneDNN on CPU; try it on GPUs
    deterministic: bool = False  # op determinism: a run repeats bit for bit (slower on GPUs)
    log_every: int = 10
    checkpoint_every: int = 200
    sample_every: int = 500
    eval_every: int = 500
    eval_images: int = 128
    final_eval_images: int = 1000
    sample_images: int = 4
    stop_after: int = 0  # > 0: leave after this many steps in this run, as if killed

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        self.devices = tuple(self.devices)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def make_strategy(name: str, devices: tuple[str, ...] = ()) -> tf.distribute.Strategy:
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices) or None)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy=multi_worker needs the TF_CONFIG environment variable "
                             "(cluster and this worker's task).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def ensure_attribute_cnn(config: TrainConfig, workdir: str):
    """The trained attribute CNN, training it first (logged) when it does not exist yet."""
    cls_dir = config.classifier_workdir or os.path.join(workdir, "classifier")
    if not classifier_lib.is_trained(cls_dir):
        log.info("No trained attribute CNN in %s: training it first (%d steps).", cls_dir,
                 config.classifier.steps)
        cls_cfg = dataclasses.replace(config.classifier, data=config.data)
        classifier_lib.run(cls_cfg, cls_dir)
    return cls_dir


def _checkpoint(model: AMGAN, step: tf.Variable) -> tf.train.Checkpoint:
    parts = {"G": model.G, "D_I": model.D_I, "g_opt": model.g_opt, "d_opt": model.d_opt,
             "step": step}
    if model.D_C is not None:
        parts["D_C"] = model.D_C
    return tf.train.Checkpoint(**parts)


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


def load_trained(workdir: str):
    """(AMGAN restored from the latest checkpoint of a training workdir, its TrainConfig dict)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir!r} is not an AMGAN training workdir (no {CONFIG_FILE}); "
                                f"train one with `python -m amgan_tf.train --workdir=...`.")
    with open(path) as f:
        raw = json.load(f)
    config = config_from_dict(raw)
    schema = AttributeSchema.load(os.path.join(workdir, SCHEMA_FILE))
    cnn_dir = config.classifier_workdir or os.path.join(workdir, "classifier")
    cnn_dir = os.path.join(cnn_dir, classifier_lib.MODEL_DIR)
    model, cnn = build_model(schema, config.amgan,
                             cnn_dir if os.path.exists(cnn_dir) else None)
    step = tf.Variable(0, dtype=tf.int64)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints yet.")
    _checkpoint(model, step).restore(latest).expect_partial()
    return model, cnn, config


def config_from_dict(raw: dict) -> TrainConfig:
    """Inverse of TrainConfig.to_dict (nested dataclasses rebuilt)."""
    from amgan_tf import losses
    from amgan_tf.models.attribute_cnn import AttributeCNNConfig
    from amgan_tf.models.networks import CriticConfig, GeneratorConfig
    a = dict(raw["amgan"])
    a["generator"] = GeneratorConfig(**a["generator"])
    a["critic"] = CriticConfig(**a["critic"])
    a["weights"] = losses.LossWeights(**a["weights"])
    c = dict(raw["classifier"])
    c["data"] = datasets.DatasetConfig(**c["data"])
    c["model"] = AttributeCNNConfig(**c["model"])
    return TrainConfig(**{**raw, "data": datasets.DatasetConfig(**raw["data"]),
                          "amgan": AmganConfig(**a),
                          "classifier": classifier_lib.ClassifierConfig(**c)})


def run(config: TrainConfig, workdir: str) -> dict:
    """Train (or resume) AMGAN; returns the final metrics (also in metrics.json)."""
    t_start = time.time()
    os.makedirs(workdir, exist_ok=True)
    if config.amgan.total_steps != config.steps:
        config.amgan = dataclasses.replace(config.amgan, total_steps=config.steps)
    if config.amgan.image_size != config.data.image_size:
        config.amgan = dataclasses.replace(config.amgan, image_size=config.data.image_size)
    if config.jit_compile:
        config.amgan = dataclasses.replace(config.amgan, xla_crops=True)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(config.strategy, config.devices)
    chief = _is_chief(strategy)
    log.info("Strategy %s with %d replica(s).", type(strategy).__name__,
             strategy.num_replicas_in_sync)
    if chief:
        with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
            json.dump(config.to_dict(), f, indent=2)

    cls_dir = ensure_attribute_cnn(config, workdir)
    train = datasets.load_split(config.data, "train")
    test = datasets.load_split(config.data, "test", limit=max(config.final_eval_images,
                                                               config.eval_images))
    if chief:
        train.schema.save(os.path.join(workdir, SCHEMA_FILE))
    keras.utils.set_random_seed(config.seed)
    model, cnn = build_model(train.schema, config.amgan,
                             os.path.join(cls_dir, classifier_lib.MODEL_DIR), strategy)

    step = tf.Variable(0, dtype=tf.int64, name="step")
    ckpt = _checkpoint(model, step)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if not chief:  # every worker must save (collectives); only the chief's copy is kept
        ckpt_dir = tempfile.mkdtemp(prefix="amgan_worker_ckpt_")
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=3)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    if latest:
        ckpt.restore(latest).assert_existing_objects_matched()
        log.info("Resuming from %s (step %d).", latest, int(step))

    batches = pipeline.AmganBatches(train, pipeline.PipelineConfig(
        batch_size=config.amgan.batch_size, n_critic=config.amgan.n_critic, seed=config.seed,
        reference_matching=config.amgan.weights.lambda_p > 0))
    start_step = int(step)
    data = iter(batches.distribute(strategy, start_step))
    step_fn = (tf.function(model.train_step, jit_compile=True) if config.jit_compile
               else model.train_step)

    @tf.function
    def train_iteration(element):
        per_replica = strategy.run(step_fn, args=(element,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    writer = tf.summary.create_file_writer(
        os.path.join(workdir, "tensorboard") if chief else os.path.join(ckpt_dir, "tb"))
    end_step = config.steps if not config.stop_after else min(config.steps,
                                                               start_step + config.stop_after)
    images_per_step = config.amgan.batch_size * (config.amgan.n_critic + 1)
    eval_x, eval_y = test.images[:config.eval_images], test.labels[:config.eval_images]
    last_step, last_time = start_step, time.time()
    while int(step) < end_step:
        logs = train_iteration(next(data))
        step.assign_add(1)
        s = int(step)
        check_finite(logs, s, manager.latest_checkpoint,
                     "lower the learning rate or raise lambda_gp, then run the same command to "
                     "resume.")
        if s % config.log_every == 0 or s == end_step:
            now = time.time()
            rate = (s - last_step) / max(now - last_time, 1e-9)
            lr = float(model.g_opt.learning_rate)
            terms = "  ".join(f"{k.split('/')[1]} {float(v):.3f}" for k, v in sorted(logs.items())
                              if k.startswith("G/L_"))
            log.info("step %d/%d  %.2f it/s  %.0f img/s  ETA %s  lr %.2e  D %.3f  G %.3f (%s)", s,
                     config.steps, rate, rate * images_per_step,
                     hms((config.steps - s) / max(rate, 1e-9)), lr, float(logs["D/total"]),
                     float(logs["G/total"]), terms)
            with writer.as_default(step=s):
                for k, v in logs.items():
                    tf.summary.scalar(k, v)
                tf.summary.scalar("learning_rate", lr)
                tf.summary.scalar("images_per_second", rate * images_per_step)
            last_step, last_time = s, now
        if s % config.checkpoint_every == 0 or s == end_step:
            manager.save(checkpoint_number=s)
        if chief and (s % config.sample_every == 0 or s == config.steps):
            _write_samples(model, test, config.sample_images, workdir, writer, s)
        if cnn is not None and (s % config.eval_every == 0 or s == config.steps):
            acc = evaluation.manipulation_accuracy(model, cnn, eval_x, eval_y)
            log.info("step %d manipulation accuracy (attribute CNN, %d held-out images): %s", s,
                     len(eval_x), "  ".join(f"{k}={v:.3f}" for k, v in acc.items()))
            with writer.as_default(step=s):
                for k, v in acc.items():
                    tf.summary.scalar(f"eval/manipulation_accuracy/{k}", v)
    if not chief:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    if int(step) < config.steps:
        log.info("Stopped at step %d of %d (stop_after); run the same command to continue.",
                 int(step), config.steps)
        return {"step": int(step)}

    metrics = {"step": int(step), "wall_seconds_this_run": round(time.time() - t_start, 1)}
    if cnn is not None:
        n = min(config.final_eval_images, len(test))
        metrics["manipulation_accuracy"] = evaluation.manipulation_accuracy(
            model, cnn, test.images[:n], test.labels[:n])
        metrics["eval_images"] = n
        log.info("Final manipulation accuracy on %d test images: %s", n, "  ".join(
            f"{k}={v:.3f}" for k, v in metrics["manipulation_accuracy"].items()))
    if chief:
        with open(os.path.join(workdir, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics


def _write_samples(model, test, count, workdir, writer, step):
    sheet = evaluation.sample_sheet(model, test.images[:count], test.labels[:count])
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
    sheet.save(path)
    with writer.as_default(step=step):
        tf.summary.image("samples", np.asarray(sheet)[None], step=step)
    log.info("Wrote %s", path)

