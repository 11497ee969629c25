"""Evaluate a trained AMGAN: manipulation accuracy and, on SynthFashion, counterfactual error.

    python -m amgan_tf.evaluate --workdir=runs/quickstart [--judge_workdir=runs/judge]

The training run's attribute CNN also shapes G through L_p, so its verdict is optimistic; pass
--judge_workdir (an independently trained attribute CNN, e.g. another seed or backbone) for a fair
one. On SynthFashion the manipulated images are also compared with the exact counterfactuals
(error, PSNR, SSIM, change outside the truly changed region, attention IoU). Writes
WORKDIR/evaluation.json and evaluation.md (the same as Markdown tables).
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags, logging

from amgan_tf.runtime import run_and_report

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of amgan_tf.train.")
flags.DEFINE_string("judge_workdir", "", "Workdir of an independently trained attribute CNN.")
flags.DEFINE_integer("num_images", 1000, "Test images for manipulation accuracy.")
flags.DEFINE_integer("counterfactual_images", 300, "SynthFashion test images for the "
                     "counterfactual error (0 = skip).")
flags.mark_flag_as_required("workdir")


def evaluate() -> dict:
    from amgan_tf import evaluation, trained
    from amgan_tf.data import datasets
    from amgan_tf.data.synthfashion import SynthFashion
    from amgan_tf.models.attribute_cnn import load_attribute_cnn
    model, cnn, config = trained.load_trained(FLAGS.workdir)
    test = datasets.load_split(config.data, "test", limit=FLAGS.num_images)
    report = {"test_images": len(test)}
    if cnn is not None:
        report["accuracy_training_cnn"] = evaluation.manipulation_accuracy(
            model, cnn, test.images, test.labels)
    if FLAGS.judge_workdir:
        judge = load_attribute_cnn(FLAGS.judge_workdir)
        report["accuracy_independent_judge"] = evaluation.manipulation_accuracy(
            model, judge, test.images, test.labels)
    if config.data.name == "synthfashion" and FLAGS.counterfactual_images:
        start = config.data.num_train  # the test split follows the training examples
        idx = np.arange(start, start + min(FLAGS.counterfactual_images, config.data.num_test))
        report["counterfactual_images"] = len(idx)
        report["counterfactual_mean_abs_error"] = evaluation.counterfactual_error(
            model, SynthFashion(config.data.seed, config.data.image_size), idx)
    with open(os.path.join(FLAGS.workdir, "evaluation.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(FLAGS.workdir, "evaluation.md"), "w") as f:
        f.write(evaluation.markdown_report(report))
    return report


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    run_and_report(evaluate)


if __name__ == "__main__":
    app.run(main)
