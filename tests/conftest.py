"""Shared test fixtures: small prepared SynthFashion splits, built once per session."""

import logging

import pytest
import tensorflow as tf

logging.getLogger("absl").setLevel(logging.WARNING)

# Two logical CPUs so tf.distribute tests can run MirroredStrategy on one machine. This must happen
# before TensorFlow initialises its devices, hence at collection time.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def synth_config(tfds_dir):
    from amgan_tf.data.datasets import DatasetConfig
    return DatasetConfig(name="synthfashion", image_size=32, num_train=400, num_test=40,
                         seed=3, data_dir=tfds_dir)


@pytest.fixture(scope="session")
def synth_train(synth_config):
    from amgan_tf.data import datasets
    return datasets.load_split(synth_config, "train")


@pytest.fixture(scope="session")
def synth_test(synth_config):
    from amgan_tf.data import datasets
    return datasets.load_split(synth_config, "test")


@pytest.fixture(scope="session")
def tiny_workdir(synth_config, tmp_path_factory):
    """A genuinely trained tiny AMGAN workdir (3 steps, 32 px), shared read-only by the export,
    serving and loader tests."""
    from amgan_tf import testing
    path = str(tmp_path_factory.mktemp("tiny_run"))
    return testing.write_tiny_workdir(path, synth_config.data_dir, num_train=synth_config.num_train,
                                      num_test=synth_config.num_test, data_seed=synth_config.seed)
