"""The "auto" dtype policy: bfloat16 only on hardware with bfloat16 units."""

import pytest

from amgan_tf import precision
from amgan_tf.models.networks import Generator, GeneratorConfig

AVX2_EPYC = "fpu vme sse sse2 avx avx2 fma"
SAPPHIRE_RAPIDS = AVX2_EPYC + " avx512f avx512_bf16 amx_bf16 amx_tile"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {SAPPHIRE_RAPIDS}\n\n"
                    "processor\t: 1\nflags\t\t: other\n")
    assert precision.cpu_flags(str(path)) == frozenset(SAPPHIRE_RAPIDS.split())
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags, gpus, expected", [
    (AVX2_EPYC, [], "float32"),
    (SAPPHIRE_RAPIDS, [], "mixed_bfloat16"),
    (AVX2_EPYC + " avx512f avx512_bf16", [], "mixed_bfloat16"),
    (AVX2_EPYC + " avx512f", [], "float32"),  # AVX512 without BF16 emulates bfloat16
    ("", [(8, 0)], "mixed_bfloat16"),
    (SAPPHIRE_RAPIDS, [(7, 5)], "float32"),  # the GPU trains, and a T4 has no bfloat16 units
    ("", [(8, 6), (7, 0)], "float32"),  # every replica must have them
])
def test_auto_policy_by_hardware(flags, gpus, expected):
    assert precision.auto_policy(frozenset(flags.split()), gpus) == expected


def test_resolve_keeps_explicit_policies_and_names_the_choices():
    for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision.resolve(policy) == policy
    with pytest.raises(ValueError, match="Unknown dtype policy 'bf16'.*auto, float32"):
        precision.resolve("bf16")


def test_auto_builds_g_in_this_machines_policy():
    expected = precision.auto_policy(precision.cpu_flags(), [])
    g = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, dtype_policy="auto"), name="G")
    assert g.colour.compute_dtype == {"float32": "float32", "mixed_bfloat16": "bfloat16"}[expected]
    bf16 = Generator(GeneratorConfig(conv_dim=8, repeat_num=1, dtype_policy="mixed_bfloat16"),
                     name="G")
    assert bf16.colour.compute_dtype == "bfloat16"  # the check above can tell the two apart
