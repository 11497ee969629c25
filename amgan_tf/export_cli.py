r"""Export a trained AMGAN for deployment.

    python -m export --workdir=runs/quickstart --format=saved_model --output=models \
        [--model_name=amgan] [--version=N]

writes models/amgan/<N>/ (the next version unless --version is given), the layout TF Serving
serves; see serving/README.md for serving it.
"""

from __future__ import annotations

from absl import app, flags, logging

from amgan_tf.runtime import run_and_report

FORMATS = ("saved_model",)
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of amgan_tf.train.")
flags.DEFINE_enum("format", "saved_model", FORMATS, "Export format.")
flags.DEFINE_string("output", None, "Base folder; the model goes to <output>/<model_name>/<version>.")
flags.DEFINE_string("model_name", "amgan", "Model name (TF Serving's model name).")
flags.DEFINE_integer("version", None, "Version number; default: one above the highest present.")
flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                  "G's compute type in the export: bfloat16 halves CPU latency on processors with "
                  "AMX/AVX512-BF16 (and is slow on others); weights stay float32.")
flags.mark_flags_as_required(["workdir", "output"])


def export() -> dict:
    from amgan_tf import export_lib, trained
    policy = {"float32": "float32", "bfloat16": "mixed_bfloat16"}[FLAGS.precision]
    model = trained.load_generator(FLAGS.workdir, policy)
    result = export_lib.export_saved_model(model, FLAGS.output, FLAGS.model_name, FLAGS.version)
    return {"path": result.path, "version": result.version, "format": FLAGS.format,
            "precision": FLAGS.precision, "step": model.step, "bytes": result.bytes,
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
