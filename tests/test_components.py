"""In-graph connected components and attention boxes, checked against scipy.ndimage."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorflow as tf

from amgan_tf.ops import components as C

STRUCTURE = {8: np.ones((3, 3), int), 4: None}  # None = scipy's default cross


def scipy_label(mask, connectivity):
    return ndi.label(mask, structure=STRUCTURE[connectivity])


def assert_same_partition(ours, mask, connectivity):
    """Our labels induce the same partition as scipy's (a bijection between label sets)."""
    for lab, m in zip(np.asarray(ours), np.asarray(mask, bool)):
        ref, count = scipy_label(m, connectivity)
        np.testing.assert_array_equal(lab == 0, ref == 0)
        assert (lab[m] > 0).all()
        pairs = set(zip(lab[m].tolist(), ref[m].tolist()))
        assert len(pairs) == count == len(np.unique(lab[m]))


def snake(h, w):
    """Boustrophedon path: rows joined at alternating ends, one component ~h*w/2 pixels long."""
    m = np.zeros((h, w), bool)
    m[0::2] = True
    for r in range(1, h, 2):
        m[r, w - 1 if (r // 2) % 2 == 0 else 0] = True
    return m


def spiral(h, w):
    """Rectangular spiral corridor with one-pixel walls (another long geodesic path)."""
    m = np.zeros((h, w), bool)
    y, x, dy, dx = 0, 0, 0, 1
    m[0, 0] = True
    for _ in range(2 * h * w):
        for _turn in range(2):
            ny, nx = y + 2 * dy, x + 2 * dx
            if 0 <= ny < h and 0 <= nx < w and not m[ny, nx]:
                break
            dy, dx = dx, -dy
        else:
            return m
        m[y + dy, x + dx] = m[ny, nx] = True
        y, x = ny, nx
    return m


def special_masks(h=24, w=24):
    def blank():
        return np.zeros((h, w), bool)

    several = blank()
    several[2:5, 2:6] = several[10:12, 3] = several[15:20, 15:22] = several[8, 20] = True
    borders = blank()
    borders[0, :5] = borders[:4, -1] = borders[-1, -1] = borders[-3:, 0] = True
    borders[-1, 5:10] = True
    diagonal = blank()
    np.fill_diagonal(diagonal, True)  # one component for 8-connectivity, h for 4
    single = blank()
    single[7, 11] = True
    full = np.ones((h, w), bool)
    checker = (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(bool)
    return np.stack([several, borders, diagonal, single, blank(), full, checker,
                     snake(h, w), spiral(h, w)])


@pytest.mark.parametrize("connectivity", [8, 4])
@pytest.mark.parametrize("shape", [(16, 16), (17, 23), (40, 9)])
def test_random_masks_match_scipy(shape, connectivity):
    rng = np.random.default_rng(hash(shape) % 1000 + connectivity)
    density = np.repeat([0.2, 0.45, 0.6], 2)[:, None, None]
    mask = rng.random((len(density), *shape)) < density
    assert_same_partition(C.connected_components(mask, connectivity), mask, connectivity)


@pytest.mark.parametrize("connectivity", [8, 4])
def test_special_masks_match_scipy(connectivity):
    mask = special_masks()
    labels = C.connected_components(mask.astype(np.float32), connectivity).numpy()
    assert_same_partition(labels, mask, connectivity)
    assert labels.dtype == np.int32
    assert (labels[4] == 0).all() and (labels[5] == 24 * 24).all()
    assert len(np.unique(labels[2][mask[2]])) == (1 if connectivity == 8 else 24)


def test_ids_name_first_pixel_in_raster_order():
    mask = special_masks()[:2]
    labels = C.connected_components(mask).numpy()
    for lab, m in zip(labels, mask):
        ref, count = scipy_label(m, 8)
        for k in range(1, count + 1):
            first = np.flatnonzero(ref == k)[0]
            assert (lab[ref == k] == m.size - first).all()


def test_long_paths_converge_in_few_iterations():
    mask = np.stack([snake(64, 64), spiral(64, 64)])
    labels, iterations = C._connected_components_with_iterations(mask)
    assert_same_partition(labels, mask, 8)
    assert int(iterations) < 20  # plain propagation would need ~2000


def test_rejects_other_connectivity():
    with pytest.raises(ValueError):
        C.connected_components(np.ones((1, 3, 3), bool), connectivity=6)


def test_component_sizes_and_largest_match_scipy():
    rng = np.random.default_rng(1)
    mask = np.concatenate([rng.random((4, 19, 21)) < 0.45, special_masks(19, 21)[:5]])
    labels = C.connected_components(mask)
    sizes = C.component_sizes(labels).numpy()
    largest = C.largest_component(mask).numpy()
    for m, s, big in zip(mask, sizes, largest):
        ref, count = scipy_label(m, 8)
        counts = np.bincount(ref.ravel(), minlength=count + 1)
        np.testing.assert_array_equal(s, np.where(m, counts[ref], 0))
        if count == 0:
            assert not big.any()
            continue
        counts[0] = 0
        np.testing.assert_array_equal(big, ref == np.argmax(counts))  # ties: lowest scipy label


def test_largest_component_tie_goes_to_first_in_raster_order():
    mask = np.zeros((1, 10, 10), bool)
    mask[0, 6:8, 1:3] = mask[0, 1:3, 7:9] = True  # equal sizes; the second starts earlier
    expected = np.zeros_like(mask)
    expected[0, 1:3, 7:9] = True
    np.testing.assert_array_equal(C.largest_component(mask), expected)


def test_pixel_boxes():
    mask = special_masks()
    boxes = C.pixel_boxes(mask).numpy()
    for m, box in zip(mask, boxes):
        if not m.any():
            np.testing.assert_array_equal(box, [-1, -1, -1, -1])
            continue
        ys, xs = np.nonzero(m)
        np.testing.assert_array_equal(box, [ys.min(), xs.min(), ys.max(), xs.max()])


def smooth_attention(rng, b, h, w):
    a = ndi.gaussian_filter(rng.random((b, h, w)), sigma=(0, 2, 2))
    a -= a.min(axis=(1, 2), keepdims=True)
    return (a / a.max(axis=(1, 2), keepdims=True)).astype(np.float32)


def test_attention_boxes_match_scipy_largest_component():
    rng = np.random.default_rng(2)
    att = smooth_attention(rng, 6, 20, 28)
    att[-1] = 0.0  # empty attention -> full image
    boxes = C.attention_boxes(att[..., None]).numpy()
    np.testing.assert_allclose(C.attention_boxes(att), boxes)
    for a, box in zip(att[:-1], boxes[:-1]):
        ref, _ = scipy_label(a >= 0.5 * a.max(), 8)
        ys, xs = np.nonzero(ref == np.argmax(np.bincount(ref.ravel())[1:]) + 1)
        expected = np.array([ys.min() / 19, xs.min() / 27, ys.max() / 19, xs.max() / 27])
        np.testing.assert_allclose(box, expected, rtol=1e-6)
    np.testing.assert_array_equal(boxes[-1], [0, 0, 1, 1])


def coordinate_image_and_attention():
    """Image whose channels are (row, col); attention whose largest blob spans rows 5..12, cols 3..10."""
    h, w = 32, 30
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    image = np.stack([yy, xx], -1).astype(np.float32)[None].repeat(2, 0)
    att = np.zeros((2, h, w, 1), np.float32)
    att[0, 5:13, 3:11] = 0.6
    att[0, 7, 6] = 1.0
    att[0, 20:23, 20:25] = 0.9  # smaller, separate component
    att[0, 28, 2] = 0.2  # below threshold
    return image, att  # att[1] is empty


@pytest.mark.parametrize("xla_compatible", [False, True])
def test_crop_of_box_returns_component_pixels_exactly(xla_compatible):
    image, att = coordinate_image_and_attention()
    boxes = C.attention_boxes(att)
    np.testing.assert_array_equal(C.pixel_boxes(C.largest_component(att[..., 0] >= 0.5))[0],
                                  [5, 3, 12, 10])
    crop = C.crop_to_boxes(image, boxes, 8, xla_compatible=xla_compatible).numpy()
    np.testing.assert_allclose(crop[0], image[0, 5:13, 3:11], atol=1e-4)
    np.testing.assert_allclose(crop[0, [0, 0, -1, -1], [0, -1, 0, -1]],
                               [[5, 3], [5, 10], [12, 3], [12, 10]], atol=1e-4)
    np.testing.assert_array_equal(boxes[1], [0, 0, 1, 1])
    full = C.crop_to_boxes(image[1:], boxes[1:], 32, xla_compatible=xla_compatible).numpy()
    np.testing.assert_allclose(full[0, [0, -1], [0, -1]], [[0, 0], [31, 29]], atol=1e-4)


@pytest.mark.parametrize("xla_compatible", [False, True])
def test_crop_touching_last_row_and_column_has_no_zero_extrapolation(xla_compatible):
    # Raw crop_and_resize puts the last sample of this box just past pixel 13 (float rounding)
    # and returns 0 there; crop_to_boxes must return the pixels themselves.
    image = np.arange(1, 14 * 14 + 1, dtype=np.float32).reshape(1, 14, 14, 1)
    att = np.zeros((1, 14, 14), np.float32)
    att[0, 6:, 6:] = 1.0
    boxes = C.attention_boxes(att)
    np.testing.assert_allclose(boxes, [[6 / 13, 6 / 13, 1, 1]])
    crop = C.crop_to_boxes(image, boxes, 8, xla_compatible=xla_compatible)
    np.testing.assert_allclose(crop, image[:, 6:, 6:], rtol=1e-5)


def test_gather_crop_matches_crop_and_resize():
    rng = np.random.default_rng(3)
    image = rng.random((3, 20, 17, 2)).astype(np.float32)
    boxes = np.array([[0.1, 0.2, 0.7, 0.9], [0.0, 0.3, 0.5, 0.95], [0.4, 0.5, 0.4, 0.5]],
                     np.float32)  # ordinary, touching the top edge, degenerate
    for size in (1, 6):
        reference = tf.image.crop_and_resize(image, boxes, [0, 1, 2], [size, size])
        np.testing.assert_allclose(C.crop_to_boxes(image, boxes, size), reference, atol=1e-5)
        np.testing.assert_allclose(C.crop_to_boxes(image, boxes, size, xla_compatible=True),
                                   reference, atol=1e-5)
    outside = np.array([[-0.2, 0.3, 0.5, 1.3]], np.float32)  # clipped to the image in both paths
    np.testing.assert_allclose(C.crop_to_boxes(image[:1], outside, 5),
                               C.crop_to_boxes(image[:1], outside, 5, xla_compatible=True),
                               atol=1e-5)


@pytest.mark.parametrize("xla_compatible", [False, True])
def test_gradient_reaches_images_not_attention(xla_compatible):
    image, att = coordinate_image_and_attention()
    image, att = tf.constant(image), tf.constant(att)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([image, att])
        crop = C.crop_to_boxes(image * att, C.attention_boxes(att), 8,
                               xla_compatible=xla_compatible)
        loss = tf.reduce_sum(crop)
        box_loss = tf.reduce_sum(C.attention_boxes(att))
    box_grad = tape.gradient(box_loss, att)
    assert box_grad is None or not np.any(box_grad)
    assert np.any(tape.gradient(loss, image))


def test_xla_and_graph_match_eager():
    rng = np.random.default_rng(4)
    att = smooth_attention(rng, 4, 24, 24)[..., None]
    att[1] = 0.0
    images = rng.random((4, 24, 24, 3)).astype(np.float32)
    mask = np.concatenate([rng.random((3, 24, 24)) < 0.5, special_masks()])

    def run(mask, att, images, xla_compatible):
        boxes = C.attention_boxes(att)
        return (C.connected_components(mask), C.connected_components(mask, 4),
                C.largest_component(mask), boxes,
                C.crop_to_boxes(images, boxes, 12, xla_compatible=xla_compatible))

    eager = run(mask, att, images, False)
    xla = tf.function(lambda *a: run(*a, True), jit_compile=True)(mask, att, images)
    graph = tf.function(lambda *a: run(*a, False))(mask, att, images)
    for e, x, g in zip(eager, xla, graph):
        np.testing.assert_allclose(x, e, atol=1e-5)
        np.testing.assert_allclose(g, e, atol=1e-5)
