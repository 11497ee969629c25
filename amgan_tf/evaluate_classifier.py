"""Score a trained attribute CNN: per-attribute accuracy and, on SynthFashion, where its CAMs land.

    python -m amgan_tf.evaluate_classifier --workdir=DIR [--split=test] [--cam_grid=PNG]

The data is the one the workdir was trained on (its classifier_config.json); dataset flags given
on the command line override it (e.g. --data_dir when the prepared data moved).

CAM checks use the ground-truth masks that only SynthFashion has: for sleeve, the share of test
images whose CAM maximum lies in the sleeve-or-arm region; for every manipulated attribute, the CAM
mass inside the garment (with the garment's share of the image as the uniform-map baseline).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

from amgan_tf import classifier_lib, flags_common
from amgan_tf.cam_eval import cam_report, cam_grid

FLAGS = flags.FLAGS
flags_common.define_dataset_flags()
flags_common.define_classifier_flags()
flags.DEFINE_string("workdir", None, "Workdir of train_classifier.")
flags.DEFINE_string("split", "test", "Split to evaluate.")
flags.DEFINE_string("cam_grid", "", "If set, write an image | CAM overlay grid PNG here.")
flags.DEFINE_integer("cam_grid_rows", 8, "Images in the CAM grid.")
flags.DEFINE_string("output", "", "Metrics JSON (default: <workdir>/classifier_eval_<split>.json).")
flags.mark_flag_as_required("workdir")


def _recorded_data(workdir: str) -> dict | None:
    """The data config train_classifier recorded (None for a model folder without one)."""
    path = os.path.join(workdir, classifier_lib.RUN_RECORD)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["data"]


def main(argv):
    del argv
    logging.set_verbosity(logging.INFO)
    try:
        data_config = flags_common.dataset_config(FLAGS, _recorded_data(FLAGS.workdir))
        model = classifier_lib.load_trained(FLAGS.workdir)
        from amgan_tf.data import datasets
        data = datasets.load_split(data_config, FLAGS.split)
        report = {"accuracy": classifier_lib.accuracy_per_attribute(model, data)}
        if data.masks is not None:
            report["cam"] = cam_report(model, data)
        if FLAGS.cam_grid:
            os.makedirs(os.path.dirname(FLAGS.cam_grid) or ".", exist_ok=True)
            cam_grid(model, data, FLAGS.cam_grid_rows).save(FLAGS.cam_grid)
            logging.info("Wrote %s", FLAGS.cam_grid)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    out = FLAGS.output or os.path.join(FLAGS.workdir, f"classifier_eval_{FLAGS.split}.json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
