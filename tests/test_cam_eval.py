"""CAM checks against SynthFashion masks, and the evaluate_classifier binary."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from amgan_tf.cam_eval import cam_report
from amgan_tf.data.synthfashion import MASK_NAMES
from amgan_tf.models.attribute_cnn import AttributeCNN, AttributeCNNConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class MaskCNN:
    """Stands in for the attribute CNN: its 'CAM' of every image is one of that image's masks,
    handed out in dataset order, so the report's numbers are known."""

    def __init__(self, schema, masks: np.ndarray, mask_for: dict[str, str], smoothing: float):
        self.schema, self.masks, self.mask_for = schema, masks, mask_for
        self.config = AttributeCNNConfig(cam_smoothing=smoothing)
        self.cursor = 0

    def cam(self, x, column, value, smoothing=None):
        n = len(x)
        name = self.mask_for[self.schema.attributes[column].name]
        out = self.masks[self.cursor:self.cursor + n, ..., MASK_NAMES.index(name)].astype(np.float32)
        self.cursor = (self.cursor + n) % len(self.masks)
        return tf.constant(out + 1e-3 * np.random.default_rng(self.cursor).random(out.shape))


def test_report_scores_maps_against_the_right_masks(synth_test):
    masks = synth_test.masks
    model = MaskCNN(synth_test.schema, masks,
                    {"sleeve": "arm", "colour": "garment", "pattern": "torso"}, smoothing=1.0)
    report = cam_report(model, synth_test)
    sleeve_or_arm = np.maximum(masks[..., 1], masks[..., 3])
    assert report["sleeve"]["argmax_in_sleeve_or_arm"] == 1.0  # the arm lies inside sleeve-or-arm
    assert report["sleeve"]["argmax_in_sleeve_or_arm_unsmoothed"] == 1.0
    assert report["sleeve"]["sleeve_or_arm_area_share"] == pytest.approx(sleeve_or_arm.mean())
    assert report["colour"]["argmax_in_garment"] == 1.0
    assert report["colour"]["mass_in_garment"] > 0.9  # all but the tiny noise floor
    # The torso mask is part of the garment, so all of the pattern map's peak is in the garment.
    assert report["pattern"]["argmax_in_garment"] == 1.0
    assert report["garment_area_share"] == pytest.approx(masks[..., 0].mean())
    # Maps that are the arm everywhere except the sleeve: the sleeve-or-arm check must still pass,
    # a garment check must not.
    model = MaskCNN(synth_test.schema, masks, {"sleeve": "arm", "colour": "arm",
                                               "pattern": "arm"}, smoothing=0.0)
    report = cam_report(model, synth_test)
    assert "argmax_in_sleeve_or_arm_unsmoothed" not in report["sleeve"]
    assert report["colour"]["argmax_in_garment"] < 1.0


class TrueValueCNN:
    """A stand-in whose CAM depends on the asked value: the image's arm mask for its true value
    of each attribute, its torso (outside the arms) for any other value."""

    def __init__(self, data):
        self.schema, self.data = data.schema, data
        self.config = AttributeCNNConfig(cam_smoothing=0.0)
        self.cursor = 0

    def cam(self, x, column, value, smoothing=None):
        n = len(x)
        rows = slice(self.cursor, self.cursor + n)
        self.cursor = (self.cursor + n) % len(self.data)
        truth = self.data.labels[rows, column] == np.asarray(value)
        masks = self.data.masks[rows].astype(np.float32)
        arm, torso = masks[..., MASK_NAMES.index("arm")], masks[..., MASK_NAMES.index("torso")]
        torso = torso * (1 - masks[..., MASK_NAMES.index("sleeve")]) * (1 - arm)
        return tf.constant(np.where(truth[:, None, None], arm, torso) + 1e-3)


def test_report_scores_the_cam_of_the_true_value(synth_test):
    """Eq. 8's m' is the image's own label: asking any other value would score the torso here."""
    report = cam_report(TrueValueCNN(synth_test), synth_test)
    assert report["sleeve"]["argmax_in_sleeve_or_arm"] == 1.0
    share_zero = np.mean(synth_test.labels[:, 0] == 0)
    assert share_zero < 0.5  # so a CAM of value 0 would fail on most images


def test_evaluate_classifier_binary(synth_config, synth_test, tmp_path):
    cnn = AttributeCNN(synth_test.schema, AttributeCNNConfig(image_size=32, widths=(4, 4, 4)))
    cnn.build_on_zeros().save_to(str(tmp_path / "attribute_cnn"))
    grid = tmp_path / "cams.png"
    cmd = [sys.executable, "-m", "amgan_tf.evaluate_classifier", f"--workdir={tmp_path}",
           f"--data_dir={synth_config.data_dir}", "--image_size=32", "--synth_num_train=400",
           "--synth_num_test=40", f"--synth_seed={synth_config.seed}", f"--cam_grid={grid}",
           "--cam_grid_rows=3"]
    result = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "classifier_eval_test.json") as f:
        report = json.load(f)
    assert set(report["accuracy"]) == {"sleeve", "colour", "pattern", "category", "body_shape"}
    assert 0.0 <= report["cam"]["sleeve"]["argmax_in_sleeve_or_arm"] <= 1.0
    assert Image.open(grid).size[1] > Image.open(grid).size[0] / 4  # 3 rows of image + 3 CAMs
    missing = subprocess.run(cmd[:3] + [f"--workdir={tmp_path / 'none'}"] + cmd[4:],
                             env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                             text=True, timeout=300, check=False)
    assert missing.returncode == 1 and "train_classifier" in missing.stderr
    assert "Traceback" not in missing.stderr
