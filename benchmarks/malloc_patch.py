"""What tf.data's malloc patch costs a training iteration, and what `runtime.tune_malloc` buys.

    python benchmarks/malloc_patch.py [--rounds=2] [--iterations=12]

TF's `from_generator` calls mallopt(M_TRIM_THRESHOLD, 128 KiB) at its first iterator, which turns
off glibc's dynamic mmap threshold. Each mode runs in its own process (malloc settings are
process-wide), alternating, on the quick-start AMGAN iteration with n_critic 1 (random weights and
data: the cost does not depend on them):
  plain    glibc's defaults (what `benchmarks/train_step.py` measures: it uses no tf.data)
  patched  TF's patch, as every training run had before `tune_malloc`
  tuned    TF's patch, then `runtime.tune_malloc()` (what training does now)
Prints seconds per iteration and minor page faults per iteration; compare within one run.
"""

from __future__ import annotations

import os
import subprocess
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 2, "Alternating rounds over the three modes.")
flags.DEFINE_integer("iterations", 12, "Timed iterations per process (after 3 warm-up ones).")

_ONE = r"""
import dataclasses, resource, sys, time
sys.path.insert(0, {bench!r})
import keras, tensorflow as tf
import train_step as tsb
from amgan_tf import runtime
from amgan_tf.data import synthfashion
from amgan_tf.models.attribute_cnn import AttributeCNN
mode = {mode!r}
if mode != "plain":
    def one():
        yield 0
    next(iter(tf.data.Dataset.from_generator(one, output_signature=tf.TensorSpec((), tf.int32))))
if mode == "tuned":
    assert runtime.tune_malloc()
size = dataclasses.replace(tsb.SIZES["quickstart"], n_critic=1)
schema = synthfashion.schema()
keras.utils.set_random_seed(0)
cnn = AttributeCNN(schema, size.cnn).build_on_zeros()
model = tsb.amgan_model(size, schema, cnn, size.generator, size.critic)
data = tsb.iteration(size, schema)
step = tf.function(model.train_step)
for _ in range(3):
    step(data)
f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
for _ in range({n}):
    step(data)
dt = (time.perf_counter() - t0) / {n}
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / {n}
print(f"{{mode:8s}} {{dt:6.3f}} s/iteration  {{faults / 1000:6.0f}}k minor page faults/iteration")
"""


def main(argv):
    del argv
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "AMGAN_KEEP_TF_MALLOC": ""}
    for _ in range(FLAGS.rounds):
        for mode in ("patched", "tuned", "plain"):
            code = _ONE.format(bench=here, mode=mode, n=FLAGS.iterations)
            out = subprocess.run([sys.executable, "-c", code], env=env, cwd=os.path.dirname(here),
                                 capture_output=True, text=True, check=True)
            print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    app.run(main)
