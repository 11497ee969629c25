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

from amgan_tf import losses
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


def make_model(seed=0, learning_rate=1e-4, dtype_policy="float32", xla_crops=False,
               cam_target_power=1.0, lambda_out=0.0, cam_target_threshold=0.0,
               lambda_keep=0.0) -> AMGAN:
    keras.utils.set_random_seed(seed)
    cnn = AttributeCNN(SCHEMA, AttributeCNNConfig(image_size=SIZE, widths=(8, 8, 8)))
    config = AmganConfig(image_size=SIZE, batch_size=B, n_critic=N_CRITIC,
                         generator=GeneratorConfig(conv_dim=8, repeat_num=1,
                                                   dtype_policy=dtype_policy),
                         critic=CriticConfig(conv_dim=8, repeat_num=4, max_dim=32,
                                             dtype_policy=dtype_policy),
                         total_steps=10, learning_rate=learning_rate, xla_crops=xla_crops,
                         cam_target_power=cam_target_power,
                         cam_target_threshold=cam_target_threshold,
                         weights=losses.LossWeights(lambda_out=lambda_out,
                                                    lambda_keep=lambda_keep))
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
        cam = cnn.cam(b["x_real"], column, b["c_org"])
        threshold = model.config.cam_target_threshold
        a_star = (tf.where(cam >= threshold, 1.0, 0.0) if threshold
                  else cam ** model.config.cam_target_power)
        att = mean_per_example(tf.abs(a[..., 0] - a_star))
        f_fake, f_ref = cnn.features(x_fake), cnn.features(b["x_ref"])
        perc = b["ref_weight"] * sum(mean_per_example(tf.square(f_fake[k] - f_ref[k]))
                                     for k in ("conv5", "avgpool"))
        terms = {"L_adv": adv, "L_cls": cls, "L_cyc": cyc, "L_a": att, "L_p": perc}
        total = (adv + LAMBDA["lambda_cls"] * cls + LAMBDA["lambda_cyc"] * cyc
                 + LAMBDA["lambda_a"] * att + LAMBDA["lambda_p"] * perc)
        lambda_out = model.config.weights.lambda_out
        if lambda_out:  # input's CAM of c_org or output's of c_trg, grown 1 px each way at 32 px
            region = tf.maximum(cnn.cam(b["x_real"], column, b["c_org"]),
                                cnn.cam(x_fake, column, b["c_trg"]))
            region = tf.nn.max_pool2d(region[..., None], 2 * (SIZE // 32) + 1, 1, "SAME")[..., 0]
            region = tf.stop_gradient(region)  # a target: G must not move the CAM to cover more
            terms["L_out"] = mean_per_example((1.0 - region[..., None])
                                              * tf.abs(x_fake - b["x_real"]))
            total += lambda_out * terms["L_out"]
        lambda_keep = model.config.weights.lambda_keep
        if lambda_keep:  # KL(CNN(x) || CNN(x*)) of every attribute head but the changed one's
            keep = 0.0
            p_all, q_all = cnn(b["x_real"]), cnn(x_fake)
            start = 0
            for i, attribute in enumerate(SCHEMA.attributes):
                n = len(attribute.values)
                p = tf.nn.softmax(tf.stop_gradient(p_all[:, start:start + n]))
                q = tf.nn.softmax(q_all[:, start:start + n])
                kl = tf.reduce_sum(p * (tf.math.log(p) - tf.math.log(q)), axis=-1)
                keep += tf.where(column == i, 0.0, kl)
                start += n
            terms["L_keep"] = keep
            total += lambda_keep * keep
        total = tf.reduce_mean(total)
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
    """Stands in for an optimizer: keeps the gradients it is given and moves no weight.
    With `dynamic_scale` it stands in for a loss-scale optimizer and unscales them as one does."""

    def __init__(self, dynamic_scale=None):
        self.calls = []
        if dynamic_scale is not None:
            self.dynamic_scale = tf.constant(dynamic_scale, tf.float32)

    def apply_gradients(self, grads_and_vars):
        scale = getattr(self, "dynamic_scale", 1.0)
        self.calls.append({id(v): None if g is None else g / scale for g, v in grads_and_vars})

    def apply(self, grads, variables):
        self.apply_gradients(zip(grads, variables))


def assert_logs_match(logs, expected, rel=1e-4, abs=1e-5):
    logs = {k: float(v) for k, v in logs.items()}
    assert set(logs) == set(expected), sorted(set(logs) ^ set(expected))
    for key, value in expected.items():
        assert logs[key] == pytest.approx(value, rel=rel, abs=abs), key


def assert_grads_close(recorded, variables, expected, rel):
    """||g - g_ref|| / ||g_ref|| over all of one optimizer call's variables (the update's
    direction), for reduced precision where single small entries are all rounding."""
    pairs = [(recorded[id(v)], g) for v, g in zip(variables, expected) if g is not None]
    error = sum(float(tf.reduce_sum(tf.square(got - g))) for got, g in pairs)
    norm = sum(float(tf.reduce_sum(tf.square(g))) for _, g in pairs)
    assert (error / norm) ** 0.5 < rel


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


def test_sharpened_cam_target(element):
    """--cam_target_power=3: L_a against CAM^3, everything else unchanged."""
    model = make_model(learning_rate=0.0, cam_target_power=3.0)
    expected, _, _ = reference_iteration(model, element)
    paper, _, _ = reference_iteration(make_model(learning_rate=0.0), element)
    assert expected["G/L_a"] != pytest.approx(paper["G/L_a"], rel=1e-3)
    assert_logs_match(tf.function(model.train_step)(element), expected)
    with pytest.raises(ValueError, match="cam_target_power must be > 0"):
        make_model(cam_target_power=0.0)


def test_binary_cam_target(element):
    """--cam_target_threshold=0.5: L_a against 1[CAM >= 0.5]; bad values named."""
    model = make_model(learning_rate=0.0, cam_target_threshold=0.5)
    expected, _, _ = reference_iteration(model, element)
    paper, _, _ = reference_iteration(make_model(learning_rate=0.0), element)
    sharp, _, _ = reference_iteration(make_model(learning_rate=0.0, cam_target_power=3.0),
                                      element)
    assert expected["G/L_a"] != pytest.approx(paper["G/L_a"], rel=1e-3)
    assert expected["G/L_a"] != pytest.approx(sharp["G/L_a"], rel=1e-3)
    assert_logs_match(tf.function(model.train_step)(element), expected)
    with pytest.raises(ValueError, match=r"cam_target_threshold must be in \[0, 1\)"):
        make_model(cam_target_threshold=1.0)
    with pytest.raises(ValueError, match="set one of them"):
        make_model(cam_target_threshold=0.5, cam_target_power=3.0)


def check_added_term(element, log_key, weight, **model_kwargs):
    """An option's term is logged, weighted into G's objective on top of the paper's, and its
    gradients are the reference's."""
    model = make_model(**model_kwargs)
    expected, _, g_grads = reference_iteration(model, element)
    assert expected[log_key] > 0
    paper, _, _ = reference_iteration(make_model(), element)
    assert expected["G/total"] == pytest.approx(paper["G/total"] + weight * expected[log_key],
                                                rel=1e-4)
    model.d_opt, model.g_opt = RecordingOptimizer(), RecordingOptimizer()
    assert_logs_match(model.train_step(element), expected)
    assert_grads_match(model.g_opt.calls[0], model.generator_variables, g_grads)


def test_outside_change_term(element):
    """--lambda_out: L_out, the change outside the CAM-derived edit region."""
    check_added_term(element, "G/L_out", 5.0, lambda_out=5.0)


def test_keep_attributes_term(element):
    """--lambda_keep: L_keep, the frozen CNN's other heads on the input vs on the edit."""
    check_added_term(element, "G/L_keep", 2.0, lambda_keep=2.0)


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


# Reduced precision: the same step computed with bfloat16 / float16 convolutions (float32 weights)
# against the float32 reference of the same weights. Measured on this batch (these tiny networks
# are a worst case): bfloat16 logs within 21% (D_C/L_adv, a difference of two small scores; the
# rest within 7%), gradients' relative L2 error 16% / 1.4% (critic updates) and 11% (G);
# float16 logs within 0.14%, gradients 0.7% / 0.2% / 4%. Tolerances are about 2x those.
@pytest.fixture
def same_crops(monkeypatch):
    """D_C's crop boxes of the float32 reference, replayed in the reduced-precision step.

    Reduced precision moves the attention by ~2e-3, which on some CPUs (an AMD EPYC of family 26,
    for float16) flips which connected component of a >= 0.5 max is the largest: a jump of the crop
    box, so of D_C's losses, that says nothing about the wiring under test. Call `record()` before
    the reference iteration and `replay()` before the step under test; both take boxes in the same
    order (each critic update, then the G update)."""
    import amgan_tf.models.amgan as amgan_module
    boxes = []

    def recording(a, threshold):
        boxes.append(_ORIGINAL_BOXES(a, threshold))
        return boxes[-1]

    def replaying(a, threshold):
        box = boxes.pop(0)
        assert box.shape == (a.shape[0], 4)
        return box

    class Crops:
        @staticmethod
        def record():
            monkeypatch.setitem(globals(), "attention_boxes", recording)

        @staticmethod
        def replay():
            monkeypatch.setitem(globals(), "attention_boxes", _ORIGINAL_BOXES)
            monkeypatch.setattr(amgan_module, "attention_boxes", replaying)

        @staticmethod
        def all_used():
            return not boxes
    return Crops


_ORIGINAL_BOXES = attention_boxes


@pytest.mark.parametrize("policy, log_rel, log_abs, grad_rel", [
    ("mixed_bfloat16", 0.15, 0.01, 0.3), ("mixed_float16", 0.005, 1e-3, 0.08)])
def test_mixed_precision_step_matches_float32(element, same_crops, policy, log_rel, log_abs,
                                              grad_rel):
    reference = make_model()
    same_crops.record()
    expected, critic_grads, g_grads = reference_iteration(reference, element)
    same_crops.replay()
    model = make_model(dtype_policy=policy)
    for a, b in zip(reference.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert model.G.trunk.compute_dtype == model.D_I.convs[0].compute_dtype == policy[6:]
    # A float16 step runs loss-scaled: the stand-in unscales as the loss-scale optimizer does, so
    # a scale applied twice or not cancelled in the gradient penalty would show.
    scale = 1024.0 if policy == "mixed_float16" else None
    model.d_opt, model.g_opt = RecordingOptimizer(scale), RecordingOptimizer(scale)
    logs = model.train_step(element)
    assert same_crops.all_used()
    assert_logs_match(logs, expected, rel=log_rel, abs=log_abs)
    for recorded, grads in zip(model.d_opt.calls, critic_grads):
        assert_grads_close(recorded, model.critic_variables, grads, grad_rel)
    assert_grads_close(model.g_opt.calls[0], model.generator_variables, g_grads, grad_rel)


def test_float16_step_scales_losses_and_skips_overflowing_updates(element, same_crops):
    """The real loss-scale optimizers: an overflowing scale skips the update (weights unchanged,
    scale halved) instead of writing inf into the weights; a finite step updates and logs the
    float32 numbers."""
    model = make_model(dtype_policy="mixed_float16", learning_rate=0.0)
    assert isinstance(model.d_opt, keras.optimizers.LossScaleOptimizer)
    same_crops.record()
    expected, _, _ = reference_iteration(make_model(learning_rate=0.0), element)
    same_crops.replay()
    model.d_opt.dynamic_scale.assign(2.0 ** 120)  # scaled float32 gradients overflow to inf
    model.g_opt.dynamic_scale.assign(1024.0)
    logs = tf.function(model.train_step)(element)
    assert same_crops.all_used()
    assert int(model.d_opt.iterations) == 0 and float(model.d_opt.dynamic_scale) == 2.0 ** 118
    assert int(model.g_opt.iterations) == 1 and float(model.g_opt.dynamic_scale) == 1024.0
    assert_logs_match(logs, expected, rel=0.005, abs=1e-3)


def test_xla_compiled_step_matches_the_paper(element):
    """`--jit_compile`: the whole step under XLA (gather-based crops) logs the same numbers."""
    model = make_model(learning_rate=0.0, xla_crops=True)
    expected, _, _ = reference_iteration(model, element)
    logs = tf.function(model.train_step, jit_compile=True)(element)
    assert_logs_match(logs, expected)
    assert int(model.d_opt.iterations) == N_CRITIC and int(model.g_opt.iterations) == 1
