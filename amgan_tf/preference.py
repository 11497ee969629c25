"""A blinded preference study between methods (the paper's user study), as a local web page.

    python -m amgan_tf.preference --methods=amgan=runs/quickstart,stargan=runs/stargan,identity \
        --output=prefs.jsonl [--trials=40] [--seed=0] [--port=8001]

Each trial shows a test input, the requested edit ("colour -> red") and every method's result in
a random order labelled A, B, C...; the rater clicks the best. Choices are appended to --output
(one JSON line per trial, with the method names the rater never saw), so a study can stop and
continue: answered trials are skipped. `identity` is the "change nothing" method. The page ends
with the preference shares per method and attribute (`summarise`).
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import io
import json
import os
import sys
import threading
import urllib.parse

import numpy as np
from PIL import Image

IDENTITY = "identity"


@dataclasses.dataclass
class Trial:
    index: int
    attribute: str
    value: str
    input_png: str  # base64
    outputs: dict[str, str]  # method -> base64 PNG
    order: list[str]  # the blinded order of methods on the page


def _png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def make_trials(methods: dict, images: np.ndarray, labels: np.ndarray, schema, count: int,
                seed: int = 0) -> list[Trial]:
    """`count` trials: a random test image, a random manipulated attribute with a labelled value
    and a random other target value, each method's result, and a random order. `methods` maps a
    name to a trained generator (`trained.load_generator`) or None for the identity."""
    rng = np.random.default_rng(seed)
    trials = []
    while len(trials) < count:
        i = int(rng.integers(len(images)))
        r = int(rng.integers(schema.num_attributes))
        attr, current = schema.manipulated[r], labels[i, schema.manipulated_columns[r]]
        if current < 0:
            continue
        target = int(rng.choice([v for v in range(len(attr.values)) if v != current]))
        outputs = {}
        for name, model in methods.items():
            if model is None:
                outputs[name] = _png(images[i])
                continue
            m = model.schema.encode_batch(np.array([r]), np.array([target]))
            out, _ = model.edit(images[i:i + 1], m)
            outputs[name] = _png(out.numpy()[0])
        order = [str(n) for n in rng.permutation(list(methods))]
        trials.append(Trial(len(trials), attr.name, attr.values[target], _png(images[i]),
                            outputs, order))
    return trials


def read_records(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(records: list[dict]) -> dict:
    """Share of trials each method was chosen in, overall and per attribute (every method that
    was shown appears, with 0 if never chosen)."""
    def shares(rows):
        shown = sorted({m for row in rows for m in row["shown"]})
        return {m: sum(row["chosen"] == m for row in rows) / len(rows) for m in shown} \
            if rows else {}
    attributes = sorted({row["attribute"] for row in records})
    return {"trials": len(records), "overall": shares(records),
            "per_attribute": {a: shares([row for row in records if row["attribute"] == a])
                              for a in attributes}}


class Study:
    """The trials, the answers so far (from the output file) and the lock that guards both."""

    def __init__(self, trials: list[Trial], output: str):
        self.trials, self.output = trials, output
        self.lock = threading.Lock()
        self.answered = {row["trial"] for row in read_records(output)}

    def next_trial(self) -> dict:
        with self.lock:
            pending = [t for t in self.trials if t.index not in self.answered]
        if not pending:
            return {"done": True, "summary": summarise(read_records(self.output))}
        t = pending[0]
        return {"done": False, "trial": t.index, "remaining": len(pending),
                "total": len(self.trials), "attribute": t.attribute, "value": t.value,
                "input": t.input_png, "options": [t.outputs[m] for m in t.order]}

    def choose(self, trial: int, option: int) -> None:
        if not 0 <= trial < len(self.trials):
            raise ValueError(f"no trial {trial}")
        t = self.trials[trial]
        if not 0 <= option < len(t.order):
            raise ValueError(f"trial {trial} has options 0..{len(t.order) - 1}, got {option}")
        with self.lock:
            if trial in self.answered:
                return
            with open(self.output, "a") as f:
                f.write(json.dumps({"trial": trial, "attribute": t.attribute, "value": t.value,
                                    "chosen": t.order[option], "shown": t.order,
                                    "position": option}) + "\n")
            self.answered.add(trial)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Which edit is best?</title>
<style>
body { font-family: sans-serif; margin: 2em; }
img { width: 192px; height: 192px; image-rendering: pixelated; border: 1px solid #ccc; }
.options button { border: 3px solid transparent; background: none; padding: 2px; cursor: pointer; }
.options button:hover { border-color: #1f77b4; }
figure { display: inline-block; margin: 0 1em 1em 0; text-align: center; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
</style></head><body>
<h1>Which edit is best?</h1>
<p>Pick the result that makes the requested change best while keeping everything else.
The methods are shown in a random order.</p>
<div id="trial"></div>
<script>
async function show() {
  const state = await (await fetch("next")).json();
  const root = document.getElementById("trial");
  if (state.done) {
    const s = state.summary;
    let html = `<h2 id="done">Done: ${s.trials} trials</h2>` +
               `<table id="summary"><tr><th>method</th><th>overall</th>`;
    const attrs = Object.keys(s.per_attribute);
    attrs.forEach(a => { html += `<th>${a}</th>`; });
    html += "</tr>";
    for (const m of Object.keys(s.overall)) {
      html += `<tr><td>${m}</td><td>${(100 * s.overall[m]).toFixed(1)}%</td>`;
      attrs.forEach(a => {
        const v = s.per_attribute[a][m];
        html += `<td>${v === undefined ? "" : (100 * v).toFixed(1) + "%"}</td>`;
      });
      html += "</tr>";
    }
    root.innerHTML = html + "</table>";
    return;
  }
  const letters = "ABCDEFGHIJ";
  let html = `<p id="progress">Trial ${state.total - state.remaining + 1} of ${state.total}: ` +
             `<b id="request">${state.attribute} &rarr; ${state.value}</b></p>` +
             `<figure><img src="data:image/png;base64,${state.input}"><figcaption>input` +
             `</figcaption></figure><div class="options">`;
  state.options.forEach((png, i) => {
    html += `<figure><button data-option="${i}"><img src="data:image/png;base64,${png}">` +
            `</button><figcaption>${letters[i]}</figcaption></figure>`;
  });
  root.innerHTML = html + "</div>";
  root.querySelectorAll("button").forEach(b => b.addEventListener("click", async () => {
    await fetch("choose", {method: "POST", headers: {"Content-Type": "application/json"},
                           body: JSON.stringify({trial: state.trial,
                                                 option: Number(b.dataset.option)})});
    show();
  }));
}
show();
</script></body></html>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    study: Study

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, value) -> None:
        self._send(code, json.dumps(value).encode(), "application/json")

    def do_GET(self):  # noqa: N802 - the base class's name
        path = urllib.parse.urlparse(self.path).path
        if path == "/":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/next":
            self._json(200, self.study.next_trial())
        elif path == "/summary":
            self._json(200, summarise(read_records(self.study.output)))
        else:
            self._json(404, {"error": f"no page {path}"})

    def do_POST(self):  # noqa: N802
        if urllib.parse.urlparse(self.path).path != "/choose":
            return self._json(404, {"error": "POST /choose only"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.study.choose(int(body["trial"]), int(body["option"]))
        except (ValueError, KeyError, TypeError) as e:
            return self._json(400, {"error": str(e)})
        self._json(200, {"ok": True})

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(study: Study, port: int = 8001, host: str = "127.0.0.1"):
    """Start the study's server in a background thread; returns it (`.server_address`,
    `.shutdown()`)."""
    handler = type("Handler", (_Handler,), {"study": study})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def parse_methods(spec: list[str]) -> dict[str, str | None]:
    """["amgan=runs/a", "identity"] -> {"amgan": "runs/a", "identity": None}."""
    methods = {}
    for item in spec:
        name, _, path = item.partition("=")
        if name == IDENTITY and not path:
            methods[name] = None
        elif not path:
            raise ValueError(f"--methods entry {item!r} needs the form name=WORKDIR (or the word "
                             f"{IDENTITY} for the change-nothing method).")
        else:
            methods[name] = path
    if len(methods) < 2:
        raise ValueError(f"A preference study needs at least two methods, got {list(methods)}.")
    return methods


def main(argv):
    from absl import flags

    from amgan_tf import trained
    from amgan_tf.data import datasets
    from amgan_tf.runtime import USER_ERRORS
    f = flags.FLAGS
    del argv
    try:
        spec = parse_methods(f.methods)
        models = {n: trained.load_generator(p) if p else None for n, p in spec.items()}
        first = next(m for m in models.values() if m is not None)
        for name, model in models.items():
            if model is not None and model.schema.names != first.schema.names:
                raise ValueError(f"Method {name} was trained on attributes "
                                 f"{model.schema.names}, the first on {first.schema.names}.")
        test = datasets.load_split(first.config.data, "test")
        study = Study(make_trials(models, test.images, test.labels, first.schema, f.trials,
                                  f.seed), f.output)
        server = serve(study, f.port, f.host)
    except USER_ERRORS + (OSError,) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    host, port = server.server_address[:2]
    print(f"Preference study on http://{host}:{port}/ ({f.trials} trials, answers in "
          f"{os.path.abspath(f.output)}); Ctrl+C stops it, running it again continues.",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_list("methods", None, "name=WORKDIR entries (and/or `identity`).")
    flags.DEFINE_string("output", "preferences.jsonl", "Answers, one JSON line per trial.")
    flags.DEFINE_integer("trials", 40, "Trials in the study.")
    flags.DEFINE_integer("seed", 0, "Seed of the trials (same seed, same study).")
    flags.DEFINE_integer("port", 8001, "Port (0 = any free one).")
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
    flags.mark_flag_as_required("methods")
    app.run(main)
