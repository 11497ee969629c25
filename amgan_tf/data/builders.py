"""TFDS builders for every dataset: SynthFashion (generated) and the real ones (read from manual_dir).

tensorflow-datasets is the users' tool for preparing data once and reading it fast, so each dataset
is a `GeneratorBasedBuilder`. Real data is never downloaded: the builder's config carries the local
directory and the reader options, so `_info` knows the attribute schema before anything is read.
Corrupt or unreadable images are skipped while preparing, counted, logged, and listed in
`skipped_images.txt` next to the prepared data; labels are never shifted by a skip.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import UnidentifiedImageError

from amgan_tf.attributes import AttributeSchema
from amgan_tf.data import synthfashion
from amgan_tf.data.readers.base import RawExample
from amgan_tf.imaging import decode_image_file

log = logging.getLogger(__name__)

SKIPPED_FILE = "skipped_images.txt"


def _schema_metadata(schema: AttributeSchema) -> tfds.core.MetadataDict:
    return tfds.core.MetadataDict(schema=schema.to_dict())


# ---- SynthFashion ---------------------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class SynthFashionConfig(tfds.core.BuilderConfig):
    image_size: int = 64
    num_train: int = 12000
    num_test: int = 1000
    seed: int = 0
    num_workers: int = 2


def synthfashion_config(image_size=64, num_train=12000, num_test=1000, seed=0, num_workers=2):
    name = f"s{image_size}_n{num_train}_{num_test}_seed{seed}"
    return SynthFashionConfig(name=name, image_size=image_size, num_train=num_train,
                              num_test=num_test, seed=seed, num_workers=num_workers)


def _render_chunk(args):
    seed, size, start, count = args
    ds = synthfashion.SynthFashion(seed, size)
    images, labels, masks = ds.arrays(start, count, with_masks=True)
    stacked = np.stack([masks[n] for n in synthfashion.MASK_NAMES], axis=-1)
    return start, images, labels, stacked


class AmganSynthFashion(tfds.core.GeneratorBasedBuilder):
    """SynthFashion rendered at a fixed size. Test examples follow the training ones (disjoint)."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {"1.2.0": "Hands of adult proportions (0.56 instead of 0.29 forearm lengths).",
                     "1.1.0": "Wider arms and looser sleeves.", "1.0.0": "First release."}
    BUILDER_CONFIGS = [synthfashion_config()]

    def _info(self):
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description="Procedural fashion images with counterfactuals and masks (amgan_tf).",
            features=tfds.features.FeaturesDict({
                "key": tfds.features.Text(),
                "image": tfds.features.Image(shape=(size, size, 3)),
                "labels": tfds.features.Tensor(shape=(len(synthfashion.schema().attributes),),
                                               dtype=np.int32),
                "masks": tfds.features.Tensor(shape=(size, size, len(synthfashion.MASK_NAMES)),
                                              dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB),
            }),
            metadata=_schema_metadata(synthfashion.schema()))

    def _split_generators(self, dl_manager):
        c = self.builder_config
        return {"train": self._generate_examples(0, c.num_train),
                "test": self._generate_examples(c.num_train, c.num_test)}

    def _generate_examples(self, start, count):
        c = self.builder_config
        chunk = 256
        jobs = [(c.seed, c.image_size, s, min(chunk, start + count - s))
                for s in range(start, start + count, chunk)]
        # Threads, not processes: numpy releases the GIL in the big array ops (1.4x on 2 cores),
        # and spawned processes would re-run a user's unguarded __main__.
        with concurrent.futures.ThreadPoolExecutor(max(1, c.num_workers)) as pool:
            yield from _synth_rows(pool.map(_render_chunk, jobs))


def _synth_rows(results):
    for start, images, labels, masks in results:
        for i in range(len(images)):
            key = f"synth_{start + i:08d}"
            yield key, {"key": key, "image": images[i], "labels": labels[i], "masks": masks[i]}


# ---- real datasets through readers ----------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class ReaderConfig(tfds.core.BuilderConfig):
    manual_dir: str = ""
    options: str = "{}"  # JSON of the reader's keyword options


def reader_config(manual_dir: str, **options) -> ReaderConfig:
    """A config whose name is unique for (directory, options), so preparations never collide."""
    manual_dir = os.path.abspath(os.path.expanduser(manual_dir))
    opts = json.dumps(options, sort_keys=True)
    digest = hashlib.sha1(f"{manual_dir}|{opts}".encode()).hexdigest()[:10]
    return ReaderConfig(name=f"local_{digest}", manual_dir=manual_dir, options=opts,
                        description=f"{manual_dir} {opts}")


class _ReaderBuilder(tfds.core.GeneratorBasedBuilder):
    """Base of builders that read a user's local files through an `amgan_tf.data.readers` reader."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "See the reader's documentation in amgan_tf/data/readers/."

    @classmethod
    def make_reader(cls, manual_dir: str, **options):
        raise NotImplementedError

    @property
    def reader(self):
        if not hasattr(self, "_reader"):
            c = self.builder_config
            self._reader = self.make_reader(c.manual_dir, **json.loads(c.options))
        return self._reader

    def _info(self):
        schema = self.reader.schema()
        return self.dataset_info_from_configs(
            description=f"{self.reader.name} read from {self.builder_config.manual_dir}.",
            features=tfds.features.FeaturesDict({
                "key": tfds.features.Text(),
                "image": tfds.features.Image(shape=(None, None, 3)),
                "labels": tfds.features.Tensor(shape=(len(schema.attributes),), dtype=np.int32),
            }),
            metadata=_schema_metadata(schema))

    def _split_generators(self, dl_manager):
        self.reader.check()
        self.skipped: list[str] = []
        return {split: self._generate_examples(split) for split in self.reader.splits()}

    def _generate_examples(self, split):
        for ex in self.reader.examples(split):
            image = self._decode(ex)
            if image is None:
                continue
            yield ex.key, {"key": ex.key, "image": image, "labels": ex.labels}

    def _decode(self, ex: RawExample) -> np.ndarray | None:
        if not isinstance(ex.image, str):
            return np.asarray(ex.image, np.uint8)
        try:
            image = decode_image_file(ex.image)
            if image.shape[0] < 2 or image.shape[1] < 2:
                raise ValueError(f"image too small: {image.shape}")
            return image
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
            self.skipped.append(f"{ex.image}\t{type(e).__name__}: {e}")
            log.warning("Skipping unreadable image %s (%s: %s)", ex.image, type(e).__name__, e)
            return None

    def download_and_prepare(self, *args, **kwargs):
        super().download_and_prepare(*args, **kwargs)
        skipped = getattr(self, "skipped", None)
        if skipped is not None:
            path = os.path.join(self.data_dir, SKIPPED_FILE)
            with open(path, "w") as f:
                f.writelines(line + "\n" for line in skipped)
            if skipped:
                log.warning("%d unreadable image(s) were skipped; list in %s", len(skipped), path)


def skipped_images(builder) -> list[str]:
    path = os.path.join(builder.data_dir, SKIPPED_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


class AmganDeepFashionSynthesis(_ReaderBuilder):
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Get G2.h5, language_original.mat and ind.mat of DeepFashion Fashion Synthesis from the "
        "DeepFashion authors and pass their folder as --manual_dir.")

    @classmethod
    def make_reader(cls, manual_dir, **options):
        from amgan_tf.data.readers.deepfashion_synthesis import DeepFashionSynthesisReader
        return DeepFashionSynthesisReader(manual_dir, **options)


class AmganShopping100k(_ReaderBuilder):
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Shopping100k is available from its authors on request; pass the folder holding "
        "imgs_*.txt, labels_*.txt, attr_num.txt and the images as --manual_dir.")

    @classmethod
    def make_reader(cls, manual_dir, **options):
        from amgan_tf.data.readers.shopping100k import Shopping100kReader
        return Shopping100kReader(manual_dir, **options)


class AmganDeepFashionAttributes(_ReaderBuilder):
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download the DeepFashion Category and Attribute Prediction benchmark (Anno_fine and the "
        "images) and pass its folder as --manual_dir.")

    @classmethod
    def make_reader(cls, manual_dir, **options):
        from amgan_tf.data.readers.deepfashion_attributes import DeepFashionAttributesReader
        return DeepFashionAttributesReader(manual_dir, **options)


class AmganImageFolder(_ReaderBuilder):
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Pass <root> holding <split>/<value>/*.jpg as --manual_dir."

    @classmethod
    def make_reader(cls, manual_dir, **options):
        from amgan_tf.data.readers.image_folder import ImageFolderReader
        return ImageFolderReader(manual_dir, **options)


READER_BUILDERS = {
    "deepfashion_synthesis": AmganDeepFashionSynthesis,
    "shopping100k": AmganShopping100k,
    "deepfashion_attributes": AmganDeepFashionAttributes,
    "image_folder": AmganImageFolder,
}
