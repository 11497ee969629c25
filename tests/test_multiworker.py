"""Multi-worker training: two local worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy."""

import json
import os
import socket
import subprocess
import sys

import tensorflow as tf

from amgan_tf import classifier_lib
from amgan_tf.models.attribute_cnn import AttributeCNNConfig
from tests.test_train import ROOT, tiny_flags


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_together(synth_config, tmp_path):
    cls_dir = str(tmp_path / "classifier")
    classifier_lib.run(classifier_lib.ClassifierConfig(
        data=synth_config, model=AttributeCNNConfig(image_size=32, widths=(8, 8, 8)),
        steps=2, batch_size=8), cls_dir)
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    workdir = str(tmp_path / "run")
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        args = tiny_flags(synth_config, workdir, steps=3) + [
            f"--classifier_workdir={cls_dir}", "--strategy=multi_worker", "--sample_every=100",
            "--eval_every=100"]
        procs.append(subprocess.Popen([sys.executable, "-m", "amgan_tf.train", *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    chief_err = outputs[0][1]
    assert "Strategy CollectiveAllReduceStrategy with 2 replica(s)" in chief_err
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("-3")
    assert json.loads(outputs[0][0][outputs[0][0].index("{"):])["step"] == 3
