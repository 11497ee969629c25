"""Pieces shared by the training loops and their binaries: progress text, errors, exit handling."""

from __future__ import annotations

import json
import math
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


def run_and_report(body: Callable[[], dict]) -> None:
    """Run a binary's body; print its result as JSON, or a user error as `error: ...` (exit 1)."""
    try:
        result = body()
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result, indent=2))
