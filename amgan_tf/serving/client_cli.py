r"""Manipulate images through a model server (`python -m serving.client`, `amgan-client`).

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

from absl import app, flags, logging

from amgan_tf import manipulate_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("server", None, "host:port of the gRPC (default) or REST (--rest) API.")
flags.DEFINE_boolean("rest", False, "Use the REST API instead of gRPC.")
flags.DEFINE_boolean("row_format", False, "REST: send TF Serving's row format ('instances').")
flags.DEFINE_boolean("send_bytes", False, "Send the encoded files (manipulate_bytes signature) "
                     "instead of decoded pixels; not with a region. JPEG and PNG only; the server "
                     "decodes them with TF, which ignores EXIF rotation and drops alpha (the "
                     "default path reads files as the manipulate CLI does).")
flags.DEFINE_string("model_name", "amgan", "Model name on the server.")
flags.DEFINE_integer("version", None, "Model version (default: the one the server serves).")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for each answer.")
manipulate_lib.define_edit_flags(FLAGS)
flags.adopt_module_key_flags(manipulate_lib)  # listed by --help
flags.mark_flag_as_required("server")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf

    from amgan_tf.serving.client import ServingError, connect
    try:
        edit, region = manipulate_lib.edit_request(FLAGS)
        if region and FLAGS.send_bytes:
            raise ValueError("--send_bytes has no region form; leave one of them out.")
        inputs = manipulate_lib.list_images(FLAGS.image)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    client = connect(FLAGS.server, rest=FLAGS.rest, model_name=FLAGS.model_name,
                     timeout=FLAGS.timeout, version=FLAGS.version,
                     **({"row": FLAGS.row_format} if FLAGS.rest else {}))

    def manipulate_one(path):
        if FLAGS.send_bytes:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise manipulate_lib.ImageReadError(f"Cannot read {path!r}: {e}") from None
        else:
            image = manipulate_lib.read_image(path)
        try:
            if FLAGS.send_bytes:
                png, mask_png = client.manipulate_bytes([data], edit.attribute, edit.value)
                return (tf.io.decode_png(png[0]).numpy(),
                        tf.io.decode_png(mask_png[0]).numpy()[..., 0] / 255.0)
            result, mask = client.manipulate(image[None], edit.attribute, edit.value, region)
            return result[0], mask[0, ..., 0]
        except ServingError as e:
            message = f"{path}: the server answered {e.code}: {e.message}"
            if e.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND"):
                print(f"error: {message}", file=sys.stderr)
                sys.exit(1)  # the same for every image: stop here
            raise manipulate_lib.ImageEditError(message) from None

    if manipulate_lib.manipulate_files(inputs, FLAGS.image, FLAGS.output, manipulate_one,
                                       FLAGS.save_attention):
        sys.exit(1)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
