"""The blinded preference tool: known-answer summaries, the study's bookkeeping, and a rater
clicking through the page in headless Chromium (Debian's `chromium`)."""

import json
import os
import shutil
import urllib.error
import urllib.request

import pytest

from amgan_tf import preference, trained
from test_export_portable import REQUIRE_WEB

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_summarise_known_shares():
    rows = [{"attribute": "colour", "chosen": "amgan", "shown": ["amgan", "identity"]},
            {"attribute": "colour", "chosen": "identity", "shown": ["identity", "amgan"]},
            {"attribute": "sleeve", "chosen": "amgan", "shown": ["amgan", "identity"]},
            {"attribute": "colour", "chosen": "amgan", "shown": ["amgan", "identity"]}]
    s = preference.summarise(rows)
    assert s == {"trials": 4, "overall": {"amgan": 0.75, "identity": 0.25},
                 "per_attribute": {"colour": {"amgan": 2 / 3, "identity": 1 / 3},
                                   "sleeve": {"amgan": 1.0, "identity": 0.0}}}
    assert preference.summarise([]) == {"trials": 0, "overall": {}, "per_attribute": {}}


def test_method_list_errors():
    assert preference.parse_methods(["a=runs/a", "identity"]) == {"a": "runs/a", "identity": None}
    with pytest.raises(ValueError, match="name=WORKDIR"):
        preference.parse_methods(["a=runs/a", "runs/b"])
    with pytest.raises(ValueError, match="at least two methods"):
        preference.parse_methods(["a=runs/a"])


@pytest.fixture(scope="module")
def trials(tiny_workdir, synth_test):
    model = trained.load_generator(tiny_workdir)
    return preference.make_trials({"tiny": model, "identity": None}, synth_test.images,
                                  synth_test.labels, model.schema, 3, seed=0)


def test_trials_are_blinded_and_reproducible(trials, tiny_workdir, synth_test):
    assert [t.index for t in trials] == [0, 1, 2]
    for t in trials:
        assert sorted(t.order) == ["identity", "tiny"]
        assert t.outputs["identity"] == t.input_png  # change nothing is the input itself
        assert t.outputs["tiny"] != t.input_png
    model = trained.load_generator(tiny_workdir)
    again = preference.make_trials({"tiny": model, "identity": None}, synth_test.images,
                                   synth_test.labels, model.schema, 3, seed=0)
    assert [(t.attribute, t.value, t.order) for t in again] == \
        [(t.attribute, t.value, t.order) for t in trials]


def test_a_rater_clicks_through_the_page(trials, tmp_path):
    if not CHROMIUM:
        if REQUIRE_WEB:
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright
    output = str(tmp_path / "prefs.jsonl")
    study = preference.Study(trials, output)
    server = preference.serve(study, port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    wanted = ["tiny", "identity", "tiny"]  # the rater's (known) choice per trial
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            for t, method in zip(trials, wanted):
                page.wait_for_selector(f"text=Trial {t.index + 1} of 3")
                assert page.inner_text("#request") == f"{t.attribute} → {t.value}"
                assert page.locator(".options img").count() == 2
                page.click(f'button[data-option="{t.order.index(method)}"]')
            page.wait_for_selector("#done")
            table = page.inner_text("#summary")
            page.screenshot(path=str(tmp_path / "preference_done.png"))
            browser.close()
        assert not errors, errors
    finally:
        server.shutdown()
    rows = preference.read_records(output)
    assert [r["chosen"] for r in rows] == wanted and [r["trial"] for r in rows] == [0, 1, 2]
    summary = preference.summarise(rows)
    assert summary["overall"] == {"identity": 1 / 3, "tiny": 2 / 3}
    assert "66.7%" in table and "33.3%" in table
    # a new session on the same file continues where the rater stopped: nothing left
    resumed = preference.Study(trials, output)
    assert resumed.next_trial()["done"] is True
    with pytest.raises(ValueError, match="options 0..1"):
        resumed.choose(0, 5)


def test_bad_requests_are_refused(trials, tmp_path):
    server = preference.serve(preference.Study(trials, str(tmp_path / "p.jsonl")), port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        request = urllib.request.Request(f"{url}/choose", data=json.dumps(
            {"trial": 9, "option": 0}).encode(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request)
        assert e.value.code == 400 and "no trial 9" in e.value.read().decode()
        with urllib.request.urlopen(f"{url}/next") as r:
            state = json.load(r)
        assert state["remaining"] == 3 and len(state["options"]) == 2
        assert not os.path.exists(tmp_path / "p.jsonl")
    finally:
        server.shutdown()
