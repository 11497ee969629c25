"""Prepare any dataset with TFDS and load a split into memory at training resolution.

Training samples attribute-matched REAL reference images per example (perceptual loss), which needs
random access: splits are held in memory as uint8 at the training size (DeepFashion-Synthesis at
128 px is 3.9 GB), never as graph constants.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from amgan_tf.attributes import AttributeSchema
from amgan_tf.data import builders
from amgan_tf.imaging import RESIZE_MODES, resize_images

log = logging.getLogger(__name__)

DATASETS = ("synthfashion",) + tuple(builders.READER_BUILDERS)


@dataclasses.dataclass
class DatasetConfig:
    """Which data, where, and at what size. Reader options go to the dataset's reader."""

    name: str = "synthfashion"
    image_size: int = 64
    manual_dir: str = ""
    data_dir: str = "~/tensorflow_datasets"
    resize: str = "pad"  # non-square images: pad (border colour), stretch or centre-crop
    # SynthFashion only.
    num_train: int = 12000
    num_test: int = 1000
    seed: int = 0
    # Real datasets only: keyword options of the reader (split_mode, names_file, value_map, ...).
    reader_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.name not in DATASETS:
            raise ValueError(f"Unknown dataset {self.name!r}; choose one of: {', '.join(DATASETS)}.")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"Unknown resize mode {self.resize!r}; choose one of: "
                             f"{', '.join(RESIZE_MODES)}.")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be in 16..1024, got {self.image_size}.")
        if self.name != "synthfashion" and not self.manual_dir:
            raise ValueError(f"Dataset {self.name!r} is read from your local copy: set manual_dir to "
                             f"its folder (nothing is downloaded).")


@dataclasses.dataclass
class ExampleSet:
    """One split in memory: uint8 images [n, H, W, 3], int32 labels [n, A] (-1 missing)."""

    images: np.ndarray
    labels: np.ndarray
    schema: AttributeSchema
    keys: np.ndarray
    masks: np.ndarray | None = None  # SynthFashion: uint8 [n, H, W, 4] in synthfashion.MASK_NAMES order
    skipped: tuple[str, ...] = ()

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [n, H, W, 3], got {self.images.dtype} "
                             f"{self.images.shape}.")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} label rows.")
        self.schema.validate_labels(self.labels)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index) -> "ExampleSet":
        return ExampleSet(self.images[index], self.labels[index], self.schema, self.keys[index],
                          None if self.masks is None else self.masks[index], self.skipped)


def builder(config: DatasetConfig):
    data_dir = os.path.expanduser(config.data_dir)
    if config.name == "synthfashion":
        cls = builders.AmganSynthFashion
        builder_config = builders.synthfashion_config(config.image_size, config.num_train,
                                                      config.num_test, config.seed)
    else:
        cls = builders.READER_BUILDERS[config.name]
        builder_config = builders.reader_config(config.manual_dir, **config.reader_options)
    if builder_config.name in cls.builder_configs:  # TFDS refers to its predefined ones by name
        builder_config = builder_config.name
    return cls(data_dir=data_dir, config=builder_config)


def prepare(config: DatasetConfig):
    """Build the TFDS dataset once (a no-op when already prepared) and return its builder."""
    b = builder(config)
    if not tf.io.gfile.exists(os.path.join(b.data_dir, "dataset_info.json")):
        log.info("Preparing %s into %s (one-time) ...", config.name, b.data_dir)
        start = time.time()
        b.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=config.manual_dir or None))
        log.info("Prepared %s in %.1f s.", config.name, time.time() - start)
    return b


def schema_of(config: DatasetConfig) -> AttributeSchema:
    return AttributeSchema.from_dict(dict(builder(config).info.metadata["schema"]))


def load_split(config: DatasetConfig, split: str, limit: int | None = None) -> ExampleSet:
    """Load a prepared split into memory, resized to `config.image_size`."""
    b = prepare(config)
    if split not in b.info.splits:
        raise ValueError(f"Dataset {config.name!r} has no split {split!r}; it has: "
                         f"{', '.join(b.info.splits)}.")
    schema = AttributeSchema.from_dict(dict(b.info.metadata["schema"]))
    total = b.info.splits[split].num_examples if limit is None else min(
        limit, b.info.splits[split].num_examples)
    ds = b.as_dataset(split=split, shuffle_files=False)
    if limit is not None:
        ds = ds.take(limit)
    size = config.image_size

    def resize(ex):
        image = ex["image"]
        same = tf.logical_and(tf.equal(tf.shape(image)[0], size), tf.equal(tf.shape(image)[1], size))
        ex["image"] = tf.cond(same, lambda: image,
                              lambda: resize_images(image[None], size, config.resize)[0])
        if "masks" in ex:
            ex["masks"] = tf.cond(
                same, lambda: ex["masks"],
                lambda: tf.cast(tf.image.resize(ex["masks"][None], (size, size), "nearest")[0],
                                tf.uint8))
        return ex

    ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(256)
    images = np.empty((total, size, size, 3), np.uint8)
    labels = np.empty((total, len(schema.attributes)), np.int32)
    keys, masks, n, start, last_log = [], None, 0, time.time(), time.time()
    for batch in ds.as_numpy_iterator():
        k = len(batch["image"])
        images[n:n + k] = batch["image"]
        labels[n:n + k] = batch["labels"]
        keys.extend(x.decode() for x in batch["key"])
        if "masks" in batch:
            if masks is None:
                masks = np.empty((total,) + batch["masks"].shape[1:], np.uint8)
            masks[n:n + k] = batch["masks"]
        n += k
        if time.time() - last_log > 10:
            log.info("Loading %s/%s: %d/%d images (%.0f img/s)", config.name, split, n, total,
                     n / (time.time() - start))
            last_log = time.time()
    skipped = tuple(builders.skipped_images(b))
    if skipped:
        log.warning("%s: %d unreadable image(s) were skipped when the dataset was prepared (see %s).",
                    config.name, len(skipped), os.path.join(b.data_dir, builders.SKIPPED_FILE))
    # TFDS shuffles by key hash; sorting by key makes the in-memory order canonical.
    keys = np.array(keys)
    order = np.argsort(keys, kind="stable")
    return ExampleSet(images[:n][order], labels[:n][order], schema, keys[order],
                      None if masks is None else masks[:n][order], skipped)
