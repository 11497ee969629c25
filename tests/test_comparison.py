"""benchmarks/comparison.py end to end on tiny settings: the hours-long comparison must not fail at
its last step, and a second invocation must reuse what the first one finished."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    where = tmp_path_factory.mktemp("comparison")
    data = (f"--data_dir={where / 'tfds'} --image_size=32 --synth_num_train=48 "
            "--synth_num_test=40 --classifier_steps=4 --classifier_batch_size=8")
    gan = (f"{data} --classifier_widths=8,8,8 --steps=2 --batch_size=2 --n_critic=1 "
           "--g_conv_dim=8 --g_repeat_num=1 --d_conv_dim=8 --d_repeat_num=4 --d_max_dim=32 "
           "--checkpoint_every=1 --sample_every=2 --eval_every=2 --eval_images=4 "
           "--final_eval_images=4")
    judge = f"{data} --classifier_widths=8,8,8,8"
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "comparison.py"),
           f"--root={where / 'runs'}", f"--results={where / 'docs' / 'RESULTS.md'}",
           "--only=AMGAN,stargan", f"--extra_flags={gan}", f"--judge_extra_flags={judge}"]
    runs = [subprocess.run(cmd, cwd=where, env=ENV, capture_output=True, text=True, timeout=1200)
            for _ in range(2)]
    return where, runs


def test_first_invocation_trains_judges_and_reports(compared):
    where, (first, _) = compared
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Training the independent synth judge" in first.stdout
    assert first.stdout.count("Training ") == 3  # the judge, AMGAN and StarGAN
    for slug in ("amgan", "stargan"):
        walls = json.load(open(where / "runs" / slug / "wall_seconds.json"))
        assert walls["train"] > 0 and walls["evaluate"] > 0
        report = json.load(open(where / "runs" / slug / "evaluation" / "metrics.json"))
        assert set(report["accuracy_independent_judge"]) == {"sleeve", "colour", "pattern",
                                                             "mean"}
    text = (where / "docs" / "RESULTS.md").read_text()
    for row in ("| change nothing |", "| AMGAN |", "| StarGAN |"):
        assert text.count(row) == 3, row  # accuracy, retrieval/realism and ground-truth tables
    assert "Not yet finished" in text and "GANimation" in text  # the methods left out are named
    commands = text[text.index("## Commands"):]  # exact: with the shared CNN and the judge's
    assert commands.count("--classifier_workdir=") == 2
    assert "--flagfile=configs/classifier_synthfashion_judge.cfg" in commands
    for png in ("results_retrieval.png", "results_grid.png"):
        assert os.path.getsize(where / "docs" / png) > 1000


def test_second_invocation_reuses_finished_runs(compared):
    where, (first, second) = compared
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Training" not in second.stdout and "Evaluating" not in second.stdout
    walls = json.load(open(where / "runs" / "amgan" / "wall_seconds.json"))
    assert set(walls) == {"train", "evaluate"}
