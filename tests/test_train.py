"""The train binary end to end on a tiny config: smoke run (attribute CNN trained first), a real
kill and restart, the non-finite-loss stop, and the manipulation CLI on its result."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}


def tiny_flags(synth_config, workdir, steps=4):
    return [f"--workdir={workdir}", f"--data_dir={synth_config.data_dir}", "--image_size=32",
            "--synth_num_train=400", "--synth_num_test=40", f"--synth_seed={synth_config.seed}",
            "--classifier_widths=8,8,8", "--classifier_steps=10", "--classifier_batch_size=8",
            f"--steps={steps}", "--batch_size=4", "--n_critic=1", "--g_conv_dim=8",
            "--g_repeat_num=1", "--d_conv_dim=8", "--d_repeat_num=4", "--d_max_dim=32",
            "--checkpoint_every=1", "--sample_every=2", "--eval_every=2", "--eval_images=8",
            "--final_eval_images=8", "--log_every=1"]


def _train(args, timeout=600):
    return subprocess.run([sys.executable, "-m", "amgan_tf.train", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(synth_config, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("amgan_run"))
    result = _train(tiny_flags(synth_config, workdir))
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, result


def test_smoke_run_trains_classifier_first_and_writes_everything(trained):
    workdir, result = trained
    assert "No trained attribute CNN" in result.stderr  # the one-command quick start
    metrics = json.loads(result.stdout[result.stdout.index("{"):])
    assert metrics["step"] == 4
    acc = metrics["manipulation_accuracy"]
    assert set(acc) == {"sleeve", "colour", "pattern", "mean"}
    assert all(0.0 <= v <= 1.0 for v in acc.values())
    for path in ("train_config.json", "schema.json", "metrics.json",
                 "classifier/attribute_cnn/attribute_cnn.weights.h5",
                 "samples/step_0000004.png"):
        assert os.path.exists(os.path.join(workdir, path)), path
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("-4")
    with open(os.path.join(workdir, "train_config.json")) as f:
        assert json.load(f)["amgan"]["weights"]["lambda_p"] == 20.0
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    assert "step 4/4" in result.stderr and "img/s" in result.stderr and "ETA" in result.stderr


def test_killed_run_resumes_with_same_optimizer_state(synth_config, trained, tmp_path):
    workdir = str(tmp_path / "run")
    cls_dir = os.path.join(trained[0], "classifier")
    args = tiny_flags(synth_config, workdir, steps=200) + [f"--classifier_workdir={cls_dir}"]
    proc = subprocess.Popen([sys.executable, "-m", "amgan_tf.train", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline:
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        if latest and int(latest.rsplit("-", 1)[1]) >= 3:
            break
        assert proc.poll() is None, "training ended early"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(tf.train.latest_checkpoint(ckpt_dir).rsplit("-", 1)[1])
    before = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    result = _train(args + ["--stop_after=2"])
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"(step {killed_at})" in result.stderr
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    assert int(after.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == killed_at + 2
    g_iters = after.get_tensor("g_opt/_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    d_iters = after.get_tensor("d_opt/_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(g_iters) == killed_at + 2 and int(d_iters) == killed_at + 2  # n_critic = 1
    assert int(before.get_tensor("g_opt/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) == killed_at


def test_non_finite_loss_stops_and_keeps_last_checkpoint(synth_config, trained, tmp_path):
    workdir = str(tmp_path / "nan")
    cls_dir = os.path.join(trained[0], "classifier")
    args = tiny_flags(synth_config, workdir, steps=6) + [f"--classifier_workdir={cls_dir}"]
    assert _train(args + ["--stop_after=2"]).returncode == 0
    ckpt_dir = os.path.join(workdir, "checkpoints")
    good = tf.train.latest_checkpoint(ckpt_dir)
    reader = tf.train.load_checkpoint(good)
    weights = {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(good)
               if n.startswith("G/")}
    assert weights
    result = _train(args + ["--lambda_gp=inf"])
    assert result.returncode == 1
    assert "Non-finite" in result.stderr and "untouched" in result.stderr
    assert "Traceback" not in result.stderr
    assert tf.train.latest_checkpoint(ckpt_dir) == good
    reader = tf.train.load_checkpoint(good)
    for k, v in weights.items():
        np.testing.assert_array_equal(reader.get_tensor(k), v)


# ---- the manipulation CLI on the trained tiny model ------------------------------------------
def _manipulate(*args):
    return subprocess.run([sys.executable, "-m", "amgan_tf.manipulate", *args], env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_manipulate_any_image_mode_and_size(trained, tmp_path):
    workdir = trained[0]
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(rng.integers(0, 255, (50, 30), np.uint8), "L").save(inputs / "grey.png")
    Image.fromarray(rng.integers(0, 255, (21, 77, 4), np.uint8), "RGBA").save(inputs / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(inputs / "rgb.jpg")
    (inputs / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = _manipulate(f"--workdir={workdir}", f"--image={inputs}", "--attribute=sleeve",
                         "--value=sleeveless", f"--output={out}")
    assert result.returncode == 1  # one unreadable input, reported, the others written
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr
    for name, size in (("grey", (30, 50)), ("rgba", (77, 21)), ("rgb", (64, 64))):
        assert Image.open(out / f"{name}.png").size == size
        assert Image.open(out / f"{name}_attention.png").size == size


def test_manipulate_region_leaves_outside_untouched(trained, tmp_path):
    workdir = trained[0]
    src = tmp_path / "x.png"
    image = np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)
    Image.fromarray(image).save(src)
    out = tmp_path / "y.png"
    result = _manipulate(f"--workdir={workdir}", f"--image={src}", "--attribute=colour",
                         "--value=orange", "--region_attribute=sleeve",
                         "--region_value=sleeveless", "--region_threshold=0.9",
                         f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    mask = np.asarray(Image.open(tmp_path / "y_attention.png"))
    edited = np.asarray(Image.open(out))
    outside = mask == 0
    np.testing.assert_array_equal(edited[outside], image[outside])


@pytest.mark.parametrize("args,message", [
    (["--attribute=sleeves", "--value=long"], "valid attributes: sleeve, colour, pattern"),
    (["--attribute=sleeve", "--value=cap"], "valid values: sleeveless, short, three_quarter"),
    (["--attribute=category", "--value=dress"], "cannot be manipulated"),
])
def test_manipulate_bad_names(trained, tmp_path, args, message):
    src = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(src)
    result = _manipulate(f"--workdir={trained[0]}", f"--image={src}", f"--output={tmp_path}/o.png",
                         *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_binary_with_independent_judge(trained):
    workdir = trained[0]
    result = subprocess.run(
        [sys.executable, "-m", "amgan_tf.evaluate", f"--workdir={workdir}",
         f"--judge_workdir={workdir}/classifier", "--num_images=8", "--counterfactual_images=4"],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    # The same network as judge: both verdicts must agree exactly.
    assert report["accuracy_training_cnn"] == report["accuracy_independent_judge"]
    err = report["counterfactual_mean_abs_error"]
    assert set(err) == {"sleeve", "colour", "pattern"}
    assert all(v["input"] > 0 and v["amgan"] >= 0 for v in err.values())
    assert os.path.exists(os.path.join(workdir, "evaluation.json"))
