"""`python -m serving.demo [--model=DIR]` from a checkout: see amgan_tf/serving/demo.py."""

from absl import flags

from amgan_tf.serving import demo

__doc__ = demo.__doc__  # noqa: A001 - absl's --help prints the main module's docstring
flags.adopt_module_key_flags(demo)

if __name__ == "__main__":
    demo.run()
