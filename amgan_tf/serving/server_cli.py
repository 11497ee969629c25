"""The development model server's command line (`python -m serving.server`, `amgan-serve`).

    python -m serving.server --model_base_path=models/amgan --port=8500 --rest_api_port=8501
    python -m serving.server --model_config_file=my_models.config   # TF Serving's format;
        # relative base_paths are read relative to the file (serving/models.config is the
        # official image's, with container paths)

Flags are named as tensorflow_model_server's, so the same command lines work with both.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_integer("port", 8500, "gRPC port.")
flags.DEFINE_integer("rest_api_port", 8501, "REST port (0 = no REST API).")
flags.DEFINE_string("model_name", "amgan", "Model name, with --model_base_path.")
flags.DEFINE_string("model_base_path", "", "Folder of numbered versions (BASE/<model_name>).")
flags.DEFINE_string("model_config_file", "", "TF Serving models.config (instead of the above).")
flags.DEFINE_float("file_system_poll_wait_seconds", 1.0,
                   "How often to look for new versions (0 = never).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    from amgan_tf.serving import server
    if bool(FLAGS.model_base_path) == bool(FLAGS.model_config_file):
        print("error: give exactly one of --model_base_path and --model_config_file.",
              file=sys.stderr)
        sys.exit(2)
    try:
        if FLAGS.model_config_file:
            models = server.read_model_config(FLAGS.model_config_file)
        else:
            if not os.path.isdir(FLAGS.model_base_path):
                raise ValueError(f"--model_base_path {FLAGS.model_base_path!r} is not a folder; "
                                 f"export a model first (python -m export ...).")
            models = {FLAGS.model_name: FLAGS.model_base_path}
        running = server.serve(models, FLAGS.port, FLAGS.rest_api_port,
                               FLAGS.file_system_poll_wait_seconds)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    rest = f", REST on port {running.rest_port}" if running.rest else ""
    print(f"Serving {', '.join(models)}: gRPC on port {running.grpc_port}{rest}", flush=True)
    server.wait_forever(running)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
