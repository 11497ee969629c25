"""README "Train on your own photos": every command of its block, run as written on a tiny copy of
clothing_small, with only size flags appended (so the README cannot drift from what works)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.test_export_portable import need_web

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}
PHOTOS = os.path.join(ROOT, "tests", "data", "clothing_small")
MARKER = "<!-- own-photos:"

# Appended to the README's commands: tiny networks and runs, data prepared under the test's folder.
TINY_DATA = ["--data_dir=tfds", "--image_size=32"]
TINY_CNN = ["--classifier_widths=8,8,8", "--classifier_steps=6", "--classifier_batch_size=4"]
TINY = {
    "amgan_tf.train_classifier": TINY_DATA + TINY_CNN,
    "amgan_tf.train": TINY_DATA + TINY_CNN + [
        "--steps=2", "--batch_size=2", "--n_critic=1", "--g_conv_dim=8", "--g_repeat_num=1",
        "--d_conv_dim=8", "--d_repeat_num=4", "--d_max_dim=32", "--checkpoint_every=1",
        "--sample_every=2", "--eval_every=2", "--eval_images=4", "--final_eval_images=4"],
}


def readme_commands() -> list[list[str]]:
    """The commands of the README block that follows the own-photos marker, continuations joined."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert MARKER in text, "README.md lost its own-photos block marker"
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARKER):], re.S).group(1)
    block = block.replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_readme_block_is_the_whole_workflow():
    modules = [cmd[2] for cmd in readme_commands()]
    assert modules == ["amgan_tf.train_classifier", "amgan_tf.evaluate_classifier",
                       "amgan_tf.train", "amgan_tf.manipulate", "export", "serving.demo"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder laid out as the README assumes: configs/, photos/ and a photo to edit."""
    where = tmp_path_factory.mktemp("own_photos")
    os.symlink(os.path.join(ROOT, "configs"), where / "configs")
    shutil.copytree(PHOTOS, where / "photos")
    shutil.copy(os.path.join(PHOTOS, "test", "longsleeve",
                             "03a33083-e7bf-414d-bd35-c56273ae779c.jpg"), where / "my_shirt.jpg")
    return where


@pytest.fixture(scope="module")
def ran(project):
    """Runs the block's commands in order up to (not including) the demo server, stopping at the
    first failure; the tests check the exit codes, so a failing command fails a test."""
    commands, results = readme_commands(), {}
    for cmd in commands[:-1]:
        assert cmd[:2] == ["python", "-m"], cmd
        args = [sys.executable, *cmd[1:], *TINY.get(cmd[2], [])]
        results[cmd[2]] = subprocess.run(args, cwd=project, env=ENV, capture_output=True,
                                         text=True, timeout=900)
        if results[cmd[2]].returncode:
            break
    return commands, results


def succeeded(results, *modules):
    for module in modules:
        assert module in results, f"{module} did not run: an earlier command failed"
        result = results[module]
        assert result.returncode == 0, f"{module}\n{result.stderr[-4000:]}"


def test_attribute_cnn_trains_on_the_mapped_folders_and_is_evaluated_on_them(project, ran):
    _, results = ran
    succeeded(results, "amgan_tf.train_classifier", "amgan_tf.evaluate_classifier")
    with open(project / "runs/my_photos/classifier/classifier_config.json") as f:
        recorded = json.load(f)["data"]
    assert recorded["name"] == "image_folder"
    assert recorded["manual_dir"] == "photos"  # the README's folder, not the config's default
    report = json.loads(results["amgan_tf.evaluate_classifier"].stdout)
    # evaluated on the photos' test split (sleeve only), not on the default SynthFashion
    assert set(report["accuracy"]) == {"sleeve"}
    assert "cam" not in report  # SynthFashion's mask checks do not apply to photos
    # 4 test photos (2 longsleeve, 2 t-shirt; shirt/ is not in the value map): accuracy in quarters
    quarters = report["accuracy"]["sleeve"] * 4
    assert quarters == pytest.approx(round(quarters))


def test_amgan_uses_that_cnn_and_the_edit_and_exports_exist(project, ran):
    _, results = ran
    succeeded(results, "amgan_tf.train", "amgan_tf.manipulate", "export")
    assert "No trained attribute CNN" not in results["amgan_tf.train"].stderr  # step 1's is reused
    with open(project / "runs/my_photos/train_config.json") as f:
        assert json.load(f)["data"]["reader_options"]["value_map"] == {"longsleeve": "long",
                                                                      "t-shirt": "short"}
    edited = np.asarray(Image.open(project / "my_shirt_short.png"))
    source = Image.open(project / "my_shirt.jpg")
    assert edited.shape == (source.height, source.width, 3)  # back at the photo's own size
    assert os.path.isfile(project / "exports/my_photos/model.json")
    assert os.path.isfile(project / "exports/my_photos/manipulations.json")


def test_demo_serves_the_exported_model(project, ran):
    need_web()
    commands, results = ran
    succeeded(results, "export")
    demo = commands[-1] + ["--port=8767"]
    proc = subprocess.Popen([sys.executable, *demo[1:]], cwd=project, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8767/model/manipulations.json") as r:
                    schema = json.load(r)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.time() < deadline, "the demo server did not start in 60 s"
                time.sleep(0.5)
        with open(project / "exports/my_photos/manipulations.json") as f:
            assert schema == json.load(f)
        with urllib.request.urlopen("http://127.0.0.1:8767/") as r:
            assert b"<html" in r.read().lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
