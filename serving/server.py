"""`python -m serving.server ...` from a checkout: see amgan_tf/serving/server_cli.py."""

from absl import flags

from amgan_tf.serving import server_cli

__doc__ = server_cli.__doc__  # noqa: A001 - absl's --help prints the main module's docstring
flags.adopt_module_key_flags(server_cli)

if __name__ == "__main__":
    server_cli.run()
