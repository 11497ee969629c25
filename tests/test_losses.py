"""Losses against hand-computed values (numbers derived in the comments or by tiny numpy references)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import losses


def _np(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


# ---- adversarial ----------------------------------------------------------------------------------
def test_wgan_signs_and_patch_maps():
    # Critic scores real 2, fake -1: loss = -1 - 2 = -3 < 0 (a good critic has negative loss).
    d = losses.wgan_discriminator_loss(tf.constant([2.0]), tf.constant([-1.0]))
    np.testing.assert_allclose(_np(d), [-3.0])
    # PatchGAN maps [B,2,2,1]: per-example means 2.5 / 0 (real) and 1 / 0.5 (fake).
    real = tf.constant([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    fake = tf.constant([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    real, fake = tf.reshape(real, [2, 2, 2, 1]), tf.reshape(fake, [2, 2, 2, 1])
    np.testing.assert_allclose(_np(losses.wgan_discriminator_loss(real, fake)), [-1.5, 0.5])
    np.testing.assert_allclose(_np(losses.wgan_generator_loss(fake)), [-1.0, -0.5])
    # Generator loss falls as D(fake) rises.
    g_lo, g_hi = losses.wgan_generator_loss(tf.constant([0.0])), losses.wgan_generator_loss(
        tf.constant([5.0]))
    assert _np(g_hi)[0] < _np(g_lo)[0]
    assert d.dtype == tf.float32 and d.shape == (1,)


def test_interpolates():
    x_real = tf.fill([2, 1, 1, 2], 4.0)
    x_fake = tf.zeros([2, 1, 1, 2])
    out = losses.interpolates(x_real, x_fake, tf.constant([0.25, 1.0]))
    np.testing.assert_allclose(_np(out)[:, 0, 0, :], [[1.0, 1.0], [4.0, 4.0]])


_W = np.array([[1.0, 2.0], [2.0, 0.0]], np.float32).reshape(1, 2, 2, 1)  # ||w|| = 3


def test_gp_linear_critic_any_alpha_and_patch_map():
    # D(x) = sum(w * x): gradient = w for every x~, so GP = (3 - 1)^2 = 4 per sample.
    w = tf.constant(_W)
    rng = np.random.default_rng(0)
    x_real = tf.constant(rng.normal(size=(3, 2, 2, 1)), tf.float32)
    x_fake = tf.constant(rng.normal(size=(3, 2, 2, 1)), tf.float32)
    alpha = tf.constant([0.0, 0.3, 1.0])
    scalar = losses.gradient_penalty(lambda x: tf.reduce_sum(w * x, axis=[1, 2, 3]), x_real,
                                     x_fake, alpha)
    np.testing.assert_allclose(_np(scalar), [4.0] * 3, rtol=1e-5)
    # Same critic as a PatchGAN map [B,2,2,1] (summed over patches), returned in a (src, cls) tuple
    # and a dict: same gradient.
    for fn in (lambda x: w * x, lambda x: (w * x, tf.zeros([3, 5])), lambda x: {"src": w * x}):
        np.testing.assert_allclose(_np(losses.gradient_penalty(fn, x_real, x_fake, alpha)),
                                   [4.0] * 3, rtol=1e-5)


def test_gp_quadratic_critic_alpha_weights_the_real_image():
    # D(x) = 0.5 * sum(x^2): gradient = x~ = alpha * 2 (real = 2, fake = 0), 4 pixels, so
    # ||grad|| = 2 * 2 * alpha = 4 alpha. alpha = 0.1 -> (0.4 - 1)^2 = 0.36; 1 -> 9; 0 -> 1.
    # (Swapping alpha's role would give 0.1 -> (3.6 - 1)^2 = 6.76.)
    x_real, x_fake = tf.fill([3, 2, 2, 1], 2.0), tf.zeros([3, 2, 2, 1])
    gp = losses.gradient_penalty(lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]),
                                 x_real, x_fake, tf.constant([0.1, 1.0, 0.0]))
    np.testing.assert_allclose(_np(gp), [0.36, 9.0, 1.0], rtol=1e-5)
    assert np.all(np.isfinite(_np(gp)))


def test_gp_second_order_gradient_to_critic_weights():
    # GP(w) = (||w|| - 1)^2 per sample, dGP/dw = 2 (||w|| - 1) w / ||w|| = 4/3 w; 2 samples -> 8/3 w.
    w = tf.Variable(_W)
    x = tf.ones([2, 2, 2, 1])
    with tf.GradientTape() as tape:
        gp = losses.gradient_penalty(lambda t: w * t, x, 2.0 * x, tf.constant([0.5, 0.2]))
        total = tf.reduce_sum(gp)
    np.testing.assert_allclose(_np(tape.gradient(total, w)), 8.0 / 3.0 * _W, rtol=1e-5)


# ---- classification -------------------------------------------------------------------------------
OFFSETS, SIZES = (0, 3), (3, 2)  # N = 5: attribute 0 has 3 values, attribute 1 has 2


def _ref_ce(logits, r, target):
    out = []
    for row, ri, t in zip(logits, r, target):
        block = row[OFFSETS[ri]:OFFSETS[ri] + SIZES[ri]].astype(np.float64)
        out.append(np.log(np.exp(block).sum()) - block[t])
    return np.array(out)


def test_classification_hand_values():
    # Row 0: r=0, block [0,0,0] -> CE = log 3. Row 1: r=1, block [1,0], target 0 -> log(1 + e^-1).
    logits = np.array([[0.0, 0.0, 0.0, 7.0, -3.0], [5.0, 9.0, -2.0, 1.0, 0.0]], np.float32)
    r, target = np.array([0, 1]), np.array([2, 0])
    ce = losses.classification_loss(tf.constant(logits), tf.constant(r), tf.constant(target),
                                    OFFSETS, SIZES)
    np.testing.assert_allclose(_np(ce), [math.log(3.0), math.log(1.0 + math.exp(-1.0))], rtol=1e-6)
    np.testing.assert_allclose(_np(ce), _ref_ce(logits, r, target), rtol=1e-6)


def test_classification_ignores_other_blocks():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    r, target = np.array([0, 1, 0, 1]), np.array([1, 1, 2, 0])
    inside = np.zeros((4, 5), bool)
    for i, ri in enumerate(r):
        inside[i, OFFSETS[ri]:OFFSETS[ri] + SIZES[ri]] = True
    changed = np.where(inside, logits, rng.normal(scale=1e3, size=(4, 5))).astype(np.float32)
    var = tf.Variable(logits)
    with tf.GradientTape() as tape:
        ce = losses.classification_loss(var, tf.constant(r), tf.constant(target), OFFSETS, SIZES)
        total = tf.reduce_sum(ce)
    grad = _np(tape.gradient(total, var))
    assert np.all(grad[~inside] == 0.0)
    assert np.all(grad[inside] != 0.0)
    ce2 = losses.classification_loss(tf.constant(changed), tf.constant(r), tf.constant(target),
                                     OFFSETS, SIZES)
    np.testing.assert_allclose(_np(ce2), _np(ce), rtol=1e-6)
    np.testing.assert_allclose(_np(ce), _ref_ce(logits, r, target), rtol=1e-5)


# ---- reconstruction / guidance ----------------------------------------------------------------------
def test_cycle_loss():
    x = tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]), [2, 2, 2, 1])
    rec = tf.reshape(tf.constant([1.0, 0.0, 3.0, 8.0, 1.0, 1.0, 1.0, 1.0]), [2, 2, 2, 1])
    np.testing.assert_allclose(_np(losses.cycle_loss(x, rec)), [1.5, 1.0])  # (0+2+0+4)/4, 4/4
    with pytest.raises(ValueError):
        losses.cycle_loss(x, tf.zeros([2, 2, 2, 3]))


def test_attention_loss_shapes():
    a = tf.reshape(tf.constant([0.0, 0.5, 1.0, 1.0, 0.2, 0.2, 0.2, 0.2]), [2, 2, 2, 1])
    a_star = tf.constant([[[0.0, 0.0], [0.0, 1.0]], [[0.2, 0.2], [0.2, 0.6]]])
    expected = [(0.5 + 1.0) / 4, 0.4 / 4]
    out = losses.attention_loss(a, a_star)  # [B,H,W,1] vs [B,H,W]: no [B,H,W,H,W] broadcast
    assert out.shape == (2,)
    np.testing.assert_allclose(_np(out), expected, rtol=1e-6)
    np.testing.assert_allclose(_np(losses.attention_loss(a, a_star[..., None])), expected, rtol=1e-6)
    with pytest.raises(ValueError):
        losses.attention_loss(a, tf.zeros([2, 3, 3]))


def test_perceptual_loss_values_and_weight():
    conv_f = tf.reshape(tf.constant([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]), [2, 1, 2, 2])
    conv_r = tf.zeros([2, 1, 2, 2])
    pool_f = tf.constant([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    pool_r = tf.constant([[0.0, 1.0, 4.0], [0.0, 0.0, 0.0]])
    # Sample 0: conv (1+4+9+16)/4 = 7.5, pool (1+0+9)/3 = 10/3. Sample 1: 0 + 4/3.
    out = losses.perceptual_loss([conv_f, pool_f], [conv_r, pool_r], tf.constant([1.0, 1.0]))
    np.testing.assert_allclose(_np(out), [7.5 + 10 / 3, 4 / 3], rtol=1e-6)
    out = losses.perceptual_loss([conv_f, pool_f], [conv_r, pool_r], tf.constant([0.5, 0.0]))
    np.testing.assert_allclose(_np(out), [0.5 * (7.5 + 10 / 3), 0.0], rtol=1e-6)


def test_perceptual_weight_zero_no_nan():
    f = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    ref = tf.constant([[0.0, 0.0], [np.nan, np.inf]])  # sample 1 has no reference: garbage
    with tf.GradientTape() as tape:
        out = losses.perceptual_loss([f], [ref], tf.constant([1.0, 0.0]))
        total = tf.reduce_sum(out)
    np.testing.assert_allclose(_np(out), [2.5, 0.0])
    grad = _np(tape.gradient(total, f))
    np.testing.assert_allclose(grad, [[1.0, 2.0], [0.0, 0.0]])  # d/df mean(f^2) = f for 2 values


def test_mask_regularisers():
    a = tf.constant([[[0.0, 1.0], [3.0, 1.0]]])[..., None]  # [1,2,2,1]
    # TV: vertical |3-0| + |1-1| = 3, horizontal |1-0| + |1-3| = 3 -> 6. Mean 5/4.
    np.testing.assert_allclose(_np(losses.attention_tv_loss(a)), [6.0])
    np.testing.assert_allclose(_np(losses.attention_mean_loss(a)), [1.25])
    np.testing.assert_allclose(_np(losses.attention_tv_loss(a[..., 0])), [6.0])


def test_outside_change_loss_counts_only_the_change_outside_the_region():
    x = tf.zeros([2, 2, 2, 3])
    # image 0: +1 on the top row in all channels; image 1: -0.5 everywhere
    x_fake = tf.stack([tf.constant([[[1.0] * 3] * 2, [[0.0] * 3] * 2]), tf.fill([2, 2, 3], -0.5)])
    region = tf.constant([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.5, 0.0]]])
    # image 0: top-left inside (weight 0), top-right outside (weight 1): 1 * 3 / 12 channels-pixels
    # image 1: weights 0, 0, 0.5, 1 times 0.5, 3 channels each: (0.25 + 0.5) * 3 / 12
    np.testing.assert_allclose(_np(losses.outside_change_loss(x, x_fake, region)), [0.25, 0.1875])
    np.testing.assert_allclose(_np(losses.outside_change_loss(x, x_fake, region[..., None])),
                               [0.25, 0.1875])
    np.testing.assert_allclose(_np(losses.outside_change_loss(x, x, region)), [0.0, 0.0])
    with pytest.raises(ValueError, match="outside_change_loss"):
        losses.outside_change_loss(x, x[:, :1], region)


def test_keep_attributes_loss_is_the_kl_of_the_unchanged_heads():
    # Heads of sizes 2 and 3. Example 0 changes attribute 0, so only head 1 counts; example 1
    # changes attribute 1, so only head 0 counts.
    real = tf.constant([[0.0, 0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, 1.0, 2.0, 3.0]])
    fake = tf.constant([[5.0, -5.0, math.log(2.0), 0.0, 0.0], [0.0, 0.0, -1.0, 7.0, 0.0]])
    column = tf.constant([0, 1])
    # Example 0, head 1: p = (1/3, 1/3, 1/3), q = (2, 1, 1) / 4:
    #   KL = 1/3 ln((1/3)/(1/2)) + 2/3 ln((1/3)/(1/4)) = 1/3 ln(2/3) + 2/3 ln(4/3).
    # Example 1, head 0: p = (3/4, 1/4), q = (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2).
    expected = [math.log(2 / 3) / 3 + 2 * math.log(4 / 3) / 3,
                0.75 * math.log(1.5) + 0.25 * math.log(0.5)]
    got = losses.keep_attributes_loss(real, fake, column, (2, 3))
    np.testing.assert_allclose(_np(got), expected, rtol=1e-5)
    # Both heads count for a column that names neither (e.g. a reference-only attribute's).
    both = losses.keep_attributes_loss(real, fake, tf.constant([2, 2]), (2, 3))
    assert _np(both)[0] > _np(got)[0] and _np(both)[1] > _np(got)[1]
    # An unchanged prediction costs nothing, whatever is changed; the target takes no gradient.
    np.testing.assert_allclose(_np(losses.keep_attributes_loss(real, real, column, (2, 3))), 0,
                               atol=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(real)
        tape.watch(fake)
        total = tf.reduce_sum(losses.keep_attributes_loss(real, fake, column, (2, 3)))
    assert tape.gradient(total, real) is None
    grad = _np(tape.gradient(total, fake))
    # d KL / d fake-logits = q - p on the counted head, 0 on the changed one.
    np.testing.assert_allclose(grad[0], [0, 0, 0.5 - 1 / 3, 0.25 - 1 / 3, 0.25 - 1 / 3], atol=1e-6)
    np.testing.assert_allclose(grad[1], [0.5 - 0.75, 0.5 - 0.25, 0, 0, 0], atol=1e-6)
    with pytest.raises(ValueError, match="keep_attributes_loss"):
        losses.keep_attributes_loss(real, fake[:, :4], column, (2, 3))


# ---- objectives --------------------------------------------------------------------------------
def test_objectives():
    w = losses.LossWeights()
    assert (w.lambda_cls, w.lambda_cyc, w.lambda_a, w.lambda_p, w.lambda_gp) == (1, 10, 10, 20, 10)
    assert w.lambda_mask_mean == 0 and w.lambda_mask_tv == 0
    one = tf.constant([1.0, 2.0])
    g = losses.generator_objective({"adv": one, "cls": one, "cyc": one, "att": one, "perc": one}, w)
    np.testing.assert_allclose(_np(g), [42.0, 84.0])  # 1 + 1 + 10 + 10 + 20
    g = losses.generator_objective({"adv": one, "cyc": one}, w)  # missing keys count 0
    np.testing.assert_allclose(_np(g), [11.0, 22.0])
    gw = losses.LossWeights(lambda_mask_mean=0.1, lambda_mask_tv=1e-5)
    g = losses.generator_objective({"adv": one, "mask_mean": one, "mask_tv": one}, gw)
    np.testing.assert_allclose(_np(g), [1.10001, 2.20002], rtol=1e-6)
    g = losses.generator_objective({"adv": one, "out": one}, losses.LossWeights(lambda_out=3.0))
    np.testing.assert_allclose(_np(g), [4.0, 8.0])
    g = losses.generator_objective({"adv": one, "keep": one}, losses.LossWeights(lambda_keep=2.0))
    np.testing.assert_allclose(_np(g), [3.0, 6.0])
    with pytest.raises(ValueError):
        losses.generator_objective({"adv": one, "cycle": one}, w)
    d = losses.discriminator_objective(one, one, one, w)
    np.testing.assert_allclose(_np(d), [12.0, 24.0])
    np.testing.assert_allclose(_np(losses.discriminator_objective(one, None, one, w)), [2.0, 4.0])


# ---- distribution -------------------------------------------------------------------------------
def test_average_two_replicas_matches_global_batch():
    """Summed replica gradients of average(., global batch) == one-replica gradient, incl. GP."""
    cpus = tf.config.list_logical_devices("CPU")
    assert len(cpus) >= 2, "tests/conftest.py should split the CPU into 2 logical devices"
    rng = np.random.default_rng(2)
    x_real = rng.normal(size=(4, 2, 2, 1)).astype(np.float32)
    x_fake = rng.normal(size=(4, 2, 2, 1)).astype(np.float32)
    alpha = rng.uniform(size=(4,)).astype(np.float32)
    init = rng.normal(size=(1, 2, 2, 1)).astype(np.float32)

    def step_loss(w, xr, xf, al):
        critic = lambda x: tf.square(w * x)  # patch map; quadratic so the GP depends on the data
        per_ex = (losses.wgan_discriminator_loss(critic(xr), critic(xf))
                  + 10.0 * losses.gradient_penalty(critic, xr, xf, al))
        return losses.average(per_ex, 4)

    w1 = tf.Variable(init)
    with tf.GradientTape() as tape:
        loss1 = step_loss(w1, x_real, x_fake, alpha)
    g1 = _np(tape.gradient(loss1, w1))

    strategy = tf.distribute.MirroredStrategy([d.name for d in cpus[:2]])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        w2 = tf.Variable(init)

    def per_replica(ctx):
        i = ctx.replica_id_in_sync_group * 2
        return x_real[i:i + 2], x_fake[i:i + 2], alpha[i:i + 2]

    inputs = strategy.experimental_distribute_values_from_function(per_replica)

    @tf.function
    def run(inputs):
        def replica_fn(xr, xf, al):
            with tf.GradientTape() as tape:
                loss = step_loss(w2, xr, xf, al)
            return loss, tape.gradient(loss, w2)
        loss, grad = strategy.run(replica_fn, args=inputs)
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, grad, axis=None))

    loss2, g2 = run(inputs)
    np.testing.assert_allclose(_np(loss2), _np(loss1), rtol=1e-5)
    np.testing.assert_allclose(_np(g2), g1, rtol=1e-5, atol=1e-6)
