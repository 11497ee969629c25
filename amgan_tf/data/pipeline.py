"""tf.data input pipelines: AMGAN iterations (with attribute-matched real references) and the
attribute classifier's batches.

Every batch is a pure function of (seed, step): a restarted run asks for the batches from its
checkpointed step on and gets exactly what it would have seen, and a run split over R replicas sees
the same global batch as one replica (each replica takes its rows of it).

An AMGAN element holds one iteration: n_critic critic sub-batches plus one generator sub-batch,
laid out batch-major `[B, S, ...]` (S = n_critic + 1) so any strategy can split it along axis 0.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np
import tensorflow as tf

from amgan_tf.attributes import MISSING, AttributeSchema
from amgan_tf.data.datasets import ExampleSet
from amgan_tf.imaging import to_float


@dataclasses.dataclass
class PipelineConfig:
    batch_size: int = 16  # global batch of one sub-batch
    n_critic: int = 5
    flip: bool = True
    seed: int = 0
    reference_matching: bool = True  # False: no x_ref (ref_weight 0), for configs without L_p
    prefetch: int = 2

    def __post_init__(self):
        if self.batch_size < 1 or self.n_critic < 0:
            raise ValueError(f"batch_size must be >= 1 and n_critic >= 0, got {self.batch_size}, "
                             f"{self.n_critic}.")


class ReferenceIndex:
    """Attribute tuple -> ids of real examples with exactly those attributes.

    A reference must have a known, equal label in every column where the target is known; where
    the target's label is missing (-1) any value matches.
    """

    def __init__(self, labels: np.ndarray):
        self.labels = np.asarray(labels, np.int32)
        self._exact: dict[tuple, list[int]] = {}
        for i, row in enumerate(map(tuple, self.labels.tolist())):
            self._exact.setdefault(row, []).append(i)
        self._cache: dict[tuple, np.ndarray] = {}

    def candidates(self, target) -> np.ndarray:
        target = tuple(int(t) for t in target)
        found = self._cache.get(target)
        if found is None:
            if MISSING not in target:
                found = np.array(self._exact.get(target, ()), np.int64)
            else:
                known = [i for i, t in enumerate(target) if t != MISSING]
                want = np.array([target[i] for i in known], np.int32)
                found = np.flatnonzero(np.all(self.labels[:, known] == want, axis=1))
            self._cache[target] = found
        return found

    def sample(self, targets: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One matching id per target row, chosen by uniforms `u` in [0, 1); -1 where none exists."""
        out = np.full(len(targets), -1, np.int64)
        for j, row in enumerate(targets):
            c = self.candidates(row)
            if len(c):
                out[j] = c[min(int(u[j] * len(c)), len(c) - 1)]
        return out

    def coverage(self, schema: AttributeSchema) -> dict[str, float]:
        """Per manipulated attribute: share of (example, other value) targets that have a reference."""
        out = {}
        for r, col in enumerate(schema.manipulated_columns):
            rows = self.labels[self.labels[:, col] != MISSING]
            hits = total = 0
            for k in range(schema.block_sizes[r]):
                t = rows[rows[:, col] != k].copy()
                t[:, col] = k
                for row, n in zip(*np.unique(t, axis=0, return_counts=True)):
                    total += n
                    hits += n * bool(len(self.candidates(row)))
            out[schema.manipulated[r].name] = hits / max(total, 1)
        return out


def epoch_positions(n: int, seed: int, stream: int, positions: np.ndarray) -> np.ndarray:
    """Indices into range(n) for global sample positions: a fresh permutation every epoch."""
    epochs = positions // n
    out = np.empty(len(positions), np.int64)
    for e in np.unique(epochs):
        perm = np.random.default_rng([seed, stream, int(e)]).permutation(n)
        sel = epochs == e
        out[sel] = perm[positions[sel] % n]
    return out


def _split_rows(global_rows: int, num_pipelines: int, replicas: int) -> int:
    parts = num_pipelines * replicas
    if global_rows % parts:
        raise ValueError(f"The global batch size {global_rows} must be divisible by the number of "
                         f"replicas ({parts}).")
    return global_rows // parts


class AmganBatches:
    """Iterations of AMGAN training data drawn from an in-memory split."""

    def __init__(self, data: ExampleSet, config: PipelineConfig):
        self.data, self.config = data, config
        self.schema = data.schema
        self.sub_batches = config.n_critic + 1
        self.index = ReferenceIndex(data.labels) if config.reference_matching else None
        self.pools = []
        for r, col in enumerate(self.schema.manipulated_columns):
            pool = np.flatnonzero(data.labels[:, col] != MISSING)
            if len(pool) == 0:
                raise ValueError(f"No example has a label for attribute "
                                 f"{self.schema.manipulated[r].name!r}; it cannot be manipulated.")
            self.pools.append(pool)

    def iteration(self, step: int) -> dict[str, np.ndarray]:
        """The global batch of one iteration, numpy, batch-major [B, S, ...]."""
        c, sch = self.config, self.schema
        b, s = c.batch_size, self.sub_batches
        count = b * s
        r = step % sch.num_attributes
        col = sch.manipulated_columns[r]
        k = sch.block_sizes[r]
        pool = self.pools[r]
        positions = (step // sch.num_attributes) * count + np.arange(count)
        idx = pool[epoch_positions(len(pool), c.seed, r, positions)]
        rng = np.random.default_rng([c.seed, 1_000_003, step])
        c_org = self.data.labels[idx, col]
        c_trg = (c_org + rng.integers(1, k, count)) % k
        u_ref = rng.random(count)
        flips = rng.random((2, count)) < 0.5 if c.flip else np.zeros((2, count), bool)
        # Gradient-penalty interpolation weights (D_I, D_C) drawn here, not inside replicas, so
        # that a run is a function of (seed, step) whatever the number of replicas.
        gp_alpha = rng.random((count, 2)).astype(np.float32)
        targets = self.data.labels[idx].copy()
        targets[:, col] = c_trg
        if self.index is not None:
            ref = self.index.sample(targets, u_ref)
        else:
            ref = np.full(count, -1, np.int64)
        x_real = self.data.images[idx]
        x_ref = self.data.images[np.where(ref >= 0, ref, idx)]
        x_real[flips[0]] = x_real[flips[0], :, ::-1]
        x_ref[flips[1]] = x_ref[flips[1], :, ::-1]
        r_vec = np.full(count, r, np.int64)
        out = {
            "x_real": x_real, "x_ref": x_ref, "ref_weight": (ref >= 0).astype(np.float32),
            "label_org": self.data.labels[idx], "label_trg": targets,
            "r": r_vec.astype(np.int32), "c_org": c_org.astype(np.int32),
            "c_trg": c_trg.astype(np.int32),
            "m_trg": sch.encode_batch(r_vec, c_trg), "m_org": sch.encode_batch(r_vec, c_org),
            "gp_alpha": gp_alpha,
        }
        return {key: v.reshape((b, s) + v.shape[1:]) for key, v in out.items()}

    def element_spec(self, rows: int) -> dict[str, tf.TensorSpec]:
        h, w = self.data.images.shape[1:3]
        s, a, m = self.sub_batches, len(self.schema.attributes), self.schema.m_dim
        spec = {"x_real": ((h, w, 3), tf.uint8), "x_ref": ((h, w, 3), tf.uint8),
                "ref_weight": ((), tf.float32), "label_org": ((a,), tf.int32),
                "label_trg": ((a,), tf.int32), "r": ((), tf.int32), "c_org": ((), tf.int32),
                "c_trg": ((), tf.int32), "m_trg": ((m,), tf.float32), "m_org": ((m,), tf.float32),
                "gp_alpha": ((2,), tf.float32)}
        return {k: tf.TensorSpec((rows, s) + shape, dt) for k, (shape, dt) in spec.items()}

    def rows_iterator(self, start_step: int, pipeline: int = 0, num_pipelines: int = 1,
                      replicas: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """Per-replica elements in replica order: rows of the global batch, from `start_step` on."""
        rows = _split_rows(self.config.batch_size, num_pipelines, replicas)
        step = start_step
        while True:
            batch = self.iteration(step)
            for j in range(replicas):
                lo = (pipeline * replicas + j) * rows
                yield {key: v[lo:lo + rows] for key, v in batch.items()}
            step += 1

    def dataset(self, start_step: int = 0, pipeline: int = 0, num_pipelines: int = 1,
                replicas: int = 1) -> tf.data.Dataset:
        rows = _split_rows(self.config.batch_size, num_pipelines, replicas)
        ds = tf.data.Dataset.from_generator(
            lambda: self.rows_iterator(start_step, pipeline, num_pipelines, replicas),
            output_signature=self.element_spec(rows))
        ds = ds.map(_normalise_images, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(self.config.prefetch)

    def distribute(self, strategy: tf.distribute.Strategy, start_step: int = 0):
        """Per-replica batches for `strategy` (each input pipeline builds its own dataset)."""
        def make(ctx: tf.distribute.InputContext):
            replicas = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            return self.dataset(start_step, ctx.input_pipeline_id, ctx.num_input_pipelines, replicas)
        return strategy.distribute_datasets_from_function(make)


def _normalise_images(element):
    element = dict(element)
    for key in ("x_real", "x_ref"):
        element[key] = to_float(element[key])
    return element


def classifier_dataset(data: ExampleSet, batch_size: int, seed: int = 0, training: bool = True,
                       start_step: int = 0, flip: bool = True) -> tf.data.Dataset:
    """(x in [-1, 1], labels) batches. Training: endless, reshuffled per epoch, flipped, and a pure
    function of (seed, step) so a resumed run continues the exact stream. Else: one ordered pass."""
    def gen():
        if not training:
            for lo in range(0, len(data), batch_size):
                yield data.images[lo:lo + batch_size], data.labels[lo:lo + batch_size]
            return
        step = start_step
        while True:
            positions = step * batch_size + np.arange(batch_size)
            idx = epoch_positions(len(data), seed, 7, positions)
            x = data.images[idx]
            if flip:
                f = np.random.default_rng([seed, 8, step]).random(batch_size) < 0.5
                x[f] = x[f, :, ::-1]
            yield x, data.labels[idx]
            step += 1

    ds = tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((batch_size if training else None,) + data.images.shape[1:], tf.uint8),
        tf.TensorSpec((batch_size if training else None, data.labels.shape[1]), tf.int32)))
    return ds.map(lambda x, y: (to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True).prefetch(2)
