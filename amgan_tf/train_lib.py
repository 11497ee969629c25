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

from amgan_tf import classifier_lib, evaluation, trained
from amgan_tf.configs import STRATEGIES, TrainConfig  # noqa: F401 (the binaries' config)
from amgan_tf.data import datasets, pipeline
from amgan_tf.models.attribute_cnn import MODEL_DIR
from amgan_tf.runtime import check_finite, hms

log = logging.getLogger(__name__)

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
    cls_dir = trained.attribute_cnn_dir(config, workdir)
    if not classifier_lib.is_trained(cls_dir):
        log.info("No trained attribute CNN in %s: training it first (%d steps).", cls_dir,
                 config.classifier.steps)
        cls_cfg = dataclasses.replace(config.classifier, data=config.data)
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
    chief = _is_chief(strategy)
    log.info("Strategy %s with %d replica(s).", type(strategy).__name__,
             strategy.num_replicas_in_sync)
    if chief:
        trained.save_config(workdir, config)

    cls_dir = ensure_attribute_cnn(config, workdir)
    train = datasets.load_split(config.data, "train")
    test = datasets.load_split(config.data, "test", limit=max(config.final_eval_images,
                                                               config.eval_images))
    if chief:
        train.schema.save(os.path.join(workdir, trained.SCHEMA_FILE))
    keras.utils.set_random_seed(config.seed)
    model, cnn = trained.build_model(train.schema, config.amgan, os.path.join(cls_dir, MODEL_DIR),
                                     strategy)

    step = tf.Variable(0, dtype=tf.int64, name="step")
    ckpt = trained.checkpoint(model, step)
    ckpt_dir = os.path.join(workdir, trained.CHECKPOINT_DIR)
    if not chief:  # every worker must save (collectives); only the chief's copy is kept
        ckpt_dir = tempfile.mkdtemp(prefix="amgan_worker_ckpt_")
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=3)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, trained.CHECKPOINT_DIR))
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

