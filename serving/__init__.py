"""Serving tools run from a checkout (`python -m serving.server`, `python -m serving.client`);
the logic lives in amgan_tf.serving."""
