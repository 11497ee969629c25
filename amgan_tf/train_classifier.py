"""Train the attribute CNN (CAMs, perceptual features, evaluation judge).

    python -m amgan_tf.train_classifier --flagfile=configs/classifier_synthfashion.cfg --workdir=DIR

Killing it and running the same command again continues from the last checkpoint.
"""

from __future__ import annotations

from absl import app, flags, logging

from amgan_tf import classifier_lib, flags_common
from amgan_tf.runtime import run_and_report

FLAGS = flags.FLAGS
flags_common.define_dataset_flags()
flags_common.define_classifier_flags()
flags.DEFINE_string("workdir", None, "Output folder: checkpoints, TensorBoard, model, metrics.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")
flags.DEFINE_integer("log_every", 50, "Steps between progress lines and TensorBoard scalars.")
flags.DEFINE_boolean("deterministic", False,
                     "Op determinism: the same command repeats bit for bit.")
flags.mark_flag_as_required("workdir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    run_and_report(lambda: classifier_lib.run(
        flags_common.classifier_config(FLAGS, FLAGS.seed, FLAGS.log_every, FLAGS.deterministic),
        FLAGS.workdir))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
