"""The one training-loop skeleton of both binaries (`train`, `train_classifier`).

What it guarantees, for both by construction:
- Resume: the newest readable checkpoint is restored. A damaged one (truncated or garbled index or
  data file, a garbled `checkpoint` state file) is named in the log, moved to `damaged/` and the
  previous one used; when checkpoints exist but none can be read, the run refuses to start rather
  than silently training from scratch over them.
- A crash costs at most `checkpoint_every` steps: checkpoints are written by TF's
  CheckpointManager (data and index first, then the state file by atomic rename), and a failed write
  (disk full, quota) removes its partial files, keeps the previous checkpoint and says so.
- A non-finite loss stops the run before anything is saved (`runtime.check_finite`).
- Only the chief writes (`strategy.extended.should_checkpoint`); other workers save to a scratch
  directory, because saving is a collective operation.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import re
import shutil
import tempfile
import time
from typing import Callable, Mapping

import tensorflow as tf

from amgan_tf.runtime import CheckpointError, check_finite, tune_malloc

log = logging.getLogger(__name__)

DAMAGED_DIR = "damaged"
_NUMBER = re.compile(r"-(\d+)\.index$")


@dataclasses.dataclass
class LoopSettings:
    steps: int
    checkpoint_every: int
    log_every: int
    stop_after: int = 0  # > 0: leave after this many steps in this run, as if killed
    max_to_keep: int = 3

    def __post_init__(self):
        for name in ("steps", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")


def checkpoint_prefixes(directory: str) -> list[str]:
    """Checkpoint prefixes found on disk (by their index files), newest first.

    Read from the files rather than the `checkpoint` state file, which may itself be damaged or
    name a checkpoint whose write never finished."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(directory), "*.index")):
        match = _NUMBER.search(index)
        if match:
            found.append((int(match.group(1)), index[:-len(".index")]))
    return [prefix for _, prefix in sorted(found, reverse=True)]


def _files_of(prefix: str) -> list[str]:
    return glob.glob(glob.escape(prefix) + ".index") + glob.glob(glob.escape(prefix) + ".data-*")


def _first_line(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def restore_newest_good(restore: Callable[[str], None], directory: str, *,
                        quarantine: bool = True) -> str | None:
    """Call `restore(prefix)` on the newest readable checkpoint in `directory`; its prefix, or None
    if there is none.

    A checkpoint whose restore raises a read error is damaged: it is logged and, with `quarantine`
    (the chief of a training run; readers leave files alone), moved to `directory/damaged/` with
    the state file rewritten. Raises CheckpointError when checkpoints exist but none is readable,
    or when one does not fit the model (written under other settings)."""
    prefixes = checkpoint_prefixes(directory) if os.path.isdir(directory) else []
    damaged = []
    for prefix in prefixes:
        try:
            restore(prefix)
        except Exception as e:  # TF reports a damaged file as OpError, ValueError or IndexError
            if "shape" in _first_line(e).lower() and not isinstance(e, tf.errors.DataLossError):
                raise CheckpointError(
                    f"Checkpoint {prefix} does not fit this model ({_first_line(e)}): it was "
                    f"written by a run with other settings. Use that run's flags, or a new "
                    f"--workdir.") from None
            log.warning("Checkpoint %s is damaged (%s); trying the previous one.", prefix,
                        _first_line(e))
            damaged.append((prefix, _first_line(e)))
            continue
        if damaged and quarantine:
            _quarantine(directory, [p for p, _ in damaged], keep=prefixes)
        return prefix
    if damaged:
        listing = "; ".join(f"{os.path.basename(p)}: {why}" for p, why in damaged)
        raise CheckpointError(
            f"Every checkpoint in {directory} is damaged ({listing}). Refusing to train from "
            f"scratch over them: move {directory} away to start afresh.")
    return None


def _write_state(directory: str, prefixes: list[str]) -> None:
    """The `checkpoint` state file naming `prefixes` (newest first), if there are any."""
    if prefixes:
        tf.compat.v1.train.update_checkpoint_state(directory, prefixes[0],
                                                   all_model_checkpoint_paths=prefixes[::-1])


def _quarantine(directory: str, damaged: list[str], keep: list[str]) -> None:
    target = os.path.join(directory, DAMAGED_DIR)
    os.makedirs(target, exist_ok=True)
    for prefix in damaged:
        for path in _files_of(prefix):
            shutil.move(path, os.path.join(target, os.path.basename(path)))
    _write_state(directory, [p for p in keep if p not in damaged])
    log.warning("Moved %d damaged checkpoint(s) to %s.", len(damaged), target)


class Checkpoints:
    """CheckpointManager with fall-back on restore and clear errors on a failed write."""

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: str, max_to_keep: int,
                 chief: bool = True):
        self.checkpoint, self.chief, self.directory = checkpoint, chief, directory
        # Where a non-chief worker's copies go (saving is collective; only the chief's are kept).
        self.scratch = None if chief else tempfile.mkdtemp(prefix="amgan_worker_ckpt_")
        if chief:  # a write killed midway leaves its temporary directory behind
            for leftover in glob.glob(os.path.join(glob.escape(directory), "*_temp*")):
                log.warning("Removing %s, left by a checkpoint write that never finished.",
                            leftover)
                shutil.rmtree(leftover, ignore_errors=True)
        self.latest = restore_newest_good(
            lambda prefix: checkpoint.restore(prefix).assert_existing_objects_matched(), directory,
            quarantine=chief)
        self.manager = self._manager(self.scratch or directory, max_to_keep)

    def _manager(self, directory: str, max_to_keep: int) -> tf.train.CheckpointManager:
        found = checkpoint_prefixes(directory) if os.path.isdir(directory) else []
        state = os.path.join(directory, "checkpoint")
        if found and self.chief and os.path.exists(state):
            listed = None
            try:  # TF logs and ignores a state file it cannot parse
                listed = tf.train.get_checkpoint_state(directory)
            except Exception:  # noqa: BLE001 - any parse failure means the same
                pass
            if listed is None or not listed.model_checkpoint_path:
                log.warning("The checkpoint state file %s is damaged; rebuilding it from the "
                            "checkpoint files.", state)
                _write_state(directory, found)
            elif os.path.basename(listed.model_checkpoint_path) != os.path.basename(found[0]):
                # A kill between a checkpoint's last rename and the state file's update: the
                # run resumed from the newer files, and `tf.train.latest_checkpoint` (TensorBoard,
                # other tools) must not name the older one, even if no step is left to save.
                log.warning("The checkpoint state file %s names %s, but %s is newer; updating "
                            "it.", state, os.path.basename(listed.model_checkpoint_path),
                            os.path.basename(found[0]))
                _write_state(directory, found)
        return tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)

    def save(self, step: int) -> None:
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            prefix = os.path.join(self.manager.directory, f"ckpt-{step}")
            for partial in _files_of(prefix) + glob.glob(glob.escape(prefix) + "_temp*"):
                if os.path.isdir(partial):
                    shutil.rmtree(partial, ignore_errors=True)
                else:
                    os.remove(partial)
            raise CheckpointError(
                f"Could not write checkpoint {step} to {self.manager.directory} "
                f"({_first_line(e)}). Is the disk full or over quota? The previous checkpoint "
                f"({self.latest or 'none'}) is intact: free some space, then run the same command "
                f"to resume from it.") from None
        if self.chief:
            self.latest = path

    def close(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def run(step: tf.Variable, checkpoints: Checkpoints, settings: LoopSettings,
        train_step: Callable[[], Mapping[str, object]], *, advice: str,
        report: Callable[[int, Mapping[str, object], float], None],
        after_step: Callable[[int], None] | None = None) -> bool:
    """Run `train_step` until settings.steps (or stop_after); True when training is complete.

    `report(step, logs, steps_per_second)` is called every log_every steps and on the last one;
    `after_step(step)` after every step, once its checkpoint (if due) is written."""
    tune_malloc()
    start = int(step)
    end = settings.steps
    if settings.stop_after:
        end = min(end, start + settings.stop_after)
    last_step, last_time = start, time.time()
    while int(step) < end:
        logs = train_step()
        step.assign_add(1)
        s = int(step)
        check_finite(logs, s, checkpoints.latest, advice)
        if s % settings.log_every == 0 or s == end:
            now = time.time()
            report(s, logs, (s - last_step) / max(now - last_time, 1e-9))
            last_step, last_time = s, now
        if s % settings.checkpoint_every == 0 or s == end:
            checkpoints.save(s)
        if after_step is not None:
            after_step(s)
    checkpoints.close()
    if int(step) < settings.steps:
        log.info("Stopped at step %d of %d (stop_after); run the same command to continue.",
                 int(step), settings.steps)
        return False
    return True


# ---- the workdir's record of the run's settings -------------------------------------------------
def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _may_differ(key: str, may_differ) -> bool:
    return any(key == k or key.startswith(k + ".") for k in may_differ)


def claim_workdir(path: str, config: dict, may_differ, resuming: bool, chief: bool = True,
                  tunable=(), defaults: dict | None = None) -> None:
    """Record the run's settings in `path`, or, when resuming from checkpoints, refuse with the
    list of differences if they were written under other settings (another image size, other
    attributes, other networks), instead of failing later on a shape deep inside TF.

    `may_differ`: dotted keys (or key prefixes) a resumed run may change, such as steps or paths;
    `tunable`: keys it may change with a logged warning (loss weights, learning rates);
    `defaults`: the settings' defaults, which a key added to the code after the workdir was
    written counts as having (an older run resumes unless it is set to something else)."""
    config = json.loads(json.dumps(config))  # tuples -> lists, as in the file
    if resuming and os.path.exists(path):
        try:
            with open(path) as f:
                saved = json.load(f)
            if not isinstance(saved, dict):
                raise ValueError(f"a JSON {type(saved).__name__}, not an object")
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{path} is damaged or foreign ({_first_line(e)}), and checkpoints beside it "
                f"cannot be checked against this run's settings. Restore the file, or train in a "
                f"new --workdir.") from None
        old, new = _flatten(saved), _flatten(config)
        for k, v in _flatten(json.loads(json.dumps(defaults or {}))).items():
            if k not in old and k in new:
                old[k] = v
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k, None) != new.get(k, None)
                   and not _may_differ(k, may_differ)]

        def describe(keys):
            return "; ".join(f"{k}: {old.get(k, '<missing>')!r} in the workdir, "
                             f"{new.get(k, '<missing>')!r} now" for k in keys)

        tuned = [k for k in changed if _may_differ(k, tunable)]
        diffs = [k for k in changed if k not in tuned]
        if tuned and not diffs:
            log.warning("Resuming with changed settings: %s.", describe(tuned))
        if diffs:
            raise ValueError(
                f"The checkpoints in {os.path.dirname(path) or '.'} were written with other "
                f"settings ({describe(diffs[:8])}{'; ...' if len(diffs) > 8 else ''}). Resume "
                f"with the settings recorded in {path}, or train in a new --workdir.")
    if chief:
        write_json_atomic(path, config)


def write_json_atomic(path: str, value) -> None:
    """Write JSON so that a crash leaves the old file or the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(value, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
