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

from tests import kill_storm

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


def _checkpoint_tensors(workdir):
    return kill_storm.checkpoint_tensors(os.path.join(workdir, "checkpoints"))


def test_killed_run_resumes_exactly_like_an_uninterrupted_one(synth_config, trained, tmp_path):
    """SIGKILL mid-run, then the same command again (twice, so a clean stop is resumed too):
    every checkpointed tensor (G, D_I, D_C, both optimizers' moments and iterations, step) equals
    that of one uninterrupted run of the same length, so weights, optimizer state, learning rate
    and data stream all continued exactly."""
    cls_dir = os.path.join(trained[0], "classifier")

    def args(workdir):
        return tiny_flags(synth_config, workdir, steps=200) + [
            f"--classifier_workdir={cls_dir}", "--n_critic=2", "--deterministic",
            "--sample_every=1000", "--eval_every=1000"]

    workdir = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "-m", "amgan_tf.train", *args(workdir)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline:
        latest = tf.train.latest_checkpoint(ckpt_dir) if os.path.isdir(ckpt_dir) else None
        if latest and int(latest.rsplit("-", 1)[1]) >= 3:
            break
        assert proc.poll() is None, "training ended early"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(tf.train.latest_checkpoint(ckpt_dir).rsplit("-", 1)[1])
    for resumed_at in (killed_at, killed_at + 1):  # after the kill, then after a clean stop
        result = _train(args(workdir) + ["--stop_after=1"])
        assert result.returncode == 0, result.stderr[-4000:]
        assert f"(step {resumed_at})" in result.stderr
    whole = str(tmp_path / "whole")
    result = _train(args(whole) + [f"--stop_after={killed_at + 2}"])
    assert result.returncode == 0, result.stderr[-4000:]

    resumed, reference = _checkpoint_tensors(workdir), _checkpoint_tensors(whole)
    assert resumed.keys() == reference.keys()
    prefixes = {k.split("/")[0] for k in reference}
    assert {"G_weights", "D_I_weights", "D_C_weights", "g_opt", "d_opt", "step"} <= prefixes, \
        prefixes
    for network in ("G", "D_I", "D_C"):  # every variable of each network, by name
        names = {k.split("/")[1] for k in reference if k.startswith(f"{network}_weights/")}
        assert len(names) >= 6 and all(n.startswith(f"{network}.S") for n in names), names
    assert int(reference["step/.ATTRIBUTES/VARIABLE_VALUE"]) == killed_at + 2
    assert int(reference["d_opt/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 2 * (killed_at + 2)
    for key, value in reference.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)


def test_float16_run_resumes_exactly_with_its_loss_scales(synth_config, trained, tmp_path):
    """--g/d_dtype_policy=mixed_float16 (the GPU setting) trains on CPU too; the loss scales are
    checkpointed, so a stopped and resumed run equals an uninterrupted one bit for bit."""
    cls_dir = os.path.join(trained[0], "classifier")

    def args(workdir, stop_after):
        return tiny_flags(synth_config, workdir, steps=3) + [
            f"--classifier_workdir={cls_dir}", "--deterministic", "--g_dtype_policy=mixed_float16",
            "--d_dtype_policy=mixed_float16", f"--stop_after={stop_after}", "--sample_every=1000",
            "--eval_every=1000"]

    for workdir, stops in ((str(tmp_path / "resumed"), (2, 1)), (str(tmp_path / "whole"), (3,))):
        for stop_after in stops:
            result = _train(args(workdir, stop_after))
            assert result.returncode == 0, result.stderr[-4000:]
    resumed, reference = (_checkpoint_tensors(str(tmp_path / d)) for d in ("resumed", "whole"))
    assert resumed.keys() == reference.keys()
    for opt in ("g_opt", "d_opt"):
        scale = reference[f"{opt}/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE"]
        assert 1.0 <= scale <= 2.0 ** 15, (opt, scale)
    for key, value in reference.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)


def test_xla_compiled_run_trains(synth_config, trained, tmp_path):
    workdir = str(tmp_path / "xla")
    args = tiny_flags(synth_config, workdir, steps=2) + [
        f"--classifier_workdir={os.path.join(trained[0], 'classifier')}", "--jit_compile",
        "--sample_every=1000", "--eval_every=1000"]
    result = _train(args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "step 2/2" in result.stderr
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("-2")


def test_non_finite_loss_stops_and_keeps_last_checkpoint(synth_config, trained, tmp_path):
    workdir = str(tmp_path / "nan")
    cls_dir = os.path.join(trained[0], "classifier")
    args = tiny_flags(synth_config, workdir, steps=6) + [f"--classifier_workdir={cls_dir}"]
    assert _train(args + ["--stop_after=2"]).returncode == 0
    ckpt_dir = os.path.join(workdir, "checkpoints")
    good = tf.train.latest_checkpoint(ckpt_dir)
    reader = tf.train.load_checkpoint(good)
    weights = {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(good)
               if n.startswith("G_weights/")}
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


@pytest.mark.parametrize("mode", ["inside", "outside"])
def test_manipulate_cli_region_equals_the_library(trained, tmp_path, mode):
    """The CLI hands region, threshold and mode to the library unchanged (the region maths is
    tested with known masks in test_manipulate_region.py)."""
    from amgan_tf import manipulate_lib, trained as trained_lib
    workdir = trained[0]
    src = tmp_path / "x.png"
    image = np.random.default_rng(1).integers(0, 255, (36, 28, 3), np.uint8)
    Image.fromarray(image).save(src)
    out = tmp_path / "y.png"
    result = _manipulate(f"--workdir={workdir}", f"--image={src}", "--attribute=colour",
                         "--value=orange", "--region_attribute=sleeve",
                         "--region_value=sleeveless", "--region_threshold=0.3",
                         f"--region_mode={mode}", f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    tool = manipulate_lib.Manipulator(trained_lib.load_generator(workdir))
    want, want_mask = tool.manipulate_image(
        image, manipulate_lib.Edit("colour", "orange"),
        manipulate_lib.Region("sleeve", "sleeveless", 0.3, mode))
    edited = np.asarray(Image.open(out))
    assert np.abs(edited.astype(int) - want).max() <= 1
    mask = np.asarray(Image.open(tmp_path / "y_attention.png"))
    assert np.abs(mask.astype(int) - np.round(want_mask * 255)).max() <= 1
    assert np.any(edited != image)


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


def constant_judge(schema, directory):
    """An attribute CNN that answers value 0 for every attribute of every image."""
    from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig
    judge = AttributeCNN(schema, AttributeCNNConfig(image_size=32, widths=(4, 4, 4)))
    judge.build_on_zeros()
    bias = np.zeros(judge.head.bias.shape, np.float32)
    bias[judge.head_offsets] = 1.0
    judge.head.kernel.assign(np.zeros(judge.head.kernel.shape, np.float32))
    judge.head.bias.assign(bias)
    judge.save_to(directory)


def test_evaluate_binary_uses_the_independent_judge(trained, synth_test, tmp_path):
    """A judge whose verdicts are known (always value 0) gives exactly the share of targets equal
    to 0, and differs from the training CNN's verdict: evaluate really asks --judge_workdir."""
    from amgan_tf.evaluation import manipulation_targets
    workdir = trained[0]
    constant_judge(synth_test.schema, str(tmp_path / "judge"))
    result = subprocess.run(
        [sys.executable, "-m", "amgan_tf.evaluate", f"--workdir={workdir}",
         f"--judge_workdir={tmp_path / 'judge'}", "--num_images=40", "--counterfactual_images=4",
         "--retrieval_images=40", f"--output={tmp_path / 'eval'}",
         "--region_examples=colour:orange@sleeve:sleeveless"],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    judged = report["accuracy_independent_judge"]
    for r, attr in enumerate(synth_test.schema.manipulated):
        targets = manipulation_targets(synth_test.labels[:40], synth_test.schema, r)
        assert judged[attr.name] == pytest.approx(float(np.mean(targets == 0))), attr.name
    assert judged != report["accuracy_training_cnn"]
    # the constant judge sees value 0 whatever the image: edits change nothing in its verdict
    assert report["accuracy_independent_judge_change_nothing"] == judged
    rr = report["retrieval_realism"]
    assert (rr["gallery_images"], rr["query_images"]) == (20, 20)
    for curves in rr["retrieval"].values():
        for which in ("model", "input"):
            values = [curves[which][str(k)] for k in range(1, 31)]
            assert values == sorted(values) and 0.0 <= values[0]
            assert values[-1] <= curves["ceiling"] <= 1.0  # 30 > the 20-image gallery: all seen
            assert values[-1] == curves["ceiling"]
    assert rr["fid"]["model"] > 0 and rr["fid"]["input"] > 0
    assert "evaluate: retrieval and FID/KID on 40 test images" in result.stderr
    err = report["counterfactual_mean_abs_error"]
    assert set(err) == {"sleeve", "colour", "pattern"}
    assert all(v["input"] > 0 and v["amgan"] >= 0 for v in err.values())
    out = tmp_path / "eval"
    for name in ("metrics.json", "retrieval.png", "examples.png"):
        assert os.path.exists(out / name), name
    # input, every value and the region edit: 32 px tiles at scale 2 plus 4 px margins
    columns = 2 + synth_test.schema.num_values
    assert Image.open(out / "examples.png").width == 4 + columns * (2 * 32 + 4)
    with open(out / "evaluation.md") as f:
        table = f.read()
    judge_row = next(line for line in table.splitlines() if line.startswith("| independent"))
    assert f"{100 * judged['sleeve']:.1f}%" in judge_row
    assert "| independent judge, change nothing |" in table and "| change nothing |" in table
    sleeve_row = next(line for line in table.splitlines() if line.startswith("| sleeve"))
    assert f"{err['sleeve']['amgan']:.2f} / {err['sleeve']['input']:.2f}" in sleeve_row


@pytest.mark.parametrize("spec,message", [
    ("colour:plaid@sleeve:sleeveless", "valid values: red"),
    ("colour:orange", "is not attribute:value@attribute:value"),
])
def test_evaluate_refuses_a_bad_region_example_before_scoring(trained, tmp_path, spec, message):
    result = subprocess.run(
        [sys.executable, "-m", "amgan_tf.evaluate", f"--workdir={trained[0]}",
         f"--output={tmp_path}", f"--region_examples={spec}"],
        env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "evaluate: manipulation accuracy" not in result.stderr  # refused before any work
