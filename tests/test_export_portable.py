"""TFLite (run with LiteRT) and TF.js (run in Node with the wasm backend) exports against the
SavedModel, on a tiny genuinely trained model.

Tolerances, with the differences measured here: the uint8 image within 1 level for float32
weights (measured 1: rounding after float differences) and 2 for float16 weights (measured 1);
the attention within 1e-5 for float32 (measured 1.3e-6) and 5e-3 for float16 (measured 9e-4).
int8 (dynamic range) is held to means: image MAE within 1 level and attention within 0.01 on
average (measured on the tiny model: 0.55 levels and 0.003; on the quick-start model 0.22, 0.0014).
Region edits threshold the region's mask, so with float16 weights a pixel whose mask sits within
the weights' error of the threshold flips (measured: 1 of 1,024 pixels); those may differ, on at
most 1% of pixels. A NaN-returning export (DESIGN.md's TFLite trap) fails all of them.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import export_lib, export_portable, trained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}
WEB = os.path.join(ROOT, "web")
# tests/run.sh (the README's and CI's test command) installs Node's packages and Chromium and sets
# this, so there a missing piece fails instead of skipping.
REQUIRE_WEB = os.environ.get("AMGAN_REQUIRE_WEB") == "1"


def web_ready() -> str:
    """'' when Node and web/node_modules are there, else what is missing."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.isdir(os.path.join(WEB, "node_modules", "@tensorflow", "tfjs-backend-wasm")):
        return "web/node_modules is missing (cd web && npm ci)"
    return ""


def need_web():
    missing = web_ready()
    if missing:
        if REQUIRE_WEB:
            pytest.fail(missing)
        pytest.skip(missing)


@pytest.fixture(scope="module")
def model(tiny_workdir):
    return trained.load_generator(tiny_workdir)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    result = export_lib.export_saved_model(model, str(tmp_path_factory.mktemp("sm")))
    return tf.saved_model.load(result.path)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(4)
    return rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)


def reference(saved, image, attribute, value, region=None):
    if region is None:
        out = saved.signatures["serving_default"](
            images=tf.constant(image), attribute=tf.constant(attribute), value=tf.constant(value))
    else:
        (r_attr, r_value), threshold, mode = region
        out = saved.signatures["manipulate_region"](
            images=tf.constant(image), attribute=tf.constant(attribute), value=tf.constant(value),
            region_attribute=tf.constant(r_attr), region_value=tf.constant(r_value),
            region_threshold=tf.constant(threshold), region_mode=tf.constant(mode))
    return out["images"].numpy(), out["attention"].numpy()


def assert_close(got, want, levels, attention_tol, flips=0.0):
    """Within tolerance everywhere but on a `flips` share of pixels (threshold flips)."""
    image, attention = got
    ref_image, ref_attention = want
    assert image.shape == ref_image.shape and attention.shape == ref_attention.shape
    assert np.isfinite(attention).all()
    off_image = np.abs(image.astype(int) - ref_image.astype(int)).max(axis=-1) > levels
    off_attention = np.abs(attention - ref_attention)[..., 0] > attention_tol
    assert off_image.mean() <= flips and off_attention.mean() <= flips
    assert (off_image == off_attention).all() if flips else True  # only where the mask flipped


@pytest.fixture(scope="module")
def tflite(model, tmp_path_factory):
    out = {}
    for precision in export_portable.TFLITE_PRECISIONS:
        directory = str(tmp_path_factory.mktemp(f"tflite_{precision}"))
        out[precision] = export_portable.export_tflite(model, directory, precision)["path"]
    return out


@pytest.mark.parametrize("precision, levels, attention_tol", [("fp32", 1, 1e-5),
                                                              ("fp16", 2, 5e-3)])
def test_tflite_equals_the_saved_model(model, saved, tflite, image, precision, levels,
                                       attention_tol):
    schema = model.schema
    for attribute, value in (("sleeve", "sleeveless"), ("colour", "orange")):
        got = export_portable.run_tflite(tflite[precision], image, schema.encode(attribute, value))
        assert_close(got, reference(saved, image, attribute, value), levels, attention_tol)
    for inside, mode in ((True, "inside"), (False, "outside")):
        ms = np.stack([schema.encode("colour", "orange"), schema.encode("sleeve", "sleeveless")])
        got = export_portable.run_tflite(tflite[precision], image, ms, 0.3, inside)
        want = reference(saved, image, "colour", "orange", (("sleeve", "sleeveless"), 0.3, mode))
        assert_close(got, want, levels, attention_tol, 0.01 if precision == "fp16" else 0.0)


def test_tflite_int8_is_close_on_average(model, saved, tflite, image):
    schema = model.schema
    for attribute, value in (("sleeve", "sleeveless"), ("pattern", "stripes")):
        got, attention = export_portable.run_tflite(tflite["int8"], image,
                                                    schema.encode(attribute, value))
        want, want_attention = reference(saved, image, attribute, value)
        assert np.isfinite(attention).all()
        assert np.abs(got.astype(int) - want.astype(int)).mean() <= 1.0
        assert np.abs(attention - want_attention).mean() <= 0.01


def test_tflite_manifest_and_sizes(model, tflite):
    directory = os.path.dirname(tflite["fp32"])
    with open(os.path.join(directory, export_portable.MANIFEST_FILE)) as f:
        info = json.load(f)
    assert info["image_size"] == model.image_size and info["m_dim"] == model.schema.m_dim
    assert [a["name"] for a in info["attributes"]] == list(model.schema.names)
    for attr in model.schema.manipulated:
        for value in attr.values:
            np.testing.assert_array_equal(info["m"][attr.name][value],
                                          model.schema.encode(attr.name, value))
    assert info["signatures"] == ["manipulate", "manipulate_region"]
    fp32, fp16 = (os.path.getsize(tflite[p]) for p in ("fp32", "fp16"))
    params = sum(int(np.prod(v.shape)) for v in model.G.variables)
    assert 4 * params < fp32 < 4 * params + 300_000  # float32 weights plus the graph
    assert fp16 < fp32 - 1.5 * params
    assert os.path.getsize(tflite["int8"]) < fp32 - 2.5 * params


def test_tflite_other_input_size_resizes_inside(model, tmp_path):
    """--image_size: a 48 px input on a 32 px model is padded/resized in the graph."""
    path = export_portable.export_tflite(model, str(tmp_path / "t48"), "fp32", 48)["path"]
    img = np.full((1, 48, 48, 3), 200, np.uint8)
    out, attention = export_portable.run_tflite(path, img, model.schema.encode("sleeve", "long"))
    assert out.shape == (1, 48, 48, 3) and attention.shape == (1, 48, 48, 1)
    assert np.isfinite(attention).all() and (out != img).any()


def test_every_format_refuses_the_cam_ablation(model, tmp_path):
    import dataclasses
    cam = dataclasses.replace(model, config=dataclasses.replace(
        model.config, amgan=dataclasses.replace(model.config.amgan, attention_source="cam")))
    for export in (lambda: export_lib.export_saved_model(cam, str(tmp_path / "sm")),
                   lambda: export_portable.export_tflite(cam, str(tmp_path / "tfl")),
                   lambda: export_portable.export_tfjs(cam, str(tmp_path / "tfjs"))):
        with pytest.raises(ValueError, match="CAM-attention ablation"):
            export()
    assert not os.listdir(tmp_path)  # refused before anything is written


def test_export_cli_portable_formats_and_errors(tiny_workdir, tmp_path):
    def export(*args):
        return subprocess.run([sys.executable, "-m", "export", f"--workdir={tiny_workdir}",
                               *args], env=ENV, cwd=ROOT, capture_output=True, text=True,
                              timeout=300)

    result = export("--format=tflite", "--precision=fp16", f"--output={tmp_path / 'a'}")
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout[result.stdout.index("{"):])
    assert info["precision"] == "fp16" and os.path.getsize(info["path"]) == info["bytes"]
    again = export("--format=tflite", f"--output={tmp_path / 'a'}")
    assert again.returncode == 1 and "not empty" in again.stderr
    bad = export("--format=tflite", "--precision=bfloat16", f"--output={tmp_path / 'b'}")
    assert bad.returncode == 1
    assert "--precision=bfloat16 is not available for --format=tflite" in bad.stderr
    assert "fp32, fp16, int8" in bad.stderr and "Traceback" not in bad.stderr


# ---- TF.js ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tfjs_model(model, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tfjs") / "model")
    export_portable.export_tfjs(model, directory, "float16")
    return directory


def run_node(model_dir, image, ms, tmp_path, threshold=0.5, inside=1):
    need_web()
    request, result = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(json.dumps({
        "image": {"shape": list(image.shape), "data": image.ravel().tolist()},
        "ms": np.asarray(ms).tolist(), "region_threshold": threshold, "region_inside": inside}))
    proc = subprocess.run(["node", os.path.join(WEB, "node_check.mjs"), model_dir, str(request),
                           str(result)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(result.read_text())
    assert out["backend"] == "wasm"
    return (np.array(out["image"]["data"]).reshape(out["image"]["shape"]),
            np.array(out["attention"]["data"], np.float32).reshape(out["attention"]["shape"]))


def test_tfjs_in_node_equals_the_saved_model(model, saved, tfjs_model, image, tmp_path):
    schema = model.schema
    got = run_node(tfjs_model, image, [schema.encode("sleeve", "sleeveless")], tmp_path)
    assert_close(got, reference(saved, image, "sleeve", "sleeveless"), 2, 5e-3)
    ms = [schema.encode("colour", "orange"), schema.encode("sleeve", "sleeveless")]
    got = run_node(tfjs_model, image, ms, tmp_path, 0.3, 1)
    want = reference(saved, image, "colour", "orange", (("sleeve", "sleeveless"), 0.3, "inside"))
    assert_close(got, want, 2, 5e-3, 0.01)


def test_tfjs_any_image_size(model, saved, tfjs_model, tmp_path):
    """Like the CLI, any H x W: the result keeps the input's size, and away from the downscale's
    antialiasing (a flat image) it equals the SavedModel's."""
    flat = np.full((1, 45, 70, 3), 180, np.uint8)
    got = run_node(tfjs_model, flat, [model.schema.encode("sleeve", "long")], tmp_path)
    assert got[0].shape == (1, 45, 70, 3) and got[1].shape == (1, 45, 70, 1)
    assert_close(got, reference(saved, flat, "sleeve", "long"), 2, 5e-3)


def test_tfjs_manifest(model, tfjs_model):
    with open(os.path.join(tfjs_model, export_portable.MANIFEST_FILE)) as f:
        info = json.load(f)
    assert info["format"] == "tfjs" and info["quantize"] == "float16"
    np.testing.assert_array_equal(info["m"]["colour"]["red"], model.schema.encode("colour", "red"))
    with open(os.path.join(tfjs_model, "model.json")) as f:
        topology = json.load(f)
    kernels = [w for g in topology["weightsManifest"] for w in g["weights"]
               if len(w.get("shape", [])) == 4]
    # One weight per convolution kernel, but the colour and attention heads run as one fused
    # convolution, whose concatenated kernel the converter folds into one weight.
    assert len(kernels) == sum(len(v.shape) == 4 for v in model.G.variables) - 1
    assert sum(w["shape"][:2] == [7, 7] and w["shape"][3] == 4 for w in kernels) == 1
    assert all(w["quantization"]["dtype"] == "float16" for w in kernels)
