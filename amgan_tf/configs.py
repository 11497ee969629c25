"""The run configurations written to (and read back from) a workdir: one home for each value.

Both trainers, the loader of trained models and the binaries' flag parsing use these dataclasses;
nothing here imports training code, so loading a trained model needs none.
"""

from __future__ import annotations

import dataclasses

from amgan_tf import losses
from amgan_tf.data.datasets import DatasetConfig
from amgan_tf.models.amgan import AmganConfig
from amgan_tf.models.attribute_cnn import AttributeCNNConfig
from amgan_tf.models.networks import CriticConfig, GeneratorConfig

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


@dataclasses.dataclass
class ClassifierConfig:
    data: DatasetConfig = dataclasses.field(default_factory=DatasetConfig)
    model: AttributeCNNConfig = dataclasses.field(default_factory=AttributeCNNConfig)
    train_split: str = "train"
    test_split: str = "test"
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-3  # cosine decay to 0 over `steps`
    weight_decay: float = 1e-4
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 250
    eval_batch_size: int = 256
    stop_after: int = 0  # > 0: leave after this many steps in this run, as if killed (tests)
    deterministic: bool = False  # op determinism: a run repeats bit for bit

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainConfig:
    data: DatasetConfig = dataclasses.field(default_factory=DatasetConfig)
    amgan: AmganConfig = dataclasses.field(default_factory=AmganConfig)
    classifier: ClassifierConfig = dataclasses.field(default_factory=ClassifierConfig)
    classifier_workdir: str = ""  # '' = <workdir>/classifier
    steps: int = 80000
    seed: int = 0
    strategy: str = "auto"
    devices: tuple[str, ...] = ()  # mirrored: explicit devices (e.g. two logical CPUs in tests)
    jit_compile: bool = False  # XLA is 2-7x slower than oneDNN on CPU; try it on GPUs
    deterministic: bool = False  # op determinism: a run repeats bit for bit (slower on GPUs)
    log_every: int = 10
    checkpoint_every: int = 200
    sample_every: int = 500
    eval_every: int = 500
    eval_images: int = 128
    final_eval_images: int = 1000
    sample_images: int = 4
    stop_after: int = 0  # > 0: leave after this many steps in this run, as if killed

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        self.devices = tuple(self.devices)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def amgan_config_from_dict(raw: dict) -> AmganConfig:
    a = dict(raw)
    a["generator"] = GeneratorConfig(**a["generator"])
    a["critic"] = CriticConfig(**a["critic"])
    a["weights"] = losses.LossWeights(**a["weights"])
    return AmganConfig(**a)


def config_from_dict(raw: dict) -> TrainConfig:
    """Inverse of TrainConfig.to_dict (nested dataclasses rebuilt)."""
    c = dict(raw["classifier"])
    c["data"] = DatasetConfig(**c["data"])
    c["model"] = AttributeCNNConfig(**c["model"])
    return TrainConfig(**{**raw, "data": DatasetConfig(**raw["data"]),
                          "amgan": amgan_config_from_dict(raw["amgan"]),
                          "classifier": ClassifierConfig(**c)})
