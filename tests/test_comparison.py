"""benchmarks/comparison.py end to end on tiny settings: the hours-long comparison must not fail at
its last step, a second invocation must reuse what the first one finished, a sitting on a fresh
machine (new runs folder, the committed records) must train nothing, and a record made with other
settings must not be reused; the reading of the tables written by hand is kept with the records."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}


ANALYSIS = "StarGAN edits the background most; read by hand from the tables."


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
    def cmd(runs="runs", only="AMGAN,stargan", extra=""):
        return [sys.executable, os.path.join(ROOT, "benchmarks", "comparison.py"),
                f"--root={where / runs}", f"--results={where / 'docs' / 'RESULTS.md'}",
                f"--records={where / 'docs' / 'results'}", f"--only={only}",
                f"--extra_flags={gan}{extra}", f"--judge_extra_flags={judge}"]

    def run(*args, **kwargs):
        return subprocess.run(cmd(*args, **kwargs), cwd=where, env=ENV, capture_output=True,
                              text=True, timeout=1200)

    def report():
        return (where / "docs" / "RESULTS.md").read_text()

    first, second = run(), run()
    reports = [report()]
    (where / "docs" / "results" / "analysis.md").write_text(ANALYSIS)
    fresh = run("runs_fresh_machine")  # what a later sitting on a new machine sees
    reports.append(report())
    refused = run(only="stargan", extra=" --lambda_cyc=5")  # over the finished run's folder
    changed = run("runs_fresh_machine", only="stargan", extra=" --lambda_cyc=5")
    reports.append(report())
    return where, (first, second, fresh, refused, changed), reports


def test_first_invocation_trains_judges_and_reports(compared):
    where, (first, *_), (text, *_) = compared
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Training the independent synth judge" in first.stdout
    assert first.stdout.count("Training ") == 3  # the judge, AMGAN and StarGAN
    for slug in ("amgan", "stargan"):
        walls = json.load(open(where / "runs" / slug / "wall_seconds.json"))
        assert walls["train"] > 0 and walls["evaluate"] > 0
        report = json.load(open(where / "runs" / slug / "evaluation" / "metrics.json"))
        assert set(report["accuracy_independent_judge"]) == {"sleeve", "colour", "pattern",
                                                             "mean"}
    for row in ("| change nothing |", "| AMGAN |", "| StarGAN |"):
        assert text.count(row) == 3, row  # accuracy, retrieval/realism and ground-truth tables
    assert "Not yet finished" in text and "GANimation" in text  # the methods left out are named
    assert "What the comparison shows" not in text  # no reading of the tables written yet
    commands = text[text.index("## Commands"):]  # exact: with the shared CNN and the judge's
    assert commands.count("--classifier_workdir=") == 2
    assert "--flagfile=configs/classifier_synthfashion_judge.cfg" in commands
    for png in ("results_retrieval.png", "results_grid.png"):
        assert os.path.getsize(where / "docs" / png) > 1000


def test_second_invocation_reuses_finished_runs(compared):
    where, (first, second, *_), _ = compared
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Training" not in second.stdout and "Evaluating" not in second.stdout
    walls = json.load(open(where / "runs" / "amgan" / "wall_seconds.json"))
    assert set(walls) == {"train", "evaluate"}


def test_a_fresh_machine_restores_the_kept_records_and_trains_nothing(compared):
    where, (*_, fresh, _, _), (report, fresh_report, _) = compared
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    assert "Training" not in fresh.stdout and "Evaluating" not in fresh.stdout
    assert fresh.stdout.count("Restoring ") == 2  # the shared attribute CNN and the judge
    kept = where / "docs" / "results"
    for name in ("amgan.json", "stargan.json", "amgan_grid.png", "grid_inputs_synth.png",
                 "classifiers/classifier/attribute_cnn", "classifiers/judge_synth/attribute_cnn"):
        assert (kept / name).exists(), name
    record = json.load(open(kept / "amgan.json"))
    assert record["walls"]["train"] > 0 and "cores" in record["cpu"] and record["commit"]
    tables = report[:report.index("## Commands")].rstrip()  # the commands name the runs' folders
    assert tables in fresh_report  # the same numbers from the kept records
    reading = fresh_report[fresh_report.index("## What the comparison shows"):]
    assert reading.index(ANALYSIS) < reading.index("## Commands")  # the kept reading, placed


def test_a_record_made_with_other_settings_is_retrained(compared):
    where, (*_, refused, changed), _ = compared
    assert refused.returncode != 0 and "holds a run with other settings" in refused.stderr
    assert "--lambda_cyc=5" in refused.stderr and "Training" not in refused.stdout
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-3000:]
    assert "other settings" in changed.stdout and "Training StarGAN" in changed.stdout
    record = json.load(open(where / "docs" / "results" / "stargan.json"))
    assert "--lambda_cyc=5" in record["command"]


def test_a_partly_retrained_comparison_reports_every_kept_record(compared):
    """After StarGAN alone was retrained with other settings (--only), the report still shows
    AMGAN from its kept record, marked as made with other settings, and names it unfinished."""
    where, _, (*_, text) = compared
    assert text.count("| StarGAN |") == 3  # retrained: current
    assert text.count("| AMGAN (old settings) |") == 3  # kept: its digest has no --lambda_cyc=5
    assert "| AMGAN |" not in text
    assert "Rows marked (old settings) are kept from a sitting with other settings" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("Not yet finished"))
    # In SYNTH's order: AMGAN is listed, StarGAN (between it and GANimation) is not.
    assert ": AMGAN (quick start), AMGAN, GANimation, SaGAN," in line
