"""Sizes and batch-1 latencies of the portable exports against the SavedModel.

    python benchmarks/portable_latency.py [--sizes=64,128] [--generators=quick-start,paper]
        [--repeats=5] [--browser]

For the quick-start generator (conv_dim 32, 4 residual blocks) and the paper's (conv_dim 64, 6
blocks) at each size (training size = request size, random weights: the cost does not depend on
them): artifact bytes and the median latency of one 1-image plain edit through the SavedModel
(`serving_default`, in process, float32), TFLite fp32, fp16 and int8 (dynamic range) on LiteRT
(2 threads), and the TF.js
float16 export with the wasm backend in Node (web/node_check.mjs) and, with --browser, in headless
Chromium through the demo page. Needs `bash tests/run.sh`'s installs (web/node_modules, chromium).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from amgan_tf import export_lib, export_portable
from amgan_tf.configs import TrainConfig
from amgan_tf.data import synthfashion
from amgan_tf.models.amgan import AmganConfig
from amgan_tf.models.networks import Generator, GeneratorConfig
from amgan_tf.profiling import median_seconds
from amgan_tf.trained import TrainedGenerator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATORS = {"quick-start": GeneratorConfig(conv_dim=32, repeat_num=4),
              "paper": GeneratorConfig(conv_dim=64, repeat_num=6)}

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["64", "128"], "Image sizes.")
flags.DEFINE_list("generators", list(GENERATORS), "Generator sizes.")
flags.DEFINE_integer("repeats", 5, "Timed calls per setting (after warm-up).")
flags.DEFINE_boolean("browser", True, "Also time TF.js in headless Chromium (the demo page).")


def stand_in(config: GeneratorConfig, size: int) -> TrainedGenerator:
    schema = synthfashion.schema()
    G = Generator(config, name="G")
    G(tf.zeros((1, size, size, 3)), tf.zeros((1, schema.m_dim)))
    train = TrainConfig(amgan=AmganConfig(image_size=size, generator=config))
    return TrainedGenerator(G, schema, train, 0)


def browser_ms(model_dir: str, size: int, repeats: int) -> float:
    from playwright.sync_api import sync_playwright

    from amgan_tf.serving import demo
    server = demo.serve(model_dir, 0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.evaluate("window.amganDemo.ready")
            page.evaluate(f"""(() => {{
                const c = document.createElement('canvas'); c.width = c.height = {size};
                c.getContext('2d').drawImage(document.querySelector('#examples img'), 0, 0,
                                             {size}, {size});
                window.amganDemo.useImage(c, 'bench');
                window.amganDemo.choose('sleeve', 'sleeveless');
            }})()""")
            times = [page.evaluate("window.amganDemo.manipulate().then(l => l.ms)")
                     for _ in range(repeats + 1)][1:]
            browser.close()
    finally:
        server.shutdown()
    return float(np.median(times))


def run(name: str, size: int, tmp: str) -> dict:
    trained = stand_in(GENERATORS[name], size)
    m = trained.schema.encode("sleeve", "sleeveless")
    image = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    row = {"generator": name, "size": size,
           "parameters": int(sum(np.prod(v.shape) for v in trained.G.variables))}
    sm = export_lib.export_saved_model(trained, os.path.join(tmp, "sm"))
    loaded = tf.saved_model.load(sm.path).signatures["serving_default"]
    args = dict(images=tf.constant(image), attribute=tf.constant("sleeve"),
                value=tf.constant("sleeveless"))
    row["saved_model"] = (sm.bytes, 1000 * median_seconds(lambda: loaded(**args), FLAGS.repeats))
    for precision in export_portable.TFLITE_PRECISIONS:
        out = export_portable.export_tflite(trained, os.path.join(tmp, f"tfl_{precision}"),
                                            precision)
        from ai_edge_litert.interpreter import Interpreter
        runner = Interpreter(model_path=out["path"], num_threads=2).get_signature_runner(
            "manipulate")
        ms = m[None].astype(np.float32)
        row[f"tflite_{precision}"] = (out["bytes"], 1000 * median_seconds(
            lambda: runner(image=image, ms=ms), FLAGS.repeats))
    tfjs = os.path.join(tmp, "tfjs")
    export_portable.export_tfjs(trained, tfjs, "float16")
    request, result = os.path.join(tmp, "req.json"), os.path.join(tmp, "res.json")
    with open(request, "w") as f:
        json.dump({"image": {"shape": list(image.shape), "data": image.ravel().tolist()},
                   "ms": [m.tolist()]}, f)
    subprocess.run(["node", os.path.join(ROOT, "web", "node_check.mjs"), tfjs, request, result,
                    str(FLAGS.repeats)], check=True, capture_output=True)
    with open(result) as f:
        row["tfjs_node"] = (export_lib.directory_bytes(tfjs), json.load(f)["ms_per_run"])
    if FLAGS.browser:
        row["tfjs_chromium"] = (export_lib.directory_bytes(tfjs), browser_ms(tfjs, size, FLAGS.repeats))
    return row


def main(argv):
    del argv
    tf.config.threading.set_inter_op_parallelism_threads(2)
    columns = ["saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8", "tfjs_node"] + (
        ["tfjs_chromium"] if FLAGS.browser else [])
    print("| generator | px | parameters | " + " | ".join(f"{c} MB / ms" for c in columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for name in FLAGS.generators:
        for size in map(int, FLAGS.sizes):
            t0 = time.time()
            with tempfile.TemporaryDirectory() as tmp:
                row = run(name, size, tmp)
            cells = " | ".join(f"{row[c][0] / 1e6:.2f} / {row[c][1]:.0f}" for c in columns)
            print(f"| {name} | {size} | {row['parameters']:,} | {cells} |", flush=True)
            print(f"  ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    app.run(main)
