"""`python -m export ...` from a checkout: see amgan_tf/export_cli.py (also `amgan-export`)."""

from absl import flags

from amgan_tf import export_cli

__doc__ = export_cli.__doc__  # noqa: A001 - absl's --help prints the main module's docstring
flags.adopt_module_key_flags(export_cli)

if __name__ == "__main__":
    export_cli.run()
