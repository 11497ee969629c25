"""Input pipeline throughput: rendering, TFDS loading, and AMGAN batches with reference sampling.

    python benchmarks/pipeline_throughput.py [--clothing_dir=../shared/data/clothing_small]

Prints images/s for each stage. AMGAN batch figures count x_real and x_ref images.
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags

from amgan_tf.data import datasets, pipeline
from amgan_tf.data.synthfashion import SynthFashion

FLAGS = flags.FLAGS
_HERE = os.path.dirname(os.path.abspath(__file__))
flags.DEFINE_string("clothing_dir", os.path.join(_HERE, "..", "..", "shared", "data",
                                                 "clothing_small"),
                    "Image-folder dataset (clothing_small layout); falls back to the test copy.")
flags.DEFINE_integer("num_train", 4000, "SynthFashion examples to prepare.")
flags.DEFINE_integer("image_size", 64, "Training resolution.")
flags.DEFINE_integer("iterations", 200, "AMGAN iterations to time.")


def _rate(count, seconds):
    return f"{count / seconds:10.0f} images/s ({count} in {seconds:.2f} s)"


def _time_batches(name, data, iterations):
    cfg = pipeline.PipelineConfig(batch_size=16, n_critic=5)
    ds = pipeline.AmganBatches(data, cfg).dataset()
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    for _ in range(iterations):
        next(it)
    seconds = time.perf_counter() - start
    images = iterations * cfg.batch_size * (cfg.n_critic + 1) * 2
    print(f"{name:45s} {_rate(images, seconds)}  = {iterations / seconds:.0f} iterations/s")


def main(argv):
    del argv
    size = FLAGS.image_size
    start = time.perf_counter()
    SynthFashion(0, size).arrays(0, 200)
    print(f"{'SynthFashion render (1 thread)':45s} {_rate(200, time.perf_counter() - start)}")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = datasets.DatasetConfig(image_size=size, num_train=FLAGS.num_train, num_test=100,
                                     data_dir=tmp)
        start = time.perf_counter()
        datasets.prepare(cfg)
        print(f"{'SynthFashion TFDS prepare (2 threads)':45s} "
              f"{_rate(FLAGS.num_train + 100, time.perf_counter() - start)}")
        start = time.perf_counter()
        synth = datasets.load_split(cfg, "train")
        print(f"{'SynthFashion load into memory':45s} {_rate(len(synth), time.perf_counter() - start)}")
        _time_batches("AMGAN batches, SynthFashion", synth, FLAGS.iterations)

        clothing = FLAGS.clothing_dir
        if not os.path.isdir(clothing):
            clothing = os.path.join(_HERE, "..", "tests", "data", "clothing_small")
        cfg = datasets.DatasetConfig(
            name="image_folder", image_size=size, manual_dir=clothing, data_dir=tmp,
            reader_options={"attribute": "sleeve",
                            "value_map": {"longsleeve": "long", "t-shirt": "short"}})
        start = time.perf_counter()
        datasets.prepare(cfg)
        prep = time.perf_counter() - start
        start = time.perf_counter()
        folder = datasets.load_split(cfg, "train")
        load = time.perf_counter() - start
        print(f"{'Image folder TFDS prepare (JPEG decode)':45s} {_rate(len(folder), prep)}")
        print(f"{'Image folder load + resize into memory':45s} {_rate(len(folder), load)}")
        _time_batches(f"AMGAN batches, image folder ({len(folder)} imgs)", folder,
                      FLAGS.iterations)


if __name__ == "__main__":
    app.run(main)
