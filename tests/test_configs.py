"""Every flagfile in configs/ parses, and every model it describes builds and runs."""

import glob
import os

import pytest
import tensorflow as tf
from absl import flags

from amgan_tf import flags_common
from amgan_tf.models.attribute_cnn import AttributeCNN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFIER_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "classifier_*.cfg")))


def _parse(path, *extra):
    fv = flags.FlagValues()
    flags_common.define_dataset_flags(fv)
    flags_common.define_classifier_flags(fv)
    fv(["prog", f"--flagfile={path}", *extra])
    return flags_common.classifier_config(fv)


def test_there_are_classifier_configs():
    names = {os.path.basename(p) for p in CLASSIFIER_CONFIGS}
    assert {"classifier_synthfashion.cfg", "classifier_clothing_small.cfg",
            "classifier_deepfashion_synthesis.cfg", "classifier_shopping100k.cfg"} <= names


@pytest.mark.parametrize("path", CLASSIFIER_CONFIGS, ids=os.path.basename)
def test_classifier_config_builds_a_model(path):
    from amgan_tf.data import synthfashion
    config = _parse(path)
    assert config.model.image_size == config.data.image_size
    model = AttributeCNN(synthfashion.schema(), config.model).build_on_zeros()
    size = config.data.image_size
    feats = model.features(tf.zeros((1, size, size, 3)))
    assert feats["logits"].shape == (1, synthfashion.schema().num_values + 4)
    assert feats["conv5"].shape[1] >= 7  # CAMs of at least 7x7


def test_command_line_overrides_flagfile():
    path = os.path.join(ROOT, "configs", "classifier_synthfashion.cfg")
    assert _parse(path).steps == 1200
    assert _parse(path, "--classifier_steps=7").steps == 7
