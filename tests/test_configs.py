"""Every flagfile in configs/ parses, and every model it describes builds and runs."""

import dataclasses
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from amgan_tf import flags_common
from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFIER_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "classifier_*.cfg")))


def _flag_values(path, extra, with_amgan: bool) -> flags.FlagValues:
    """Parse a flagfile (plus overrides) with the flags the binaries define."""
    fv = flags.FlagValues()
    flags_common.define_dataset_flags(fv)
    flags_common.define_classifier_flags(fv)
    if with_amgan:
        flags_common.define_amgan_flags(fv)
    flags.DEFINE_integer("seed", 0, "Defined by the binaries.", flag_values=fv)
    cwd = os.getcwd()
    os.chdir(ROOT)  # flagfiles include each other by repo-relative paths
    try:
        fv(["prog", f"--flagfile={path}", *extra])
    finally:
        os.chdir(cwd)
    return fv


def _parse(path, *extra):
    fv = _flag_values(path, extra, with_amgan=False)
    return flags_common.classifier_config(fv, seed=fv.seed)


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


GAN_CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.cfg"))
                     if not os.path.basename(p).startswith("classifier_"))


def _parse_train(path, *extra):
    fv = _flag_values(path, extra, with_amgan=True)
    return flags_common.train_config(fv, seed=fv.seed)


def test_every_method_of_the_paper_has_a_config():
    names = {os.path.basename(p)[:-4] for p in GAN_CONFIGS}
    assert {"quickstart", "stargan", "ganimation", "sagan", "amgan_no_dc", "amgan_no_lp_dc",
            "amgan_no_la_lp_dc", "amgan_cam_attention", "deepfashion_synthesis", "shopping100k",
            "clothing_small"} <= names


@pytest.mark.parametrize("path", GAN_CONFIGS, ids=os.path.basename)
def test_gan_config_builds_and_runs_a_step(path, synth_train):
    from amgan_tf.data import pipeline
    from amgan_tf.models.amgan import AMGAN
    from amgan_tf.models.networks import Critic, Generator
    config = _parse_train(path)
    a = config.amgan
    # Full size: the networks the config describes can be built (shapes, divisibility).
    g = Generator(a.generator)
    size = config.data.image_size
    x_fake, att, _ = g(tf.zeros((1, size, size, 3)), tf.zeros((1, 21)))
    assert x_fake.shape == (1, size, size, 3) and att.shape == (1, size, size, 1)
    src, _ = Critic(a.critic, size, 21)(tf.zeros((1, size, size, 3)))
    assert src.shape[1] >= 1
    # One real training iteration of the same method at toy size on SynthFashion.
    small = dataclasses.replace(
        a, image_size=32, batch_size=2, n_critic=1,
        generator=dataclasses.replace(a.generator, conv_dim=4, repeat_num=1),
        critic=dataclasses.replace(a.critic, conv_dim=4, repeat_num=4, max_dim=16))
    cnn = AttributeCNN(synth_train.schema, AttributeCNNConfig(image_size=32, widths=(4, 4, 4))
                       ).build_on_zeros()
    model = AMGAN(synth_train.schema, small, cnn if small.needs_attribute_cnn else None).build_all()
    batches = pipeline.AmganBatches(synth_train, pipeline.PipelineConfig(batch_size=2, n_critic=1))
    logs = model.train_step(next(iter(batches.dataset())))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert ("G/L_a" in logs) == (a.weights.lambda_a > 0 and a.attention_source == "generator")
    assert ("G/L_p" in logs) == (a.weights.lambda_p > 0)
    assert ("D_C/L_adv" in logs) == a.use_dc


BASELINES_AND_ABLATIONS = ("stargan", "ganimation", "sagan", "amgan_no_dc", "amgan_no_lp_dc",
                           "amgan_no_la_lp_dc", "amgan_cam_attention")


@pytest.mark.parametrize("name", ("synthfashion_cpu",) + BASELINES_AND_ABLATIONS)
def test_comparison_configs_share_the_budget_and_keep_the_papers_losses(name):
    """Every method of the comparison trains on the same budget and decoder as the quick start,
    and only the quick start adds the loss departures measured in BUILD_NOTES.md."""
    config = _parse_train(os.path.join(ROOT, "configs", f"{name}.cfg"))
    quick = _parse_train(os.path.join(ROOT, "configs", "quickstart.cfg"))
    assert config.data == quick.data and config.steps == quick.steps
    assert config.amgan.batch_size == quick.amgan.batch_size
    assert config.amgan.generator.upsample == quick.amgan.generator.upsample == "resize"
    assert config.amgan.cam_target_power == 1.0 and config.amgan.weights.lambda_out == 0.0
    assert quick.amgan.cam_target_power == 3.0 and quick.amgan.weights.lambda_out == 100.0


def test_recorded_dataset_config_with_only_the_given_flags_overriding():
    fv = flags.FlagValues()
    flags_common.define_dataset_flags(fv)
    recorded = dataclasses.asdict(flags_common.DatasetConfig(
        name="image_folder", image_size=32, manual_dir="photos",
        reader_options={"attribute": "sleeve"}))
    fv(["prog"])
    assert dataclasses.asdict(flags_common.dataset_config(fv, recorded)) == recorded
    fv(["prog", "--data_dir=/elsewhere"])
    config = flags_common.dataset_config(fv, recorded)
    assert config.data_dir == "/elsewhere"
    assert (config.name, config.image_size, config.manual_dir) == ("image_folder", 32, "photos")
