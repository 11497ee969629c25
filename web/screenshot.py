"""Screenshot of the demo page running one edit (the README's docs/demo_page*.png).

    python web/screenshot.py --model=quickstart --example=0 --edit=colour:orange \
        [--region=sleeve:sleeveless] --output=docs/demo_page.png

Starts the demo server on the model (a bundled name or an export folder), opens the page in
headless Chromium (Debian's `chromium`, driven by Playwright), picks the example, runs the edit and
saves the page.
"""

from __future__ import annotations

import os
import shutil
import sys

import argparse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="quickstart",
                        help="Bundled model name or TF.js export folder.")
    parser.add_argument("--example", type=int, default=0, help="Which of the page's examples.")
    parser.add_argument("--edit", default="colour:orange", help="attribute:value.")
    parser.add_argument("--region", default="",
                        help="attribute:value whose mask restricts the edit (optional).")
    parser.add_argument("--output", default="docs/demo_page.png", help="PNG to write.")
    FLAGS = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from amgan_tf.serving import demo
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("error: chromium is not installed (apt-get install chromium).")
    server = demo.serve(FLAGS.model, port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    attribute, value = FLAGS.edit.split(":")
    region = "null"
    if FLAGS.region:
        r_attribute, r_value = FLAGS.region.split(":")
        region = f"{{attribute: '{r_attribute}', value: '{r_value}', mode: 'inside'}}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 620})
            page.goto(url)
            page.evaluate("window.amganDemo.ready")
            page.evaluate(f"window.amganDemo.useExample({FLAGS.example})")
            page.evaluate(f"window.amganDemo.choose('{attribute}', '{value}', {region})")
            page.evaluate("window.amganDemo.manipulate().then(() => null)")
            page.screenshot(path=FLAGS.output)
            browser.close()
    finally:
        server.shutdown()
    print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
    main()
