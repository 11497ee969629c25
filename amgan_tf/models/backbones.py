"""Convolutional backbones for the attribute CNN: ResNet-50 (the paper's) and a small ResNet.

CAMs are only as fine as the last feature map, so the small ResNet strides only in its stem by
default (32x32 CAMs at 64 px; stages can be dilated instead of strided to see further without
shrinking the map), and ResNet-50 can resize its input (`input_size`, e.g. 224) so that 128 px
images still give 7x7 maps instead of 4x4.
"""

from __future__ import annotations

import os

import keras
from keras import layers

BACKBONES = ("small_resnet", "resnet50")


def _basic_block(x, filters: int, stride: int, dilation: int, name: str):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", dilation_rate=dilation,
                      use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, use_bias=False,
                      name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def small_resnet(image_size: int, widths=(32, 48, 64), strides=(1, 1, 1),
                 blocks=(1, 1, 1), dilations=(1, 1, 1), stem_stride: int = 2) -> keras.Model:
    """Basic-block ResNet. Dilated stages (instead of strided ones) keep the receptive field
    growing without shrinking the map that CAMs are read from."""
    if not (len(widths) == len(strides) == len(blocks) == len(dilations)):
        raise ValueError(f"widths, strides, blocks and dilations need equal lengths, got {widths}, "
                         f"{strides}, {blocks}, {dilations}.")
    if any(st > 1 and d > 1 for st, d in zip(strides, dilations)):
        raise ValueError("A stage cannot be both strided and dilated.")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Conv2D(widths[0], 3, strides=stem_stride, padding="same", use_bias=False,
                      name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, (w, st, n, dilation) in enumerate(zip(widths, strides, blocks, dilations)):
        for b in range(n):
            x = _basic_block(x, w, st if b == 0 else 1, dilation, f"stage{s + 1}_block{b + 1}")
    return keras.Model(inputs, x, name="small_resnet")


@keras.saving.register_keras_serializable("amgan_tf")
class CaffePreprocess(layers.Layer):
    """RGB [0, 255] -> BGR minus the ImageNet means (keras.applications.resnet50.preprocess_input),
    as a layer so that saved models need no Lambda."""

    def call(self, x):
        return x[..., ::-1] - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], x.dtype)


def resnet50(image_size: int, input_size: int = 0, weights: str = "") -> keras.Model:
    """Keras ResNet-50 without top on inputs in [-1, 1]; `weights` is a local .h5 file or ''.

    ImageNet weights cannot be downloaded on offline machines: pass the path of
    `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` (see the README).
    """
    if weights == "imagenet":
        raise ValueError(
            "weights='imagenet' would download the file at run time. Download "
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 once (keras.applications "
            "stores it in ~/.keras/models/ when online) and pass its path instead.")
    if weights and not os.path.exists(weights):
        raise FileNotFoundError(f"ImageNet weights file {weights!r} does not exist; pass the path "
                                f"of resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5.")
    size = input_size or image_size
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if size != image_size:
        x = layers.Resizing(size, size, interpolation="bilinear", name="resize")(x)
    # [-1, 1] -> the caffe-style preprocessing the ImageNet weights expect.
    x = layers.Rescaling(127.5, offset=127.5, name="to_255")(x)
    x = CaffePreprocess(name="preprocess")(x)
    base = keras.applications.ResNet50(include_top=False, weights=weights or None,
                                       input_shape=(size, size, 3))
    return keras.Model(inputs, base(x), name="resnet50")
