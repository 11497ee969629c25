"""Training and evaluation of the attribute CNN (library behind `amgan_tf.train_classifier`).

The run is resumable at any moment: the model, optimizer, step and (through the step) the data
stream are checkpointed, so a killed run restarted with the same command continues exactly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from amgan_tf.configs import ClassifierConfig  # noqa: F401 (the binary's config)
from amgan_tf.data import datasets, pipeline
from amgan_tf.runtime import check_finite, hms
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


def run(config: ClassifierConfig, workdir: str) -> dict:
    """Train (or resume) and evaluate; returns the metrics also written to metrics.json."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "classifier_config.json"), "w") as f:
        json.dump(config.to_dict(), f, indent=2)

    train = datasets.load_split(config.data, config.train_split)
    log.info("Attribute CNN on %s/%s: %d images at %d px, attributes %s", config.data.name,
             config.train_split, len(train), config.data.image_size, ", ".join(train.schema.names))
    if config.model.image_size != config.data.image_size:
        config.model = dataclasses.replace(config.model, image_size=config.data.image_size)
    # Seeded here, after data loading: preparing a dataset may draw from the global generators.
    keras.utils.set_random_seed(config.seed)
    model = AttributeCNN(train.schema, config.model).build_on_zeros()
    optimizer = _optimizer(config)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "checkpoints"), max_to_keep=3)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("Resuming from %s (step %d).", manager.latest_checkpoint, int(step))

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss, per_attr = masked_classification_loss(model.split_logits(logits), y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, per_attr

    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "classifier"))
    start_step = int(step)
    end_step = config.steps
    if config.stop_after:
        end_step = min(end_step, start_step + config.stop_after)
    data = iter(pipeline.classifier_dataset(train, config.batch_size, config.seed,
                                            start_step=start_step))
    t0, last_step, last_time = time.time(), start_step, time.time()
    while int(step) < end_step:
        x, y = next(data)
        loss, per_attr = train_step(x, y)
        step.assign_add(1)
        s = int(step)
        check_finite({"attribute CNN loss": loss}, s, manager.latest_checkpoint,
                     "lower --classifier_learning_rate, then run the same command to resume.")
        if s % config.log_every == 0 or s == end_step:
            now = time.time()
            rate = (s - last_step) * config.batch_size / max(now - last_time, 1e-9)
            eta = (config.steps - s) * config.batch_size / max(rate, 1e-9)
            log.info("classifier step %d/%d  loss %.4f  %s  %.0f img/s  ETA %s", s, config.steps,
                     float(loss), " ".join(f"{a.name}={float(l):.3f}" for a, l in
                                          zip(train.schema.attributes, per_attr)),
                     rate, hms(eta))
            with writer.as_default(step=s):
                tf.summary.scalar("loss/total", loss)
                for a, l in zip(train.schema.attributes, per_attr):
                    tf.summary.scalar(f"loss/{a.name}", l)
                tf.summary.scalar("learning_rate", optimizer.learning_rate)
                tf.summary.scalar("images_per_second", rate)
            last_step, last_time = s, now
        if s % config.checkpoint_every == 0 or s == end_step:
            manager.save(checkpoint_number=s)
    if int(step) < config.steps:
        log.info("Stopped at step %d of %d (stop_after); run again to continue.", int(step),
                 config.steps)
        return {"step": int(step)}

    log.info("Training done in %s; evaluating on %s/%s.", hms(time.time() - t0),
             config.data.name, config.test_split)
    model.save_to(os.path.join(workdir, MODEL_DIR))
    test = datasets.load_split(config.data, config.test_split)
    accuracy = accuracy_per_attribute(model, test, config.eval_batch_size)
    metrics = {"step": int(step), "test_split": config.test_split, "test_images": len(test),
               "accuracy": accuracy}
    with open(os.path.join(workdir, "classifier_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    with writer.as_default(step=int(step)):
        for name, acc in accuracy.items():
            tf.summary.scalar(f"test_accuracy/{name}", acc)
    log.info("Test accuracy: %s", "  ".join(f"{k}={v:.4f}" for k, v in accuracy.items()))
    return metrics


def is_trained(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, MODEL_DIR, CONFIG_FILE))


def load_trained(workdir: str) -> AttributeCNN:
    return load_attribute_cnn(os.path.join(workdir, MODEL_DIR))

