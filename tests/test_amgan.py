"""The AMGAN model: which variables each update touches, and tf.distribute equivalence."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import losses
from amgan_tf.data import pipeline, synthfashion
from amgan_tf.models.amgan import AMGAN, AmganConfig, HalfConstantLinearDecay
from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig
from amgan_tf.models.networks import (CriticConfig, Generator, GeneratorConfig,
                                      transpose_conv_as_subpixel)

SCHEMA = synthfashion.schema()


def tiny_config(**overrides) -> AmganConfig:
    base = dict(image_size=32, batch_size=4, n_critic=2,
                generator=GeneratorConfig(conv_dim=8, repeat_num=1),
                critic=CriticConfig(conv_dim=8, repeat_num=4, max_dim=32), total_steps=10)
    base.update(overrides)
    return AmganConfig(**base)


def tiny_cnn() -> AttributeCNN:
    return AttributeCNN(SCHEMA, AttributeCNNConfig(image_size=32, widths=(8, 8, 8))).build_on_zeros()


def make_model(seed=0, **overrides) -> AMGAN:
    keras.utils.set_random_seed(seed)
    return AMGAN(SCHEMA, tiny_config(**overrides), tiny_cnn()).build_all()


@pytest.fixture(scope="module")
def element(synth_train):
    batches = pipeline.AmganBatches(synth_train, pipeline.PipelineConfig(batch_size=4, n_critic=2))
    return next(iter(batches.dataset(0)))


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_updates_touch_only_their_own_variables(element):
    model = make_model()
    g, d, cnn = (model.generator_variables, model.critic_variables, model.cnn.variables)
    g0, d0, c0 = _values(g), _values(d), _values(cnn)
    k = 0
    model.critic_step(element["x_real"][:, k], element["m_trg"][:, k], element["r"][:, k],
                      element["c_org"][:, k], element["c_trg"][:, k], element["gp_alpha"][:, k])
    assert not any(_changed(g0, g)) and not any(_changed(c0, cnn))
    assert all(_changed(d0, d))  # D_I and D_C: every critic variable moved
    d1 = _values(d)
    k = 2
    model.generator_step(element["x_real"][:, k], element["x_ref"][:, k],
                         element["ref_weight"][:, k], element["m_trg"][:, k],
                         element["m_org"][:, k], element["r"][:, k], element["c_org"][:, k],
                         element["c_trg"][:, k])
    assert not any(_changed(d1, d)) and not any(_changed(c0, cnn))
    assert sum(_changed(g0, g)) >= len(g) - 2  # everything in G that gets a gradient moved
    assert int(model.d_opt.iterations) == 1 and int(model.g_opt.iterations) == 1


def test_generator_composition_and_modes():
    x = tf.random.uniform((2, 32, 32, 3), -1, 1, seed=4)
    m = tf.constant(SCHEMA.encode_batch(np.array([0, 1]), np.array([1, 2])))
    g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1))
    x_fake, a, z = g(x, m)
    np.testing.assert_allclose(x_fake, a * z + (1 - a) * x, atol=1e-6)  # Eq. 1
    assert a.shape == (2, 32, 32, 1) and 0 <= float(tf.reduce_min(a)) <= float(tf.reduce_max(a)) <= 1
    zeros = tf.zeros_like(a)
    x_same, _, _ = g(x, m, attention_override=zeros)
    np.testing.assert_allclose(x_same, x, atol=1e-6)  # a = 0 leaves the image untouched
    x_star, a_s, z_s = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, mode="stargan"))(x, m)
    np.testing.assert_allclose(x_star, z_s)
    _, a_sa, _ = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, mode="sagan"))(x, m)
    assert a_sa.shape == (2, 32, 32, 1)


def _stride_pattern(upsample: str) -> float:
    """How much the decoder's output on a flat input differs between pixels of the 2x2 phases
    (away from the borders): the transposed convolution's checkerboard, 0 for a flat output."""
    keras.utils.set_random_seed(1)
    g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, upsample=upsample))
    x = tf.fill((1, 64, 64, 3), 0.3)
    m = tf.constant(SCHEMA.encode_batch(np.array([0]), np.array([1])))
    _, _, z = g(x, m)
    inner = z[0, 24:40, 24:40].numpy()
    phases = [inner[i::2, j::2].mean(axis=(0, 1)) for i in (0, 1) for j in (0, 1)]
    return float(np.max(np.ptp(np.stack(phases), axis=0)))


def test_resize_upsampling_has_no_checkerboard():
    assert _stride_pattern("transpose") > 1e-3  # the paper's decoder: a period-2 pattern
    assert _stride_pattern("resize") < 1e-5
    with pytest.raises(ValueError, match="Unknown upsampling 'bicubic'"):
        GeneratorConfig(upsample="bicubic")



def test_subpixel_form_of_the_transposed_convolution_is_exact():
    """The exports' plain-convolution form of G's 4x4 stride-2 transposed convolution equals
    Keras' Conv2DTranspose, on non-square odd sizes and in a whole G (the paper's decoder)."""
    keras.utils.set_random_seed(3)
    layer = keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same", use_bias=False)
    x = tf.random.normal((2, 7, 9, 3))
    want = layer(x)
    got = transpose_conv_as_subpixel(x, layer.kernel)
    assert got.shape == want.shape == (2, 14, 18, 5)
    np.testing.assert_allclose(got, want, atol=1e-5)
    x = tf.random.uniform((2, 32, 32, 3), -1, 1)
    m = tf.constant(SCHEMA.encode_batch(np.array([0, 1]), np.array([1, 2])))
    for skips in (0, 2):
        g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, skips=skips))
        for plain, sub in zip(g(x, m), g(x, m, subpixel=True)):
            np.testing.assert_allclose(sub, plain, atol=1e-5)
            assert float(tf.reduce_max(tf.abs(plain))) > 1e-2  # not trivially zero


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_unet_skips_carry_the_encoder_levels_to_the_decoder(upsample):
    """skips=1: the heads also see the full-resolution level's features, computed here by hand;
    skips=2 also feeds the half-resolution level to the last upsampling; 0 is the paper's G with
    its variables unchanged (old checkpoints load)."""
    keras.utils.set_random_seed(4)
    x = tf.random.uniform((2, 32, 32, 3), -1, 1)
    m = tf.constant(SCHEMA.encode_batch(np.array([0, 1]), np.array([1, 2])))
    plain = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, upsample=upsample))
    plain(x, m)
    g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, upsample=upsample, skips=1))
    g(x, m)
    trunk = g.trunk
    features = trunk(x, m)
    assert features.shape == (2, 32, 32, 16) and plain.trunk(x, m).shape == (2, 32, 32, 8)
    y = tf.concat([x, tf.tile(m[:, None, None, :], [1, 32, 32, 1])], -1)
    first_level = trunk.blocks[2](trunk.blocks[1](trunk.blocks[0](y)))
    np.testing.assert_allclose(features[..., 8:], first_level, atol=1e-6)
    assert float(tf.reduce_max(first_level)) > 1e-2
    assert [v.path.split("/", 1)[1] for v in plain.trainable_variables] == [
        v.path.split("/", 1)[1] for v in g.trainable_variables]  # same names; wider heads
    assert g.colour.kernel.shape[2] == 2 * plain.colour.kernel.shape[2]
    second_up = [layer for layer in trunk.up if layer.name == "up1"][0]
    assert second_up.kernel.shape[-1 if upsample == "transpose" else 2] == 16  # no level-1 skip
    g2 = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, upsample=upsample, skips=2))
    g2(x, m)
    second_up = [layer for layer in g2.trunk.up if layer.name == "up1"][0]
    assert second_up.kernel.shape[-1 if upsample == "transpose" else 2] == 32  # 16 + level 1
    with pytest.raises(ValueError, match="skips must be 0-2; got 3"):
        GeneratorConfig(skips=3)


def test_lr_schedule_constant_then_linear_to_zero():
    sched = HalfConstantLinearDecay(1e-4, 100)
    assert float(sched(0)) == pytest.approx(1e-4) and float(sched(50)) == pytest.approx(1e-4)
    assert float(sched(75)) == pytest.approx(5e-5) and float(sched(100)) == 0.0
    critic = HalfConstantLinearDecay(1e-4, 100, updates_per_step=5)
    assert float(critic(75 * 5)) == pytest.approx(5e-5)  # follows training steps, not updates


def test_mirrored_two_replicas_equal_one(synth_train):
    """Three iterations with n_critic = 2 on 2 replicas (each half the global batch) equal one
    replica on the whole batch: logs every iteration, weights, and both optimizers' Adam moments.
    The moments carry the gradients' scale (Adam's normalised step hides a factor of 2 in the
    weights, not in m and v), so a gradient summed instead of averaged over replicas shows."""
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(cpus) == 2
    batches = pipeline.AmganBatches(synth_train, pipeline.PipelineConfig(batch_size=4, n_critic=2,
                                                                         seed=3))
    results = []
    for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(cpus)):
        with strategy.scope():
            model = make_model(seed=7, n_critic=2)
        data = iter(batches.distribute(strategy))

        @tf.function
        def iteration(element):
            logs = strategy.run(model.train_step, args=(element,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in logs.items()}

        logs = [{k: float(v) for k, v in iteration(next(data)).items()} for _ in range(3)]
        state = {v.path: v.numpy() for v in model.G.trainable_variables + model.critic_variables
                 + model.g_opt.variables + model.d_opt.variables}
        results.append((logs, state))
    (logs1, state1), (logs2, state2) = results
    for step, (a, b) in enumerate(zip(logs1, logs2)):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=2e-3, abs=2e-4), (step, key)
    assert state1.keys() == state2.keys()
    moments = [k for k in state1 if "momentum" in k or "velocity" in k]
    assert len(moments) == 2 * len(model.G.trainable_variables + model.critic_variables)
    for key, value in state1.items():
        scale = float(np.abs(value).max()) + 1e-30
        np.testing.assert_allclose(state2[key] / scale, value / scale, atol=2e-3, err_msg=key)


def test_needs_cnn_and_config_errors():
    with pytest.raises(ValueError, match="attribute CNN"):
        AMGAN(SCHEMA, tiny_config())
    with pytest.raises(ValueError, match="StarGAN generator has none"):
        tiny_config(generator=GeneratorConfig(mode="stargan"))
    AMGAN(SCHEMA, tiny_config(use_dc=False, weights=losses.LossWeights(lambda_a=0, lambda_p=0)))


def test_train_attention_floor_blends_fakes_as_edits_do():
    """With train_attention_floor, training's x* is the edit a user gets (the floored mask, as
    `apply_edit`), while `generate` still returns the raw mask for L_a and D_C; without it,
    training blends with the raw mask."""
    from amgan_tf.edit import apply_edit
    from amgan_tf.imaging import to_float, to_uint8
    images = to_uint8(tf.random.uniform((2, 32, 32, 3), -1.0, 1.0, seed=3))
    x = to_float(images)
    m = tf.constant(SCHEMA.encode_batch(np.array([0, 1]), np.array([1, 2])))
    model = make_model(attention_floor=0.5, train_attention_floor=True)
    raw_fake, raw_a, z = model.G(x, m)
    x_fake, a, _ = model.generate(x, m)
    np.testing.assert_array_equal(a, raw_a)
    assert 0.1 < float(tf.reduce_mean(tf.cast(raw_a < 0.5, tf.float32))) < 0.9  # the floor bites
    edited, mask = apply_edit(lambda t, mm: model.G(t, mm)[1:], images, m, 32,
                              attention_floor=0.5)
    assert np.abs(to_uint8(x_fake).numpy().astype(int) - edited.numpy()).max() <= 1
    np.testing.assert_allclose(x_fake, mask * z + (1 - mask) * x, atol=1e-6)
    assert float(tf.reduce_max(tf.abs(x_fake - raw_fake))) > 0.05
    edit_only = make_model(attention_floor=0.5)  # the same weights (seed), floor at edit time only
    np.testing.assert_allclose(edit_only.generate(x, m)[0], raw_fake, atol=1e-6)
    with pytest.raises(ValueError, match="attention_floor is 0"):
        tiny_config(train_attention_floor=True)


def test_residual_colour_head_starts_as_the_input():
    keras.utils.set_random_seed(0)
    x = tf.random.uniform((2, 32, 32, 3), -0.99, 0.99)
    m = tf.constant(SCHEMA.encode_batch(np.array([0, 1]), np.array([1, 2])))
    g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, colour_head="residual"))
    x_star, a, z = g(x, m)
    np.testing.assert_allclose(z, x, atol=1e-5)  # zero-initialised: z = x, so x* = x too
    np.testing.assert_allclose(x_star, x, atol=1e-5)
    g.colour.kernel.assign(tf.fill(g.colour.kernel.shape, 0.01))
    _, _, z = g(x, m)
    assert float(tf.reduce_max(tf.abs(z - x))) > 0.01 and float(tf.reduce_max(tf.abs(z))) < 1
    absolute = Generator(GeneratorConfig(conv_dim=8, repeat_num=1))
    assert float(tf.reduce_mean(tf.abs(absolute(x, m)[2] - x))) > 0.1  # the paper's: z = tanh(h)
    with pytest.raises(ValueError, match="Unknown colour head 'additive'"):
        GeneratorConfig(colour_head="additive")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_fused_heads_equal_the_two_head_layers(policy):
    """G runs its colour and attention heads as one convolution (speed); outputs and gradients
    must be those of the two Conv2D layers it keeps as variables."""
    keras.utils.set_random_seed(0)
    x = tf.random.uniform((2, 32, 32, 3), -0.99, 0.99)
    m = tf.constant(SCHEMA.encode_batch(np.array([0, 1]), np.array([1, 2])))
    g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, dtype_policy=policy))
    with tf.GradientTape(persistent=True) as tape:
        x_star, a, z = g(x, m)
        features = g.trunk(x, m)
        z_ref = tf.tanh(tf.cast(g.colour(features), tf.float32))
        a_ref = tf.sigmoid(tf.cast(g.attention(features), tf.float32))
        x_ref = a_ref * z_ref + (1 - a_ref) * x
        weights = tf.reshape(tf.range(1.0, 1.0 + tf.size(x, tf.float32)) / 1e4, x.shape)
        loss, loss_ref = (tf.reduce_sum(v * weights) for v in (x_star, x_ref))
    atol, rtol = (1e-5, 1e-4) if policy == "float32" else (2e-2, 5e-2)
    for got, want in ((x_star, x_ref), (a, a_ref), (z, z_ref)):
        np.testing.assert_allclose(got, want, atol=atol)
    for head in (g.colour, g.attention):
        np.testing.assert_allclose(tape.gradient(loss, head.kernel),
                                   tape.gradient(loss_ref, head.kernel), rtol=rtol, atol=1e-6)
    assert len(g.trainable_variables) == len({id(v) for v in g.trainable_variables})
