"""The browser demo's static server (`python -m serving.demo`): web/ at /, a TF.js export at /model/.

Any static server works (the page is plain HTML + JS); this one adds the two things a page needs
that a plain `python -m http.server` lacks: the model folder mounted at /model/ from anywhere on
disk, and clear errors when the export or web/node_modules (the TF.js scripts, no CDN) is missing.

    python -m serving.demo [--model=DIR|quickstart] [--port=8000]
"""

from __future__ import annotations

import functools
import http.server
import os
import posixpath
import shutil
import subprocess
import sys
import threading
import urllib.parse

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB = os.path.join(ROOT, "web")
BUNDLED_MODELS = os.path.join(WEB, "models")
BUNDLED_MODEL = os.path.join(BUNDLED_MODELS, "quickstart")
REQUIRED_SCRIPTS = ("node_modules/@tensorflow/tfjs/dist/tf.min.js",
                    "node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js")


def missing_scripts(web: str = WEB) -> list[str]:
    return [os.path.join(web, s) for s in REQUIRED_SCRIPTS
            if not os.path.isfile(os.path.join(web, s))]


def check(model_dir: str, web: str = WEB) -> None:
    """Raise ValueError naming what is missing and the command that makes it."""
    for name in ("model.json", "manipulations.json"):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ValueError(f"{model_dir!r} has no {name}: it is not a TF.js export of amgan_tf; "
                             f"make one with python -m export --workdir=RUN --format=tfjs "
                             f"--output=DIR.")
    missing = missing_scripts(web)
    if missing:
        raise ValueError(f"{missing[0]} is missing: install the page's scripts once with "
                         f"(cd {web} && npm ci).")


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript",
                      ".mjs": "text/javascript", ".json": "application/json"}

    def __init__(self, *args, model_dir: str, **kwargs):
        self.model_dir = model_dir
        super().__init__(*args, **kwargs)

    def translate_path(self, path):
        parts = urllib.parse.urlsplit(path).path
        if parts.startswith("/model/"):  # the export, from wherever it is
            rel = posixpath.normpath(urllib.parse.unquote(parts[len("/model/"):]))
            if rel.startswith(("..", "/")):
                return os.path.join(self.model_dir, "__outside__")
            return os.path.join(self.model_dir, *rel.split("/"))
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a re-exported model shows on reload
        # Cross-origin isolation lets TF.js's wasm backend use its multi-threaded SIMD build
        # (SharedArrayBuffer); everything the page loads is same-origin, so nothing breaks.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def install_scripts(web: str = WEB) -> None:
    """First start: the page's TF.js scripts from the committed lock file (npm ci), if npm is
    there; otherwise `check` names the command."""
    if not missing_scripts(web):
        return
    npm = shutil.which("npm")
    if npm is None or not os.path.isfile(os.path.join(web, "package-lock.json")):
        return
    print(f"First start: installing the page's TF.js scripts (npm ci in {web})...", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=web,
                   check=False)


def bundled_models() -> list[str]:
    return sorted(d for d in os.listdir(BUNDLED_MODELS)
                  if os.path.isfile(os.path.join(BUNDLED_MODELS, d, "model.json")))


def resolve_model(model: str) -> str:
    """A bundled model's name (a folder of web/models/) or any folder -> the folder."""
    if os.sep not in model and not os.path.exists(model) and model in bundled_models():
        return os.path.join(BUNDLED_MODELS, model)
    return model


def serve(model_dir: str, port: int = 8000, host: str = "127.0.0.1", web: str = WEB):
    """Start the server in a background thread; returns it (`.server_address`, `.shutdown()`)."""
    model_dir = os.path.abspath(resolve_model(model_dir))
    check(model_dir, web)
    handler = functools.partial(_Handler, directory=web, model_dir=model_dir)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


FLAGS = flags.FLAGS
flags.DEFINE_string("model", "quickstart", "A TF.js export (python -m export --format=tfjs) or "
                    "the name of a bundled one in web/models/ (quickstart: the SynthFashion "
                    "quick start).")
flags.DEFINE_integer("port", 8000, "Port (0 = any free one).")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0 exposes the demo).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    install_scripts()
    try:
        server = serve(FLAGS.model, FLAGS.port, FLAGS.host)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    host, port = server.server_address[:2]
    print(f"AMGAN demo on http://{host}:{port}/ (model: "
          f"{os.path.abspath(resolve_model(FLAGS.model))}); "
          f"Ctrl+C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


def run():
    app.run(main)


if __name__ == "__main__":
    run()
