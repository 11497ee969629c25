"""absl flag definitions shared by the binaries, and their conversion to config dataclasses.

Library code never reads FLAGS: binaries call `define_*` once at import and pass the parsed flag
values to the `*_config` converters. Flags given on the command line override a --flagfile.
"""

from __future__ import annotations

import json

from absl import flags

from amgan_tf.classifier_lib import ClassifierConfig
from amgan_tf.data.datasets import DATASETS, RESIZE_MODES, DatasetConfig
from amgan_tf.models.attribute_cnn import AttributeCNNConfig
from amgan_tf.models.backbones import BACKBONES


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.replace(" ", "").split(",") if v)


def define_dataset_flags(fv: flags.FlagValues = flags.FLAGS):
    flags.DEFINE_enum("dataset", "synthfashion", DATASETS, "Dataset to train on.", flag_values=fv)
    flags.DEFINE_integer("image_size", 64, "Training resolution (square).", flag_values=fv)
    flags.DEFINE_string("manual_dir", "", "Folder of your local copy of a real dataset.", flag_values=fv)
    flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "Where TFDS keeps prepared data.", flag_values=fv)
    flags.DEFINE_enum("resize", "pad", RESIZE_MODES, "How non-square images become square.", flag_values=fv)
    flags.DEFINE_integer("synth_num_train", 12000, "SynthFashion training examples.", flag_values=fv)
    flags.DEFINE_integer("synth_num_test", 1000, "SynthFashion test examples.", flag_values=fv)
    flags.DEFINE_integer("synth_seed", 0, "SynthFashion dataset seed.", flag_values=fv)
    flags.DEFINE_string("reader_options", "{}",
                        "JSON keyword options for the real dataset's reader, e.g. "
                        '{"attribute": "sleeve", "value_map": {"longsleeve": "long"}}.', flag_values=fv)


def dataset_config(values: flags.FlagValues) -> DatasetConfig:
    try:
        options = json.loads(values.reader_options)
    except json.JSONDecodeError as e:
        raise ValueError(f"--reader_options must be a JSON object, got {values.reader_options!r}: "
                         f"{e}") from None
    if not isinstance(options, dict):
        raise ValueError(f"--reader_options must be a JSON object, got {values.reader_options!r}.")
    return DatasetConfig(name=values.dataset, image_size=values.image_size,
                         manual_dir=values.manual_dir, data_dir=values.data_dir,
                         resize=values.resize, num_train=values.synth_num_train,
                         num_test=values.synth_num_test, seed=values.synth_seed,
                         reader_options=options)


def define_classifier_flags(fv: flags.FlagValues = flags.FLAGS):
    d, c = AttributeCNNConfig(), ClassifierConfig()
    flags.DEFINE_enum("classifier_backbone", d.backbone, BACKBONES, "Attribute CNN backbone.", flag_values=fv)
    flags.DEFINE_string("classifier_widths", ",".join(map(str, d.widths)), "small_resnet widths.", flag_values=fv)
    flags.DEFINE_string("classifier_strides", ",".join(map(str, d.strides)),
                        "small_resnet stage strides.", flag_values=fv)
    flags.DEFINE_string("classifier_blocks", ",".join(map(str, d.blocks)),
                        "small_resnet blocks per stage.", flag_values=fv)
    flags.DEFINE_string("classifier_dilations", ",".join(map(str, d.dilations)),
                        "small_resnet stage dilations.", flag_values=fv)
    flags.DEFINE_integer("classifier_stem_stride", d.stem_stride, "small_resnet stem stride.", flag_values=fv)
    flags.DEFINE_integer("classifier_input_size", d.input_size,
                         "resnet50: resize inputs to this size first (0 = image_size).", flag_values=fv)
    flags.DEFINE_string("imagenet_weights", "",
                        "resnet50: local resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 for "
                        "ImageNet initialisation; empty trains from scratch (nothing is downloaded).", flag_values=fv)
    flags.DEFINE_string("classifier_train_split", c.train_split, "Split to train on.", flag_values=fv)
    flags.DEFINE_string("classifier_test_split", c.test_split, "Split to report accuracy on.", flag_values=fv)
    flags.DEFINE_integer("classifier_steps", c.steps, "Training steps.", flag_values=fv)
    flags.DEFINE_integer("classifier_batch_size", c.batch_size, "Batch size.", flag_values=fv)
    flags.DEFINE_float("classifier_learning_rate", c.learning_rate, "AdamW peak learning rate.", flag_values=fv)
    flags.DEFINE_float("classifier_weight_decay", c.weight_decay, "AdamW weight decay.", flag_values=fv)
    flags.DEFINE_integer("classifier_checkpoint_every", c.checkpoint_every, "Steps per checkpoint.", flag_values=fv)
    flags.DEFINE_integer("classifier_stop_after", 0,
                         "Leave after this many steps in this run (resume later); 0 = run to the end.", flag_values=fv)


def classifier_config(values: flags.FlagValues, seed: int = 0, log_every: int = 50
                      ) -> ClassifierConfig:
    data = dataset_config(values)
    model = AttributeCNNConfig(
        image_size=data.image_size, backbone=values.classifier_backbone,
        widths=_ints(values.classifier_widths), strides=_ints(values.classifier_strides),
        blocks=_ints(values.classifier_blocks), dilations=_ints(values.classifier_dilations),
        stem_stride=values.classifier_stem_stride, input_size=values.classifier_input_size,
        imagenet_weights=values.imagenet_weights)
    return ClassifierConfig(
        data=data, model=model, train_split=values.classifier_train_split,
        test_split=values.classifier_test_split, steps=values.classifier_steps,
        batch_size=values.classifier_batch_size, learning_rate=values.classifier_learning_rate,
        weight_decay=values.classifier_weight_decay, seed=seed, log_every=log_every,
        checkpoint_every=values.classifier_checkpoint_every,
        stop_after=values.classifier_stop_after)
