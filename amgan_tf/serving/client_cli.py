"""Manipulate images through a model server (`python -m serving.client`, `amgan-client`).

    python -m serving.client --server=localhost:8500 --image=shirt.jpg --attribute=sleeve \
        --value=sleeveless --output=out.png            # gRPC
    python -m serving.client --server=localhost:8501 --rest ...            # REST
    # only the sleeves orange
    python -m serving.client --server=localhost:8500 --image=shirt.jpg --attribute=colour \
        --value=orange --region_attribute=sleeve --region_value=sleeveless --output=out.png

--image may be a folder (then --output is a folder). Writes the result and, unless
--nosave_attention, `<output>_attention.png`, like `python -m amgan_tf.manipulate`.
"""

from __future__ import annotations

import sys

import numpy as np
from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("server", None, "host:port of the gRPC (default) or REST (--rest) API.")
flags.DEFINE_boolean("rest", False, "Use the REST API instead of gRPC.")
flags.DEFINE_boolean("row_format", False, "REST: send TF Serving's row format ('instances').")
flags.DEFINE_boolean("send_bytes", False, "Send the encoded files (manipulate_bytes signature) "
                     "instead of decoded pixels; not with a region.")
flags.DEFINE_string("model_name", "amgan", "Model name on the server.")
flags.DEFINE_integer("version", None, "Model version (default: the one the server serves).")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for each answer.")
flags.DEFINE_string("image", None, "Image file or folder of images.")
flags.DEFINE_string("attribute", None, "Attribute to change, e.g. sleeve.")
flags.DEFINE_string("value", None, "Target value, e.g. sleeveless.")
flags.DEFINE_string("output", None, "Output image path (or folder when --image is a folder).")
flags.DEFINE_string("region_attribute", "", "Restrict the edit to the mask of this attribute...")
flags.DEFINE_string("region_value", "", "...set to this value (Eq. 12).")
flags.DEFINE_float("region_threshold", 0.9, "Region mask values below this become 0.")
flags.DEFINE_enum("region_mode", "inside", ["inside", "outside"], "Edit inside or outside.")
flags.DEFINE_boolean("save_attention", True, "Also write <output>_attention.png.")
flags.mark_flags_as_required(["server", "image", "attribute", "value", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    from amgan_tf import manipulate_lib
    from amgan_tf.serving.client import ServingError, connect
    try:
        if bool(FLAGS.region_attribute) != bool(FLAGS.region_value):
            raise ValueError("--region_attribute and --region_value go together.")
        region = (manipulate_lib.Region(FLAGS.region_attribute, FLAGS.region_value,
                                        FLAGS.region_threshold, FLAGS.region_mode)
                  if FLAGS.region_attribute else None)
        if region and FLAGS.send_bytes:
            raise ValueError("--send_bytes has no region form; leave one of them out.")
        inputs = manipulate_lib.list_images(FLAGS.image)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    client = connect(FLAGS.server, rest=FLAGS.rest, model_name=FLAGS.model_name,
                     timeout=FLAGS.timeout, version=FLAGS.version,
                     **({"row": FLAGS.row_format} if FLAGS.rest else {}))
    failures = 0
    for path, out in zip(inputs, manipulate_lib.output_paths(inputs, FLAGS.image, FLAGS.output)):
        try:
            if FLAGS.send_bytes:
                with open(path, "rb") as f:
                    png, mask_png = client.manipulate_bytes([f.read()], FLAGS.attribute,
                                                            FLAGS.value)
                result = tf.io.decode_png(png[0]).numpy()
                mask = tf.io.decode_png(mask_png[0]).numpy()[..., 0] / 255.0
            else:
                image = manipulate_lib.read_image(path)
                result, mask = client.manipulate(image[None], FLAGS.attribute, FLAGS.value, region)
                result, mask = result[0], mask[0, ..., 0]
        except manipulate_lib.ImageReadError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        except ServingError as e:
            print(f"error: {path}: the server answered {e.code}: {e.message}", file=sys.stderr)
            if e.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND"):
                sys.exit(1)  # the same for every image: stop here
            failures += 1
            continue
        written = manipulate_lib.save_outputs(np.asarray(result), np.asarray(mask), out,
                                              FLAGS.save_attention)
        print(f"{path} -> {', '.join(written)}")
    if failures:
        print(f"{failures} of {len(inputs)} image(s) failed.", file=sys.stderr)
        sys.exit(1)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
