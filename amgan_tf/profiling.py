"""Measuring helpers shared by the benchmarks: the machine's matmul peak, a traced function's
FLOPs, and median wall time."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf


def matmul_peak(dtype=tf.float32, n: int = 4096, repeats: int = 8) -> float:
    """GFLOP/s of a large matmul in `dtype`: the machine's practical peak, measured now."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    t = time.perf_counter()
    for _ in range(repeats):
        f(a).numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def flops(fn, *args) -> float:
    """FLOPs of one call of the tf.function `fn` on `args` (TF's profiler on the traced graph;
    gradient ops included when the function takes gradients)."""
    graph = fn.get_concrete_function(*args).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph=graph, options=opts).total_float_ops)


def median_seconds(call, repeats: int, warmup: int = 2) -> float:
    """Median wall time of `call()`, its tensors fetched, after `warmup` untimed calls."""
    def run():
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, call())

    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return float(np.median(times))
