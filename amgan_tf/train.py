"""Train AMGAN (and, first, the attribute CNN if it does not exist yet).

    python -m amgan_tf.train --flagfile=configs/quickstart.cfg --workdir=runs/quickstart

Flags on the command line override the flagfile; the resolved config is written to the workdir.
Killing the run and starting the same command again continues from the last checkpoint.
"""

from __future__ import annotations

from absl import app, flags, logging

from amgan_tf import flags_common, train_lib
from amgan_tf.runtime import run_and_report

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
    run_and_report(lambda: train_lib.run(
        flags_common.train_config(FLAGS, FLAGS.seed, FLAGS.log_every), FLAGS.workdir))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
