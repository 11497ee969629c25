"""`python -m serving.server ...` from a checkout: see amgan_tf/serving/server_cli.py."""

from amgan_tf.serving.server_cli import run

if __name__ == "__main__":
    run()
