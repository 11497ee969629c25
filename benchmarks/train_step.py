"""Where an AMGAN training iteration's time goes, against a plain StarGAN iteration in Keras.

    python benchmarks/train_step.py [--sizes=quickstart,b8_64] [--repeats=5]
    python benchmarks/train_step.py --sizes=paper --repeats=2        # ~20 s per iteration on CPU
    python benchmarks/train_step.py --sizes=quickstart --g_policies=float32,mixed_bfloat16
    python benchmarks/train_step.py --sizes=quickstart --g_skips=0,1

For each named size it times, in one run and one process: this machine's float32 and bfloat16
matmul peak (a probe); the reference StarGAN iteration (the official layer table: G with an
encoder, residual blocks and a decoder on [x, tile(c)]; a PatchGAN critic; WGAN-GP; n_critic
critic updates then one G update with adversarial, classification and reconstruction losses),
written here in plain Keras + tf.function; and AMGAN's full iteration and its parts (one critic
update of D_I and D_C with both gradient penalties; the D_C crop op; one G update; the attribute
CNN's CAM and features). Each part's FLOPs come from TF's profiler on its traced graph, and its
share of the matmul peak is FLOPs / time / peak. Random weights and data: the cost does not
depend on them. The project does not depend on PyTorch: the issue's PyTorch figure (3.62 s per
B8 64 px iteration here) is 1.40x this TF reference, so 0.4x of PyTorch is 0.55x of the reference.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from amgan_tf import losses
from amgan_tf.data import synthfashion
from amgan_tf.models.amgan import AMGAN, AmganConfig
from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig
from amgan_tf.models.networks import Critic, CriticConfig, Generator, GeneratorConfig
from amgan_tf.ops.components import attention_boxes, crop_to_boxes
from amgan_tf.profiling import flops as flops_of
from amgan_tf.profiling import matmul_peak
from amgan_tf.profiling import median_seconds as seconds


@dataclasses.dataclass(frozen=True)
class Size:
    image_size: int
    batch_size: int
    generator: GeneratorConfig
    critic: CriticConfig
    cnn: AttributeCNNConfig
    n_critic: int = 5


SIZES = {
    "quickstart": Size(64, 16, GeneratorConfig(conv_dim=32, repeat_num=4, dtype_policy="auto"),
                       CriticConfig(conv_dim=32, repeat_num=5, max_dim=256),
                       AttributeCNNConfig(image_size=64)),
    "b8_64": Size(64, 8, GeneratorConfig(conv_dim=64, repeat_num=6),
                  CriticConfig(conv_dim=64, repeat_num=5, max_dim=2048),
                  AttributeCNNConfig(image_size=64)),
    "paper": Size(128, 16, GeneratorConfig(conv_dim=64, repeat_num=6),
                  CriticConfig(conv_dim=64, repeat_num=6, max_dim=2048),
                  AttributeCNNConfig(image_size=128, backbone="resnet50", input_size=224,
                                     cam_smoothing=0.0)),
}
PYTORCH_OVER_TF_REFERENCE = 3.62 / 2.59  # the one-run measurement on this machine

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["quickstart", "b8_64"], f"Named sizes: {', '.join(SIZES)}.")
flags.DEFINE_integer("repeats", 5, "Timed calls per part (after 2 warm-up calls).")
flags.DEFINE_list("g_skips", [], "Instead of the full table: time AMGAN's G step with each "
                  "number of U-Net skips in G (--g_skips=0,1,2; the first is the reference).")
flags.DEFINE_string("g_dtype_policy", "", "Override AMGAN's G policy ('' = the size's).")
flags.DEFINE_string("d_dtype_policy", "", "Override AMGAN's critics' policy ('' = the size's).")
flags.DEFINE_list("g_policies", [], "Instead of the full table: time AMGAN's G step under each of "
                  "these G policies in this one run (e.g. float32,mixed_bfloat16).")


# ---- the StarGAN reference -------------------------------------------------------------------
class StarGAN:
    """Plain StarGAN: G(x, c) -> x*, PatchGAN D -> (src, cls), WGAN-GP, lambda_cls 1, lambda_rec
    10, lambda_gp 10; c is the one-hot target (softmax cross-entropy per attribute block)."""

    def __init__(self, size: Size, schema):
        self.size, self.schema = size, schema
        self.G = Generator(dataclasses.replace(size.generator, mode="stargan"))
        self.D = Critic(size.critic, size.image_size, schema.num_values)
        s = size.image_size
        self.G(tf.zeros((1, s, s, 3)), tf.zeros((1, schema.m_dim)))
        self.D(tf.zeros((1, s, s, 3)))
        self.g_opt = keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.999)
        self.d_opt = keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.999)
        self.g_opt.build(self.G.trainable_variables)
        self.d_opt.build(self.D.trainable_variables)
        self.critic_step = tf.function(self._critic_step)
        self.generator_step = tf.function(self._generator_step)

    def _cls(self, logits, r, c):
        return losses.classification_loss(logits, r, c, self.schema.offsets,
                                          self.schema.block_sizes)

    def _critic_step(self, x, m_trg, r, c_org, alpha):
        x_fake = tf.stop_gradient(self.G(x, m_trg)[0])
        with tf.GradientTape() as tape:
            src_real, cls_real = self.D(x)
            src_fake, _ = self.D(x_fake)
            gp = losses.gradient_penalty(lambda t: self.D(t)[0], x, x_fake, alpha)
            loss = tf.reduce_mean(tf.reduce_mean(src_fake, [1, 2, 3])
                                  - tf.reduce_mean(src_real, [1, 2, 3]) + 10.0 * gp
                                  + self._cls(cls_real, r, c_org))
        grads = tape.gradient(loss, self.D.trainable_variables)
        self.d_opt.apply_gradients(zip(grads, self.D.trainable_variables))
        return loss

    def _generator_step(self, x, m_trg, m_org, r, c_trg):
        with tf.GradientTape() as tape:
            x_fake = self.G(x, m_trg)[0]
            src, cls = self.D(x_fake)
            x_rec = self.G(x_fake, m_org)[0]
            loss = tf.reduce_mean(-tf.reduce_mean(src, [1, 2, 3]) + self._cls(cls, r, c_trg)
                                  + 10.0 * tf.reduce_mean(tf.abs(x - x_rec), [1, 2, 3]))
        grads = tape.gradient(loss, self.G.trainable_variables)
        self.g_opt.apply_gradients(zip(grads, self.G.trainable_variables))
        return loss


# ---- inputs ----------------------------------------------------------------------------------
def sub_batch(size: Size, schema, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    b, s = size.batch_size, size.image_size
    r = np.full(b, 1, np.int32)
    k = schema.block_sizes[1]
    c_org = rng.integers(0, k, b).astype(np.int32)
    c_trg = ((c_org + rng.integers(1, k, b)) % k).astype(np.int32)
    return {"x_real": tf.random.uniform((b, s, s, 3), -1, 1, seed=seed),
            "x_ref": tf.random.uniform((b, s, s, 3), -1, 1, seed=seed + 1),
            "ref_weight": tf.ones(b), "r": tf.constant(r), "c_org": tf.constant(c_org),
            "c_trg": tf.constant(c_trg),
            "m_trg": tf.constant(schema.encode_batch(r, c_trg)),
            "m_org": tf.constant(schema.encode_batch(r, c_org)),
            "gp_alpha": tf.constant(rng.random((b, 2)), tf.float32)}


def iteration(size: Size, schema) -> dict:
    subs = [sub_batch(size, schema, seed) for seed in range(size.n_critic + 1)]
    return {k: tf.stack([s[k] for s in subs], axis=1) for k in subs[0]}


def amgan_model(size: Size, schema, cnn, generator: GeneratorConfig,
                critic: CriticConfig) -> AMGAN:
    config = AmganConfig(image_size=size.image_size, batch_size=size.batch_size,
                         n_critic=size.n_critic, generator=generator, critic=critic)
    return AMGAN(schema, config, cnn).build_all()


def amgan_g_args(b: dict) -> tuple:
    """AMGAN.generator_step's arguments from a sub-batch."""
    return (b["x_real"], b["x_ref"], b["ref_weight"], b["m_trg"], b["m_org"], b["r"],
            b["c_org"], b["c_trg"])


# ---- one size ----------------------------------------------------------------------------------
def report(name, secs, flops, peak, ref=None):
    share = flops / secs / (peak * 1e9)
    extra = f"  {secs / ref:5.2f}x reference iteration" if ref else ""
    print(f"  {name:34s} {1000 * secs:9.1f} ms  {flops / 1e9:8.1f} GFLOP  "
          f"{100 * share:5.1f}% of float32 peak{extra}", flush=True)
    return {"part": name, "ms": 1000 * secs, "gflop": flops / 1e9, "share": share}


def run_size(name: str, size: Size, peak: float) -> list[dict]:
    schema = synthfashion.schema()
    keras.utils.set_random_seed(0)
    print(f"\n{name}: {size.image_size} px, batch {size.batch_size}, n_critic {size.n_critic}, "
          f"G {size.generator.conv_dim}/{size.generator.repeat_num} "
          f"({size.generator.dtype_policy}), critics {size.critic.conv_dim}/"
          f"{size.critic.repeat_num}/{size.critic.max_dim}, CNN {size.cnn.backbone}", flush=True)
    rows = []
    ref = StarGAN(size, schema)
    b = sub_batch(size, schema)
    critic_args = (b["x_real"], b["m_trg"], b["r"], b["c_org"], b["gp_alpha"][:, 0])
    g_args = (b["x_real"], b["m_trg"], b["m_org"], b["r"], b["c_trg"])
    ref_critic = seconds(lambda: ref.critic_step(*critic_args), FLAGS.repeats)
    ref_g = seconds(lambda: ref.generator_step(*g_args), FLAGS.repeats)
    ref_iter = size.n_critic * ref_critic + ref_g
    ref_flops = (size.n_critic * flops_of(ref.critic_step, *critic_args)
                 + flops_of(ref.generator_step, *g_args))
    rows.append(report("StarGAN reference: critic step", ref_critic,
                       flops_of(ref.critic_step, *critic_args), peak))
    rows.append(report("StarGAN reference: G step", ref_g, flops_of(ref.generator_step, *g_args),
                       peak))
    rows.append(report(f"StarGAN reference: iteration ({size.n_critic}+1)", ref_iter, ref_flops,
                       peak))

    cnn = AttributeCNN(schema, size.cnn).build_on_zeros()
    generator = dataclasses.replace(
        size.generator, dtype_policy=FLAGS.g_dtype_policy or size.generator.dtype_policy)
    critic = dataclasses.replace(
        size.critic, dtype_policy=FLAGS.d_dtype_policy or size.critic.dtype_policy)
    print(f"  AMGAN policies: G {generator.dtype_policy}, critics {critic.dtype_policy}; the "
          f"reference keeps the size's", flush=True)
    model = amgan_model(size, schema, cnn, generator, critic)
    data = iteration(size, schema)
    step = tf.function(model.train_step)
    amgan_iter = seconds(lambda: step(data), FLAGS.repeats)
    rows.append(report(f"AMGAN: iteration ({size.n_critic}+1)", amgan_iter, flops_of(step, data),
                       peak, ref_iter))
    critic = tf.function(model.critic_step)
    c_args = (b["x_real"], b["m_trg"], b["r"], b["c_org"], b["c_trg"], b["gp_alpha"])
    rows.append(report("AMGAN: critic step (D_I + D_C)", seconds(lambda: critic(*c_args),
                                                                 FLAGS.repeats),
                       flops_of(critic, *c_args), peak))
    gen = tf.function(model.generator_step)
    g_args = amgan_g_args(b)
    rows.append(report("AMGAN: G step", seconds(lambda: gen(*g_args), FLAGS.repeats),
                       flops_of(gen, *g_args), peak))
    a = tf.random.uniform((size.batch_size, size.image_size, size.image_size, 1), seed=3)
    crop = tf.function(lambda a, x: crop_to_boxes(x, attention_boxes(a, 0.5),
                                                  size.image_size // 2))
    rows.append(report("AMGAN: D_C crop op (boxes + crops)",
                       seconds(lambda: crop(a, b["x_real"]), FLAGS.repeats),
                       flops_of(crop, a, b["x_real"]), peak))
    column = tf.gather(tf.constant(schema.manipulated_columns), b["r"])
    cam = tf.function(lambda x: (cnn.cam(x, column, b["c_org"]), cnn.features(x)))
    rows.append(report("AMGAN: CNN CAM + features (x_real)",
                       seconds(lambda: cam(b["x_real"]), FLAGS.repeats),
                       flops_of(cam, b["x_real"]), peak))
    print(f"  AMGAN / StarGAN reference iteration: {amgan_iter / ref_iter:.2f} "
          f"(goal 0.55; = {amgan_iter / ref_iter / PYTORCH_OVER_TF_REFERENCE:.2f} of the "
          f"issue's PyTorch figure, goal 0.40)", flush=True)
    return rows


def compare_g_steps(name: str, size: Size, title: str, variants: dict) -> None:
    """AMGAN's G step under each G config (label -> GeneratorConfig), one process; the first is
    the reference of the ratios."""
    schema = synthfashion.schema()
    cnn = AttributeCNN(schema, size.cnn).build_on_zeros()
    g_args = amgan_g_args(sub_batch(size, schema))
    print(f"\n{name}: AMGAN G step by {title}", flush=True)
    times = {}
    for label, generator in variants.items():
        keras.utils.set_random_seed(0)
        gen = tf.function(amgan_model(size, schema, cnn, generator, size.critic).generator_step)
        times[label] = seconds(lambda: gen(*g_args), FLAGS.repeats)
        first = next(iter(times))
        print(f"  G step, {label:20s} {1000 * times[label]:9.1f} ms  "
              f"{times[label] / times[first]:5.2f}x {first}", flush=True)


def main(argv):
    del argv
    unknown = set(FLAGS.sizes) - set(SIZES)
    if unknown:
        raise app.UsageError(f"Unknown sizes {sorted(unknown)}; choose from {', '.join(SIZES)}.")
    peak32, peak16 = matmul_peak(tf.float32), matmul_peak(tf.bfloat16)
    print(f"matmul peak (4096^3, this run): float32 {peak32:.0f} GFLOP/s, bfloat16 "
          f"{peak16:.0f} GFLOP/s")
    for name in FLAGS.sizes:
        size = SIZES[name]
        if FLAGS.g_policies:
            from amgan_tf import precision
            compare_g_steps(name, size, f"G policy (auto here = {precision.resolve('auto')})",
                            {f"G {p}": dataclasses.replace(size.generator, dtype_policy=p)
                             for p in FLAGS.g_policies})
        elif FLAGS.g_skips:
            compare_g_steps(name, size, "U-Net skips in G",
                            {f"skips={k}": dataclasses.replace(size.generator, skips=int(k))
                             for k in FLAGS.g_skips})
        else:
            run_size(name, size, peak32)


if __name__ == "__main__":
    app.run(main)
