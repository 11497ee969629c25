"""`python -m export ...` from a checkout: see amgan_tf/export_cli.py (also `amgan-export`)."""

from amgan_tf.export_cli import run

if __name__ == "__main__":
    run()
