r"""Export a trained AMGAN for deployment.

    python -m export --workdir=runs/quickstart --format=saved_model --output=models \
        [--model_name=amgan] [--version=N] [--precision=float32|bfloat16]
    python -m export --workdir=runs/quickstart --format=tflite --output=DIR \
        [--precision=fp32|fp16|int8] [--image_size=N]
    python -m export --workdir=runs/quickstart --format=tfjs --output=DIR [--quantize=float16|none]

saved_model writes models/amgan/<N>/ (the next version unless --version is given), the layout TF
Serving serves (serving/README.md). tflite and tfjs write into DIR (new or empty) the model and
manipulations.json, the schema and edit vectors a client builds its menu and requests from
(`amgan_tf.export_portable`).
"""

from __future__ import annotations

from absl import app, flags, logging

from amgan_tf.runtime import run_and_report

FORMATS = ("saved_model", "tflite", "tfjs")
# --precision per format, with the other spelling of each accepted (tfjs: see --quantize).
PRECISIONS = {"saved_model": ("float32", "bfloat16"), "tflite": ("fp32", "fp16", "int8"),
              "tfjs": ("float32",)}
ALIASES = {"saved_model": {"fp32": "float32", "bf16": "bfloat16"},
           "tflite": {"float32": "fp32", "float16": "fp16"}, "tfjs": {"fp32": "float32"}}
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of amgan_tf.train.")
flags.DEFINE_enum("format", "saved_model", FORMATS, "Export format.")
flags.DEFINE_string("output", None, "saved_model: base folder, the model goes to "
                    "<output>/<model_name>/<version>; tflite, tfjs: the (new) model folder.")
flags.DEFINE_string("model_name", "amgan", "Model name (TF Serving's model name).")
flags.DEFINE_integer("version", None, "Version number; default: one above the highest present.")
flags.DEFINE_string("precision", "float32",
                    "saved_model: float32 or bfloat16 (G's compute type; bfloat16 halves CPU "
                    "latency on processors with AMX/AVX512-BF16, weights stay float32); tflite: "
                    "fp32, fp16 or int8 (weights; int8 is dynamic-range quantisation).")
flags.DEFINE_integer("image_size", None, "tflite: the fixed input side (default: the training "
                     "size; other sizes are resized inside the graph).")
flags.DEFINE_enum("quantize", "float16", ["float16", "none"],
                  "tfjs: weight storage (float16 halves the download).")
flags.mark_flags_as_required(["workdir", "output"])


def precision(fmt: str, value: str) -> str:
    value = ALIASES[fmt].get(value, value)
    if value not in PRECISIONS[fmt]:
        hint = " (TF.js weights: --quantize)" if fmt == "tfjs" else ""
        raise ValueError(f"--precision={value} is not available for --format={fmt}; choose "
                         f"one of: {', '.join(PRECISIONS[fmt])}{hint}.")
    return value


def export() -> dict:
    from amgan_tf import export_lib, trained
    prec = precision(FLAGS.format, FLAGS.precision)
    if FLAGS.format != "saved_model":
        from amgan_tf import export_portable
        model = trained.load_generator(FLAGS.workdir)
        if FLAGS.format == "tflite":
            result = export_portable.export_tflite(model, FLAGS.output, prec, FLAGS.image_size)
        else:
            result = export_portable.export_tfjs(model, FLAGS.output, FLAGS.quantize)
        return {"format": FLAGS.format, "step": model.step, **result}
    policy = {"float32": "float32", "bfloat16": "mixed_bfloat16"}[prec]
    model = trained.load_generator(FLAGS.workdir, policy)
    result = export_lib.export_saved_model(model, FLAGS.output, FLAGS.model_name, FLAGS.version)
    return {"path": result.path, "version": result.version, "format": FLAGS.format,
            "precision": prec, "step": model.step, "bytes": result.bytes,
            "generator_parameters": result.generator_parameters,
            "bytes_per_parameter": round(result.bytes / max(result.generator_parameters, 1), 3)}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    run_and_report(export)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
