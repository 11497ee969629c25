
import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import metrics
from amgan_tf.attributes import Attribute, AttributeSchema
from amgan_tf.models import backbones
from amgan_tf.models.attribute_cnn import (AttributeCNN, AttributeCNNConfig, load_attribute_cnn,
                                           masked_classification_loss)

SCHEMA = AttributeSchema((Attribute("sleeve", ("short", "long", "none")),
                          Attribute("colour", ("red", "blue")),
                          Attribute("gender", ("f", "m"), manipulated=False)))
TINY = AttributeCNNConfig(image_size=32, widths=(8, 8, 16))


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return AttributeCNN(SCHEMA, TINY).build_on_zeros()


def test_logits_equal_mean_of_raw_cam(model):
    """Eq. 8 is exact: a class logit is the spatial mean of its CAM plus the head bias."""
    x = tf.random.uniform((3, 32, 32, 3), -1, 1, seed=1)
    feats = model.features(x)
    h, w = feats["conv5"].shape[1:3]
    assert (h, w) == (16, 16)  # output stride 2
    bias = model.head.bias.numpy()
    for column, value, slot in ((0, 2, 2), (1, 0, 3), (2, 1, 6)):
        raw = model.raw_cam(feats["conv5"], column, value).numpy()
        np.testing.assert_allclose(raw.mean(axis=(1, 2)) + bias[slot],
                                   feats["logits"][:, slot].numpy(), rtol=1e-4, atol=1e-4)


def test_cam_is_normalised_and_upsampled(model):
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=2)
    cam = model.cam(x, "sleeve", "long").numpy()
    assert cam.shape == (2, 32, 32)
    assert cam.min() >= 0 and cam.max() <= 1
    np.testing.assert_allclose(cam.reshape(2, -1).max(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(cam.reshape(2, -1).min(1), 0.0, atol=1e-6)
    per_example = model.cam(x, 0, tf.constant([1, 0])).numpy()
    np.testing.assert_allclose(per_example[0], cam[0], atol=1e-6)
    with pytest.raises(KeyError, match="valid values: short, long, none"):
        model.cam(x, "sleeve", "sleeveless")


def test_masked_loss_by_hand():
    logits = [tf.constant([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), tf.constant([[0.0, 0.0], [3.0, 0.0]])]
    labels = tf.constant([[0, 1], [-1, 1]])
    total, per = masked_classification_loss(logits, labels)
    ce0 = -np.log(np.exp(2) / (np.exp(2) + 2))  # only row 0 is labelled for attribute 0
    ce1 = np.mean([np.log(2), -np.log(1 / (np.exp(3) + 1))])
    np.testing.assert_allclose(per[0].numpy(), ce0, rtol=1e-6)
    np.testing.assert_allclose(per[1].numpy(), ce1, rtol=1e-6)
    np.testing.assert_allclose(total.numpy(), ce0 + ce1, rtol=1e-6)
    _, per = masked_classification_loss(logits, tf.constant([[-1, 1], [-1, 1]]))
    assert per[0].numpy() == 0.0  # nothing labelled: no loss, no NaN


def test_save_load_round_trip(model, tmp_path):
    model.save_to(str(tmp_path / "attribute_cnn"))
    loaded = load_attribute_cnn(str(tmp_path))  # a workdir holding attribute_cnn/
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=3)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    assert loaded.schema == SCHEMA and not loaded.trainable
    with pytest.raises(FileNotFoundError, match="train_classifier"):
        load_attribute_cnn(str(tmp_path / "nowhere"))


def test_resnet50_local_weights_offline(tmp_path):
    """The real ImageNet file is a Keras-2 style .h5 of the notop model; write one and load it."""
    keras.utils.set_random_seed(1)
    source = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    net = backbones.resnet50(64, weights=path)
    inner = [layer for layer in net.layers if layer.name.startswith("resnet50")][0]
    for a, b in zip(inner.weights, source.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="would download"):
        backbones.resnet50(64, weights="imagenet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backbones.resnet50(64, weights=str(tmp_path / "missing.h5"))


def test_resnet50_input_size_gives_larger_cams():
    m = AttributeCNN(SCHEMA, AttributeCNNConfig(image_size=32, backbone="resnet50", input_size=96))
    feats = m.build_on_zeros().features(tf.zeros((1, 32, 32, 3)))
    assert feats["conv5"].shape[1:] == (3, 3, 2048) and feats["avgpool"].shape == (1, 2048)


def test_small_resnet_rejects_strided_dilation():
    with pytest.raises(ValueError, match="both strided and dilated"):
        backbones.small_resnet(32, widths=(8, 8, 8, 8), strides=(1, 2, 2, 1), blocks=(1, 1, 1, 1),
                               dilations=(1, 2, 1, 1))


def test_metrics_by_hand():
    maps = np.zeros((2, 4, 4))
    maps[0, 1, 2] = 1.0
    maps[1, 3, 3] = 2.0
    maps[1, 0, 0] = 1.0
    regions = np.zeros((2, 4, 4))
    regions[:, :2, :] = 1
    np.testing.assert_array_equal(metrics.argmax_inside(maps, regions), [True, False])
    np.testing.assert_allclose(metrics.mass_inside(maps, regions), [1.0, 1 / 3])
    assert metrics.classification_accuracy([1, 2, 0], [1, -1, 1]) == 0.5
