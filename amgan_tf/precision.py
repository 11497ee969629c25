"""The "auto" dtype policy: bfloat16 only where the hardware has bfloat16 units.

bfloat16 convolutions are 2.5-3x faster than float32 on CPUs with AMX-BF16 or AVX512-BF16, but
oneDNN emulates them elsewhere: on a 2-core AVX2 CPU (AMD EPYC, Zen 3) one quick-start G update
took 7.1x longer in bfloat16 than in float32 (one run; BUILD_NOTES.md). A config that names
mixed_bfloat16 is therefore fast on one machine and slow on the next; "auto" picks per machine.
"""

from __future__ import annotations

import functools
import logging

DTYPE_POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# /proc/cpuinfo flags of CPUs whose oneDNN kernels run bfloat16 natively.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_GPU_CAPABILITY = (8, 0)  # Ampere and newer have bfloat16 tensor cores

log = logging.getLogger(__name__)


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The first CPU's feature flags (Linux); empty where the file does not exist."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _gpu_capabilities() -> list[tuple[int, int]]:
    import tensorflow as tf
    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability",
                                                                      (0, 0)))
            for gpu in tf.config.list_physical_devices("GPU")]


def auto_policy(flags: frozenset[str], gpu_capabilities: list[tuple[int, int]]) -> str:
    """mixed_bfloat16 when every device that will train has bfloat16 units, else float32."""
    if gpu_capabilities:
        return ("mixed_bfloat16" if min(gpu_capabilities) >= BF16_GPU_CAPABILITY
                else "float32")
    return "mixed_bfloat16" if flags & set(BF16_CPU_FLAGS) else "float32"


@functools.cache
def _this_machine() -> str:
    policy = auto_policy(cpu_flags(), _gpu_capabilities())
    log.info("dtype policy auto -> %s on this machine (bfloat16 units: %s)", policy,
             "yes" if policy == "mixed_bfloat16" else "no")
    return policy


def resolve(policy: str) -> str:
    """The Keras policy to build layers with: `policy` itself, or this machine's for "auto"."""
    if policy not in DTYPE_POLICIES:
        raise ValueError(f"Unknown dtype policy {policy!r}; choose one of: "
                         f"{', '.join(DTYPE_POLICIES)}.")
    return _this_machine() if policy == "auto" else policy
