"""Kill storm: SIGKILL a training binary again and again at random moments, restart the same
command each time, and check that nothing was lost or damaged.

    python -m tests.kill_storm --kills=20 [--binary=train|train_classifier] [--seed=0]

Kills land at random moments: during start-up (restore, tracing), during training, and aimed at
checkpoint writes (the kill follows the moment the write's temporary files appear; counted when
the kill indeed left a write's temporary directory behind). At the end the storm's checkpoint
must equal, tensor for tensor, that of an uninterrupted run of the same command (op
determinism); every checkpoint left must read; TensorBoard event files must hold only whole
records; and no kill may lose more than `checkpoint_every` steps. Used by
tests/test_fault_tolerance.py in a small form.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every process of a storm and its reference run gets the same thread pools: TF's float results
# depend on the intra-op thread count (1 vs 2 threads changes every tensor of a 60-step run), and
# the default count follows what the machine reports at each start.
ENV = {**os.environ, "PYTHONPATH": ROOT, "TF_NUM_INTRAOP_THREADS": "2",
       "TF_NUM_INTEROP_THREADS": "2"}
_STEP = re.compile(r"\bstep (\d+)/\d+")
_RESUMED = re.compile(r"Resuming from .* \(step (\d+)\)")


def _launch(binary: str, args: list[str]):
    proc = subprocess.Popen([sys.executable, "-m", f"amgan_tf.{binary}", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    return proc, lines, reader


def _steps(lines) -> list[int]:
    return [int(m.group(1)) for line in list(lines) for m in [_STEP.search(line)] if m]


def _resumed(lines) -> int | None:
    """The step a run resumed from (0 for a fresh start), or None when it was killed before it
    got that far (neither a resume line nor a training step)."""
    found = [int(m.group(1)) for line in lines for m in [_RESUMED.search(line)] if m]
    if found:
        return found[0]
    return 0 if _steps(lines) else None


def checkpoint_tensors(ckpt_dir: str) -> dict:
    """Every tensor of the latest checkpoint but the save counter (it counts saves, not steps)."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


def unreadable_checkpoints(ckpt_dir: str) -> list[str]:
    bad = []
    for index in glob.glob(os.path.join(ckpt_dir, "*.index")):
        prefix = index[:-len(".index")]
        try:
            reader = tf.train.load_checkpoint(prefix)
            for key in reader.get_variable_to_shape_map():
                reader.get_tensor(key)
        except tf.errors.OpError:
            bad.append(prefix)
    return bad


def torn_event_files(workdir: str) -> tuple[int, list[str]]:
    """(event files, those with a damaged or cut-off record)."""
    files = glob.glob(os.path.join(workdir, "**", "events.out.tfevents.*"), recursive=True)
    torn = []
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.DataLossError:
            torn.append(path)
    return len(files), torn


def _wait_for_write(ckpt_dir: str, proc, timeout: float) -> None:
    """Return as soon as a checkpoint write is under way (its temporary files exist)."""
    pattern = os.path.join(ckpt_dir, "*_temp*")
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None and not glob.glob(pattern):
        time.sleep(0.0005)


def storm(binary: str, args: list[str], workdir: str, kills: int, checkpoint_every: int,
          seed: int = 0, max_seconds: float = 1800) -> dict:
    """Run `binary args` (args must name `workdir`) to completion through `kills` SIGKILLs."""
    rng = random.Random(seed)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    stats = {"kills": 0, "kills_during_startup": 0, "kills_during_checkpoint_write": 0,
             "steps_lost_per_kill": [], "resumed_from": [], "restarts": 0}
    startup = None
    last_step = 0  # the last step the previous (killed) run reported
    pending_loss = False  # a kill whose loss the next run that resumes will show
    deadline = time.time() + max_seconds
    while True:
        t0 = time.time()
        proc, lines, reader = _launch(binary, args)
        if stats["kills"] < kills:
            moment = rng.random()
            early = startup is not None and moment < 0.2
            in_write = moment > 0.7  # aim at a checkpoint write: kill when its temp files appear
            kill_at = t0 + rng.uniform(0.2, 0.9) * startup if early else None
            while proc.poll() is None and time.time() < deadline:
                if kill_at is not None and time.time() >= kill_at:
                    break
                if kill_at is None and _steps(lines):
                    startup = startup or time.time() - t0
                    if in_write:
                        _wait_for_write(ckpt_dir, proc, timeout=5.0)
                    else:
                        time.sleep(rng.uniform(0.0, 1.0))
                    break
                time.sleep(0.01)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                stats["kills"] += 1
                stats["kills_during_startup"] += int(not _steps(lines))
                stats["kills_during_checkpoint_write"] += int(any(  # this run's own write
                    os.path.getmtime(p) >= t0 for p in glob.glob(os.path.join(ckpt_dir,
                                                                              "*_temp*"))))
            reader.join()
        else:
            proc.wait()
            reader.join()
        if time.time() > deadline:
            raise TimeoutError(f"The kill storm took over {max_seconds} s: {stats}")
        resumed = _resumed(lines)
        if resumed is not None:  # the work lost by the last kill shows where this run resumed
            stats["resumed_from"].append(resumed)
            if pending_loss:
                stats["steps_lost_per_kill"].append(max(0, last_step - resumed))
            steps = _steps(lines)
            last_step = max(steps) if steps else resumed
        pending_loss = True
        stats["restarts"] += 1
        if proc.returncode == 0:
            break
        if proc.returncode != -9:
            raise RuntimeError(f"{binary} failed (exit {proc.returncode}):\n"
                               + "".join(lines[-40:]))
    stats["restarts"] -= 1
    stats["max_steps_lost"] = max(stats["steps_lost_per_kill"], default=0)
    stats["checkpoint_every"] = checkpoint_every
    stats["unreadable_checkpoints"] = unreadable_checkpoints(ckpt_dir)
    stats["event_files"], stats["torn_event_files"] = torn_event_files(workdir)
    return stats


def compare_with_uninterrupted(binary: str, args_for, workdir: str) -> list[str]:
    """Keys whose tensors differ between the storm's checkpoint and an uninterrupted run's."""
    whole = tempfile.mkdtemp(prefix="uninterrupted_")
    result = subprocess.run([sys.executable, "-m", f"amgan_tf.{binary}", *args_for(whole)],
                            env=ENV, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(result.stderr[-4000:])
    a = checkpoint_tensors(os.path.join(workdir, "checkpoints"))
    b = checkpoint_tensors(os.path.join(whole, "checkpoints"))
    if a.keys() != b.keys():
        return sorted(set(a) ^ set(b))
    return [k for k in a if not np.array_equal(a[k], b[k])]


# ---- the two binaries on tiny SynthFashion configs -----------------------------------------------
def synth_flags(data_dir: str, seed: int = 3) -> list[str]:
    return [f"--data_dir={data_dir}", "--image_size=32", "--synth_num_train=400",
            "--synth_num_test=40", f"--synth_seed={seed}", "--deterministic", "--log_every=1"]


def classifier_args(data_dir: str, steps: int, checkpoint_every: int):
    return lambda workdir: [f"--workdir={workdir}", *synth_flags(data_dir),
                            "--classifier_widths=8,8,16", f"--classifier_steps={steps}",
                            "--classifier_batch_size=8",
                            f"--classifier_checkpoint_every={checkpoint_every}"]


def train_args(data_dir: str, classifier_workdir: str, steps: int, checkpoint_every: int):
    return lambda workdir: [
        f"--workdir={workdir}", *synth_flags(data_dir),
        f"--classifier_workdir={classifier_workdir}",
        f"--steps={steps}", "--batch_size=4", "--n_critic=2", "--g_conv_dim=8", "--g_repeat_num=1",
        "--d_conv_dim=8", "--d_repeat_num=4", "--d_max_dim=32",
        f"--checkpoint_every={checkpoint_every}", "--sample_every=10000", "--eval_every=10000",
        "--eval_images=8", "--final_eval_images=8"]


def run_storm(binary: str, kills: int, seed: int = 0, steps: int | None = None,
              checkpoint_every: int = 3, root: str | None = None) -> dict:
    """A whole storm on a fresh tiny workdir: the counts, plus the tensors that differ from an
    uninterrupted run (none when nothing was lost)."""
    root = root or tempfile.mkdtemp(prefix="kill_storm_")
    data_dir = os.path.join(root, "tfds")
    cls_args = classifier_args(data_dir, steps or 40 * (kills + 1), checkpoint_every)
    if binary == "train":
        cls_dir = os.path.join(root, "classifier")
        subprocess.run([sys.executable, "-m", "amgan_tf.train_classifier",
                        *classifier_args(data_dir, 10, 10)(cls_dir)], env=ENV, check=True,
                       capture_output=True)
        args_for = train_args(data_dir, cls_dir, steps or 15 * (kills + 1), checkpoint_every)
    else:
        args_for = cls_args
    workdir = os.path.join(root, "storm")
    t0 = time.time()
    stats = storm(binary, args_for(workdir), workdir, kills, checkpoint_every, seed)
    stats["storm_seconds"] = round(time.time() - t0, 1)
    stats["differing_tensors"] = compare_with_uninterrupted(binary, args_for, workdir)
    stats["binary"] = binary
    return stats


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_enum("binary", "train", ["train", "train_classifier"], "Binary to storm.")
    flags.DEFINE_integer("kills", 20, "SIGKILLs.")
    flags.DEFINE_integer("seed", 0, "Seed of the kill moments.")
    flags.DEFINE_integer("checkpoint_every", 3, "Steps per checkpoint.")

    def main(argv):
        del argv
        f = flags.FLAGS
        print(json.dumps(run_storm(f.binary, f.kills, f.seed, checkpoint_every=f.checkpoint_every),
                         indent=2))

    app.run(main)
