"""Region-specific edits (PAPER.md Eq. 12, generalised) with masks whose answers are known.

A stand-in generator returns fixed attention maps: the sleeve edit marks a block peaking at 0.8
(values of 1.0 and 0.95 times the peak above the relative threshold, a rim of 0.5 times it
below), every other edit a uniform 0.6, and a flat colour z. Inside and outside are then both non-empty, and the full-resolution composite of an image of
another size and aspect ratio than the training size can be computed by hand.
"""

import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import manipulate_lib
from amgan_tf.data import synthfashion
from amgan_tf.edit import apply_edit, apply_stacked_edit, floored_attention
from amgan_tf.trained import TrainedGenerator

SCHEMA = synthfashion.schema()
SIZE = 32
Z_COLOUR = np.array([0.5, -0.5, 0.25], np.float32)


PEAK = 0.8  # a trained mask rarely reaches 1: the threshold is relative to the peak


def region_map() -> np.ndarray:
    a = np.zeros((SIZE, SIZE), np.float32)
    a[6:18, 4:20] = 0.5 * PEAK  # below the threshold: not part of the region
    a[8:16, 6:18] = 0.95 * PEAK
    a[10:14, 8:16] = PEAK
    return a


class MaskModel:
    """A trained model's interface (`amgan_tf.trained.TrainedGenerator`), with attention fixed
    per edited attribute."""

    schema = SCHEMA
    image_size = SIZE
    resize = "pad"
    edit = TrainedGenerator.edit  # the real one, on this model's attributes

    def __init__(self, attention_floor=0.0):
        self.attention_floor = attention_floor

    def attention_and_colour(self, x, m):
        assert x.shape[1:] == (SIZE, SIZE, 3)
        n = int(x.shape[0])
        attr, _ = SCHEMA.decode(m.numpy()[0])
        a = region_map() if attr == "sleeve" else np.full((SIZE, SIZE), 0.6, np.float32)
        a = tf.constant(np.broadcast_to(a[None, ..., None], (n, SIZE, SIZE, 1)))
        return a, tf.constant(np.broadcast_to(Z_COLOUR, (n, SIZE, SIZE, 3)))


def expected(image, mode, threshold=0.9):
    """The composite computed by hand: pad to a square, upsample the mask, crop, blend, round."""
    h, w = image.shape[:2]
    side = max(h, w)
    a1 = region_map() / PEAK
    a1 = np.where(a1 >= threshold, a1, 0.0)
    mask = a1 if mode == "inside" else (1.0 - a1) * 0.6
    full = tf.image.resize(mask[None, ..., None], (side, side), "bilinear").numpy()[0, ..., 0]
    top, left = (side - h) // 2, (side - w) // 2
    full = full[top:top + h, left:left + w]
    x = image.astype(np.float32) / 127.5 - 1.0
    out = full[..., None] * Z_COLOUR + (1.0 - full[..., None]) * x
    return np.clip(np.round((out + 1.0) * 127.5), 0, 255).astype(np.uint8), full


@pytest.mark.parametrize("mode", ["inside", "outside"])
def test_region_edit_at_another_size(mode):
    image = np.random.default_rng(3).integers(0, 256, (40, 56, 3), np.uint8)  # not 32x32, not square
    tool = manipulate_lib.Manipulator(MaskModel())
    region = manipulate_lib.Region("sleeve", "sleeveless", threshold=0.9, mode=mode)
    result, mask = tool.manipulate_image(image, manipulate_lib.Edit("colour", "orange"), region)
    want, want_mask = expected(image, mode)
    assert result.shape == image.shape and mask.shape == image.shape[:2]
    np.testing.assert_allclose(mask, want_mask, atol=1e-5)
    untouched, edited = want_mask == 0.0, want_mask > 0.5
    assert untouched.sum() > 50 and edited.sum() > 50  # both sides of the region are real
    np.testing.assert_array_equal(result[untouched], image[untouched])  # bit-identical outside
    assert np.all(np.any(result[edited] != image[edited], axis=-1))
    assert np.abs(result.astype(int) - want).max() <= 1  # the whole composite, rounding aside
    if mode == "inside":  # full-strength region pixels are exactly the edit's colour
        full = want_mask == 1.0
        assert full.sum() > 20
        np.testing.assert_array_equal(result[full], np.round((Z_COLOUR + 1) * 127.5)
                                      .astype(np.uint8)[None].repeat(full.sum(), 0))


def test_region_threshold_drops_weak_mask_values():
    image = np.full((32, 32, 3), 100, np.uint8)
    tool = manipulate_lib.Manipulator(MaskModel())
    edit = manipulate_lib.Edit("colour", "orange")
    _, strict = tool.manipulate_image(image, edit, manipulate_lib.Region("sleeve", "short", 0.9))
    _, loose = tool.manipulate_image(image, edit, manipulate_lib.Region("sleeve", "short", 0.4))
    assert (strict > 0).sum() < (loose > 0).sum()  # the rim (half the peak) joins at 0.4
    relative = region_map() / PEAK
    np.testing.assert_allclose(loose, np.where(relative >= 0.4, relative, 0), atol=1e-6)
    np.testing.assert_allclose(strict, np.where(relative >= 0.9, relative, 0), atol=1e-6)
    assert strict.max() == pytest.approx(1.0)  # the region's peak edits at full strength


def test_no_region_uses_the_edits_own_mask():
    image = np.full((32, 32, 3), 100, np.uint8)
    result, mask = manipulate_lib.Manipulator(MaskModel()).manipulate_image(
        image, manipulate_lib.Edit("colour", "orange"))
    np.testing.assert_allclose(mask, 0.6, atol=1e-6)
    want = np.round((0.6 * Z_COLOUR + 0.4 * (100 / 127.5 - 1) + 1) * 127.5)
    np.testing.assert_array_equal(result[0, 0], want.astype(np.uint8))


def test_attention_floor_known_values():
    a = tf.constant([0.0, 0.1, 0.2, 0.6, 1.0])
    np.testing.assert_allclose(floored_attention(a, 0.2).numpy(), [0, 0, 0, 0.5, 1], atol=1e-6)
    assert floored_attention(a, 0.0) is a  # the paper's mask, not even an op in the graph
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"attention floor must be in \[0, 1\)"):
            floored_attention(a, bad)


def test_attention_floor_in_plain_and_region_edits():
    """Uniform 0.6 with floor 0.5 edits at 0.2; floor 0.7 leaves the image bit-identical; a region
    is floored before it is scaled to its peak (rim 0.4 -> 0, 0.76 -> 0.52, 0.8 -> 0.6)."""
    image = np.full((32, 32, 3), 100, np.uint8)
    edit = manipulate_lib.Edit("colour", "orange")
    result, mask = manipulate_lib.Manipulator(MaskModel(0.5)).manipulate_image(image, edit)
    np.testing.assert_allclose(mask, 0.2, atol=1e-6)
    want = np.round((0.2 * Z_COLOUR + 0.8 * (100 / 127.5 - 1) + 1) * 127.5)
    np.testing.assert_array_equal(result[0, 0], want.astype(np.uint8))
    result, mask = manipulate_lib.Manipulator(MaskModel(0.7)).manipulate_image(image, edit)
    assert mask.max() == 0.0
    np.testing.assert_array_equal(result, image)
    _, region = manipulate_lib.Manipulator(MaskModel(0.5)).manipulate_image(
        image, edit, manipulate_lib.Region("sleeve", "short", 0.8))
    floored = np.maximum(region_map() - 0.5, 0) / 0.5
    relative = floored / floored.max()
    np.testing.assert_allclose(region, np.where(relative >= 0.8, relative, 0), atol=1e-6)
    assert (region > 0).sum() == 12 * 8  # 0.52 / 0.6 = 0.87 stays, the rim went


@pytest.mark.parametrize("region", [False, True])
def test_stacked_edit_applies_the_floor_alike(region):
    """The portable graphs' `apply_stacked_edit` and `apply_edit` agree with a floor."""
    model = MaskModel()
    image = np.random.default_rng(4).integers(0, 256, (1, 40, 56, 3), np.uint8)
    m = SCHEMA.encode("colour", "orange")[None].astype(np.float32)
    m_region = SCHEMA.encode("sleeve", "short")[None].astype(np.float32)

    def generate(x, ms):  # the stand-in's maps, one row per stacked copy
        return tuple(tf.concat(t, 0) for t in zip(
            *(model.attention_and_colour(x[i:i + 1], ms[i:i + 1]) for i in range(len(ms)))))

    ms = tf.constant(np.concatenate([m, m_region]) if region else m)
    m, m_region = tf.constant(m), tf.constant(m_region)
    got, got_mask = apply_stacked_edit(generate, image, ms, SIZE, 0.8, attention_floor=0.3)
    want, want_mask = apply_edit(model.attention_and_colour, image, m, SIZE,
                                 m_region if region else None, 0.8, attention_floor=0.3)
    np.testing.assert_allclose(got_mask.numpy(), want_mask.numpy(), atol=1e-6)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    raw, _ = apply_edit(model.attention_and_colour, image, m, SIZE,
                        m_region if region else None, 0.8)
    assert np.any(raw.numpy() != want.numpy())  # the floor mattered


class TopQuarterModel:
    """Attention 1 on the top quarter of the training square; records the square it is given."""

    schema = SCHEMA
    image_size = SIZE
    attention_floor = 0.0
    edit = TrainedGenerator.edit

    def __init__(self, resize):
        self.resize = resize
        self.seen = None

    def attention_and_colour(self, x, m):
        self.seen = x.numpy()[0]
        a = np.zeros((1, SIZE, SIZE, 1), np.float32)
        a[:, :SIZE // 4] = 1.0
        return tf.constant(a), tf.constant(np.broadcast_to(Z_COLOUR, (1, SIZE, SIZE, 3)))


STRIPES = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)


@pytest.mark.parametrize("resize", ["pad", "stretch", "crop"])
def test_edits_see_and_map_back_the_image_as_training_did(resize):
    """A 40 x 80 image of four vertical stripes (red, green, blue, white, 20 px each), edited by a
    model trained with each resize mode: the square it sees, and where the change lands."""
    image = np.repeat(STRIPES, 20, axis=0)[None].repeat(40, axis=0)
    model = TopQuarterModel(resize)
    result, mask = manipulate_lib.Manipulator(model).manipulate_image(
        image, manipulate_lib.Edit("colour", "orange"))
    seen = np.round((model.seen[SIZE // 2] + 1) * 127.5)  # the square's middle row
    stripe_of = {"pad": [0, 1, 2, 3], "stretch": [0, 1, 2, 3], "crop": [1, 1, 2, 2]}[resize]
    for i, col in enumerate((3, 11, 19, 27)):  # each quarter of the square, away from edges
        np.testing.assert_allclose(seen[col], STRIPES[stripe_of[i]], atol=2)
    top_rows = model.seen[:4]  # pad: the mean border colour above the image
    assert (np.ptp(top_rows, axis=(0, 1)).max() < 0.02) == (resize == "pad")  # 1 level
    changed = np.any(result != image, axis=-1)
    np.testing.assert_array_equal(result[~changed], image[~changed])
    if resize == "pad":  # the top quarter of the 80 px square is padding: nothing of the image
        assert mask[3:].max() == 0.0 and mask.max() < 0.6
    elif resize == "stretch":  # the top quarter of the image, across its whole width
        assert mask[:9].min() == 1.0 and mask[11:].max() == 0.0
    else:  # the top quarter of the central 40 x 40 square; the side stripes never change
        assert mask[:9, 20:60].min() == 1.0 and mask[11:].max() == 0.0
        assert mask[:, :20].max() == 0.0 and mask[:, 60:].max() == 0.0
        assert not changed[:, :20].any() and not changed[:, 60:].any()
    assert changed.sum() == (mask > 0.002).sum()  # > half a level of change shows


def test_output_paths_keep_inputs_apart(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    inputs = [str(folder / n) for n in ("a.jpg", "a.png", "b.jpg")]
    out = manipulate_lib.output_paths(inputs, str(folder), "out")
    assert out == ["out/a_jpg.png", "out/a_png.png", "out/b.png"]
    assert manipulate_lib.output_paths([str(folder / "a.jpg")], str(folder / "a.jpg"),
                                       "x.png") == ["x.png"]
