"""The quality diagnostics of issue 14 (benchmarks/error_split.py, other_attribute_drift.py) on a
genuinely trained tiny workdir: their tables count every test figure once, under the right
(input -> target) pair, and score doing nothing as the input's MAE to SynthFashion's
counterfactual; a wrong attribute is named with the choices."""

import os
import subprocess
import sys

import numpy as np
import pytest

from amgan_tf import trained
from amgan_tf.data.synthfashion import SynthFashion
from amgan_tf.evaluation import manipulation_targets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = 12  # the tiny workdir's first 12 test figures include pattern -> plain edits


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                          text=True, timeout=600)


def table(stdout):
    """The Markdown table's body rows as lists of cells."""
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r] for r in rows[1:]]  # without the header


def figures(workdir, attribute):
    """(input value, target value, MAE of doing nothing) of each test figure the scripts edit."""
    config = trained.read_config(workdir).data
    schema = trained.read_schema(workdir)
    synth = SynthFashion(config.seed, config.image_size)
    r = [a.name for a in schema.manipulated].index(attribute)
    attr = schema.manipulated[r]
    idx = np.arange(config.num_train, config.num_train + IMAGES)
    images, labels = zip(*(synth.example(int(i))[:2] for i in idx))
    targets = manipulation_targets(np.stack(labels), schema, r)
    out = []
    for i, x, t in zip(idx, images, targets):
        truth = synth.example(int(i), **{attribute: attr.values[int(t)]})[0]
        out.append((getattr(synth.spec(int(i)), attribute), attr.values[int(t)],
                    np.abs(x.astype(np.float32) - truth.astype(np.float32)).mean()))
    return out


def test_error_split_counts_every_figure_and_scores_doing_nothing(tiny_workdir):
    proc = run("error_split.py", f"--workdir={tiny_workdir}", "--attribute=sleeve",
               f"--images={IMAGES}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = table(proc.stdout)
    pairs, every = rows[:-1], rows[-1]
    expected = figures(tiny_workdir, "sleeve")
    assert every[0] == "all" and int(every[1]) == IMAGES
    counts = {}
    for source, target, _ in expected:
        counts[f"{source} -> {target}"] = counts.get(f"{source} -> {target}", 0) + 1
    assert {r[0]: int(r[1]) for r in pairs} == counts
    assert float(every[3]) == pytest.approx(np.mean([e[2] for e in expected]), abs=0.006)
    assert float(every[3]) > 0  # the counterfactuals differ from the inputs


def test_error_split_names_the_attributes_it_can_split(tiny_workdir):
    proc = run("error_split.py", f"--workdir={tiny_workdir}", "--attribute=neckline",
               "--images=2")
    assert proc.returncode != 0
    assert "--attribute='neckline' is not manipulated" in proc.stderr
    assert "sleeve, colour, pattern" in proc.stderr


def test_other_attribute_drift_rows(tiny_workdir):
    proc = run("other_attribute_drift.py", f"--workdir={tiny_workdir}", f"--images={IMAGES}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r[0]: r for r in table(proc.stdout)}
    plain = sum(t == "plain" for _, t, _ in figures(tiny_workdir, "pattern"))
    assert plain > 0, "pick IMAGES so that the pattern -> plain row is exercised"
    assert {k: int(r[1]) for k, r in rows.items()} == {
        "sleeve": IMAGES, "colour": IMAGES, "pattern": IMAGES, "pattern -> plain": plain}
    for name, row in rows.items():
        assert float(row[2]) >= 0 and float(row[3]) >= 0  # KL divergences
        heads = [h.split() for h in row[4].split(", ")]
        # Every head but the edited attribute's, each flip share in [0, 1].
        assert [h[0] for h in heads] == [h for h in ("sleeve", "colour", "pattern", "category",
                                                     "body_shape") if h != name.split()[0]]
        assert all(0 <= float(h[1]) <= 1 and 0 <= float(h[3]) <= 1 for h in heads)
