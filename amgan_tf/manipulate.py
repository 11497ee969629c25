"""Manipulate images with a trained AMGAN.

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

from amgan_tf.attributes import UnknownAttributeError

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of amgan_tf.train.")
flags.DEFINE_string("image", None, "Image file or folder of images.")
flags.DEFINE_string("attribute", None, "Attribute to change, e.g. sleeve.")
flags.DEFINE_string("value", None, "Target value, e.g. sleeveless.")
flags.DEFINE_string("output", None, "Output image path (or folder when --image is a folder).")
flags.DEFINE_string("region_attribute", "", "Restrict the edit to the mask of this attribute...")
flags.DEFINE_string("region_value", "", "...set to this value (Eq. 12).")
flags.DEFINE_float("region_threshold", 0.9, "Region mask values below this become 0.")
flags.DEFINE_enum("region_mode", "inside", ["inside", "outside"], "Edit inside or outside.")
flags.DEFINE_boolean("save_attention", True, "Also write <output>_attention.png.")
flags.mark_flags_as_required(["workdir", "image", "attribute", "value", "output"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from amgan_tf import manipulate_lib, trained
    try:
        if bool(FLAGS.region_attribute) != bool(FLAGS.region_value):
            raise ValueError("--region_attribute and --region_value go together.")
        region = (manipulate_lib.Region(FLAGS.region_attribute, FLAGS.region_value,
                                        FLAGS.region_threshold, FLAGS.region_mode)
                  if FLAGS.region_attribute else None)
        inputs = manipulate_lib.list_images(FLAGS.image)
        model = trained.load_generator(FLAGS.workdir)
        edit = manipulate_lib.Edit(FLAGS.attribute, FLAGS.value)
        model.schema.value_index(edit.attribute, edit.value)
        model.schema.r_index(edit.attribute)
        if region is not None:
            model.schema.value_index(region.attribute, region.value)
        tool = manipulate_lib.Manipulator(model)
    except (UnknownAttributeError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    failures = 0
    for path, out in zip(inputs, manipulate_lib.output_paths(inputs, FLAGS.image, FLAGS.output)):
        try:
            image = manipulate_lib.read_image(path)
        except manipulate_lib.ImageReadError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        result, mask = tool.manipulate_image(image, edit, region)
        written = manipulate_lib.save_outputs(result, mask, out, FLAGS.save_attention)
        print(f"{path} -> {', '.join(written)}")
    if failures:
        print(f"{failures} of {len(inputs)} image(s) could not be read.", file=sys.stderr)
        sys.exit(1)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
