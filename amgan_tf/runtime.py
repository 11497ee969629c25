"""Pieces shared by the training loops and their binaries: progress text, errors, exit handling."""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import sys
from typing import Callable, Mapping


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf; training stopped and the last good checkpoint is untouched."""


class CheckpointError(RuntimeError):
    """No usable checkpoint where some exist, or a checkpoint could not be written."""


class MissingDependencyError(RuntimeError):
    """An optional package (a converter, a runtime) is not installed; the message says how."""


# Errors a user can fix (bad flags, missing files, divergence, a missing optional package): one
# clear line, no traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NonFiniteLossError,
               MissingDependencyError, CheckpointError)


def hms(seconds: float) -> str:
    """Seconds as H:MM:SS (ETAs and wall times)."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def check_finite(values: Mapping[str, object], step: int, checkpoint: str | None,
                 advice: str) -> None:
    """Raise NonFiniteLossError naming every NaN/inf value; called before any checkpoint is saved,
    so the last good one stays untouched."""
    bad = [k for k, v in values.items() if not math.isfinite(float(v))]
    if bad:
        raise NonFiniteLossError(
            f"Non-finite {', '.join(bad)} at step {step}; stopped without saving. The last good "
            f"checkpoint ({checkpoint or 'none'}) is untouched: {advice}")


KEEP_TF_MALLOC_ENV = "AMGAN_KEEP_TF_MALLOC"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameter numbers
_malloc_tuned = False


def tune_malloc() -> bool:
    """Undo, for this process, the malloc setting tf.data's `from_generator` applies.

    At its first iterator TF calls mallopt(M_TRIM_THRESHOLD, 128 KiB) (it logs "Memory patch
    applied"). Any explicit glibc setting turns off the dynamic mmap threshold, so from then on
    every buffer over 128 KiB (most activations and gradients) is a fresh mmap that is
    page-faulted in and unmapped at every op: 771k instead of ~60k minor page faults and 4.6
    instead of 3.1 s per quick-start iteration on a 2-core EPYC (BUILD_NOTES.md, "malloc").
    This triggers TF's one-time patch first (so it cannot land later), then sets glibc's largest
    mmap threshold (32 MiB) and a 512 MiB trim threshold. True when applied; a no-op off glibc or
    with AMGAN_KEEP_TF_MALLOC=1. Numerics do not depend on it.
    """
    global _malloc_tuned
    if _malloc_tuned or os.environ.get(KEEP_TF_MALLOC_ENV, "") not in ("", "0"):
        return _malloc_tuned
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    import tensorflow as tf  # here: importing runtime stays cheap for the TF-free web tools

    def one():
        yield 0

    next(iter(tf.data.Dataset.from_generator(one, output_signature=tf.TensorSpec((), tf.int32))))
    _malloc_tuned = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                         and mallopt(_M_TRIM_THRESHOLD, 512 << 20))
    logging.getLogger(__name__).info(
        "malloc: mmap threshold 32 MiB, trim threshold 512 MiB (replaces TF's 128 KiB trim "
        "threshold; %s=1 keeps TF's)", KEEP_TF_MALLOC_ENV)
    return _malloc_tuned


def run_and_report(body: Callable[[], dict]) -> None:
    """Run a binary's body; print its result as JSON, or a user error as `error: ...` (exit 1).

    No TF work may happen here before `body`: MultiWorkerMirroredStrategy must configure the
    collective ops before TF's context starts, so `tune_malloc` runs in the loop skeleton."""
    try:
        result = body()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result, indent=2))
