"""absl flag definitions shared by the binaries, and their conversion to config dataclasses.

Library code never reads FLAGS: binaries call `define_*` once at import and pass the parsed flag
values to the `*_config` converters. Flags given on the command line override a --flagfile.
"""

from __future__ import annotations

import dataclasses
import json

from absl import flags

from amgan_tf.configs import ClassifierConfig
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


# DatasetConfig field -> the flag that sets it.
_DATASET_FLAGS = {"name": "dataset", "image_size": "image_size", "manual_dir": "manual_dir",
                  "data_dir": "data_dir", "resize": "resize", "num_train": "synth_num_train",
                  "num_test": "synth_num_test", "seed": "synth_seed",
                  "reader_options": "reader_options"}


def dataset_config(values: flags.FlagValues, recorded: dict | None = None) -> DatasetConfig:
    """The dataset flags as a config; with `recorded` (a workdir's saved data config), only the
    flags actually given override it, so a tool pointed at a workdir reads that run's data."""
    if recorded is not None:
        given = [field for field, flag in _DATASET_FLAGS.items() if values[flag].present]
        flagged = dataset_config(values) if given else None
        return dataclasses.replace(DatasetConfig(**recorded),
                                   **{field: getattr(flagged, field) for field in given})
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
    flags.DEFINE_float("classifier_cam_smoothing", d.cam_smoothing,
                       "CAM smoothing (Gaussian standard deviation in feature cells; 0 = off).",
                       flag_values=fv)
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


def classifier_config(values: flags.FlagValues, seed: int = 0, log_every: int = 50,
                      deterministic: bool = False) -> ClassifierConfig:
    data = dataset_config(values)
    model = AttributeCNNConfig(
        image_size=data.image_size, backbone=values.classifier_backbone,
        widths=_ints(values.classifier_widths), strides=_ints(values.classifier_strides),
        blocks=_ints(values.classifier_blocks), dilations=_ints(values.classifier_dilations),
        stem_stride=values.classifier_stem_stride, input_size=values.classifier_input_size,
        cam_smoothing=values.classifier_cam_smoothing,
        imagenet_weights=values.imagenet_weights)
    return ClassifierConfig(
        data=data, model=model, train_split=values.classifier_train_split,
        test_split=values.classifier_test_split, steps=values.classifier_steps,
        batch_size=values.classifier_batch_size, learning_rate=values.classifier_learning_rate,
        weight_decay=values.classifier_weight_decay, seed=seed, log_every=log_every,
        checkpoint_every=values.classifier_checkpoint_every,
        stop_after=values.classifier_stop_after, deterministic=deterministic)


def define_amgan_flags(fv: flags.FlagValues = flags.FLAGS):
    from amgan_tf.losses import LossWeights
    from amgan_tf.models.amgan import ATTENTION_SOURCES, AmganConfig
    from amgan_tf.models.networks import COLOUR_HEADS, DTYPE_POLICIES, GENERATOR_MODES, UPSAMPLING
    from amgan_tf.configs import STRATEGIES, TrainConfig
    a, t, w = AmganConfig(), TrainConfig(), LossWeights()
    d = flags.DEFINE_integer
    d("steps", t.steps, "Training iterations (each: n_critic critic updates + 1 G update).",
      flag_values=fv)
    d("batch_size", a.batch_size, "Global batch size.", flag_values=fv)
    d("n_critic", a.n_critic, "Critic updates per generator update.", flag_values=fv)
    d("g_conv_dim", a.generator.conv_dim, "G first-layer channels.", flag_values=fv)
    d("g_repeat_num", a.generator.repeat_num, "G residual blocks.", flag_values=fv)
    d("d_conv_dim", a.critic.conv_dim, "D first-layer channels.", flag_values=fv)
    d("d_repeat_num", a.critic.repeat_num, "D_I strided layers (D_C has two fewer).",
      flag_values=fv)
    d("d_max_dim", a.critic.max_dim, "Cap on critic channels.", flag_values=fv)
    flags.DEFINE_enum("generator_mode", a.generator.mode, GENERATOR_MODES,
                      "amgan (attention head), stargan (no attention), sagan (separate "
                      "attention network).", flag_values=fv)
    flags.DEFINE_enum("g_upsample", a.generator.upsample, UPSAMPLING,
                      "G's decoder: transpose (the paper's transposed convolutions) or resize "
                      "(nearest x2 + 3x3 convolution, no checkerboard).", flag_values=fv)
    d("g_skips", a.generator.skips, "U-Net skips into G's decoder: how many of its levels, from "
      "the full resolution up, also get the encoder's features of the same size (0 = the paper).",
      flag_values=fv)
    flags.DEFINE_enum("g_colour_head", a.generator.colour_head, COLOUR_HEADS,
                      "G's colour head: absolute (the paper, z = tanh(h)) or residual "
                      "(z = tanh(atanh(x) + h), starting as the input).", flag_values=fv)
    flags.DEFINE_enum("g_dtype_policy", a.generator.dtype_policy, DTYPE_POLICIES,
                      "G's Keras dtype policy: mixed_bfloat16 is 2.5-3x faster on CPUs with "
                      "AMX/AVX512-BF16 and much slower on others; auto picks it only there (and "
                      "on GPUs of compute capability 8+), else float32.", flag_values=fv)
    flags.DEFINE_enum("d_dtype_policy", a.critic.dtype_policy, DTYPE_POLICIES,
                      "The critics' dtype policy (gradient-penalty norm and losses stay "
                      "float32; mixed_float16 adds dynamic loss scaling).", flag_values=fv)
    flags.DEFINE_boolean("use_dc", a.use_dc, "Train the crop critic D_C.", flag_values=fv)
    flags.DEFINE_enum("attention_source", a.attention_source, ATTENTION_SOURCES,
                      "generator: learned mask; cam: the attribute CNN's CAM is the mask.",
                      flag_values=fv)
    for field in dataclasses.fields(w):
        flags.DEFINE_float(field.name, getattr(w, field.name), f"Loss weight {field.name}.",
                           flag_values=fv)
    flags.DEFINE_list("perceptual_layers", list(a.perceptual_layers),
                      "Attribute-CNN features for L_p: conv5, avgpool.", flag_values=fv)
    flags.DEFINE_float("crop_threshold", a.crop_threshold,
                       "D_C crop: attention >= this share of its max.", flag_values=fv)
    flags.DEFINE_float("cam_target_power", a.cam_target_power,
                       "L_a's target is the normalised CAM to this power (1 = the paper; > 1 "
                       "sharpens it).", flag_values=fv)
    flags.DEFINE_float("cam_target_threshold", a.cam_target_threshold,
                       "If > 0, L_a's target is binary: 1 where the normalised CAM >= this "
                       "(0 = the CAM^power target).", flag_values=fv)
    flags.DEFINE_float("attention_floor", a.attention_floor,
                       "Every edit's mask a becomes max(a - floor, 0) / (1 - floor), so a mask's "
                       "low leak changes nothing; 0 = the paper. Training sees the raw mask "
                       "unless --train_attention_floor.", flag_values=fv)
    flags.DEFINE_boolean("train_attention_floor", a.train_attention_floor,
                         "Blend training's fakes through the floored mask too, so G learns to put "
                         "what an edit needs above --attention_floor.", flag_values=fv)
    flags.DEFINE_float("learning_rate", a.learning_rate, "Adam lr of G and the critics.",
                       flag_values=fv)
    flags.DEFINE_float("beta1", a.beta_1, "Adam beta1.", flag_values=fv)
    flags.DEFINE_float("beta2", a.beta_2, "Adam beta2.", flag_values=fv)
    flags.DEFINE_enum("strategy", t.strategy, STRATEGIES,
                      "auto: multi_worker if TF_CONFIG is set, mirrored if several GPUs.",
                      flag_values=fv)
    flags.DEFINE_boolean("jit_compile", t.jit_compile, "XLA-compile the train step (slower on "
                         "CPU).", flag_values=fv)
    flags.DEFINE_boolean("deterministic", t.deterministic, "Op determinism: the same command "
                         "repeats bit for bit, resumed or not (slower on GPUs).", flag_values=fv)
    d("checkpoint_every", t.checkpoint_every, "Steps between checkpoints.", flag_values=fv)
    d("sample_every", t.sample_every, "Steps between sample sheets.", flag_values=fv)
    d("eval_every", t.eval_every, "Steps between manipulation-accuracy checks.", flag_values=fv)
    d("eval_images", t.eval_images, "Held-out images for the periodic check.", flag_values=fv)
    d("final_eval_images", t.final_eval_images, "Test images for the final evaluation.",
      flag_values=fv)
    d("stop_after", 0, "Leave after this many steps in this run (resume later); 0 = to the end.",
      flag_values=fv)
    flags.DEFINE_string("classifier_workdir", "",
                        "Trained attribute CNN workdir; '' = <workdir>/classifier (trained "
                        "first if missing).", flag_values=fv)


def train_config(values: flags.FlagValues, seed: int = 0, log_every: int = 10):
    import dataclasses as dc

    from amgan_tf.losses import LossWeights
    from amgan_tf.models.amgan import AmganConfig
    from amgan_tf.models.networks import CriticConfig, GeneratorConfig
    from amgan_tf.configs import TrainConfig
    data = dataset_config(values)
    weights = LossWeights(**{f.name: getattr(values, f.name) for f in dc.fields(LossWeights)})
    amgan = AmganConfig(
        image_size=data.image_size, batch_size=values.batch_size, n_critic=values.n_critic,
        generator=GeneratorConfig(conv_dim=values.g_conv_dim, repeat_num=values.g_repeat_num,
                                  mode=values.generator_mode, dtype_policy=values.g_dtype_policy,
                                  upsample=values.g_upsample, skips=values.g_skips,
                                  colour_head=values.g_colour_head),
        critic=CriticConfig(conv_dim=values.d_conv_dim, repeat_num=values.d_repeat_num,
                            max_dim=values.d_max_dim, dtype_policy=values.d_dtype_policy),
        use_dc=values.use_dc, attention_source=values.attention_source, weights=weights,
        perceptual_layers=tuple(values.perceptual_layers), crop_threshold=values.crop_threshold,
        cam_target_power=values.cam_target_power,
        cam_target_threshold=values.cam_target_threshold, attention_floor=values.attention_floor,
        train_attention_floor=values.train_attention_floor,
        learning_rate=values.learning_rate, beta_1=values.beta1, beta_2=values.beta2,
        total_steps=values.steps)
    classifier = dc.replace(classifier_config(values, seed, log_every), data=data)
    return TrainConfig(
        data=data, amgan=amgan, classifier=classifier,
        classifier_workdir=values.classifier_workdir, steps=values.steps, seed=seed,
        strategy=values.strategy, jit_compile=values.jit_compile,
        deterministic=values.deterministic, log_every=log_every,
        checkpoint_every=values.checkpoint_every, sample_every=values.sample_every,
        eval_every=values.eval_every, eval_images=values.eval_images,
        final_eval_images=values.final_eval_images, stop_after=values.stop_after)
