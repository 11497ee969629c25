"""Which labels, images and masks feed each loss of `AMGAN.train_step`, checked against an
independent re-derivation of PAPER.md's objectives from the networks and the batch.

The reference below is written from the paper, not from `amgan_tf.losses`: plain WGAN critic
scores, the gradient penalty on alpha-interpolates, cross-entropy over attribute r's block of
logits, L1 cycle through m_org, L_a against the CAM of c_org, L_p against x_ref weighted by
ref_weight. Every logged term and every gradient handed to the optimizers must match it, so any
rewrite of the step (fused critic calls, other crop ops, mixed precision) is checked here.

The schema puts a reference-only attribute FIRST, so r (manipulated index) and the label column
differ, and r varies inside the batch: swapping them, or using one example's r for all, shows.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from amgan_tf.attributes import Attribute, AttributeSchema
from amgan_tf.data import synthfashion
from amgan_tf.imaging import to_float
from amgan_tf.models.amgan import AMGAN, AmganConfig
from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig
from amgan_tf.models.networks import CriticConfig, GeneratorConfig
from amgan_tf.ops.components import attention_boxes, crop_to_boxes

SCHEMA = AttributeSchema((
    Attribute("category", synthfashion.CATEGORIES, manipulated=False),
    Attribute("sleeve", synthfashion.SLEEVES),
    Attribute("colour", synthfashion.COLOURS_LIST),
    Attribute("pattern", synthfashion.PATTERNS),
), dataset="wiring")
B, N_CRITIC, SIZE = 4, 2, 32
LAMBDA = dict(lambda_cls=1.0, lambda_cyc=10.0, lambda_a=10.0, lambda_p=20.0, lambda_gp=10.0)


def make_model(seed=0, learning_rate=1e-4) -> AMGAN:
    keras.utils.set_random_seed(seed)
    cnn = AttributeCNN(SCHEMA, AttributeCNNConfig(image_size=SIZE, widths=(8, 8, 8)))
    config = AmganConfig(image_size=SIZE, batch_size=B, n_critic=N_CRITIC,
                         generator=GeneratorConfig(conv_dim=8, repeat_num=1),
                         critic=CriticConfig(conv_dim=8, repeat_num=4, max_dim=32),
                         total_steps=10, learning_rate=learning_rate)
    return AMGAN(SCHEMA, config, cnn.build_on_zeros()).build_all()


@pytest.fixture(scope="module")
def element(synth_train):
    """One iteration [B, n_critic + 1, ...] built by hand from SynthFashion renders."""
    rng = np.random.default_rng(11)
    s = N_CRITIC + 1
    idx = rng.choice(len(synth_train), (B, s), replace=False)
    ref_idx = rng.choice(len(synth_train), (B, s), replace=False)
    src = synth_train.labels  # synthfashion columns: sleeve, colour, pattern, category, body
    labels = np.stack([src[..., 3], src[..., 0], src[..., 1], src[..., 2]], -1)[idx]
    r = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1], [1, 1, 2]], np.int32)[:B, :s]
    col = np.array(SCHEMA.manipulated_columns)[r]
    c_org = np.take_along_axis(labels, col[..., None], -1)[..., 0]
    k = np.array(SCHEMA.block_sizes)[r]
    c_trg = (c_org + 1 + rng.integers(0, 100, (B, s)) % (k - 1)) % k
    return {
        "x_real": to_float(synth_train.images[idx]), "x_ref": to_float(synth_train.images[ref_idx]),
        "ref_weight": tf.constant([[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 1]], tf.float32),
        "r": tf.constant(r), "c_org": tf.constant(c_org, tf.int32),
        "c_trg": tf.constant(c_trg, tf.int32),
        "m_trg": tf.constant(SCHEMA.encode_batch(r, c_trg)),
        "m_org": tf.constant(SCHEMA.encode_batch(r, c_org)),
        "gp_alpha": tf.constant(rng.uniform(0.05, 0.95, (B, s, 2)), tf.float32),
    }


def sub_batch(element, k):
    return {key: v[:, k] for key, v in element.items()}


# ---- the reference, from the paper ----------------------------------------------------------
def block_ce(logits, r, target):
    """Cross-entropy over attribute r's block only, one example at a time."""
    out = []
    for i in range(logits.shape[0]):
        start = SCHEMA.offsets[int(r[i])]
        block = logits[i, start:start + SCHEMA.block_sizes[int(r[i])]]
        out.append(tf.reduce_logsumexp(block) - block[int(target[i])])
    return tf.stack(out)


def mean_per_example(t):
    return tf.reduce_mean(tf.reshape(t, [t.shape[0], -1]), axis=1)


def penalty(critic, real, fake, alpha):
    a = tf.reshape(alpha, [-1, 1, 1, 1])
    x_hat = a * real + (1 - a) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = tf.reduce_sum(critic(x_hat)[0])
    g = tape.gradient(score, x_hat)
    return (tf.norm(tf.reshape(g, [g.shape[0], -1]), axis=1) - 1.0) ** 2


def crops(model, a, *images):
    boxes = attention_boxes(a, model.config.crop_threshold)
    return [crop_to_boxes(x, boxes, SIZE // 2) for x in images]


def reference_critic(model, b):
    """(logs, gradients of the critic objective w.r.t. D_I and D_C's variables)."""
    x_fake, a, _ = model.G(b["x_real"], b["m_trg"])
    crop_real, crop_fake = crops(model, a, b["x_real"], x_fake)
    logs = {}
    with tf.GradientTape() as tape:
        total = 0.0
        for name, critic, real, fake, alpha in (
                ("I", model.D_I, b["x_real"], x_fake, b["gp_alpha"][:, 0]),
                ("C", model.D_C, crop_real, crop_fake, b["gp_alpha"][:, 1])):
            src_real, cls_real = critic(real)
            src_fake, _ = critic(fake)
            adv = tf.reduce_mean(mean_per_example(src_fake) - mean_per_example(src_real))
            gp = tf.reduce_mean(penalty(critic, real, fake, alpha))
            cls = tf.reduce_mean(block_ce(cls_real, b["r"], b["c_org"]))
            total += adv + LAMBDA["lambda_gp"] * gp + LAMBDA["lambda_cls"] * cls
            logs.update({f"D_{name}/L_adv": adv, f"D_{name}/L_gp": gp, f"D_{name}/L_cls": cls})
    logs["D/total"] = total
    return logs, tape.gradient(total, model.critic_variables)


def reference_generator(model, b):
    cnn = model.cnn
    with tf.GradientTape() as tape:
        x_fake, a, _ = model.G(b["x_real"], b["m_trg"])
        (crop_fake,) = crops(model, a, x_fake)
        src_i, cls_i = model.D_I(x_fake)
        src_c, cls_c = model.D_C(crop_fake)
        adv = -mean_per_example(src_i) - mean_per_example(src_c)
        cls = block_ce(cls_i, b["r"], b["c_trg"]) + block_ce(cls_c, b["r"], b["c_trg"])
        x_rec, _, _ = model.G(x_fake, b["m_org"])
        cyc = mean_per_example(tf.abs(b["x_real"] - x_rec))
        column = tf.gather(tf.constant(SCHEMA.manipulated_columns), b["r"])
        a_star = cnn.cam(b["x_real"], column, b["c_org"])
        att = mean_per_example(tf.abs(a[..., 0] - a_star))
        f_fake, f_ref = cnn.features(x_fake), cnn.features(b["x_ref"])
        perc = b["ref_weight"] * sum(mean_per_example(tf.square(f_fake[k] - f_ref[k]))
                                     for k in ("conv5", "avgpool"))
        terms = {"L_adv": adv, "L_cls": cls, "L_cyc": cyc, "L_a": att, "L_p": perc}
        total = tf.reduce_mean(adv + LAMBDA["lambda_cls"] * cls + LAMBDA["lambda_cyc"] * cyc
                               + LAMBDA["lambda_a"] * att + LAMBDA["lambda_p"] * perc)
    grads = tape.gradient(total, model.generator_variables)
    logs = {f"G/{k}": tf.reduce_mean(v) for k, v in terms.items()}
    logs.update({"G/total": total, "G/attention_mean": tf.reduce_mean(a)})
    return logs, grads


def reference_iteration(model, element):
    """Logs of one iteration with the critics held fixed (what train_step logs when no update
    moves a weight), and the gradients of every critic update and of the G update."""
    logs, critic_grads = {}, []
    for k in range(N_CRITIC):
        step_logs, grads = reference_critic(model, sub_batch(element, k))
        critic_grads.append(grads)
        for key, v in step_logs.items():
            logs[key] = logs.get(key, 0.0) + float(v) / N_CRITIC
    g_logs, g_grads = reference_generator(model, sub_batch(element, N_CRITIC))
    logs.update({k: float(v) for k, v in g_logs.items()})
    return logs, critic_grads, g_grads


class RecordingOptimizer:
    """Stands in for an optimizer: keeps the gradients it is given and moves no weight."""

    def __init__(self):
        self.calls = []

    def apply_gradients(self, grads_and_vars):
        self.calls.append({id(v): g for g, v in grads_and_vars})

    def apply(self, grads, variables):
        self.apply_gradients(zip(grads, variables))


def assert_logs_match(logs, expected):
    logs = {k: float(v) for k, v in logs.items()}
    assert set(logs) == set(expected), sorted(set(logs) ^ set(expected))
    for key, value in expected.items():
        assert logs[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


def assert_grads_match(recorded, variables, expected):
    assert len(recorded) == len([g for g in expected if g is not None])
    for v, g in zip(variables, expected):
        if g is None:  # a variable the objective does not reach gets no update
            assert id(v) not in recorded or recorded[id(v)] is None, v.path
            continue
        got = recorded[id(v)]
        scale = float(tf.reduce_max(tf.abs(g))) + 1e-12
        np.testing.assert_allclose(got / scale, g / scale, atol=2e-4, err_msg=v.path)


def test_every_logged_term_and_gradient_matches_the_paper(element):
    model = make_model()
    expected, critic_grads, g_grads = reference_iteration(model, element)
    # The reference terms are not degenerate: each would move if its inputs were mixed up.
    assert expected["G/L_p"] > 0 and expected["G/L_a"] > 0 and expected["D_C/L_gp"] > 0
    model.d_opt, model.g_opt = RecordingOptimizer(), RecordingOptimizer()
    logs = model.train_step(element)
    assert_logs_match(logs, expected)
    assert len(model.d_opt.calls) == N_CRITIC and len(model.g_opt.calls) == 1
    for recorded, grads in zip(model.d_opt.calls, critic_grads):
        assert_grads_match(recorded, model.critic_variables, grads)
    assert_grads_match(model.g_opt.calls[0], model.generator_variables, g_grads)


def test_compiled_step_logs_match_the_paper(element):
    """The tf.function path that training runs; learning rate 0 keeps the weights fixed, so every
    critic update and the G update see the networks the reference sees."""
    model = make_model(learning_rate=0.0)
    expected, _, _ = reference_iteration(model, element)
    logs = tf.function(model.train_step)(element)
    assert_logs_match(logs, expected)
    assert int(model.d_opt.iterations) == N_CRITIC and int(model.g_opt.iterations) == 1


def test_reference_sees_label_mixups(element):
    """Sanity of the reference itself: the wrong label or mask gives a different number."""
    model = make_model()
    b = sub_batch(element, N_CRITIC)
    x_fake, _, _ = model.G(b["x_real"], b["m_trg"])
    _, cls = model.D_I(x_fake)
    assert abs(float(tf.reduce_mean(block_ce(cls, b["r"], b["c_trg"])))
               - float(tf.reduce_mean(block_ce(cls, b["r"], b["c_org"])))) > 1e-3
    column = tf.gather(tf.constant(SCHEMA.manipulated_columns), b["r"])
    assert not np.allclose(model.cnn.cam(b["x_real"], column, b["c_org"]),
                           model.cnn.cam(b["x_real"], column, b["c_trg"]), atol=1e-3)
    np.testing.assert_array_equal(
        column, [SCHEMA.manipulated_columns[int(r)] for r in b["r"]])
    assert len(set(b["r"].numpy().tolist())) > 1
