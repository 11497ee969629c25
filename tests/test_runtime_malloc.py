"""runtime.tune_malloc: TF's from_generator malloc patch makes every large buffer a fresh mmap."""

import json
import os
import subprocess
import sys

import pytest

# In a fresh process (malloc settings are process-wide): minor page faults per call of an op
# with a 4 MiB intermediate, under TF's patch, then after tune_malloc.
_PROBE = r"""
import json, resource, sys
import tensorflow as tf
from amgan_tf import runtime

@tf.function
def f(x):
    return tf.reduce_sum(tf.tile(x, [1 << 20]) * 2.0)   # a 4 MiB float32 temporary

def faults_per_call(n=40):
    x = tf.ones([1])
    f(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        f(x)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n

def one():
    yield 0
next(iter(tf.data.Dataset.from_generator(one, output_signature=tf.TensorSpec((), tf.int32))))
patched = faults_per_call()
applied = runtime.tune_malloc()
print(json.dumps({"patched": patched, "applied": applied, "tuned": faults_per_call(),
                  "again": runtime.tune_malloc()}))
"""


def _probe(**env):
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_malloc_stops_the_page_faults_of_tfs_patch():
    r = _probe(AMGAN_KEEP_TF_MALLOC="")
    # 4 MiB = 1024 pages: under TF's patch the temporary is mapped and faulted in every call.
    assert r["patched"] > 500, r
    assert r["applied"] and r["again"], r
    assert r["tuned"] < r["patched"] / 10, r


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_malloc_can_be_turned_off():
    r = _probe(AMGAN_KEEP_TF_MALLOC="1")
    assert not r["applied"] and not r["again"], r
    assert r["tuned"] > 500, r   # still TF's setting
