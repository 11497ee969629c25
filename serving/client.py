"""`python -m serving.client ...` from a checkout: see amgan_tf/serving/client_cli.py."""

from amgan_tf.serving.client_cli import run

if __name__ == "__main__":
    run()
