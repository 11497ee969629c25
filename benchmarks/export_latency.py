"""Latency of the exported SavedModel, in process and through gRPC, against the generator's FLOPs.

    python benchmarks/export_latency.py [--repeats=10] [--sizes=64,128] [--batches=1,8]

For the quick-start generator (conv_dim 32, 4 residual blocks) and the paper's (conv_dim 64, 6
blocks), at each image size and batch: the generator's FLOPs per image (TF's profiler on the
traced graph), this machine's float32 matmul peak measured in the same run, the FLOP-bound time
of G alone (FLOPs / peak), and the median latency of `serving_default` called in process and
through `python -m serving.server`'s gRPC API (random weights: the cost does not depend on them).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import tempfile

import numpy as np
import tensorflow as tf
from absl import app, flags

from amgan_tf.data import synthfashion
from amgan_tf.export_lib import ManipulationModule
from amgan_tf.models.networks import Generator, GeneratorConfig
from amgan_tf import profiling
from amgan_tf.profiling import matmul_peak, median_seconds

GENERATORS = {"quick-start": GeneratorConfig(conv_dim=32, repeat_num=4),
              "paper": GeneratorConfig(conv_dim=64, repeat_num=6)}
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # --precision of the export

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 10, "Timed calls per setting (after 2 warm-up calls).")
flags.DEFINE_list("sizes", ["64", "128"], "Image sizes (training size = request size).")
flags.DEFINE_list("batches", ["1", "8"], "Batch sizes.")
flags.DEFINE_boolean("grpc", True, "Also time through the development gRPC server.")
flags.DEFINE_list("precisions", list(PRECISIONS), "Export precisions (python -m export "
                  "--precision).")



def generator_flops(G, schema, size: int) -> float:
    """FLOPs of one G forward pass on one image."""
    return profiling.flops(tf.function(lambda x, m: G(x, m)),
                           tf.TensorSpec((1, size, size, 3)), tf.TensorSpec((1, schema.m_dim)))


def median_ms(call, repeats: int) -> float:
    return 1000 * median_seconds(call, repeats)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_one(gname, gcfg, precision, size, peaks, schema, base) -> list[tuple]:
    """Export one generator at one precision and size; time every batch size."""
    G = Generator(dataclasses.replace(gcfg, dtype_policy=PRECISIONS[precision]), name="G")
    G(tf.zeros((1, size, size, 3)), tf.zeros((1, schema.m_dim)))
    params = sum(int(np.prod(v.shape)) for v in G.variables)
    flops = generator_flops(G, schema, size)
    path = os.path.join(base, f"{gname}_{precision}_{size}", "amgan", "1")
    module = ManipulationModule(G, schema, size)
    tf.saved_model.save(module, path, signatures=module.signatures())
    sm = tf.saved_model.load(path).signatures["serving_default"]
    server = client = None
    if FLAGS.grpc:
        from amgan_tf.serving import server as serving_server
        from amgan_tf.serving.client import GrpcClient
        port = free_port()
        server = serving_server.serve({"amgan": os.path.dirname(path)}, port, 0, 0)
        client = GrpcClient(f"127.0.0.1:{port}")
    rows = []
    for batch in map(int, FLAGS.batches):
        x = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), np.uint8)
        local = median_ms(lambda: sm(images=tf.constant(x), attribute=tf.constant("colour"),
                                     value=tf.constant("red"))["images"].numpy(), FLAGS.repeats)
        remote = median_ms(lambda: client.manipulate(x, "colour", "red"),
                           FLAGS.repeats) if client else float("nan")
        bound = 1000 * flops * batch / (peaks[precision] * 1e9)
        bound32 = 1000 * flops * batch / (peaks["float32"] * 1e9)
        rows.append((gname, precision, size, batch, params, flops, bound, bound32, local, remote))
        print(f"{gname:11s} {precision:8s} {size:3d} px B{batch}: G {flops / 1e9:6.2f} GFLOP/img, "
              f"FLOP-bound {bound:7.1f} ms (float32 {bound32:7.1f} ms), SavedModel {local:7.1f} "
              f"ms ({local / bound:4.2f}x; {local / bound32:4.2f}x float32), gRPC {remote:7.1f} "
              f"ms", flush=True)
    if server:
        server.stop()
    return rows


def main(argv):
    del argv
    schema = synthfashion.schema()
    peaks = {"float32": matmul_peak(tf.float32), "bfloat16": matmul_peak(tf.bfloat16)}
    print(f"matmul peak (4096^3, this run): float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 "
          f"{peaks['bfloat16']:.0f} GFLOP/s; {os.cpu_count()} CPUs visible")
    base = tempfile.mkdtemp(prefix="export_latency_")
    rows = []
    for (gname, gcfg), precision, size in itertools.product(
            GENERATORS.items(), FLAGS.precisions, map(int, FLAGS.sizes)):
        rows += time_one(gname, gcfg, precision, size, peaks, schema, base)
    print("\n| generator | precision | px | batch | G params | G GFLOP/img | FLOP-bound ms at "
          "this precision's peak (float32's) | SavedModel ms | x bound (x float32 bound) | "
          "% of peak | gRPC ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for gname, precision, size, batch, params, flops, bound, bound32, local, remote in rows:
        print(f"| {gname} | {precision} | {size} | {batch} | {params / 1e6:.2f} M | "
              f"{flops / 1e9:.2f} | {bound:.1f} ({bound32:.1f}) | {local:.1f} | "
              f"{local / bound:.2f} ({local / bound32:.2f}) | {100 * bound / local:.0f}% | "
              f"{remote:.1f} |")


if __name__ == "__main__":
    app.run(main)
