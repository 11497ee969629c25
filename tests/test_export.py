"""The one loader, the SavedModel export and its signatures, on a tiny genuinely trained model.

The exported graph runs the same `apply_edit` as the manipulate CLI: its outputs must equal the
CLI library's within one uint8 level (rounding after float differences between the traced graph
and eager execution) and 1e-5 on the attention; the measured difference is 0 here.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from amgan_tf import export_lib, manipulate_lib, trained
from amgan_tf.imaging import resize_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}


@pytest.fixture(scope="module")
def workdir(tiny_workdir):
    return tiny_workdir


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("models"))
    result = export_lib.export_saved_model(trained.load_generator(workdir), base)
    return base, result, tf.saved_model.load(result.path)


@pytest.fixture(scope="module")
def tool(workdir):
    return manipulate_lib.Manipulator(trained.load_generator(workdir))


def images(h, w, n=1, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), np.uint8)


# ---- the loader ------------------------------------------------------------------------------
def test_generator_alone_restores_the_trained_weights(workdir):
    g = trained.load_generator(workdir)
    model, _, config = trained.load_trained(workdir)
    assert g.step == config.steps == 3 and g.image_size == 32
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    for mine, theirs in zip(g.G.variables, model.G.variables, strict=True):
        assert mine.path == theirs.path
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
        key = f"G_weights/{mine.path.replace('/', '.S')}/.ATTRIBUTES/VARIABLE_VALUE"
        np.testing.assert_array_equal(mine.numpy(), reader.get_tensor(key), err_msg=key)
    moved = model.G.trainable_variables[0].numpy()
    fresh = trained.Generator(model.config.generator)
    fresh(tf.zeros((1, 32, 32, 3)), tf.zeros((1, g.schema.m_dim)))
    assert not np.array_equal(fresh.trainable_variables[0].numpy(), moved)  # restore mattered


def test_generator_restores_from_checkpoints_without_named_weights(workdir, tmp_path):
    """Checkpoints written before `G_weights` existed reach G only through its optimizer."""
    model, _, _ = trained.load_trained(workdir)
    old = tmp_path / "old"
    os.makedirs(old / "checkpoints")
    for name in (trained.CONFIG_FILE, trained.SCHEMA_FILE):
        with open(os.path.join(workdir, name)) as f, open(old / name, "w") as g:
            g.write(f.read())
    tf.train.Checkpoint(G=model.G, D_I=model.D_I, D_C=model.D_C, g_opt=model.g_opt,
                        d_opt=model.d_opt, step=tf.Variable(3, dtype=tf.int64)).save(
        str(old / "checkpoints" / "ckpt"))
    g = trained.load_generator(str(old))
    for mine, theirs in zip(g.G.variables, model.G.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an AMGAN training workdir"):
        trained.load_generator(str(tmp_path))
    (tmp_path / trained.CONFIG_FILE).write_text("{half")
    with pytest.raises(ValueError, match="not a readable AMGAN training config"):
        trained.load_generator(str(tmp_path))


def test_bfloat16_trained_generator_loads_as_float32(workdir, tmp_path):
    """The quick start trains G in mixed bfloat16; its variables are float32 either way, and the
    loader builds G in the policy asked for (exports want float32)."""
    path = str(tmp_path / "bf16")
    shutil.copytree(workdir, path)
    config = trained.read_config(path)
    config.amgan.generator.dtype_policy = "mixed_bfloat16"
    trained.save_config(path, config)
    g = trained.load_generator(path)
    assert g.G.trunk.compute_dtype == "float32"
    reference = trained.load_generator(workdir)
    for mine, theirs in zip(g.G.variables, reference.G.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert trained.load_generator(path, "mixed_bfloat16").G.trunk.compute_dtype == "bfloat16"


def test_edit_at_the_training_size_is_the_generators_own_output(workdir):
    """apply_edit on square training-size images is exactly x* = a z + (1 - a) x."""
    g = trained.load_generator(workdir)
    x_u8 = images(32, 32, 3, seed=5)
    np.testing.assert_array_equal(resize_images(x_u8, 32).numpy(), x_u8)  # no-op resize
    m = tf.constant(g.schema.encode_batch(np.array([1, 1, 1]), np.array([0, 4, 9])))
    from amgan_tf.edit import apply_edit
    from amgan_tf.imaging import to_float, to_uint8
    out, mask = apply_edit(g.attention_and_colour, x_u8, m, 32)
    x_fake, a, _ = g.G(to_float(x_u8), m)
    np.testing.assert_allclose(mask, a, atol=1e-6)
    assert np.abs(out.numpy().astype(int) - to_uint8(x_fake).numpy()).max() <= 1


# ---- the export ------------------------------------------------------------------------------
def test_layout_sizes_and_versions(exported, workdir):
    base, result, _ = exported
    assert result.path == os.path.join(base, "amgan", "1") and result.version == 1
    assert os.path.exists(os.path.join(result.path, "saved_model.pb"))
    schema = json.load(open(os.path.join(result.path, "assets.extra", export_lib.SCHEMA_FILE)))
    assert [a["name"] for a in schema["attributes"]] == ["sleeve", "colour", "pattern",
                                                         "category", "body_shape"]
    g = trained.load_generator(workdir)
    assert result.generator_parameters == sum(int(np.prod(v.shape)) for v in g.G.variables)
    weights = sum(os.path.getsize(os.path.join(result.path, "variables", f))
                  for f in os.listdir(os.path.join(result.path, "variables")))
    # G alone: 4 bytes per parameter plus the index; no critic or optimizer state
    assert 4 * result.generator_parameters <= weights < 4 * result.generator_parameters + 20_000
    assert not [n for n in os.listdir(os.path.join(base, "amgan")) if n.startswith(".")]
    with pytest.raises(FileExistsError, match="exists already"):
        export_lib.export_saved_model(g, base, version=1)
    assert export_lib.next_version(os.path.join(base, "amgan")) == 2


def test_signatures_and_their_io(exported):
    _, _, sm = exported
    assert set(sm.signatures) == {"serving_default", "manipulate_region", "manipulate_bytes",
                                  "schema"}
    sig = sm.signatures["serving_default"]
    assert set(sig.structured_input_signature[1]) == {"images", "attribute", "value"}
    assert set(sig.structured_outputs) == {"images", "attention"}
    s = sm.signatures["schema"]()
    assert [a.decode() for a in s["attributes"].numpy()] == ["sleeve", "colour", "pattern",
                                                             "category", "body_shape"]
    assert s["manipulable"].numpy().tolist() == [True, True, True, False, False]
    assert [v.decode() for v in s["values"].numpy()[0][:4]] == ["sleeveless", "short",
                                                                "three_quarter", "long"]
    assert int(s["image_size"]) == 32 and int(s["max_side"]) == export_lib.MAX_SIDE


@pytest.mark.parametrize("h,w", [(32, 32), (45, 70), (71, 23), (9, 9)])
def test_saved_model_equals_the_cli(exported, tool, h, w):
    _, _, sm = exported
    x = images(h, w, 2, seed=h)
    out = sm.signatures["serving_default"](images=tf.constant(x), attribute=tf.constant("colour"),
                                           value=tf.constant(["red", "blue"]))
    for i, value in enumerate(["red", "blue"]):
        want, mask = tool.manipulate_image(x[i], manipulate_lib.Edit("colour", value))
        got = out["images"].numpy()[i]
        assert got.shape == (h, w, 3)
        assert np.abs(got.astype(int) - want).max() <= 1
        np.testing.assert_allclose(out["attention"].numpy()[i, ..., 0], mask, atol=1e-5)


@pytest.fixture(scope="module")
def stretched(workdir, tmp_path_factory):
    """The tiny model as if trained on stretched images (`--resize=stretch`, clothing_small's)."""
    path = str(tmp_path_factory.mktemp("stretched") / "run")
    shutil.copytree(workdir, path)
    config = trained.read_config(path)
    config.data.resize = "stretch"
    trained.save_config(path, config)
    return trained.load_generator(path)


def test_exports_edit_as_the_training_data_was_resized(stretched, tool, tmp_path):
    """A stretch-trained model's SavedModel and portable graphs stretch as the CLI does, which
    differs from padding on a non-square image (a flat one: the portable graphs' plain bilinear
    downscale then equals the CLI's antialiased one)."""
    from amgan_tf.export_portable import PortableModule
    assert stretched.resize == "stretch"
    cli = manipulate_lib.Manipulator(stretched)
    result = export_lib.export_saved_model(stretched, str(tmp_path))
    sm = tf.saved_model.load(result.path)
    x = images(45, 70, 1, seed=5)
    out = sm.signatures["serving_default"](images=tf.constant(x), attribute=tf.constant("colour"),
                                           value=tf.constant("red"))
    want, mask = cli.manipulate_image(x[0], manipulate_lib.Edit("colour", "red"))
    padded, pad_mask = tool.manipulate_image(x[0], manipulate_lib.Edit("colour", "red"))
    assert np.abs(out["images"].numpy()[0].astype(int) - want).max() <= 1
    np.testing.assert_allclose(out["attention"].numpy()[0, ..., 0], mask, atol=1e-5)
    assert np.abs(mask - pad_mask).max() > 0.01  # the mode mattered
    with open(os.path.join(result.path, "assets.extra", export_lib.METADATA_FILE)) as f:
        assert json.load(f)["resize"] == "stretch"
    flat = np.full((45, 70, 3), 180, np.uint8)
    want, mask = cli.manipulate_image(flat, manipulate_lib.Edit("sleeve", "long"))
    got = PortableModule.of(stretched).edit(
        tf.constant(flat[None]), tf.constant([stretched.schema.encode("sleeve", "long")],
                                             tf.float32), tf.constant(0.5), tf.constant(1.0))
    np.testing.assert_allclose(got["attention"].numpy()[0, ..., 0], mask, atol=1e-5)
    assert np.abs(got["image"].numpy()[0].astype(int) - want).max() <= 1


@pytest.fixture(scope="module")
def floored(workdir, tmp_path_factory):
    """The tiny model with the run's edit-time attention floor set (`--attention_floor=0.3`)."""
    path = str(tmp_path_factory.mktemp("floored") / "run")
    shutil.copytree(workdir, path)
    config = trained.read_config(path)
    config.amgan.attention_floor = 0.3
    trained.save_config(path, config)
    return path


def test_exports_apply_the_runs_attention_floor(floored, tool, tmp_path):
    """The SavedModel, the portable graph and their metadata carry the run's floor, and edit as
    the CLI does with it; `load_generator(..., attention_floor=0)` restores the raw mask."""
    from amgan_tf.export_portable import MANIFEST_FILE, PortableModule, write_manifest
    g = trained.load_generator(floored)
    assert g.attention_floor == 0.3
    assert trained.load_generator(floored, attention_floor=0.0).attention_floor == 0.0
    assert trained.load_trained(floored, attention_floor=0.1)[2].amgan.attention_floor == 0.1
    cli = manipulate_lib.Manipulator(g)
    x = images(32, 32, 1, seed=11)
    edit = manipulate_lib.Edit("colour", "red")
    want, mask = cli.manipulate_image(x[0], edit)
    raw, raw_mask = tool.manipulate_image(x[0], edit)
    np.testing.assert_allclose(mask, np.maximum(raw_mask - 0.3, 0) / 0.7, atol=1e-5)
    assert (mask == 0).mean() > 0.05 and np.abs(want.astype(int) - raw).max() > 1  # it mattered
    result = export_lib.export_saved_model(g, str(tmp_path / "sm"))
    out = tf.saved_model.load(result.path).signatures["serving_default"](
        images=tf.constant(x), attribute=tf.constant("colour"), value=tf.constant("red"))
    assert np.abs(out["images"].numpy()[0].astype(int) - want).max() <= 1
    np.testing.assert_allclose(out["attention"].numpy()[0, ..., 0], mask, atol=1e-5)
    with open(os.path.join(result.path, "assets.extra", export_lib.METADATA_FILE)) as f:
        assert json.load(f)["attention_floor"] == 0.3
    got = PortableModule.of(g).edit(tf.constant(x), tf.constant([g.schema.encode("colour", "red")],
                                                                tf.float32),
                                    tf.constant(0.5), tf.constant(1.0))
    np.testing.assert_allclose(got["attention"].numpy()[0, ..., 0], mask, atol=1e-5)
    assert np.abs(got["image"].numpy()[0].astype(int) - want).max() <= 1
    write_manifest(str(tmp_path), g, 32, "tflite")
    with open(tmp_path / MANIFEST_FILE) as f:
        assert json.load(f)["attention_floor"] == 0.3


@pytest.mark.parametrize("mode", ["inside", "outside"])
def test_region_signature_equals_the_cli(exported, tool, mode):
    _, _, sm = exported
    x = images(40, 56, 1, seed=7)
    out = sm.signatures["manipulate_region"](
        images=tf.constant(x), attribute=tf.constant("colour"), value=tf.constant("orange"),
        region_attribute=tf.constant("sleeve"), region_value=tf.constant("sleeveless"),
        region_threshold=tf.constant(0.3), region_mode=tf.constant(mode))
    want, mask = tool.manipulate_image(x[0], manipulate_lib.Edit("colour", "orange"),
                                       manipulate_lib.Region("sleeve", "sleeveless", 0.3, mode))
    assert np.abs(out["images"].numpy()[0].astype(int) - want).max() <= 1
    np.testing.assert_allclose(out["attention"].numpy()[0, ..., 0], mask, atol=1e-5)


def test_bytes_signature_equals_the_cli(exported, tool):
    _, _, sm = exported
    a, b = images(30, 50, 1, seed=1)[0], images(64, 20, 1, seed=2)[0]
    encoded = [tf.io.encode_png(a).numpy(), tf.io.encode_png(b).numpy()]
    out = sm.signatures["manipulate_bytes"](images_bytes=tf.constant(encoded),
                                            attribute=tf.constant(["sleeve", "pattern"]),
                                            value=tf.constant(["long", "dots"]))
    for data, image, (attr, value) in zip(out["images_bytes"].numpy(), (a, b),
                                          (("sleeve", "long"), ("pattern", "dots"))):
        want, mask = tool.manipulate_image(image, manipulate_lib.Edit(attr, value))
        assert np.abs(tf.io.decode_png(data).numpy().astype(int) - want).max() <= 1
    att = tf.io.decode_png(out["attention_bytes"].numpy()[0]).numpy()[..., 0]
    _, mask = tool.manipulate_image(a, manipulate_lib.Edit("sleeve", "long"))
    assert np.abs(att.astype(int) - np.round(mask * 255)).max() <= 1


def _error(call) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        call()
    return info.value.message


@pytest.mark.parametrize("attribute,value,message", [
    ("sleeves", "long", "Unknown attribute] [sleeves] [valid attributes: sleeve, colour, pattern"),
    ("category", "dress", "cannot be manipulated"),
    ("sleeve", "cap", "Unknown value] [cap] [for attribute] [sleeve] [valid values: sleeve: "
                      "sleeveless, short, three_quarter, long"),
])
def test_bad_names_are_invalid_argument(exported, attribute, value, message):
    _, _, sm = exported
    msg = _error(lambda: sm.signatures["serving_default"](
        images=tf.constant(images(8, 8)), attribute=tf.constant(attribute),
        value=tf.constant(value)))
    assert message in msg


def test_bad_images_are_invalid_argument(exported):
    _, _, sm = exported
    f = sm.signatures["serving_default"]

    def call(x, attribute="colour"):
        return lambda: f(images=tf.constant(x), attribute=tf.constant(attribute),
                         value=tf.constant("red"))

    assert "empty batch" in _error(call(np.zeros((0, 8, 8, 3), np.uint8)))
    assert "zero height or width" in _error(call(np.zeros((1, 0, 8, 3), np.uint8)))
    assert "too large: at most 4096" in _error(call(np.zeros((1, 4097, 2, 3), np.uint8)))
    # thin images become squares at full resolution: 3 x 4096^2 px would be refused unpadded
    assert "batch too large" in _error(call(np.zeros((3, 4096, 1, 3), np.uint8)))
    assert "one entry per image" in _error(call(images(8, 8, 3), ["colour", "colour"]))
    region = sm.signatures["manipulate_region"]
    assert "region_mode must be one of" in _error(lambda: region(
        images=tf.constant(images(8, 8)), attribute=tf.constant("colour"),
        value=tf.constant("red"), region_attribute=tf.constant("sleeve"),
        region_value=tf.constant("long"), region_threshold=tf.constant(0.5),
        region_mode=tf.constant("around")))
    assert "region_threshold must be in [0, 1)" in _error(lambda: region(
        images=tf.constant(images(8, 8)), attribute=tf.constant("colour"),
        value=tf.constant("red"), region_attribute=tf.constant("sleeve"),
        region_value=tf.constant("long"), region_threshold=tf.constant(1.5),
        region_mode=tf.constant("inside")))
    assert "Unknown region attribute" in _error(lambda: region(
        images=tf.constant(images(8, 8)), attribute=tf.constant("colour"),
        value=tf.constant("red"), region_attribute=tf.constant("collar"),
        region_value=tf.constant("long"), region_threshold=tf.constant(0.5),
        region_mode=tf.constant("inside")))


def png_header(width, height) -> bytes:
    """A PNG signature and IHDR claiming this size, and no pixels."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + ihdr + b"\0\0\0\0"


@pytest.mark.parametrize("data,message", [
    (b"GIF89a not supported", "neither a PNG nor a JPEG"),
    (b"", "neither a PNG nor a JPEG"),
    (png_header(100_000, 100_000), "too large: at most 4096"),  # a PNG bomb, refused unread
    (png_header(0, 10), "zero height or width"),
    (b"\x89PNG\r\n\x1a\n\0\0", "truncated PNG"),
    (b"\xff\xd8\xff\xe0 truncated jpeg", "JPEG"),
])
def test_bad_bytes_are_invalid_argument(exported, data, message):
    _, _, sm = exported
    msg = _error(lambda: sm.signatures["manipulate_bytes"](
        images_bytes=tf.constant([data]), attribute=tf.constant("colour"),
        value=tf.constant("red")))
    assert message in msg


def test_export_binary(workdir, tmp_path):
    cmd = [sys.executable, "-m", "export", f"--workdir={workdir}", "--format=saved_model",
           f"--output={tmp_path}", "--model_name=shirts"]
    first = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout[first.stdout.index("{"):])
    assert report["version"] == 1 and report["path"].endswith(os.path.join("shirts", "1"))
    assert report["bytes"] > 4 * report["generator_parameters"] > 0
    second = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert json.loads(second.stdout[second.stdout.index("{"):])["version"] == 2
    again = subprocess.run(cmd + ["--version=1"], env=ENV, cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert "Traceback" not in again.stderr
    missing = subprocess.run(cmd[:3] + [f"--workdir={tmp_path / 'nothing'}"] + cmd[4:], env=ENV,
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "not an AMGAN training workdir" in missing.stderr
