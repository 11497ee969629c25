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
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from amgan_tf import classifier_lib, evaluation, loop, trained
from amgan_tf.configs import STRATEGIES, TrainConfig  # noqa: F401 (the binaries' config)
from amgan_tf.data import datasets, pipeline
from amgan_tf.models.attribute_cnn import MODEL_DIR
from amgan_tf.runtime import hms

log = logging.getLogger(__name__)

# Settings a resumed run may change: its length, cadences, devices, paths and the attribute CNN's
# own training settings (the CNN is trained once, before AMGAN).
RESUMABLE_CHANGES = ("steps", "strategy", "devices", "jit_compile", "deterministic", "log_every",
                     "checkpoint_every", "sample_every", "eval_every", "eval_images",
                     "final_eval_images", "sample_images", "stop_after", "classifier",
                     "classifier_workdir", "data.data_dir", "data.manual_dir", "amgan.total_steps",
                     "amgan.xla_crops", "amgan.attention_floor")
# Changed on resume with a warning: the objective's weights and the optimizer's rates.
TUNABLE_ON_RESUME = ("amgan.weights", "amgan.cam_target_power", "amgan.learning_rate",
                     "amgan.beta_1", "amgan.beta_2")


def _describe(schema) -> str:
    return "; ".join(f"{a.name} ({', '.join(a.values)})" for a in schema.attributes)


def _claim_schema(workdir, schema, resuming, chief):
    """Write the data's attribute schema, or refuse to resume over checkpoints of another one."""
    path = os.path.join(workdir, trained.SCHEMA_FILE)
    if resuming and os.path.exists(path):
        saved = trained.read_schema(workdir)
        if saved.to_dict() != schema.to_dict():
            raise ValueError(
                f"The checkpoints in {workdir} were trained on attributes {_describe(saved)}, but "
                f"the data now has {_describe(schema)}. Use the original data, or a new "
                f"--workdir.")
    if chief:
        schema.save(path)


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


def ensure_attribute_cnn(config: TrainConfig, workdir: str):
    """The trained attribute CNN, training it first (logged) when it does not exist yet."""
    cls_dir = trained.attribute_cnn_dir(config, workdir)
    if not classifier_lib.is_trained(cls_dir):
        log.info("No trained attribute CNN in %s: training it first (%d steps).", cls_dir,
                 config.classifier.steps)
        cls_cfg = dataclasses.replace(config.classifier, data=config.data,
                                      deterministic=config.deterministic)
        classifier_lib.run(cls_cfg, cls_dir)
    return cls_dir


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
    chief = strategy.extended.should_checkpoint
    log.info("Strategy %s with %d replica(s).", type(strategy).__name__,
             strategy.num_replicas_in_sync)
    ckpt_dir = os.path.join(workdir, trained.CHECKPOINT_DIR)
    resuming = bool(loop.checkpoint_prefixes(ckpt_dir))
    # A floor that training blends through is part of the objective, not an edit-time choice.
    may_differ = tuple(k for k in RESUMABLE_CHANGES if not (
        k == "amgan.attention_floor" and config.amgan.train_attention_floor))
    loop.claim_workdir(os.path.join(workdir, trained.CONFIG_FILE), config.to_dict(), may_differ,
                       resuming, chief, TUNABLE_ON_RESUME, defaults=TrainConfig().to_dict())

    cls_dir = ensure_attribute_cnn(config, workdir)
    train = datasets.load_split(config.data, "train")
    test = datasets.load_split(config.data, "test", limit=max(config.final_eval_images,
                                                               config.eval_images))
    _claim_schema(workdir, train.schema, resuming, chief)
    keras.utils.set_random_seed(config.seed)
    model, cnn = trained.build_model(train.schema, config.amgan, os.path.join(cls_dir, MODEL_DIR),
                                     strategy)

    step = tf.Variable(0, dtype=tf.int64, name="step")
    checkpoints = loop.Checkpoints(trained.checkpoint(model, step), ckpt_dir, max_to_keep=3,
                                   chief=chief)
    if checkpoints.latest:
        log.info("Resuming from %s (step %d).", checkpoints.latest, int(step))

    batches = pipeline.AmganBatches(train, pipeline.PipelineConfig(
        batch_size=config.amgan.batch_size, n_critic=config.amgan.n_critic, seed=config.seed,
        reference_matching=config.amgan.weights.lambda_p > 0))
    data = iter(batches.distribute(strategy, int(step)))
    step_fn = (tf.function(model.train_step, jit_compile=True) if config.jit_compile
               else model.train_step)

    @tf.function
    def train_iteration(element):
        per_replica = strategy.run(step_fn, args=(element,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    writer = tf.summary.create_file_writer(
        os.path.join(workdir, "tensorboard") if chief else os.path.join(checkpoints.scratch, "tb"))
    images_per_step = config.amgan.batch_size * (config.amgan.n_critic + 1)
    eval_x, eval_y = test.images[:config.eval_images], test.labels[:config.eval_images]

    def report(s, logs, steps_per_second):
        lr = float(model.g_opt.learning_rate)
        terms = "  ".join(f"{k.split('/')[1]} {float(v):.3f}" for k, v in sorted(logs.items())
                          if k.startswith("G/L_"))
        log.info("step %d/%d  %.2f it/s  %.0f img/s  ETA %s  lr %.2e  D %.3f  G %.3f (%s)", s,
                 config.steps, steps_per_second, steps_per_second * images_per_step,
                 hms((config.steps - s) / max(steps_per_second, 1e-9)), lr,
                 float(logs["D/total"]), float(logs["G/total"]), terms)
        with writer.as_default(step=s):
            for k, v in logs.items():
                tf.summary.scalar(k, v)
            tf.summary.scalar("learning_rate", lr)
            tf.summary.scalar("images_per_second", steps_per_second * images_per_step)
        writer.flush()

    def after_step(s):
        if chief and (s % config.sample_every == 0 or s == config.steps):
            _write_samples(model, test, config.sample_images, workdir, writer, s)
        if cnn is not None and (s % config.eval_every == 0 or s == config.steps):
            acc = evaluation.manipulation_accuracy(model, cnn, eval_x, eval_y)
            log.info("step %d manipulation accuracy (attribute CNN, %d held-out images): %s", s,
                     len(eval_x), "  ".join(f"{k}={v:.3f}" for k, v in acc.items()))
            with writer.as_default(step=s):
                for k, v in acc.items():
                    tf.summary.scalar(f"eval/manipulation_accuracy/{k}", v)

    settings = loop.LoopSettings(steps=config.steps, checkpoint_every=config.checkpoint_every,
                                 log_every=config.log_every, stop_after=config.stop_after)
    if not loop.run(step, checkpoints, settings, lambda: train_iteration(next(data)),
                    report=report, after_step=after_step,
                    advice="lower the learning rate or raise lambda_gp, then run the same "
                           "command to resume."):
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
        loop.write_json_atomic(os.path.join(workdir, "metrics.json"), metrics)
    return metrics


def _write_samples(model, test, count, workdir, writer, step):
    sheet = evaluation.sample_sheet(model, test.images[:count], test.labels[:count])
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
    sheet.save(path)
    with writer.as_default(step=step):
        tf.summary.image("samples", np.asarray(sheet)[None], step=step)
    log.info("Wrote %s", path)

