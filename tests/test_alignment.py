"""Feature-grid tracing checked against measured receptive-field centres, and CAM placement."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from amgan_tf.attributes import Attribute, AttributeSchema
from amgan_tf.models import alignment, backbones
from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig


def _measured_centres(model: keras.Model, n: int) -> tuple[float, float]:
    """Centroid of the response of an interior cell (i, j) to each input pixel, for a linear net of
    box filters whose receptive-field weights are symmetric about the cell's true centre. Measured
    with one forward pass over every one-pixel image (TF's CPU gradient kernels for these
    single-channel strided ops crash intermittently)."""
    out_h, out_w = model.outputs[0].shape[1:3]
    i, j = out_h // 2, out_w // 2
    impulses = np.eye(n * n, dtype=np.float32).reshape(n * n, n, n, 1)
    g = model.predict(impulses, batch_size=512, verbose=0)[:, i, j, 0].reshape(n, n)
    pixels = np.arange(n)
    return (float((g.sum(1) * pixels).sum() / g.sum()) - i,
            float((g.sum(0) * pixels).sum() / g.sum()) - j)


def _box(**kwargs):
    return keras.layers.Conv2D(1, use_bias=False, kernel_initializer="ones", **kwargs)


CHAINS = {
    "stride2_same_even": (32, [_box(kernel_size=3, strides=2, padding="same")]),
    "stride2_same_odd": (33, [_box(kernel_size=3, strides=2, padding="same")]),
    "stem_like": (64, [_box(kernel_size=3, strides=2, padding="same"),
                       _box(kernel_size=3, padding="same"),
                       _box(kernel_size=3, strides=2, padding="same")]),
    "resnet_stem": (64, [keras.layers.ZeroPadding2D(3), _box(kernel_size=7, strides=2),
                         keras.layers.ZeroPadding2D(1),
                         keras.layers.AveragePooling2D(3, strides=2),
                         _box(kernel_size=1, strides=2)]),
    "dilated_valid_crop": (40, [_box(kernel_size=3, dilation_rate=2),
                                keras.layers.Cropping2D(((1, 2), (3, 0))),
                                _box(kernel_size=4, strides=2, padding="same"),
                                keras.layers.AveragePooling2D(2, padding="same")]),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_grid_matches_receptive_field_centre(name):
    n, chain = CHAINS[name]
    inputs = keras.Input((n, n, 1))
    x = inputs
    for layer in chain:
        x = layer(x)
    model = keras.Model(inputs, x)
    rows, cols = alignment.feature_grid(model)
    out_h, out_w = model.outputs[0].shape[1:3]
    assert (rows.size, cols.size) == (out_h, out_w)
    ci, cj = _measured_centres(model, n)  # centre of cell (i, j) minus (i, j)
    i, j = out_h // 2, out_w // 2
    assert rows.offset + rows.step * i - i == pytest.approx(ci, abs=1e-5)
    assert cols.offset + cols.step * j - j == pytest.approx(cj, abs=1e-5)


def test_known_backbone_grids():
    """The default small ResNet's cells are centred 0.5 px below and right of where a plain
    resize puts them; Keras' ResNet-50 at 224 px centres cell i on pixel 32 i, not 32 i + 15.5."""
    rows, cols = alignment.feature_grid(backbones.small_resnet(64, strides=(1, 2, 1)))
    assert rows == cols == alignment.Axis(4.0, 2.0, 16)  # stride-2 3x3 path at 3, 1x1 shortcut at 1
    rows, _ = alignment.feature_grid(backbones.small_resnet(64))
    assert rows == alignment.Axis(2.0, 1.0, 32)
    rows, _ = alignment.feature_grid(
        keras.applications.ResNet50(include_top=False, weights=None, input_shape=(224, 224, 3)))
    assert rows == alignment.Axis(32.0, 0.0, 7)
    rows, _ = alignment.feature_grid(backbones.resnet50(128, input_size=224))
    ratio = 128 / 224  # the Resizing layer maps 224-px pixel q to 128-px pixel (q + .5) r - .5
    assert rows.step == pytest.approx(32 * ratio) and rows.offset == pytest.approx(0.5 * ratio - 0.5)


def test_interpolation_matches_tf_resize_on_its_own_grid():
    """With the grid a plain resize assumes, the matrix reproduces tf.image.resize (bilinear)."""
    raw = np.random.default_rng(0).normal(size=(1, 8, 8, 1)).astype(np.float32)
    axis = alignment.Axis(4.0, 1.5, 8)
    m = alignment.interpolation_matrix(axis, 32, 32)
    np.testing.assert_allclose(m.sum(1), 1.0, rtol=1e-6)
    ours = m @ raw[0, ..., 0] @ m.T
    np.testing.assert_allclose(ours, tf.image.resize(raw, (32, 32))[0, ..., 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(alignment.interpolation_matrix(alignment.Axis(1.0, 0.0, 5), 5, 5),
                               np.eye(5), atol=1e-7)


def test_smoothing_is_a_normalised_gaussian_of_feature_cells():
    axis = alignment.Axis(2.0, 1.0, 16)
    plain = alignment.interpolation_matrix(axis, 32, 32)
    smooth = alignment.interpolation_matrix(axis, 32, 32, smooth=1.0)
    np.testing.assert_allclose(smooth.sum(1), 1.0, rtol=1e-6)
    # One cell (2 px) of standard deviation: an impulse at cell 8 (pixel 17) spreads accordingly.
    column = smooth[:, 8]
    assert column.argmax() == 17
    mean = (np.arange(32) * column).sum() / column.sum()
    spread = np.sqrt(((np.arange(32) - mean) ** 2 * column).sum() / column.sum())
    plain_spread = np.sqrt(((np.arange(32) - 17) ** 2 * plain[:, 8]).sum() / plain[:, 8].sum())
    assert mean == pytest.approx(17.0, abs=1e-6)
    assert spread ** 2 == pytest.approx(plain_spread ** 2 + 2.0 ** 2, rel=0.05)


def test_cam_peak_lands_on_the_cell_centre():
    """A one-cell feature impulse peaks on the pixel that cell is centred on."""
    schema = AttributeSchema((Attribute("sleeve", ("short", "long")),))
    model = AttributeCNN(schema, AttributeCNNConfig(image_size=32, widths=(4, 4, 4),
                                                    cam_smoothing=0.0)).build_on_zeros()
    rows, cols = model.grid
    assert rows == cols == alignment.Axis(2.0, 1.0, 16)
    conv5 = np.zeros((1, 16, 16, 4), np.float32)
    conv5[0, 5, 9, :] = 1.0
    model.head.kernel.assign(np.ones_like(model.head.kernel.numpy()))
    cam = model.cam(None, "sleeve", "long", size=32, conv5=tf.constant(conv5)).numpy()[0]
    assert np.unravel_index(cam.argmax(), cam.shape) == (1 + 2 * 5, 1 + 2 * 9)
    assert cam.max() == pytest.approx(1.0)
    assert cam[11, 18] == pytest.approx(0.5)  # half-way to the next cell, linearly
    model.config.cam_smoothing = 1.0
    smooth = model.cam(None, "sleeve", "long", size=32, conv5=tf.constant(conv5)).numpy()[0]
    assert np.unravel_index(smooth.argmax(), smooth.shape) == (11, 19)
    assert smooth[11, 18] > 0.8  # relative to its peak, wider than linear interpolation alone
    with pytest.raises(ValueError, match="cam_smoothing must be >= 0"):
        AttributeCNNConfig(cam_smoothing=-1.0)


def test_unknown_spatial_layer_is_named():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t[:, ::2, ::2], name="subsample")(inputs)
    with pytest.raises(ValueError, match="'subsample'.*Lambda"):
        alignment.feature_grid(keras.Model(inputs, x))
