"""The browser demo in headless Chromium (Debian's `chromium`, driven by Playwright's Python
package without its browser download): the page loads a TF.js export of a tiny trained model,
runs a manipulation on a bundled example, and its result equals the Node (wasm) run of the same
export on the same pixels, differs from the input where the attention is high, and is
screenshotted into the test's output folder. Also: the demo server's errors and mounts."""

import json
import os
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from amgan_tf import export_portable, trained
from amgan_tf.serving import demo
from test_export_portable import REQUIRE_WEB, WEB, need_web, run_node

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def tiny_tfjs(tiny_workdir, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("demo") / "model")
    export_portable.export_tfjs(trained.load_generator(tiny_workdir), directory, "float16")
    return directory


@pytest.fixture()
def server(tiny_tfjs):
    need_web()
    running = demo.serve(tiny_tfjs, port=0)
    yield f"http://127.0.0.1:{running.server_address[1]}"
    running.shutdown()


def test_server_mounts_the_model_and_refuses_escapes(server, tiny_tfjs):
    with urllib.request.urlopen(f"{server}/model/manipulations.json") as r:
        assert json.load(r)["format"] == "tfjs"
    with urllib.request.urlopen(f"{server}/node_modules/@tensorflow/tfjs-backend-wasm/dist/"
                                f"tfjs-backend-wasm.wasm") as r:
        assert r.headers["Content-Type"] == "application/wasm"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server}/model/..%2F..%2Fetc%2Fpasswd")
    assert e.value.code == 404


def test_server_errors_name_the_fix(tmp_path, tiny_tfjs):
    with pytest.raises(ValueError, match="not a TF.js export.*--format=tfjs"):
        demo.check(str(tmp_path))
    with pytest.raises(ValueError, match="npm ci"):
        demo.check(tiny_tfjs, web=str(tmp_path))


def test_bundled_models_are_complete_exports():
    need_web()
    assert "quickstart" in demo.bundled_models()
    assert demo.resolve_model("quickstart") == demo.BUNDLED_MODEL
    for name in demo.bundled_models():
        folder = demo.resolve_model(name)
        demo.check(folder)
        with open(os.path.join(folder, "manipulations.json")) as f:
            info = json.load(f)
        assert info["format"] == "tfjs" and info["quantize"] == "float16", name
        assert info["training_image_size"] == 64, name
        assert os.path.isfile(os.path.join(folder, "README.md")), name  # how it was made
        if os.path.exists(os.path.join(folder, "examples.json")):
            with open(os.path.join(folder, "examples.json")) as f:
                examples = json.load(f)
            assert examples and all(os.path.isfile(os.path.join(folder, "examples", e))
                                    for e in examples), name


@pytest.mark.skipif(CHROMIUM is None and not REQUIRE_WEB,
                    reason="chromium is not installed (apt-get install chromium)")
def test_page_manipulates_a_bundled_image_like_node(server, tiny_tfjs, tmp_path):
    from playwright.sync_api import sync_playwright
    assert CHROMIUM, "chromium is not installed (apt-get install chromium)"
    with open(os.path.join(tiny_tfjs, "manipulations.json")) as f:
        m = json.load(f)["m"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 620})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        page.evaluate("window.amganDemo.ready")
        page.evaluate("window.amganDemo.useExample(0)")
        page.evaluate("window.amganDemo.choose('colour', 'orange', {attribute: 'sleeve', "
                      "value: 'sleeveless', mode: 'inside', threshold: 0.3})")
        last = page.evaluate("window.amganDemo.manipulate().then(l => ({h: l.height, w: l.width, "
                             "ms: l.ms, image: Array.from(l.image), "
                             "attention: Array.from(l.attention)}))")
        status = page.inner_text("#status")
        page.screenshot(path=str(tmp_path / "demo.png"))
        browser.close()
    assert not errors, errors
    example = np.asarray(Image.open(os.path.join(WEB, "examples", "synthfashion_12005.png"))
                         .convert("RGB"))
    h, w = example.shape[:2]
    assert (last["h"], last["w"]) == (h, w) and "192x192" in status and "wasm" in status
    image = np.array(last["image"]).reshape(1, h, w, 3)
    attention = np.array(last["attention"], np.float32).reshape(1, h, w, 1)
    node = run_node(tiny_tfjs, example[None],
                    [m["colour"]["orange"], m["sleeve"]["sleeveless"]], tmp_path, 0.3, 1)
    assert np.abs(image - node[0]).max() <= 1 and np.abs(attention - node[1]).max() <= 1e-4
    inside = attention[0, ..., 0] > 0.5
    assert inside.sum() > 50
    changed = np.abs(image[0].astype(int) - example.astype(int)).max(axis=-1) > 0
    assert changed[inside].mean() > 0.9
    assert os.path.getsize(tmp_path / "demo.png") > 20_000


@pytest.mark.skipif(CHROMIUM is None and not REQUIRE_WEB,
                    reason="chromium is not installed (apt-get install chromium)")
def test_page_takes_the_users_own_files(server, tmp_path):
    """A user's photo of any size through the file input; a damaged file gets a message."""
    from playwright.sync_api import sync_playwright
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 70, 3), np.uint8)).save(photo)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server + "/")
        page.evaluate("window.amganDemo.ready")
        page.set_input_files("#file", str(broken))
        page.wait_for_function("document.querySelector('#status').dataset.state === 'error'")
        assert "Could not decode broken.png" in page.inner_text("#status")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.querySelector('#status').textContent.includes('70x45')")
        page.click("#run")
        page.wait_for_function("document.querySelector('#status').dataset.state === 'done'")
        status = page.inner_text("#status")
        browser.close()
    assert "sleeve -> " in status and "70x45" in status
