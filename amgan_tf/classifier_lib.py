"""Training and evaluation of the attribute CNN (library behind `amgan_tf.train_classifier`).

The run is resumable at any moment: the model, optimizer, step and (through the step) the data
stream are checkpointed, so a killed run restarted with the same command continues exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from amgan_tf import loop
from amgan_tf.configs import ClassifierConfig  # noqa: F401 (the binary's config)
from amgan_tf.data import datasets, pipeline
from amgan_tf.runtime import hms
from amgan_tf.models.attribute_cnn import (CONFIG_FILE, MODEL_DIR, AttributeCNN,
                                           load_attribute_cnn, masked_classification_loss)

log = logging.getLogger(__name__)



def _optimizer(config: ClassifierConfig) -> keras.optimizers.Optimizer:
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.steps)
    return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)


def accuracy_per_attribute(model: AttributeCNN, data: datasets.ExampleSet,
                           batch_size: int = 256) -> dict[str, float]:
    """Share of labelled test examples whose argmax equals the label, per attribute."""
    correct = np.zeros(len(data.schema.attributes))
    total = np.zeros(len(data.schema.attributes))
    for x, y in pipeline.classifier_dataset(data, batch_size, training=False):
        pred = model.predict_labels(x).numpy()
        y = y.numpy()
        known = y >= 0
        correct += ((pred == y) & known).sum(0)
        total += known.sum(0)
    return {a.name: float(c / t) if t else float("nan")
            for a, c, t in zip(data.schema.attributes, correct, total)}


RUN_RECORD = "classifier_config.json"  # the run's settings, compared on resume; read by evaluation
# Settings a resumed run may change: its length, cadences and where the data lives.
RESUMABLE_CHANGES = ("steps", "log_every", "checkpoint_every", "eval_batch_size", "stop_after",
                     "deterministic", "test_split", "data.data_dir", "data.manual_dir")


def run(config: ClassifierConfig, workdir: str) -> dict:
    """Train (or resume) and evaluate; returns the metrics also written to metrics.json."""
    os.makedirs(workdir, exist_ok=True)
    train = datasets.load_split(config.data, config.train_split)
    log.info("Attribute CNN on %s/%s: %d images at %d px, attributes %s", config.data.name,
             config.train_split, len(train), config.data.image_size, ", ".join(train.schema.names))
    if config.model.image_size != config.data.image_size:
        config.model = dataclasses.replace(config.model, image_size=config.data.image_size)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    loop.claim_workdir(os.path.join(workdir, RUN_RECORD), config.to_dict(),
                       RESUMABLE_CHANGES, resuming=bool(loop.checkpoint_prefixes(ckpt_dir)),
                       defaults=ClassifierConfig().to_dict())
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    # Seeded here, after data loading: preparing a dataset may draw from the global generators.
    keras.utils.set_random_seed(config.seed)
    model = AttributeCNN(train.schema, config.model).build_on_zeros()
    optimizer = _optimizer(config)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    checkpoints = loop.Checkpoints(
        tf.train.Checkpoint(model=model, optimizer=optimizer, step=step), ckpt_dir, max_to_keep=3)
    if checkpoints.latest:
        log.info("Resuming from %s (step %d).", checkpoints.latest, int(step))

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss, per_attr = masked_classification_loss(model.split_logits(logits), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return {"attribute CNN loss": loss,
                **{a.name: per_attr[i] for i, a in enumerate(train.schema.attributes)}}

    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "classifier"))
    data = iter(pipeline.classifier_dataset(train, config.batch_size, config.seed,
                                            start_step=int(step)))

    def report(s, logs, steps_per_second):
        rate = steps_per_second * config.batch_size
        loss = logs["attribute CNN loss"]
        log.info("classifier step %d/%d  loss %.4f  %s  %.0f img/s  ETA %s", s, config.steps,
                 float(loss), " ".join(f"{a.name}={float(logs[a.name]):.3f}"
                                       for a in train.schema.attributes),
                 rate, hms((config.steps - s) / max(steps_per_second, 1e-9)))
        with writer.as_default(step=s):
            tf.summary.scalar("loss/total", loss)
            for a in train.schema.attributes:
                tf.summary.scalar(f"loss/{a.name}", logs[a.name])
            tf.summary.scalar("learning_rate", optimizer.learning_rate)
            tf.summary.scalar("images_per_second", rate)
        writer.flush()

    t0 = time.time()
    settings = loop.LoopSettings(steps=config.steps, checkpoint_every=config.checkpoint_every,
                                 log_every=config.log_every, stop_after=config.stop_after)
    if not loop.run(step, checkpoints, settings, lambda: train_step(*next(data)), report=report,
                    advice="lower --classifier_learning_rate, then run the same command to "
                           "resume."):
        return {"step": int(step)}

    log.info("Training done in %s; evaluating on %s/%s.", hms(time.time() - t0),
             config.data.name, config.test_split)
    model.save_to(os.path.join(workdir, MODEL_DIR))
    test = datasets.load_split(config.data, config.test_split)
    accuracy = accuracy_per_attribute(model, test, config.eval_batch_size)
    metrics = {"step": int(step), "test_split": config.test_split, "test_images": len(test),
               "accuracy": accuracy}
    loop.write_json_atomic(os.path.join(workdir, "classifier_metrics.json"), metrics)
    with writer.as_default(step=int(step)):
        for name, acc in accuracy.items():
            tf.summary.scalar(f"test_accuracy/{name}", acc)
    log.info("Test accuracy: %s", "  ".join(f"{k}={v:.4f}" for k, v in accuracy.items()))
    return metrics


def is_trained(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, MODEL_DIR, CONFIG_FILE))


def load_trained(workdir: str) -> AttributeCNN:
    return load_attribute_cnn(os.path.join(workdir, MODEL_DIR))

