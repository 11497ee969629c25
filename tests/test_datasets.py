"""TFDS builders and the in-memory loader, on SynthFashion and on real-format fixtures."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from amgan_tf.data import datasets
from amgan_tf.data.readers.base import DataFilesError
from amgan_tf.data.synthfashion import MASK_NAMES, SynthFashion
from amgan_tf.imaging import resize_images
from tests import fixtures

CLOTHING = os.path.join(os.path.dirname(__file__), "data", "clothing_small")
SLEEVE_MAP = {"attribute": "sleeve", "value_map": {"longsleeve": "long", "t-shirt": "short"}}


def test_synthfashion_split_equals_renderer(synth_config, synth_train):
    assert len(synth_train) == 400 and synth_train.images.shape[1:] == (32, 32, 3)
    ds = SynthFashion(synth_config.seed, 32)
    for i in (0, 17, 399):
        image, labels, masks = ds.example(i)
        assert synth_train.keys[i] == f"synth_{i:08d}"
        np.testing.assert_array_equal(synth_train.images[i], image)
        np.testing.assert_array_equal(synth_train.labels[i], labels)
        for j, name in enumerate(MASK_NAMES):
            np.testing.assert_array_equal(synth_train.masks[i, ..., j], masks[name])


def test_synthfashion_test_split_is_disjoint(synth_config):
    test = datasets.load_split(synth_config, "test")
    assert len(test) == 40 and test.keys[0] == "synth_00000400"
    np.testing.assert_array_equal(test.images[0], SynthFashion(synth_config.seed, 32).example(400)[0])
    assert datasets.schema_of(synth_config).names == test.schema.names


def test_unknown_split_and_dataset(synth_config):
    with pytest.raises(ValueError, match="has no split 'validation'; it has: "):
        datasets.load_split(synth_config, "validation")
    with pytest.raises(ValueError, match="choose one of: synthfashion, deepfashion_synthesis"):
        datasets.DatasetConfig(name="celeba")
    with pytest.raises(ValueError, match="set manual_dir"):
        datasets.DatasetConfig(name="shopping100k")


def test_image_folder_skips_and_reports_corrupt_images(tmp_path):
    root = tmp_path / "clothes"
    shutil.copytree(CLOTHING, root)
    (root / "train" / "t-shirt" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "longsleeve" / "empty.jpg").write_bytes(b"")
    cfg = datasets.DatasetConfig(name="image_folder", image_size=48, manual_dir=str(root),
                                 data_dir=str(tmp_path / "tfds"), reader_options=SLEEVE_MAP)
    train = datasets.load_split(cfg, "train")
    assert len(train) == 8  # 4 long + 4 short; shirt/ is not mapped; 2 corrupt files skipped
    assert len(train.skipped) == 2 and any("broken.jpg" in s for s in train.skipped)
    assert train.schema.names == ("sleeve",)
    # Labels stay attached to their own images: every key's folder agrees with its label.
    for key, label in zip(train.keys, train.labels[:, 0]):
        folder = key.split("/")[-2]
        assert train.schema.attributes[0].values[label] == SLEEVE_MAP["value_map"][folder]
    test = datasets.load_split(cfg, "test")
    assert len(test) == 4 and test.images.shape == (4, 48, 48, 3)


def test_deepfashion_synthesis_through_tfds(tmp_path):
    truth = fixtures.write_deepfashion_synthesis(str(tmp_path / "df"), n=12, layout="img_anno_eval",
                                                 height=16, width=16)
    cfg = datasets.DatasetConfig(name="deepfashion_synthesis", image_size=16,
                                 manual_dir=str(tmp_path / "df"), data_dir=str(tmp_path / "tfds"),
                                 reader_options={"split_mode": "official"})
    test = datasets.load_split(cfg, "test")
    assert test.schema.names == ("colour", "sleeve", "category", "gender")
    assert {a.name for a in test.schema.manipulated} == {"colour", "sleeve"}
    assert len(test) == len(truth["test"])
    # Mean added back, MATLAB axes undone, order and labels kept through TFDS.
    np.testing.assert_allclose(test.images.astype(int), truth["images"][truth["test"]], atol=1)
    np.testing.assert_array_equal(test.labels, truth["labels"][truth["test"]])


def test_missing_manual_dir_names_the_file(tmp_path):
    cfg = datasets.DatasetConfig(name="deepfashion_synthesis", manual_dir=str(tmp_path / "nothing"),
                                 data_dir=str(tmp_path / "tfds"))
    with pytest.raises(DataFilesError, match="G2.h5"):
        datasets.load_split(cfg, "train")


def test_resize_pad_keeps_aspect_and_border_colour():
    image = np.zeros((1, 40, 20, 3), np.uint8)
    image[:] = (200, 100, 50)
    image[:, 10:30, 5:15] = (0, 0, 255)
    out = resize_images(tf.constant(image), 20, "pad").numpy()[0]
    assert out.shape == (20, 20, 3)
    np.testing.assert_array_equal(out[0, 0], (200, 100, 50))  # padding = border colour
    np.testing.assert_array_equal(out[10, 10], (0, 0, 255))  # centre content not stretched
    assert (out[:, 3:4] == (200, 100, 50)).all()  # the blue block stays 5 px wide: cols 7..12
    crop = resize_images(tf.constant(image), 20, "crop").numpy()[0]
    np.testing.assert_array_equal(crop[10, 10], (0, 0, 255))
