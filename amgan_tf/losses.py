"""AMGAN losses (PAPER.md, "Losses") as pure functions returning PER-EXAMPLE float32 [B] tensors.

Why per-example: under tf.distribute every replica sees only its slice of the global batch and the
replicas' gradients are SUMMED. The training step therefore reduces each [B_replica] vector with
`average(per_example, global_batch_size)`, i.e. divides by the GLOBAL batch size, so the summed
gradient equals the gradient of the mean over the whole global batch. Reducing with a plain
`reduce_mean` per replica would scale gradients by the number of replicas.

Every function casts to float32 (safe under mixed precision) and holds no state, so the same code
serves both critics (D_I on images, D_C on crops), eager and tf.function, one or many replicas.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import tensorflow as tf

# Logit given to values outside attribute r's block: exp(-1e9 - max) is exactly 0 in float32, so the
# masked values drop out of the softmax, while staying finite avoids inf - inf = NaN anywhere.
_MASKED_LOGIT = -1e9
# Inside the sqrt of the gradient norm: keeps d||g||/dg finite when g = 0 (e.g. a dead critic);
# changes the norm by < 1e-6 for any realistic gradient.
_NORM_EPS = 1e-12


def _f32(x) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def _flatten(x: tf.Tensor) -> tf.Tensor:
    """[B, ...] -> [B, K]; rank-1 [B] becomes [B, 1]."""
    return tf.reshape(x, [tf.shape(x)[0], -1])


def _mean_per_example(x) -> tf.Tensor:
    """Mean over all non-batch axes: [B, ...] -> [B]."""
    return tf.reduce_mean(_flatten(_f32(x)), axis=1)


def _check_same_shape(a: tf.Tensor, b: tf.Tensor, what: str) -> None:
    """Static shape check: refuse silent broadcasting between per-example tensors."""
    if not a.shape.is_compatible_with(b.shape):
        raise ValueError(f"{what}: shapes {a.shape} and {b.shape} differ.")


# ---- reduction ------------------------------------------------------------------------------------
def average(per_example, global_batch_size) -> tf.Tensor:
    """Scalar loss for the gradient step: sum(per_example) / global_batch_size.

    Exactly `tf.nn.compute_average_loss`: each replica divides its own sum by the GLOBAL batch size,
    so the SUM-all-reduce of replica gradients equals the gradient of the global-batch mean.
    """
    return tf.nn.compute_average_loss(_f32(per_example), global_batch_size=global_batch_size)


# ---- adversarial (WGAN-GP) ------------------------------------------------------------------------
def wgan_discriminator_loss(d_real, d_fake) -> tf.Tensor:
    """Critic loss [B] = mean(D(x*)) - mean(D(x)) per example; maps may be PatchGAN [B, h, w, 1].

    The critic minimises E[D(x*)] - E[D(x)], so scoring reals above fakes gives a negative loss.
    """
    return _mean_per_example(d_fake) - _mean_per_example(d_real)


def wgan_generator_loss(d_fake) -> tf.Tensor:
    """Generator loss [B] = -mean(D(x*)) per example: it falls as the critic rates fakes higher."""
    return -_mean_per_example(d_fake)


def interpolates(x_real, x_fake, alpha) -> tf.Tensor:
    """x~ = alpha * x_real + (1 - alpha) * x_fake, alpha [B] broadcast per sample.

    alpha ~ U(0, 1) is drawn by the caller so this stays pure (and reproducible in tests).
    """
    x_real, x_fake = _f32(x_real), _f32(x_fake)
    _check_same_shape(x_real, x_fake, "interpolates")
    alpha = tf.reshape(_f32(alpha), tf.concat([[-1], tf.ones([tf.rank(x_real) - 1], tf.int32)], 0))
    return alpha * x_real + (1.0 - alpha) * x_fake


def _src(out):
    """The critic's realness output: the tensor itself, `out['src']`, or the first tuple entry."""
    if isinstance(out, Mapping):
        return out["src"]
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def gradient_penalty(critic_fn: Callable, x_real, x_fake, alpha) -> tf.Tensor:
    """WGAN-GP [B] = (||grad_x~ D(x~)||_2 - 1)^2, norm over all non-batch axes of each sample.

    The gradient is of the SUM of D's outputs (StarGAN's grad_outputs=ones), which for a PatchGAN
    map sums over patches; summing over the batch too is harmless because the critic has no
    cross-sample ops (no batch norm), so each sample's gradient is its own. An inner tape watches x~,
    and the gradient is built differentiably, so an outer tape over the critic's weights gets the
    second-order term. critic_fn may return the src map, a (src, cls) tuple or a dict with 'src'.
    """
    x_hat = interpolates(x_real, x_fake, alpha)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        d_hat = _f32(_src(critic_fn(x_hat)))
        total = tf.reduce_sum(d_hat)
    grad = tape.gradient(total, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(_flatten(grad)), axis=1) + _NORM_EPS)
    return tf.square(norm - 1.0)


# ---- classification -------------------------------------------------------------------------------
def classification_loss(logits, r, target, offsets: Sequence[int],
                        block_sizes: Sequence[int]) -> tf.Tensor:
    """Cross-entropy [B] over ONLY attribute r's block of the N value logits.

    logits [B, N] (all manipulated attributes' values, `AttributeSchema.offsets/block_sizes`), r [B]
    the manipulated attribute of each example, target [B] the value index inside attribute r. Logits
    outside block r are replaced (tf.where) by a large negative constant, so the loss equals the CE on
    the sliced block and their gradient is exactly 0 (StarGAN's mask vector: other attributes'
    heads are not trained by this example).
    """
    logits = _f32(logits)
    r = tf.cast(r, tf.int32)
    target = tf.cast(target, tf.int32)
    start = tf.gather(tf.constant(offsets, tf.int32), r)
    size = tf.gather(tf.constant(block_sizes, tf.int32), r)
    idx = tf.range(tf.shape(logits)[1])[None, :]
    inside = (idx >= start[:, None]) & (idx < (start + size)[:, None])
    masked = tf.where(inside, logits, tf.fill(tf.shape(logits), _MASKED_LOGIT))
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=start + target, logits=masked)


# ---- reconstruction / guidance ----------------------------------------------------------------------
def cycle_loss(x_real, x_rec) -> tf.Tensor:
    """L_cyc [B] = mean |x - G(G(x, m), m*)| per example (L1, StarGAN's mean convention)."""
    x_real, x_rec = _f32(x_real), _f32(x_rec)
    _check_same_shape(x_real, x_rec, "cycle_loss")
    return _mean_per_example(tf.abs(x_real - x_rec))


def _as_map(a: tf.Tensor) -> tf.Tensor:
    """[B, H, W, 1] or [B, H, W] -> [B, H, W]."""
    if a.shape.rank == 4:
        if a.shape[-1] not in (1, None):
            raise ValueError(f"Attention map needs one channel, got shape {a.shape}.")
        return a[..., 0]
    if a.shape.rank != 3:
        raise ValueError(f"Attention map must be [B, H, W] or [B, H, W, 1], got shape {a.shape}.")
    return a


def attention_loss(a, a_star) -> tf.Tensor:
    """L_a [B] = mean |a - a*| (CAM guidance); a [B,H,W,1], a* [B,H,W] or [B,H,W,1].

    Both are squeezed to [B, H, W] and shape-checked, so a [B,H,W,1] vs [B,H,W] pair can never
    broadcast into a [B,H,W,H,W]-sized tensor.
    """
    a, a_star = _as_map(_f32(a)), _as_map(_f32(a_star))
    _check_same_shape(a, a_star, "attention_loss")
    return _mean_per_example(tf.abs(a - a_star))


def perceptual_loss(features_fake: Sequence, features_ref: Sequence, weight) -> tf.Tensor:
    """L_p [B] = weight * sum_layers mean((phi(x*) - phi(x_ref))^2) per example.

    features_* are matching lists (e.g. conv5 [B,h,w,c] and avg-pool [B,c]) from the frozen attribute
    CNN. weight [B] (or scalar) is 0 for samples without a reference image: their differences are
    zeroed with tf.where BEFORE squaring, so even a NaN/garbage placeholder reference gives loss 0 and
    gradient 0 (a plain 0 * loss would propagate NaN).
    """
    if len(features_fake) != len(features_ref) or not features_fake:
        raise ValueError(f"perceptual_loss needs matching non-empty feature lists, got "
                         f"{len(features_fake)} and {len(features_ref)}.")
    first = _f32(features_fake[0])
    weight = tf.broadcast_to(_f32(weight), tf.shape(first)[:1])
    keep = weight != 0.0
    total = tf.zeros_like(weight)
    for f, g in zip(features_fake, features_ref):
        f, g = _flatten(_f32(f)), _flatten(_f32(g))
        _check_same_shape(f, g, "perceptual_loss")
        diff = tf.where(keep[:, None], f - g, tf.zeros_like(f))
        total += tf.reduce_mean(tf.square(diff), axis=1)
    return weight * total


def outside_change_loss(x_real, x_fake, region) -> tf.Tensor:
    """L_out [B] = mean (1 - region) |x* - x| per example: change where the edit has no business.

    region [B,H,W] or [B,H,W,1] in [0, 1], 1 where the edit may act. Not in the paper: L_cyc only
    asks that an edit can be undone, which a background change made both ways satisfies.
    """
    x_real, x_fake = _f32(x_real), _f32(x_fake)
    _check_same_shape(x_real, x_fake, "outside_change_loss")
    keep = 1.0 - _as_map(_f32(region))[..., None]
    return _mean_per_example(keep * tf.abs(x_fake - x_real))


def keep_attributes_loss(logits_real, logits_fake, column, head_sizes: Sequence[int]) -> tf.Tensor:
    """L_keep [B] = sum over the attributes other than `column` of KL(p(x) || p(x*)).

    p is the frozen attribute CNN's softmax per attribute head (logits [B, sum(head_sizes)] in head
    order), column [B] the label column of the attribute each example changes. Not in the paper:
    G is told only the target value and L_cls covers attribute r alone, so nothing asked an edit
    to keep what it does not change (removing a pattern repainted the garment dark red-brown,
    BUILD_NOTES.md issue 14). The input's prediction is the target (no gradient), so it needs no
    labels and is 0 for an unchanged image.
    """
    logits_real = tf.stop_gradient(_f32(logits_real))
    logits_fake = _f32(logits_fake)
    _check_same_shape(logits_real, logits_fake, "keep_attributes_loss")
    column = tf.cast(column, tf.int32)
    sizes = [int(n) for n in head_sizes]
    total = tf.zeros(tf.shape(logits_real)[:1])
    for i, (lr, lf) in enumerate(zip(tf.split(logits_real, sizes, axis=-1),
                                     tf.split(logits_fake, sizes, axis=-1))):
        log_p = tf.nn.log_softmax(lr)
        kl = tf.reduce_sum(tf.exp(log_p) * (log_p - tf.nn.log_softmax(lf)), axis=-1)
        total += tf.where(column == i, tf.zeros_like(kl), kl)
    return total


# ---- GANimation mask regularisers ------------------------------------------------------------------
def attention_mean_loss(a) -> tf.Tensor:
    """[B] mean(a): pushes the mask towards "no edit" (GANimation uses 0.1 * mean(A))."""
    return _mean_per_example(_as_map(_f32(a)))


def attention_tv_loss(a) -> tf.Tensor:
    """[B] total variation: sum |a[i+1,j]-a[i,j]| + |a[i,j+1]-a[i,j]| (GANimation sums it, 1e-5)."""
    a = _as_map(_f32(a))
    dv = tf.abs(a[:, 1:, :] - a[:, :-1, :])
    dh = tf.abs(a[:, :, 1:] - a[:, :, :-1])
    return tf.reduce_sum(_flatten(dv), axis=1) + tf.reduce_sum(_flatten(dh), axis=1)


# ---- objectives --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Loss weights; defaults are the paper's (lambda_gp is StarGAN's, mask terms off = AMGAN)."""

    lambda_cls: float = 1.0
    lambda_cyc: float = 10.0
    lambda_a: float = 10.0
    lambda_p: float = 20.0
    lambda_gp: float = 10.0
    lambda_mask_mean: float = 0.0  # GANimation: 0.1
    lambda_mask_tv: float = 0.0  # GANimation: 1e-5
    lambda_id: float = 0.0  # SaGAN: identity reconstruction |G(x, m_org) - x| (its code: 100)
    lambda_out: float = 0.0  # ours: change outside the CAM-derived edit region (issue 14)
    lambda_keep: float = 0.0  # ours: the frozen CNN's other attributes unchanged by the edit


# Generator term name -> LossWeights field (None = weight 1).
GENERATOR_TERMS = {"adv": None, "cls": "lambda_cls", "cyc": "lambda_cyc", "att": "lambda_a",
                   "perc": "lambda_p", "mask_mean": "lambda_mask_mean", "mask_tv": "lambda_mask_tv",
                   "id": "lambda_id", "out": "lambda_out", "keep": "lambda_keep"}


def _weighted_sum(pairs) -> tf.Tensor:
    present = [(t, c) for t, c in pairs if t is not None]
    if not present:
        raise ValueError("An objective needs at least one loss term.")
    total = None
    for t, c in present:
        term = _f32(t) if c is None else float(c) * _f32(t)
        total = term if total is None else total + term
    return total


def generator_objective(terms: Mapping[str, object], w: LossWeights) -> tf.Tensor:
    """Eq. 11 per example: adv + l_cls cls + l_cyc cyc + l_a att + l_p perc (+ mask terms).

    terms maps names in GENERATOR_TERMS to [B] tensors (already summed over critics where the paper
    sums over d in {I, C}); missing keys count as 0, unknown keys raise (typos would silently drop
    a loss).
    """
    unknown = set(terms) - set(GENERATOR_TERMS)
    if unknown:
        raise ValueError(f"Unknown generator loss terms {sorted(unknown)}; known: "
                         f"{', '.join(GENERATOR_TERMS)}.")
    return _weighted_sum((terms.get(k), None if f is None else getattr(w, f))
                         for k, f in GENERATOR_TERMS.items())


def discriminator_objective(adv, gp=None, cls=None, w: LossWeights = LossWeights()) -> tf.Tensor:
    """Critic objective per example: adv + lambda_gp gp + lambda_cls cls (None counts as 0)."""
    return _weighted_sum([(adv, None), (gp, w.lambda_gp), (cls, w.lambda_cls)])
