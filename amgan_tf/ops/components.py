"""In-graph connected components and attention-box cropping for AMGAN's crop critic D_C.

tensorflow-addons (whose ``connected_components`` AMGAN implementations used) no longer imports
with TF 2.21, so this is a pure-TF replacement that runs eagerly, in ``tf.function``, under XLA
(``jit_compile=True``) and on GPU: no numpy, no ``py_function``.

Labelling is label equivalence (max-label variant): every foreground pixel starts with a unique
id and its label always names a pixel of the same component. Each loop iteration
  1. propagates: each pixel takes the max label of its neighbourhood (3x3 max-pool for
     8-connectivity, a cross for 4), masked by the foreground;
  2. hooks: the pixel a label names (its "root") also takes that max (a segment max), so one
     boundary contact relabels a whole tree instead of a single pixel;
  3. pointer-jumps a few times: every pixel reads the label of the pixel its label names.
Plain propagation needs ~H*W/2 steps for a snake-shaped mask; this needed 4-6 iterations for
random and snake masks at 64x64 and 128x128. Labels only grow and every label names a pixel
whose label is at least as large, so the loop stops exactly when all labels are local maxima,
i.e. constant per component and equal to the component's largest id.
"""

from __future__ import annotations

import tensorflow as tf

# Pointer jumps per iteration: cheap gathers that shorten label chains between convergence checks.
_JUMPS_PER_ITERATION = 4


def _as_bool_mask(mask) -> tf.Tensor:
    mask = tf.convert_to_tensor(mask)
    return mask if mask.dtype == tf.bool else tf.not_equal(mask, tf.zeros_like(mask))


def _propagate(labels: tf.Tensor, fg: tf.Tensor, connectivity: int) -> tf.Tensor:
    """Neighbourhood max of float labels [B,H,W,1], masked by the foreground."""
    if connectivity == 8:
        spread = tf.nn.max_pool2d(labels, ksize=3, strides=1, padding="SAME")
    else:
        p = tf.pad(labels, [[0, 0], [1, 1], [1, 1], [0, 0]])
        spread = tf.reduce_max(tf.stack([labels, p[:, :-2, 1:-1], p[:, 2:, 1:-1],
                                         p[:, 1:-1, :-2], p[:, 1:-1, 2:]]), axis=0)
    return spread * fg


def _connected_components_with_iterations(mask, connectivity: int = 8, hook: bool = True,
                                          jumps: int = _JUMPS_PER_ITERATION):
    """(labels int32 [B,H,W], loop iterations int32); knobs and count exist for benchmarking."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    fg_bool = _as_bool_mask(mask)
    fg_bool.shape.assert_has_rank(3)
    shape = tf.shape(fg_bool)
    b, h, w = shape[0], shape[1], shape[2]
    n = h * w
    fg_flat = tf.cast(tf.reshape(fg_bool, [b, n]), tf.float32)
    # Labels are float32 (max-pool and segment-max support it on every device; ids <= 2**24 are
    # exact). id = n - raster index, so a component's final label names its first pixel in
    # raster order, which is also the order scipy.ndimage.label numbers components in.
    ids = tf.cast(n - tf.range(n), tf.float32)
    labels = ids[None] * fg_flat  # [B,n]
    offsets = n * tf.range(b)[:, None]

    def pointee(lab):
        """Flat index (within the image) of the pixel a label names; background maps to n-1."""
        return tf.clip_by_value(n - tf.cast(lab, tf.int32), 0, n - 1)

    def body(i, lab, _):
        spread = tf.reshape(
            _propagate(tf.reshape(lab, [b, h, w, 1]), tf.reshape(fg_flat, [b, h, w, 1]),
                       connectivity), [b, n])
        new = tf.maximum(lab, spread)
        if hook:
            roots = tf.reshape(pointee(lab) + offsets, [-1])
            hooked = tf.math.unsorted_segment_max(tf.reshape(spread, [-1]), roots, b * n)
            new = tf.maximum(new, tf.reshape(hooked, [b, n]))  # empty segments give -inf/lowest
        for _ in range(jumps):
            new = tf.gather(new, pointee(new), batch_dims=1)
        new = new * fg_flat
        return i + 1, new, tf.reduce_any(tf.not_equal(new, lab))

    # Each iteration moves the largest label at least one pixel further, so n bounds the loop.
    iterations, labels, _ = tf.while_loop(
        lambda i, lab, changed: changed, body, (tf.constant(0), labels, tf.constant(True)),
        maximum_iterations=n)
    return tf.reshape(tf.cast(labels, tf.int32), [b, h, w]), iterations


def connected_components(mask, connectivity: int = 8) -> tf.Tensor:
    """Label connected components of a batch of masks.

    Args:
        mask: bool or 0/1 [B,H,W]; non-zero is foreground.
        connectivity: 8 (diagonal neighbours connect) or 4.

    Returns:
        int32 [B,H,W]: 0 on background; a component's id is ``H*W - r`` where ``r`` is the raster
        (row-major) index of its first pixel, so ids are unique, positive, not consecutive, and
        decrease in the order scipy.ndimage.label numbers components.
    """
    return _connected_components_with_iterations(mask, connectivity)[0]


def component_sizes(labels: tf.Tensor) -> tf.Tensor:
    """int32 [B,H,W]: pixel count of the component each pixel belongs to (0 on background)."""
    labels = tf.convert_to_tensor(labels, tf.int32)
    shape = tf.shape(labels)
    b, n = shape[0], shape[1] * shape[2]
    flat = tf.reshape(labels, [b, n])
    # One segment per (image, id); ids are in [0, n].
    seg = flat + (n + 1) * tf.range(b)[:, None]
    counts = tf.math.unsorted_segment_sum(tf.ones_like(flat), seg, b * (n + 1))
    sizes = tf.gather(counts, seg) * tf.cast(flat > 0, tf.int32)
    return tf.reshape(sizes, shape)


def largest_component(mask, connectivity: int = 8) -> tf.Tensor:
    """bool [B,H,W]: per image, the component with the most pixels (all False if empty).

    Ties go to the component whose first pixel comes first in raster order (the highest id),
    i.e. the one scipy.ndimage.label numbers lowest, so the choice is deterministic.
    """
    labels = connected_components(mask, connectivity)
    sizes = component_sizes(labels)
    biggest = tf.reduce_max(sizes, axis=[1, 2], keepdims=True)
    candidates = tf.logical_and(tf.equal(sizes, biggest), labels > 0)
    chosen = tf.reduce_max(tf.where(candidates, labels, 0), axis=[1, 2], keepdims=True)
    return tf.logical_and(tf.equal(labels, chosen), labels > 0)


def pixel_boxes(mask) -> tf.Tensor:
    """int32 [B,4]: inclusive (y_min, x_min, y_max, x_max) of each mask's foreground; -1s if empty."""
    fg = _as_bool_mask(mask)
    shape = tf.shape(fg)
    h, w = shape[1], shape[2]
    rows = tf.reduce_any(fg, axis=2)  # [B,H]
    cols = tf.reduce_any(fg, axis=1)  # [B,W]
    ry, rx = tf.range(h)[None], tf.range(w)[None]
    box = tf.stack([tf.reduce_min(tf.where(rows, ry, h), axis=1),
                    tf.reduce_min(tf.where(cols, rx, w), axis=1),
                    tf.reduce_max(tf.where(rows, ry, -1), axis=1),
                    tf.reduce_max(tf.where(cols, rx, -1), axis=1)], axis=1)
    empty = tf.logical_not(tf.reduce_any(rows, axis=1))
    return tf.where(empty[:, None], -1, box)


def attention_boxes(attention, threshold_ratio: float = 0.5, connectivity: int = 8) -> tf.Tensor:
    """float32 [B,4] crop_and_resize boxes around the largest high-attention component.

    Foreground is ``a >= threshold_ratio * max(a)`` per image (only where ``max(a) > 0``). The
    box is in *pixel-centre* convention: crop_and_resize samples rows ``y1*(H-1) .. y2*(H-1)``,
    so ``y1 = y_min/(H-1)``, ``y2 = y_max/(H-1)`` (same for x) makes the first/last samples land
    exactly on the centres of the component's extreme pixels; with output size equal to the box
    size (y_max-y_min+1) the crop is an exact copy of those pixels, and nothing is sampled
    outside the image (use crop_to_boxes, which guards against crop_and_resize's float
    rounding at the last row/column). A size-1 extent gives y1 == y2 (a constant row). Images whose attention
    is all zero get the full image [0,0,1,1]. No gradient flows to ``attention``.
    """
    a = tf.stop_gradient(tf.convert_to_tensor(attention, tf.float32))
    if a.shape.rank == 4:
        a = a[..., 0]
    peak = tf.reduce_max(a, axis=[1, 2], keepdims=True)
    fg = tf.logical_and(a >= threshold_ratio * peak, peak > 0)
    box = pixel_boxes(largest_component(fg, connectivity))
    shape = tf.shape(a)
    h1 = tf.cast(tf.maximum(shape[1] - 1, 1), tf.float32)
    w1 = tf.cast(tf.maximum(shape[2] - 1, 1), tf.float32)
    scaled = tf.cast(box, tf.float32) / tf.stack([h1, w1, h1, w1])
    full = tf.constant([0.0, 0.0, 1.0, 1.0])
    return tf.stop_gradient(tf.where(box[:, :1] < 0, full, scaled))


def crop_to_boxes(images, boxes, size: int, xla_compatible: bool = False) -> tf.Tensor:
    """float32 [B,size,size,C] bilinear crops of ``images`` [B,H,W,C] at ``boxes`` [B,4].

    One box per image, crop_and_resize's box convention. Differentiable with respect to
    ``images``, which is how the fake image's gradient reaches G through D_C. Boxes are clipped
    to [0,1] and samples clamped to the image: crop_and_resize computes a box ending exactly at
    the last row/column (y2 = 1) as slightly beyond it for ~3% of (size, extent) pairs and then
    returns its extrapolation value 0 for that whole row, so the images are edge-padded by one
    pixel first. ``tf.image.crop_and_resize`` has no XLA kernel; ``xla_compatible=True``
    computes the same samples with gathers for use inside ``tf.function(jit_compile=True)``.
    """
    images = tf.convert_to_tensor(images)
    boxes = tf.clip_by_value(tf.convert_to_tensor(boxes, tf.float32), 0.0, 1.0)
    shape = tf.shape(images)
    if not xla_compatible:
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        h1 = tf.cast(shape[1] - 1, tf.float32)
        w1 = tf.cast(shape[2] - 1, tf.float32)
        scale = tf.stack([h1, w1, h1, w1])
        padded_boxes = (boxes * scale + 1.0) / (scale + 2.0)
        return tf.image.crop_and_resize(padded, padded_boxes, tf.range(shape[0]), [size, size],
                                        method="bilinear")
    images = tf.cast(images, tf.float32)
    y = _sample_positions(boxes[:, 0], boxes[:, 2], shape[1], size)  # [B,size]
    x = _sample_positions(boxes[:, 1], boxes[:, 3], shape[2], size)

    def corners(pos, extent):
        pos = tf.clip_by_value(pos, 0.0, tf.cast(extent - 1, tf.float32))
        lo = tf.floor(pos)
        return tf.cast(lo, tf.int32), tf.cast(tf.math.ceil(pos), tf.int32), pos - lo

    top, bottom, dy = corners(y, shape[1])
    left, right, dx = corners(x, shape[2])
    rows_t = tf.gather(images, top, axis=1, batch_dims=1)  # [B,size,W,C]
    rows_b = tf.gather(images, bottom, axis=1, batch_dims=1)

    def blend_columns(rows):  # [B,size,size,C], crop_and_resize's interpolation order
        l, r = (tf.gather(rows, c, axis=2, batch_dims=1) for c in (left, right))
        return l + (r - l) * dx[:, None, :, None]

    upper, lower = blend_columns(rows_t), blend_columns(rows_b)
    return upper + (lower - upper) * dy[:, :, None, None]


def _sample_positions(lo, hi, extent, size: int) -> tf.Tensor:
    """[B,size] pixel-centre sample positions of crop_and_resize along one axis."""
    scale = tf.cast(extent - 1, tf.float32)
    if size == 1:
        return (0.5 * (lo + hi) * scale)[:, None]
    step = (hi - lo) * scale / (size - 1)
    return lo[:, None] * scale + tf.range(size, dtype=tf.float32)[None] * step[:, None]
