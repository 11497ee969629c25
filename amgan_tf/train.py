"""Train AMGAN (and, first, the attribute CNN if it does not exist yet).

    python -m amgan_tf.train --flagfile=configs/quickstart.cfg --workdir=runs/quickstart

Flags on the command line override the flagfile; the resolved config is written to the workdir.
Killing the run and starting the same command again continues from the last checkpoint.
"""

from __future__ import annotations

import json
import sys

from absl import app, flags, logging

from amgan_tf import classifier_lib, flags_common, train_lib

FLAGS = flags.FLAGS
flags_common.define_dataset_flags()
flags_common.define_classifier_flags()
flags_common.define_amgan_flags()
flags.DEFINE_string("workdir", None, "Output folder: checkpoints, TensorBoard, samples, metrics.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")
flags.DEFINE_integer("log_every", 10, "Steps between progress lines and TensorBoard scalars.")
flags.mark_flag_as_required("workdir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    try:
        config = flags_common.train_config(FLAGS, FLAGS.seed, FLAGS.log_every)
        metrics = train_lib.run(config, FLAGS.workdir)
    except (ValueError, FileNotFoundError, train_lib.NonFiniteLossError,
            classifier_lib.NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(metrics, indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
