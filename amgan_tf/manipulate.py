r"""Manipulate images with a trained AMGAN.

    python -m amgan_tf.manipulate --workdir=DIR --image=shirt.jpg --attribute=sleeve \
        --value=sleeveless --output=out.png
    # only the sleeves orange: the region of "sleeve -> sleeveless" restricts "colour -> orange"
    python -m amgan_tf.manipulate --workdir=DIR --image=shirt.jpg --attribute=colour \
        --value=orange --region_attribute=sleeve --region_value=sleeveless --output=out.png

--image may be a folder (then --output is a folder). Writes the result and its attention mask
(`<output>_attention.png`).
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

from amgan_tf import manipulate_lib
from amgan_tf.attributes import UnknownAttributeError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of amgan_tf.train.")
manipulate_lib.define_edit_flags(FLAGS)
flags.adopt_module_key_flags(manipulate_lib)  # listed by --help
flags.DEFINE_float("attention_floor", None, "Mask values below this become 0, the rest rescaled "
                   "to [0, 1] (amgan_tf.edit.floored_attention); default: the run's.")
flags.mark_flag_as_required("workdir")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from amgan_tf import trained
    try:
        edit, region = manipulate_lib.edit_request(FLAGS)
        inputs = manipulate_lib.list_images(FLAGS.image)
        model = trained.load_generator(FLAGS.workdir, attention_floor=FLAGS.attention_floor)
        model.schema.value_index(edit.attribute, edit.value)
        model.schema.r_index(edit.attribute)
        if region is not None:
            model.schema.value_index(region.attribute, region.value)
        tool = manipulate_lib.Manipulator(model)
    except (UnknownAttributeError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if manipulate_lib.manipulate_files(
            inputs, FLAGS.image, FLAGS.output,
            lambda path: tool.manipulate_image(manipulate_lib.read_image(path), edit, region),
            FLAGS.save_attention):
        sys.exit(1)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
