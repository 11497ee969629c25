"""The AMGAN `keras.Model`: wires G, D_I, D_C, the frozen attribute CNN, losses and optimizers.

`train_step` runs one iteration on a batch-major element `[B, n_critic + 1, ...]` from
`amgan_tf.data.pipeline.AmganBatches`: n_critic updates of both critics (sub-batches 0..n-1), then
one generator update (the last sub-batch). Per-example losses are averaged over the GLOBAL batch
(`losses.average`), because under tf.distribute the optimizer sums the replicas' gradients.
Baselines and ablations are configurations of this one class (see `AmganConfig`).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from amgan_tf import losses, precision
from amgan_tf.attributes import AttributeSchema
from amgan_tf.edit import floored_attention
from amgan_tf.models.attribute_cnn import AttributeCNN
from amgan_tf.models.networks import (Critic, CriticConfig, Generator, GeneratorConfig,
                                      critic_for_crops, crop_size)
from amgan_tf.ops.components import attention_boxes, crop_to_boxes

ATTENTION_SOURCES = ("generator", "cam")
# Generator loss terms as the paper names them (TensorBoard and console).
PAPER_NAMES = {"adv": "L_adv", "cls": "L_cls", "cyc": "L_cyc", "att": "L_a", "perc": "L_p",
               "mask_mean": "L_mask_mean", "mask_tv": "L_mask_tv", "id": "L_id",
               "out": "L_out", "keep": "L_keep"}


@dataclasses.dataclass
class AmganConfig:
    image_size: int = 128
    batch_size: int = 16  # global
    n_critic: int = 5
    generator: GeneratorConfig = dataclasses.field(default_factory=GeneratorConfig)
    critic: CriticConfig = dataclasses.field(default_factory=CriticConfig)
    use_dc: bool = True  # the crop critic D_C
    attention_source: str = "generator"  # "cam": the frozen CNN's CAM is the mask (ablation)
    weights: losses.LossWeights = dataclasses.field(default_factory=losses.LossWeights)
    perceptual_layers: tuple[str, ...] = ("conv5", "avgpool")
    crop_threshold: float = 0.5  # D_C crop: attention >= this share of its max
    # L_a's target is the normalised CAM raised to this power (1 = the paper). A power > 1 keeps
    # the CAM's ranking but lowers its leak outside the region (benchmarks/cam_target_fit.py).
    cam_target_power: float = 1.0
    # If > 0, L_a's target is binary instead: 1 where the normalised CAM >= this, else 0. At 0.5
    # it covers the truly changed pattern and colour regions about twice as fully as CAM^3 with
    # no more leak (benchmarks/cam_target_fit.py --binary=0.5); trained, it gave crisper masks
    # but no lower error (BUILD_NOTES.md, experiment M). 0 = CAM^power.
    cam_target_threshold: float = 0.0
    # The mask maps to max(a - floor, 0) / (1 - floor) in every edit (CLI, evaluation, exports;
    # `amgan_tf.edit.floored_attention`). 0 = the paper's x* = a z + (1 - a) x.
    attention_floor: float = 0.0
    # Also blend training's fakes (and cycle reconstructions) through the floored mask, so G learns
    # to put what an edit needs above the floor; off, the floor is edit time only and training's
    # losses see the raw mask.
    train_attention_floor: bool = False
    xla_crops: bool = False  # gather-based crops (tf.image.crop_and_resize has no XLA kernel)
    learning_rate: float = 1e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    total_steps: int = 80000  # lr constant for the first half, then linear decay to 0

    def __post_init__(self):
        if self.attention_source not in ATTENTION_SOURCES:
            raise ValueError(f"attention_source must be one of {ATTENTION_SOURCES}, got "
                             f"{self.attention_source!r}.")
        if self.use_dc and self.generator.mode == "stargan":
            raise ValueError("D_C crops by the attention mask; the StarGAN generator has none "
                             "(set use_dc=False).")
        if self.cam_target_power <= 0:
            raise ValueError(f"cam_target_power must be > 0 (1 = the paper's CAM target), got "
                             f"{self.cam_target_power}.")
        if not 0.0 <= self.cam_target_threshold < 1.0:
            raise ValueError(f"cam_target_threshold must be in [0, 1) (0 = the CAM itself as "
                             f"L_a's target), got {self.cam_target_threshold}.")
        if self.cam_target_threshold > 0 and self.cam_target_power != 1.0:
            raise ValueError("cam_target_threshold makes L_a's target binary, so "
                             f"cam_target_power={self.cam_target_power} would have no effect: "
                             "set one of them.")
        if not 0.0 <= self.attention_floor < 1.0:
            raise ValueError(f"attention_floor must be in [0, 1) (0 = the raw mask), got "
                             f"{self.attention_floor}.")
        if self.train_attention_floor and self.attention_floor == 0.0:
            raise ValueError("train_attention_floor trains through the attention floor, but "
                             "attention_floor is 0: set it (e.g. 0.2), or leave the option off.")
        self.perceptual_layers = tuple(self.perceptual_layers)

    @property
    def needs_attribute_cnn(self) -> bool:
        w = self.weights
        return (w.lambda_a > 0 or w.lambda_p > 0 or w.lambda_out > 0 or w.lambda_keep > 0
                or self.attention_source == "cam")


def edit_region(cam_org, cam_trg, image_size: int) -> tf.Tensor:
    """Where an edit may act, for L_out, [B, H, W, 1]: the input's CAM of its current value or the
    output's CAM of the target value (long -> sleeveless bares arms the "long" CAM never covers),
    grown by image_size / 32 pixels each way because CAMs are coarse. CAMs [B, H, W]."""
    grow = 2 * (image_size // 32) + 1
    return tf.nn.max_pool2d(tf.maximum(cam_org, cam_trg)[..., None], grow, 1, "SAME")


@keras.saving.register_keras_serializable("amgan_tf")
class HalfConstantLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant for the first half of training, then linear to 0 (the paper's schedule).

    `updates_per_step` > 1 for the critics' optimizer, whose `iterations` advance n_critic times
    per training step; the schedule follows training steps, so it resumes exactly."""

    def __init__(self, learning_rate: float, total_steps: int, updates_per_step: int = 1):
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.updates_per_step = int(updates_per_step)

    def __call__(self, iterations):
        step = tf.cast(iterations // self.updates_per_step, tf.float32)
        half = self.total_steps / 2.0
        frac = tf.clip_by_value((step - half) / max(self.total_steps - half, 1.0), 0.0, 1.0)
        return self.learning_rate * (1.0 - frac)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "updates_per_step": self.updates_per_step}


def _optimizer(schedule, config: AmganConfig, dtype_policy: str, name: str):
    """Adam; wrapped in dynamic loss scaling for float16 networks, whose small gradients would
    otherwise flush to zero (bfloat16 has float32's exponent range and needs none)."""
    opt = keras.optimizers.Adam(schedule, beta_1=config.beta_1, beta_2=config.beta_2, name=name)
    if precision.resolve(dtype_policy) == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(opt, name=f"{name}_loss_scale")
    return opt


def loss_scale(opt) -> tf.Tensor | float:
    """The optimizer's current loss scale (1 without loss scaling)."""
    scale = getattr(opt, "dynamic_scale", None)
    return 1.0 if scale is None else tf.cast(scale, tf.float32)


class AMGAN(keras.Model):
    def __init__(self, schema: AttributeSchema, config: AmganConfig,
                 attribute_cnn: AttributeCNN | None = None, **kwargs):
        super().__init__(**kwargs)
        if config.needs_attribute_cnn and attribute_cnn is None:
            raise ValueError("This configuration uses the attribute CNN (lambda_a, lambda_p, "
                             "lambda_out, lambda_keep or CAM attention) but none was given.")
        self.schema, self.config = schema, config
        n = schema.num_values
        self.G = Generator(config.generator, name="G")
        self.D_I = Critic(config.critic, config.image_size, n, name="D_I")
        self.crop_size = crop_size(config.image_size)
        self.D_C = (Critic(critic_for_crops(config.critic, config.image_size), self.crop_size, n,
                           name="D_C") if config.use_dc else None)
        self.cnn = attribute_cnn
        if attribute_cnn is not None:
            attribute_cnn.trainable = False
        self.offsets, self.block_sizes = schema.offsets, schema.block_sizes
        self.r_columns = tf.constant(schema.manipulated_columns, tf.int32)
        self.g_opt = _optimizer(
            HalfConstantLinearDecay(config.learning_rate, config.total_steps), config,
            config.generator.dtype_policy, "g_opt")
        self.d_opt = _optimizer(
            HalfConstantLinearDecay(config.learning_rate, config.total_steps,
                                    max(config.n_critic, 1)), config,
            config.critic.dtype_policy, "d_opt")

    # ---- variables -----------------------------------------------------------------------------
    @property
    def critic_variables(self):
        critics = [self.D_I] + ([self.D_C] if self.D_C is not None else [])
        return [v for c in critics for v in c.trainable_variables]

    @property
    def generator_variables(self):
        return self.G.trainable_variables

    @property
    def attention_floor(self) -> float:
        """The edit-time mask floor every edit of this model applies (`edit.floored_attention`)."""
        return self.config.attention_floor

    def build_all(self):
        """Create every variable (call under the strategy scope, before training or restoring)."""
        s = self.config.image_size
        x = tf.zeros((1, s, s, 3))
        self.G(x, tf.zeros((1, self.schema.m_dim)))
        self.D_I(x)
        if self.D_C is not None:
            self.D_C(tf.zeros((1, self.crop_size, self.crop_size, 3)))
        if self.cnn is not None:
            self.cnn(x)
        self.g_opt.build(self.generator_variables)
        self.d_opt.build(self.critic_variables)
        self.built = True
        return self

    def call(self, x, m, training=False):
        return self.G(x, m, training=training)

    # ---- pieces --------------------------------------------------------------------------------
    def _cam(self, x, r, value, conv5=None):
        return self.cnn.cam(x, tf.gather(self.r_columns, r), value, conv5=conv5)

    def generate(self, x, m, r=None, c_of_x=None):
        """(x*, a, z) with a the raw mask; with CAM attention the mask is the CAM of x's current
        value of attribute r. With `train_attention_floor`, x* is blended as every edit is (the
        floored mask), while a stays raw for L_a, D_C's crops and the mask terms."""
        if self.config.attention_source == "cam":
            x_fake, a, z = self.G(x, m, attention_override=self._cam(x, r, c_of_x)[..., None])
        else:
            x_fake, a, z = self.G(x, m)
        if self.config.train_attention_floor:
            a_edit = floored_attention(a, self.config.attention_floor)
            x_fake = a_edit * z + (1.0 - a_edit) * tf.cast(x, a.dtype)
        return x_fake, a, z

    def _edit_region(self, cam_org, x_fake, conv5_fake, r, c_trg):
        """`edit_region` of this step; conv5_fake: the CNN's conv5 features of x_fake, shared
        with L_p (no gradient flows: the region is a target)."""
        cam_trg = self._cam(x_fake, r, c_trg, conv5=conv5_fake)
        return tf.stop_gradient(edit_region(cam_org, cam_trg, self.config.image_size))

    def _crops(self, a, *images):
        boxes = attention_boxes(a, self.config.crop_threshold)
        return [crop_to_boxes(img, boxes, self.crop_size, xla_compatible=self.config.xla_crops)
                for img in images]

    # ---- one critic update ---------------------------------------------------------------------
    def critic_step(self, x_real, m_trg, r, c_org, c_trg, gp_alpha):
        """gp_alpha [B, 2]: uniform interpolation weights for D_I's and D_C's gradient penalty."""
        w, gb = self.config.weights, self.config.batch_size
        x_fake, a, _ = self.generate(x_real, m_trg, r, c_org)
        x_fake = tf.stop_gradient(x_fake)
        pairs = [("I", self.D_I, x_real, x_fake)]
        if self.D_C is not None:
            crop_real, crop_fake = self._crops(a, x_real, x_fake)
            pairs.append(("C", self.D_C, crop_real, crop_fake))
        logs = {}
        # Only the outer loss is scaled: scaling the penalty's inner input gradient as well would
        # overflow float16 (and log a NaN penalty) at exactly the scales loss scaling probes.
        scale = loss_scale(self.d_opt)
        with tf.GradientTape() as tape:
            total = 0.0
            for j, (name, critic, real, fake) in enumerate(pairs):
                # One call on [real; fake]: the critics have no cross-sample ops (no batch norm),
                # so this equals two calls, with fewer and larger convolutions.
                src, cls = critic(tf.concat([real, fake], axis=0), training=True)
                n = tf.shape(real)[0]
                src_real, src_fake, cls_real = src[:n], src[n:], cls[:n]
                alpha = gp_alpha[:, j]
                adv = losses.wgan_discriminator_loss(src_real, src_fake)
                gp = losses.gradient_penalty(lambda t, c=critic: c(t, training=True)[0], real, fake,
                                             alpha)
                cls = losses.classification_loss(cls_real, r, c_org, self.offsets,
                                                 self.block_sizes)
                per_example = losses.discriminator_objective(adv, gp, cls, w)
                total += losses.average(per_example, gb)
                logs.update({f"D_{name}/L_adv": losses.average(adv, gb),
                             f"D_{name}/L_gp": losses.average(gp, gb),
                             f"D_{name}/L_cls": losses.average(cls, gb)})
            scaled = total * scale
        variables = self.critic_variables
        grads = tape.gradient(scaled, variables)  # the loss-scale optimizer divides by scale
        self.d_opt.apply_gradients(zip(grads, variables))
        logs["D/total"] = total
        return logs

    # ---- one generator update ------------------------------------------------------------------
    def generator_step(self, x_real, x_ref, ref_weight, m_trg, m_org, r, c_org, c_trg):
        cfg, w, gb = self.config, self.config.weights, self.config.batch_size
        terms = {}
        with tf.GradientTape() as tape:
            x_fake, a, _ = self.generate(x_real, m_trg, r, c_org)
            src, cls_logits = self.D_I(x_fake, training=True)
            adv = losses.wgan_generator_loss(src)
            cls = losses.classification_loss(cls_logits, r, c_trg, self.offsets, self.block_sizes)
            if self.D_C is not None:
                (crop_fake,) = self._crops(a, x_fake)
                src_c, cls_c = self.D_C(crop_fake, training=True)
                adv = adv + losses.wgan_generator_loss(src_c)
                cls = cls + losses.classification_loss(cls_c, r, c_trg, self.offsets,
                                                       self.block_sizes)
            terms["adv"], terms["cls"] = adv, cls
            x_rec, a_rec, _ = self.generate(x_fake, m_org, r, c_trg)
            terms["cyc"] = losses.cycle_loss(x_real, x_rec)
            guided = w.lambda_a > 0 and cfg.attention_source == "generator"
            if guided or w.lambda_out > 0 or w.lambda_keep > 0:  # one CNN pass on x_real
                f_real = self.cnn.features(x_real, training=False)
            if guided or w.lambda_out > 0:
                cam_org = tf.stop_gradient(self._cam(x_real, r, c_org, conv5=f_real["conv5"]))
            if guided:
                a_star = cam_org
                if cfg.cam_target_threshold > 0:
                    a_star = tf.cast(a_star >= cfg.cam_target_threshold, a_star.dtype)
                elif cfg.cam_target_power != 1.0:
                    a_star = a_star ** cfg.cam_target_power
                terms["att"] = losses.attention_loss(a, a_star)
            if w.lambda_p > 0 or w.lambda_out > 0 or w.lambda_keep > 0:  # one pass on x_fake
                f_fake = self.cnn.features(x_fake, training=False)
            if w.lambda_keep > 0:
                terms["keep"] = losses.keep_attributes_loss(
                    f_real["logits"], f_fake["logits"], tf.gather(self.r_columns, r),
                    self.cnn.head_sizes)
            if w.lambda_out > 0:
                region = self._edit_region(cam_org, x_fake, f_fake["conv5"], r, c_trg)
                terms["out"] = losses.outside_change_loss(x_real, x_fake, region)
            if w.lambda_p > 0:
                f_ref = self.cnn.features(x_ref, training=False)
                terms["perc"] = losses.perceptual_loss(
                    [f_fake[k] for k in cfg.perceptual_layers],
                    [tf.stop_gradient(f_ref[k]) for k in cfg.perceptual_layers], ref_weight)
            if w.lambda_id > 0:
                x_id, _, _ = self.generate(x_real, m_org, r, c_org)
                terms["id"] = losses.cycle_loss(x_real, x_id)
            if w.lambda_mask_mean > 0 or w.lambda_mask_tv > 0:
                terms["mask_mean"] = (losses.attention_mean_loss(a)
                                      + losses.attention_mean_loss(a_rec))
                terms["mask_tv"] = losses.attention_tv_loss(a) + losses.attention_tv_loss(a_rec)
            total = losses.average(losses.generator_objective(terms, w), gb)
            scaled = total * loss_scale(self.g_opt)
        variables = self.generator_variables
        grads = tape.gradient(scaled, variables)
        # With CAM attention G's own attention head is unused and has no gradient.
        self.g_opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        logs = {f"G/{PAPER_NAMES[k]}": losses.average(v, gb) for k, v in terms.items()}
        logs["G/total"] = total
        logs["G/attention_mean"] = losses.average(tf.reduce_mean(a, axis=[1, 2, 3]), gb)
        return logs

    # ---- one iteration -------------------------------------------------------------------------
    def train_step(self, data):
        """n_critic critic updates, then one generator update. Logs are per-replica shares of the
        global mean (sum them over replicas)."""
        n = self.config.n_critic
        logs = {}
        for k in range(n):  # a static loop: optimizer updates may not sit inside tf.cond/while
            step_logs = self.critic_step(data["x_real"][:, k], data["m_trg"][:, k],
                                         data["r"][:, k], data["c_org"][:, k], data["c_trg"][:, k],
                                         data["gp_alpha"][:, k])
            for key, v in step_logs.items():
                logs[key] = logs.get(key, 0.0) + v / n
        g = n  # the last sub-batch
        logs.update(self.generator_step(
            data["x_real"][:, g], data["x_ref"][:, g], data["ref_weight"][:, g],
            data["m_trg"][:, g], data["m_org"][:, g], data["r"][:, g], data["c_org"][:, g],
            data["c_trg"][:, g]))
        return logs
