"""Evaluation metrics on stand-in models whose right answers are known."""

import types

import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import evaluation
from amgan_tf.attributes import MISSING
from amgan_tf.data import synthfashion
from amgan_tf.imaging import to_float
from amgan_tf.data.synthfashion import SynthFashion

SCHEMA = synthfashion.schema()


class IdentityModel:
    """Edits nothing: x* = x, a = 0."""

    schema = SCHEMA
    attention_floor = 0.0

    def generate(self, x, m, r=None, c_of_x=None):
        return x, tf.zeros_like(x[..., :1]), x


class TruthModel(IdentityModel):
    """Returns the exact SynthFashion counterfactual (cheats through a lookup by pixels)."""

    def __init__(self, synth, lookup):
        self.synth, self.lookup = synth, lookup

    def generate(self, x, m, r=None, c_of_x=None):
        out = []
        for image, mv in zip(((x.numpy() + 1) * 127.5).round().astype(np.uint8), m.numpy()):
            attr, value = SCHEMA.decode(mv)
            out.append(self.synth.example(self.lookup[image.tobytes()], **{attr: value})[0])
        y = to_float(np.stack(out))
        return y, tf.ones_like(y[..., :1]), y


class PerfectJudge:
    """Predicts the true labels of SynthFashion renders it has seen."""

    schema = SCHEMA

    def __init__(self, table):
        self.table = table

    def predict_labels(self, x):
        keys = ((x.numpy() + 1) * 127.5).round().astype(np.uint8)
        return tf.constant(np.stack([self.table[k.tobytes()] for k in keys]))


def test_targets_spread_over_other_values():
    labels = np.array([[0, 3, 1, 0, 0]] * 6 + [[MISSING, 3, 1, 0, 0]])
    t = evaluation.manipulation_targets(labels, SCHEMA, 0)
    np.testing.assert_array_equal(t, [1, 2, 3, 1, 2, 3, MISSING])


def test_accuracy_zero_for_identity_and_one_for_truth():
    synth = SynthFashion(0, 32)
    idx = np.arange(6)
    images, labels = synth.arrays(0, 6)
    table, lookup = {}, {}
    for i in idx:
        lookup[images[i].tobytes()] = int(i)
        for r, attr in enumerate(SCHEMA.manipulated):
            for v in attr.values:
                im, lab, _ = synth.example(int(i), **{attr.name: v})
                table[im.tobytes()] = lab
    judge = PerfectJudge(table)
    acc = evaluation.manipulation_accuracy(IdentityModel(), judge, images, labels)
    assert acc == {"sleeve": 0.0, "colour": 0.0, "pattern": 0.0, "mean": 0.0}
    acc = evaluation.manipulation_accuracy(TruthModel(synth, lookup), judge, images, labels)
    assert acc == {"sleeve": 1.0, "colour": 1.0, "pattern": 1.0, "mean": 1.0}
    err = evaluation.counterfactual_error(TruthModel(synth, lookup), synth, idx)
    assert all(e["amgan"] == 0.0 and e["amgan_outside"] == 0.0 for e in err.values())
    base = evaluation.counterfactual_error(IdentityModel(), synth, idx)
    for e in base.values():
        assert e["amgan"] == e["input"] > 0 and e["amgan_outside"] == e["input_outside"]


def test_sample_sheet_layout_with_identity_model():
    images, labels = SynthFashion(0, 32).arrays(0, 2)
    sheet = np.asarray(evaluation.sample_sheet(IdentityModel(), images, labels, scale=1))
    cols = 1 + SCHEMA.num_values  # input + every value of every manipulated attribute
    assert sheet.shape[1] == 4 + cols * (32 + 4)
    # Identity edits: the first manipulated tile of row 0 is the input itself.
    np.testing.assert_array_equal(sheet[4:36, 4 + 36:4 + 36 + 32], images[0])


class TruthMaskModel(TruthModel):
    """The exact counterfactual as z and the truly changed region as the attention."""

    def generate(self, x, m, r=None, c_of_x=None):
        _, _, y = super().generate(x, m)
        a = tf.cast(tf.reduce_any(tf.abs(y - x) > 1e-6, axis=-1, keepdims=True), tf.float32)
        return a * y + (1 - a) * x, a, y


def _lookup(synth, idx):
    images, _ = synth.arrays(0, len(idx))
    return {images[i].tobytes(): int(i) for i in idx}


def test_region_edit_of_a_perfect_model_recolours_only_the_sleeves():
    """colour -> orange inside the mask of sleeve -> sleeveless, with masks = the truly changed
    regions: the sleeves turn orange (the orange counterfactual there), nothing else moves."""
    synth = SynthFashion(0, 32)
    idx = np.arange(6)
    images, labels = synth.arrays(0, 6)
    model = TruthMaskModel(synth, _lookup(synth, idx))
    edit, region = ("colour", "orange"), ("sleeve", "sleeveless")
    out, mask = evaluation.region_edit(model, images, edit, region)
    out, mask = out.numpy(), mask.numpy()[..., 0]
    checked = 0
    for i in idx:
        sleeves = np.any(synth.example(int(i), sleeve="sleeveless")[0] != images[i], axis=-1)
        orange = synth.example(int(i), colour="orange")[0]
        np.testing.assert_array_equal(mask[i] > 0, sleeves)  # Eq. 12 inside: the region's mask
        np.testing.assert_array_equal(out[i][~sleeves], images[i][~sleeves])
        np.testing.assert_array_equal(out[i][sleeves], orange[sleeves])
        checked += int(sleeves.any() and labels[i, 1] != SCHEMA.value_index("colour", "orange"))
    assert checked >= 2  # figures with sleeves whose colour really changed
    sheet = np.asarray(evaluation.sample_sheet(model, images[:2], labels[:2], scale=1,
                                               region_edits=[(edit, region)]))
    assert sheet.shape[1] == 4 + (2 + SCHEMA.num_values) * (32 + 4)  # one more column
    np.testing.assert_array_equal(sheet[4:36, -36:-4], out[0])  # the last tile of row 0
    with pytest.raises(ValueError, match="Unknown value|unknown value|not a value"):
        evaluation.region_edit(model, images, ("colour", "plaid"), region)
    model.config = types.SimpleNamespace(attention_source="cam")  # the CAM-attention ablation
    with pytest.raises(ValueError, match="need a learned attention mask"):
        evaluation.region_edit_vectors(model, edit, region)


def test_ground_truth_scores_of_a_perfect_edit_and_of_doing_nothing():
    synth = SynthFashion(0, 32)
    idx = np.arange(6)
    perfect = evaluation.counterfactual_error(TruthMaskModel(synth, _lookup(synth, idx)), synth,
                                              idx)
    nothing = evaluation.counterfactual_error(IdentityModel(), synth, idx)
    for attr in ("sleeve", "colour", "pattern"):
        p, n = perfect[attr], nothing[attr]
        assert p["amgan"] == 0.0 and p["amgan_outside_changed"] == 0.0
        assert p["psnr"]["amgan"] == 100.0 and p["ssim"]["amgan"] == pytest.approx(1.0)
        assert p["attention"] == {"threshold": 0.5, "iou": 1.0, "precision": 1.0,
                                  "recall": 1.0, "best_iou": 1.0, "best_threshold": 0.05}
        assert 0 < p["changed_share"] < 0.6
        # doing nothing: the baseline row itself, an empty mask, and nothing changed outside
        assert n["amgan"] == n["input"] > 0 and n["psnr"]["amgan"] == n["psnr"]["input"] < 100
        assert n["ssim"]["amgan"] == n["ssim"]["input"] < 1.0
        assert n["amgan_outside_changed"] == n["input_outside_changed"] == 0.0
        assert n["attention"]["iou"] == 0.0 and n["attention"]["recall"] == 0.0
        assert n["attention"]["precision"] == 1.0  # nothing predicted: no false positive


class MeanColourJudge:
    """Features = each image's mean colour: enough to tell dark images from bright ones."""

    def features(self, x, training=False):
        return {"avgpool": tf.reduce_mean(x, axis=[1, 2])}


def test_retrieval_gallery_is_a_random_half_even_of_a_class_ordered_split():
    # a folder layout stores its test split class by class: 20 dark images, then 20 bright ones
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.integers(30, 50, (20, 8, 8, 3)),
                             rng.integers(190, 210, (20, 8, 8, 3))]).astype(np.uint8)
    labels = np.array([[0, 0, 0, 0, 0]] * 40)
    out = evaluation.retrieval_and_realism(IdentityModel(), MeanColourJudge(), images, labels,
                                           ks=(1,))
    assert out["gallery_images"] == out["query_images"] == 20
    # the first half as gallery would compare 20 dark images with 20 bright ones: FID 4.7
    assert out["fid"]["input"] < 0.3
    again = evaluation.retrieval_and_realism(IdentityModel(), MeanColourJudge(), images, labels,
                                             ks=(1,))
    assert again["fid"] == out["fid"]  # seeded: the same split every time
