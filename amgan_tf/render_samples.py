"""Write a labelled SynthFashion sample grid and a counterfactual sheet as PNG files.

    python -m amgan_tf.render_samples --output=docs/synthfashion_grid.png \
        --counterfactual_output=docs/synthfashion_counterfactual.png
"""

from __future__ import annotations

import os

from absl import app, flags

from amgan_tf.data import synthfashion_sheets

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "synthfashion_grid.png", "Labelled sample grid PNG to write.")
flags.DEFINE_string("counterfactual_output", "",
                    "If set, also write counterfactuals (one row per attribute) and masks here.")
flags.DEFINE_integer("image_size", 64, "Render size in pixels (32..256).")
flags.DEFINE_integer("rows", 4, "Grid rows.")
flags.DEFINE_integer("cols", 8, "Grid columns.")
flags.DEFINE_integer("seed", 0, "Dataset seed.")
flags.DEFINE_integer("start", 0, "Index of the first example.")
flags.DEFINE_integer("scale", 2, "Upscaling of each tile in the sheet.")


def main(argv):
    del argv
    for path in (FLAGS.output, FLAGS.counterfactual_output):
        if path and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    sheet = synthfashion_sheets.sample_grid(FLAGS.seed, FLAGS.image_size, FLAGS.rows * FLAGS.cols,
                                            FLAGS.cols, FLAGS.start, FLAGS.scale)
    sheet.save(FLAGS.output)
    print(f"Wrote {FLAGS.rows}x{FLAGS.cols} labelled SynthFashion grid to {FLAGS.output}")
    if FLAGS.counterfactual_output:
        synthfashion_sheets.counterfactual_sheet(FLAGS.seed, FLAGS.image_size, FLAGS.start,
                                                 FLAGS.scale).save(FLAGS.counterfactual_output)
        print(f"Wrote counterfactual sheet to {FLAGS.counterfactual_output}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
