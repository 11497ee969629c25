"""The classifier training library and binary: resume after a stop or a real kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from amgan_tf import classifier_lib
from amgan_tf.models.attribute_cnn import AttributeCNNConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(synth_config, **overrides):
    return classifier_lib.ClassifierConfig(
        data=synth_config, model=AttributeCNNConfig(image_size=32, widths=(8, 8, 16)),
        steps=6, batch_size=8, log_every=2, checkpoint_every=2, **overrides)


def _checkpoint_values(workdir):
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k}


def test_stop_and_resume_equals_one_run(synth_config, tmp_path):
    tf.config.experimental.enable_op_determinism()
    try:
        whole = classifier_lib.run(_config(synth_config), str(tmp_path / "whole"))
        stopped = classifier_lib.run(_config(synth_config, stop_after=4), str(tmp_path / "split"))
        assert stopped == {"step": 4}
        resumed = classifier_lib.run(_config(synth_config), str(tmp_path / "split"))
    finally:
        tf_config.disable_op_determinism()  # not public API; keeps other tests unaffected
    assert whole["step"] == resumed["step"] == 6
    a, b = _checkpoint_values(tmp_path / "whole"), _checkpoint_values(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:  # weights, Adam moments, iteration counters and step all continue exactly
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert set(whole["accuracy"]) == {"sleeve", "colour", "pattern", "category", "body_shape"}
    assert os.path.exists(tmp_path / "whole" / "attribute_cnn" / "attribute_cnn.weights.h5")


def test_binary_killed_and_restarted_continues(synth_config, tmp_path):
    workdir = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "amgan_tf.train_classifier", f"--workdir={workdir}",
           f"--data_dir={synth_config.data_dir}", "--image_size=32", "--synth_num_train=400",
           "--synth_num_test=40", f"--synth_seed={synth_config.seed}",
           "--classifier_widths=8,8,16", "--classifier_steps=400",
           "--classifier_batch_size=8", "--classifier_checkpoint_every=5", "--log_every=5"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    deadline = time.time() + 240
    while time.time() < deadline:
        saved = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        if saved and int(saved.rsplit("-", 1)[1]) >= 10:
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("no checkpoint within 240 s")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(tf.train.latest_checkpoint(ckpt_dir).rsplit("-", 1)[1])
    assert killed_at < 400

    # The same command again (stop_after only keeps the test short).
    result = subprocess.run(cmd + ["--classifier_stop_after=5"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stderr and f"(step {killed_at})" in result.stderr
    final = int(tf.train.latest_checkpoint(ckpt_dir).rsplit("-", 1)[1])
    assert final == killed_at + 5
    values = _checkpoint_values(workdir)
    iterations = [v for k, v in values.items() if k.startswith("optimizer/_iterations")]
    assert iterations and int(iterations[0]) == final  # optimizer state continued, not reset
    with open(os.path.join(workdir, "classifier_config.json")) as f:
        assert json.load(f)["steps"] == 400


def test_binary_reports_bad_flags_without_trace(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "amgan_tf.train_classifier", f"--workdir={tmp_path}",
         "--reader_options=not json"], env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "--reader_options must be a JSON object" in result.stderr
    assert "Traceback" not in result.stderr
