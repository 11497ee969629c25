"""AMGAN's networks: the attention generator G and the PatchGAN critics D_I and D_C.

G is StarGAN's generator with two heads on the shared trunk: a colour head (tanh -> z) and an
attention head (sigmoid -> a), composed as Eq. 1, x* = a * z + (1 - a) * x (a = 1 means "edit
here"). `mode` also gives the baselines: "stargan" (x* = z, no attention) and "sagan" (a separate
spatial-attention network, also conditioned on m). Instance norm is GroupNormalization(groups=-1)
because tensorflow-addons cannot be used with TF 2.21.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import keras
import tensorflow as tf
from keras import layers

from amgan_tf import precision
from amgan_tf.precision import DTYPE_POLICIES

GENERATOR_MODES = ("amgan", "stargan", "sagan")
UPSAMPLING = ("transpose", "resize")
COLOUR_HEADS = ("absolute", "residual")


def instance_norm(name: str) -> layers.Layer:
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"Unknown {what} {value!r}; choose one of: {', '.join(choices)}.")


@contextlib.contextmanager
def layer_dtype_policy(policy: str):
    """Layers take the global policy when they are created: set it for one network's layers only,
    so each network (G, the critics) can have its own."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision.resolve(policy))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@dataclasses.dataclass
class GeneratorConfig:
    conv_dim: int = 64
    repeat_num: int = 6  # residual blocks
    down_layers: int = 2
    attention_kernel: int = 7
    mode: str = "amgan"
    # Decoder upsampling: "transpose" (StarGAN/the paper: 4x4 stride-2 transposed convolutions) or
    # "resize" (nearest-neighbour x2 then a 3x3 convolution, which cannot make the transposed
    # convolution's checkerboard; Odena et al. 2016).
    upsample: str = "transpose"
    # The colour head: "absolute" (the paper, GANimation's z = tanh(h)) or "residual"
    # (z = tanh(atanh(x) + h), zero-initialised: z starts as the input, so where G has learnt no
    # edit its content is the input's, and a mask that leaks changes nothing there; the residual
    # images of Shen & Liu, CVPR 2017, in tanh's pre-activation space so z stays in [-1, 1]).
    # Measured worse at the quick-start budget (BUILD_NOTES.md, issue 14, experiment I1).
    colour_head: str = "absolute"
    # U-Net skips (Ronneberger et al. 2015): the decoder's last `skips` levels also get the encoder's
    # features of the same resolution (concatenated), so detail that the 4x-downsampled bottleneck
    # drops (garment edges, pattern phase, the colour under an edit) can reach the heads. 0 = StarGAN
    # and the paper. 1 gave crisper sample sheets but the same errors to the truth at 1.15x the G
    # step (BUILD_NOTES.md, issue 14, experiment L).
    skips: int = 0
    # "mixed_bfloat16" runs G's convolutions in bfloat16 (2.5-3x faster on CPUs with AMX/AVX512-BF16,
    # 7.1x slower on an AVX2 one); "auto" picks it only where it is fast (precision.py);
    # "mixed_float16" suits older GPUs. Outputs are float32 either way.
    dtype_policy: str = "float32"

    def __post_init__(self):
        _check_choice("generator mode", self.mode, GENERATOR_MODES)
        _check_choice("dtype policy", self.dtype_policy, DTYPE_POLICIES)
        _check_choice("upsampling", self.upsample, UPSAMPLING)
        _check_choice("colour head", self.colour_head, COLOUR_HEADS)
        if not 0 <= self.skips <= self.down_layers:
            raise ValueError(f"G has {self.down_layers} resolution levels below the input, so "
                             f"skips must be 0-{self.down_layers}; got {self.skips}.")


@dataclasses.dataclass
class CriticConfig:
    conv_dim: int = 64
    repeat_num: int = 6  # strided 4x4 convs; the patch map is size / 2**repeat_num
    max_dim: int = 2048
    # Convolutions in bfloat16/float16 with float32 weights and outputs; the gradient penalty's
    # norm and every loss stay float32. mixed_float16 needs loss scaling (the trainer adds it).
    dtype_policy: str = "float32"

    def __post_init__(self):
        _check_choice("dtype policy", self.dtype_policy, DTYPE_POLICIES)


class _Trunk(keras.layers.Layer):
    """StarGAN encoder-residual-decoder on [x, tile(m)]; returns the last decoder features."""

    def __init__(self, cfg: GeneratorConfig, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        d = cfg.conv_dim
        self.blocks = [layers.Conv2D(d, 7, padding="same", use_bias=False, name="conv_in"),
                       instance_norm("in_in"), layers.ReLU()]
        for i in range(cfg.down_layers):
            d *= 2
            self.blocks += [layers.Conv2D(d, 4, strides=2, padding="same", use_bias=False,
                                          name=f"down{i}"), instance_norm(f"down{i}_in"),
                            layers.ReLU()]
        self.res = []
        for i in range(cfg.repeat_num):
            self.res.append([
                layers.Conv2D(d, 3, padding="same", use_bias=False, name=f"res{i}_conv1"),
                instance_norm(f"res{i}_in1"), layers.ReLU(),
                layers.Conv2D(d, 3, padding="same", use_bias=False, name=f"res{i}_conv2"),
                instance_norm(f"res{i}_in2")])
        self.up = []
        for i in range(cfg.down_layers):
            d //= 2
            if cfg.upsample == "resize":
                self.up += [layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}_resize"),
                            layers.Conv2D(d, 3, padding="same", use_bias=False, name=f"up{i}")]
            else:
                self.up.append(layers.Conv2DTranspose(d, 4, strides=2, padding="same",
                                                      use_bias=False, name=f"up{i}"))
            self.up += [instance_norm(f"up{i}_in"), layers.ReLU()]
        self.skips = cfg.skips

    def call(self, x, m, subpixel=False):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        tiled = tf.tile(m[:, None, None, :], [1, h, w, 1])
        y = tf.cast(tf.concat([x, tf.cast(tiled, x.dtype)], axis=-1), self.compute_dtype)
        encoded = []  # each resolution level's output (after its ReLU), for the U-Net skips
        for layer in self.blocks:
            y = layer(y)
            if isinstance(layer, layers.ReLU):
                encoded.append(y)
        for block in self.res:
            r = y
            for layer in block:
                r = layer(r)
            y = y + r
        for layer in self.up:
            if subpixel and isinstance(layer, layers.Conv2DTranspose):
                y = transpose_conv_as_subpixel(y, tf.cast(layer.kernel, y.dtype))
            else:
                y = layer(y)
            if isinstance(layer, layers.ReLU):  # the end of a decoder level
                encoded.pop()  # the bottleneck first, then each level up to the full resolution
                if len(encoded) <= self.skips:
                    y = tf.concat([y, encoded[-1]], axis=-1)
        return y


def transpose_conv_as_subpixel(x, kernel):
    """G's 4x4 stride-2 "same" transposed convolution (kernel [4, 4, out, in], no bias) computed
    exactly as ONE 2x2 convolution with 4x the output channels, one per output pixel phase, then
    an interleave of the phases: the same FLOPs, but a plain convolution, which runtimes without a fast
    transposed-convolution kernel (TF.js wasm: 2 of G's 19 convolutions took half its time) run
    at full speed.

    In 1-D, output pixel 2q is w3 x[q-1] + w1 x[q] and 2q+1 is w2 x[q] + w0 x[q+1]: on the input
    padded by one, phase p is a 2-tap convolution whose output starts at offset p."""
    taps = ((3, 1), (2, 0))  # kernel rows (cols) that phase 0 / 1 reads at x[k-1], x[k]
    phases = ((0, 0), (0, 1), (1, 0), (1, 1))
    weights = tf.concat([tf.transpose(tf.gather(tf.gather(kernel, taps[ph], axis=0), taps[pw],
                                                axis=1), [0, 1, 3, 2]) for ph, pw in phases], -1)
    c, h, w = kernel.shape[2], tf.shape(x)[1], tf.shape(x)[2]
    y = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), weights, 1, "VALID")
    part = {(ph, pw): y[:, ph:ph + h, pw:pw + w, j * c:(j + 1) * c]
            for j, (ph, pw) in enumerate(phases)}
    # Interleave with stack + reshape: TF.js wasm's depth_to_space kernel is a slow generic loop.
    rows = [tf.reshape(tf.stack([part[ph, 0], part[ph, 1]], axis=3), [-1, h, 2 * w, c])
            for ph in (0, 1)]
    return tf.reshape(tf.stack(rows, axis=2), [-1, 2 * h, 2 * w, c])


def _atanh(x):
    """atanh written with log and division, ops that every export format (TFLite's builtins,
    TF.js) runs."""
    return 0.5 * tf.math.log((1.0 + x) / (1.0 - x))


class Generator(keras.Model):
    """G(x, m) -> (x*, a, z). `attention_override` replaces a (the "CAM as the mask" ablation)."""

    def __init__(self, config: GeneratorConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        with layer_dtype_policy(config.dtype_policy):
            self.trunk = _Trunk(config, name="trunk")
            self.colour = layers.Conv2D(
                3, 7, padding="same", use_bias=False, name="colour_head",
                kernel_initializer="zeros" if config.colour_head == "residual" else "glorot_uniform")
            if config.mode in ("amgan", "sagan"):
                self.attention = layers.Conv2D(1, config.attention_kernel, padding="same",
                                               use_bias=False, name="attention_head")
            if config.mode == "sagan":
                self.attention_trunk = _Trunk(config, name="attention_trunk")

    def call(self, x, m, attention_override=None, training=False, subpixel=False):
        """subpixel: transposed convolutions as `transpose_conv_as_subpixel` (exact; exports)."""
        x = tf.cast(x, tf.float32)
        features = self.trunk(x, m, subpixel=subpixel)
        fused = (self.config.mode == "amgan" and attention_override is None
                 and self.config.attention_kernel == self.colour.kernel_size[0])
        if fused:
            h, a_logits = self._fused_heads(features)
        else:
            h = tf.cast(self.colour(features), tf.float32)
        if self.config.colour_head == "residual":
            h = h + _atanh(tf.clip_by_value(x, -1.0 + 1e-3, 1.0 - 1e-3))
        z = tf.tanh(h)
        if self.config.mode == "stargan" and attention_override is None:
            return z, tf.ones_like(z[..., :1]), z
        if attention_override is not None:
            a = tf.reshape(tf.cast(attention_override, z.dtype), tf.shape(z[..., :1]))
        elif self.config.mode == "sagan":
            a = tf.sigmoid(self.attention(self.attention_trunk(x, m, subpixel=subpixel)))
        else:
            a = tf.sigmoid(a_logits if fused else self.attention(features))
        a = tf.cast(a, tf.float32)
        return a * z + (1.0 - a) * x, a, z

    def _fused_heads(self, features):
        """The colour and attention heads as ONE convolution with 3 + 1 outputs: the same maths
        (and the same two kernel variables, so checkpoints and exports are unchanged), but a 7x7
        convolution with 1-3 outputs is slow in oneDNN, its backward most: on a 2-core AVX2 CPU
        a forward+backward of the two head convolutions (quick-start size) took 483 ms, of the
        fused one 275 ms, and the quick-start G update 16% less time (BUILD_NOTES.md)."""
        for head in (self.colour, self.attention):
            if not head.built:
                head.build(features.shape)
        kernel = tf.concat([self.colour.kernel, self.attention.kernel], axis=-1)
        out = tf.cast(tf.nn.conv2d(features, tf.cast(kernel, features.dtype), 1, "SAME"),
                      tf.float32)
        return out[..., :3], out[..., 3:]


class Critic(keras.Model):
    """PatchGAN critic: (src patch map [B, s, s, 1], cls logits [B, N]). No normalisation (WGAN-GP)."""

    def __init__(self, config: CriticConfig, image_size: int, num_values: int, **kwargs):
        super().__init__(**kwargs)
        final = image_size / 2 ** config.repeat_num
        if final < 1 or final != int(final):
            raise ValueError(f"A critic with {config.repeat_num} strided layers needs an input size "
                             f"divisible by {2 ** config.repeat_num}; got {image_size}.")
        self.config, self.image_size = config, image_size
        d = config.conv_dim
        self.convs = []
        with layer_dtype_policy(config.dtype_policy):
            for i in range(config.repeat_num):
                self.convs.append(layers.Conv2D(d, 4, strides=2, padding="same", name=f"conv{i}"))
                d = min(d * 2, config.max_dim)
            self.src = layers.Conv2D(1, 3, padding="same", use_bias=False, name="src")
            self.cls = layers.Conv2D(num_values, int(final), padding="valid", use_bias=False,
                                     name="cls")

    def call(self, x, training=False):
        h = x
        for conv in self.convs:
            h = tf.nn.leaky_relu(conv(h), alpha=0.01)
        logits = tf.cast(self.cls(h), tf.float32)
        return (tf.cast(self.src(h), tf.float32),
                tf.reshape(logits, [tf.shape(x)[0], logits.shape[-1]]))


def critic_for_crops(config: CriticConfig, image_size: int) -> CriticConfig:
    """D_C: D_I's design with two fewer strided layers, on half-size crops (paper: 128 px images,
    D_I 6 layers; D_C 4 layers on 64 px crops)."""
    return dataclasses.replace(config, repeat_num=max(config.repeat_num - 2, 1))


def crop_size(image_size: int) -> int:
    return image_size // 2


def repeat_num_for(image_size: int, final: int = 2) -> int:
    """Strided layers that take `image_size` down to a `final` x `final` patch map."""
    return int(round(math.log2(image_size / final)))
