"""Where a CNN's feature-map cells sit on its input image, for placing CAMs on the right pixels.

A plain `tf.image.resize` of a stride-s map assumes cell i covers input pixels [s*i, s*i + s), centred
at s*i + (s-1)/2. Real networks do not: a 3x3 stride-2 'same' convolution on an even size centres
cell i on pixel 2i + 1, and Keras' ResNet-50 (7x7 valid convolution after 3 px of padding, stride-2
1x1 convolutions) centres conv5 cell i on pixel 32i, 15.5 px away from where a resize puts it at
224 px. On SynthFashion's 4-6 px wide arms even half a pixel moves CAM maxima on or off the
sleeve. `feature_grid` follows the layer graph and returns each axis' exact cell centres;
`interpolation_matrix` then upsamples with them.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class Axis:
    """Cell i of this axis is centred on input pixel `offset + step * i` (pixel p's centre is p);
    the axis has `size` cells."""

    step: float
    offset: float
    size: int

    def window(self, kernel: int, stride: int, dilation: int, padding: str) -> Axis:
        """The axis after a sliding window (convolution or pooling) in Keras' conventions."""
        span = dilation * (kernel - 1) + 1
        if padding == "same":
            out = math.ceil(self.size / stride)
            before = max((out - 1) * stride + span - self.size, 0) // 2
        elif padding == "valid":
            out = math.ceil((self.size - span + 1) / stride)
            before = 0
        else:
            raise ValueError(f"Cannot align padding {padding!r} (only 'same' and 'valid').")
        return Axis(self.step * stride, self.offset + self.step * ((span - 1) / 2 - before), out)

    def pad(self, before: int, after: int) -> Axis:
        return Axis(self.step, self.offset - self.step * before, self.size + before + after)

    def resize(self, size: int) -> Axis:
        """Half-pixel-centre resizing (Keras Resizing, tf.image.resize, UpSampling2D bilinear)."""
        ratio = self.size / size
        return Axis(self.step * ratio, self.offset + self.step * (0.5 * ratio - 0.5), size)


Grid = tuple[Axis, Axis]  # (rows, columns)

_WINDOWS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
            keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _merge(grids: list[Grid], name: str) -> Grid:
    """Several maps added or concatenated: their mean centre. Branches that disagree (a ResNet
    block whose 3x3 path and 1x1 shortcut both have stride 2) are half a step apart at most."""
    out = []
    for axes in zip(*grids):
        if len({a.size for a in axes}) != 1 or len({a.step for a in axes}) != 1:
            raise ValueError(f"Layer {name!r} merges maps on different grids: {axes}.")
        out.append(Axis(axes[0].step, float(np.mean([a.offset for a in axes])), axes[0].size))
    return tuple(out)


def _layer_grid(layer, inputs: list[Grid], in_shape, out_shape) -> Grid:
    if isinstance(layer, keras.Model):
        return _model_grid(layer, inputs)
    if len(inputs) > 1:
        return _merge(inputs, layer.name)
    (rows, cols), = inputs
    if isinstance(layer, _WINDOWS):
        size = _pair(getattr(layer, "kernel_size", None) or layer.pool_size)
        stride = _pair(layer.strides)
        dilation = _pair(getattr(layer, "dilation_rate", 1))
        if layer.data_format == "channels_first":
            raise ValueError(f"Layer {layer.name!r}: only channels_last maps can be aligned.")
        return tuple(a.window(k, s, d, layer.padding)
                     for a, k, s, d in zip((rows, cols), size, stride, dilation))
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return rows.pad(top, bottom), cols.pad(left, right)
    if isinstance(layer, keras.layers.Cropping2D):
        (top, bottom), (left, right) = layer.cropping
        return rows.pad(-top, -bottom), cols.pad(-left, -right)
    if isinstance(layer, keras.layers.Resizing) and not layer.crop_to_aspect_ratio:
        return rows.resize(layer.height), cols.resize(layer.width)
    if isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "bilinear":
        fy, fx = _pair(layer.size)
        return rows.resize(rows.size * fy), cols.resize(cols.size * fx)
    if (len(in_shape) == 4 and len(out_shape) == 4 and tuple(in_shape[1:3]) == tuple(out_shape[1:3])
            and not hasattr(layer, "kernel_size") and not hasattr(layer, "pool_size")):
        return rows, cols  # pointwise: normalisation, activations, rescaling
    raise ValueError(f"Cannot tell where layer {layer.name!r} ({type(layer).__name__}) puts its "
                     f"outputs on the input image; feature_grid knows convolutions, pooling, "
                     f"padding, cropping, bilinear resizing and pointwise layers.")


def _model_grid(model: keras.Model, inputs: list[Grid]) -> Grid:
    if not hasattr(model, "_nodes_by_depth"):
        raise ValueError(f"{model.name!r} is not a functional Keras model; its feature grid "
                         f"cannot be traced.")
    grids = {id(t): g for t, g in zip(model.inputs, inputs)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            ins = [grids[id(t)] for t in node.input_tensors]
            grid = _layer_grid(node.operation, ins, node.input_tensors[0].shape,
                               node.outputs[0].shape)
            for t in node.outputs:
                grids[id(t)] = grid
    return grids[id(model.outputs[0])]


def feature_grid(model: keras.Model) -> Grid:
    """Cell centres of a functional model's (first) output on its square or rectangular input."""
    shape = model.inputs[0].shape
    return _model_grid(model, [(Axis(1.0, 0.0, int(shape[1])), Axis(1.0, 0.0, int(shape[2])))])


def interpolation_matrix(axis: Axis, image_size: int, size: int, smooth: float = 0.0) -> np.ndarray:
    """float32 [size, axis.size]: linear interpolation from feature cells to `size` output pixels
    spanning an input axis of `image_size` pixels, flat beyond the outermost cell centres; then, if
    `smooth` > 0, a Gaussian of that many feature cells (standard deviation), renormalised at the
    borders so every row still sums to 1."""
    pixels = (np.arange(size) + 0.5) * image_size / size - 0.5
    cells = np.clip((pixels - axis.offset) / axis.step, 0, axis.size - 1)
    low = np.minimum(np.floor(cells).astype(int), axis.size - 1)
    high = np.minimum(low + 1, axis.size - 1)
    frac = cells - low
    m = np.zeros((size, axis.size), np.float64)
    m[np.arange(size), low] += 1 - frac
    m[np.arange(size), high] += frac
    if smooth > 0:
        sigma = smooth * axis.step * size / image_size  # in output pixels
        d = np.arange(size)[:, None] - np.arange(size)[None, :]
        g = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= 3 * sigma)
        m = (g / g.sum(1, keepdims=True)) @ m
    return m.astype(np.float32)
