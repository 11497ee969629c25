"""`python -m serving.client ...` from a checkout: see amgan_tf/serving/client_cli.py."""

from absl import flags

from amgan_tf import manipulate_lib
from amgan_tf.serving import client_cli

__doc__ = client_cli.__doc__  # noqa: A001 - absl's --help prints the main module's docstring
flags.adopt_module_key_flags(client_cli)
flags.adopt_module_key_flags(manipulate_lib)

if __name__ == "__main__":
    client_cli.run()
