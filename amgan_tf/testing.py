"""Tiny trained workdirs for tests, examples and benchmarks of the export and serving paths.

A real `train_lib.run` on a few hundred SynthFashion renders for a few steps (the attribute CNN
first, as the quick start does): everything downstream reads a genuine workdir, only small.
"""

from __future__ import annotations

import dataclasses

from amgan_tf.configs import ClassifierConfig, TrainConfig
from amgan_tf.data.datasets import DatasetConfig
from amgan_tf.models.amgan import AmganConfig
from amgan_tf.models.attribute_cnn import AttributeCNNConfig
from amgan_tf.models.networks import CriticConfig, GeneratorConfig


def tiny_train_config(data_dir: str, steps: int = 3, image_size: int = 32, seed: int = 0,
                      num_train: int = 200, num_test: int = 20, data_seed: int = 0,
                      **overrides) -> TrainConfig:
    data = DatasetConfig(name="synthfashion", image_size=image_size, num_train=num_train,
                         num_test=num_test, seed=data_seed, data_dir=data_dir)
    classifier = ClassifierConfig(data=data, model=AttributeCNNConfig(image_size=image_size,
                                                                      widths=(8, 8, 8)),
                                  steps=5, batch_size=8, log_every=5, checkpoint_every=5)
    amgan = AmganConfig(image_size=image_size, batch_size=4, n_critic=1,
                        generator=GeneratorConfig(conv_dim=8, repeat_num=1),
                        critic=CriticConfig(conv_dim=8, repeat_num=4, max_dim=32),
                        total_steps=steps)
    config = TrainConfig(data=data, amgan=amgan, classifier=classifier, steps=steps, seed=seed,
                         strategy="default", log_every=steps, checkpoint_every=steps,
                         sample_every=10 ** 9, eval_every=10 ** 9, eval_images=4,
                         final_eval_images=4, sample_images=2)
    return dataclasses.replace(config, **overrides)


def write_tiny_workdir(workdir: str, data_dir: str, **kwargs) -> str:
    """Train a tiny AMGAN into `workdir` (about 20 s on 2 CPU cores) and return the workdir."""
    from amgan_tf import train_lib
    train_lib.run(tiny_train_config(data_dir, **kwargs), workdir)
    return workdir
