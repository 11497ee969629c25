"""The comparison of docs/RESULTS.md: AMGAN, its baselines and ablations, trained on one budget and
scored by one independent judge; restartable across sittings.

    python benchmarks/comparison.py [--root=runs/compare] [--only=AMGAN,StarGAN] [--no_train]

Every method trains with its config from configs/ (all built on synthfashion_cpu.cfg: same data,
sizes, iterations, decoder and seed; "AMGAN (quick start)" adds the quick start's loss departures)
into ROOT/<slug>, sharing one attribute CNN (ROOT/classifier). The judge is
trained once with configs/classifier_synthfashion_judge.cfg (another seed and backbone). The
real-photo rows train AMGAN and StarGAN on clothing_small and are judged by a clothing_small CNN of
another seed and layout. Finished runs are skipped, unfinished ones resume from their checkpoints
(the training binaries resume by themselves), and every invocation's wall time is added to
ROOT/<slug>/wall_seconds.json, so the script may be stopped at any moment and run again.

Machines do not outlive a sitting, so what a sitting finishes is kept in the repository
(--records, default docs/results/): per method a record (<slug>.json: its scores, wall times,
command, commit and CPU) and its column of the grid (<slug>_grid.png), and the shared attribute
CNNs and judges themselves (classifiers/<name>/, about 0.6 MB each), which a later sitting on a
fresh machine restores before anything else. A method whose record matches its settings (the
training arguments with every flagfile's text expanded, and the weights of its CNN and judge) is
not trained again; change a config and its method is retrained. Commit docs/results/ after a
sitting. At the end the script writes docs/RESULTS.md, docs/results_retrieval.png and
docs/results_grid.png from every kept record, also those of methods it was not asked to run
(--only); a record made with other settings than the current ones is shown marked "(old
settings)" until its method is retrained, so a partly retrained comparison stays whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# (name, slug, training flags); the synthetic rows first, then the real-photo ones.
SYNTH = [
    ("AMGAN (quick start)", "amgan_quickstart", ["--flagfile=configs/quickstart.cfg"]),
    ("AMGAN", "amgan", ["--flagfile=configs/synthfashion_cpu.cfg"]),
    ("StarGAN", "stargan", ["--flagfile=configs/stargan.cfg"]),
    ("GANimation", "ganimation", ["--flagfile=configs/ganimation.cfg"]),
    ("SaGAN", "sagan", ["--flagfile=configs/sagan.cfg"]),
    ("AMGAN w/o D_C", "no_dc", ["--flagfile=configs/amgan_no_dc.cfg"]),
    ("AMGAN w/o L_p, D_C", "no_lp_dc", ["--flagfile=configs/amgan_no_lp_dc.cfg"]),
    ("AMGAN w/o L_a, L_p, D_C", "no_la_lp_dc", ["--flagfile=configs/amgan_no_la_lp_dc.cfg"]),
    ("AMGAN, CAM as attention", "cam_attention", ["--flagfile=configs/amgan_cam_attention.cfg"]),
]
# StarGAN on clothing_small's budget: without AMGAN's terms (the config carries the quick start's).
STARGAN_FLAGS = ["--generator_mode=stargan", "--use_dc=false", "--lambda_a=0", "--lambda_p=0",
                 "--lambda_out=0"]
REAL = [
    ("AMGAN, quick start's losses (clothing_small)", "clothing_amgan",
     ["--flagfile=configs/clothing_small.cfg"]),
    ("StarGAN (clothing_small)", "clothing_stargan",
     ["--flagfile=configs/clothing_small.cfg", *STARGAN_FLAGS]),
]
JUDGES = {  # slug -> flags of its independent judge
    "synth": ["--flagfile=configs/classifier_synthfashion_judge.cfg"],
    "clothing": ["--flagfile=configs/classifier_clothing_small.cfg", "--seed=1",
                 "--classifier_widths=32,64,96,96", "--classifier_strides=1,2,1,1",
                 "--classifier_blocks=1,1,1,1", "--classifier_dilations=1,1,1,2"],
}

FLAGS = flags.FLAGS
flags.DEFINE_string("root", "runs/compare", "Folder of all runs.")
flags.DEFINE_list("only", [], "Train/evaluate only these methods (names or slugs); the report "
                  "still shows every kept record.")
flags.DEFINE_boolean("no_train", False, "Only evaluate and write the report from what exists.")
flags.DEFINE_string("extra_flags", "", "Flags added to every AMGAN training command, as one "
                    "shell-quoted string (smoke tests: tiny sizes and steps).")
flags.DEFINE_string("judge_extra_flags", "", "Flags added to the judges' training commands, as "
                    "one shell-quoted string.")
flags.DEFINE_string("results", os.path.join(ROOT, "docs", "RESULTS.md"), "Report to write.")
flags.DEFINE_string("records", os.path.join(ROOT, "docs", "results"),
                    "Folder of what finished sittings kept: method records, grid columns and the "
                    "shared attribute CNNs and judges (commit it).")
GRID_INPUTS = 4  # test inputs in the grid, one edit per manipulated attribute each
RETRIEVAL_KS = ("1", "5", "30")  # the table's k; the plot has every k
ANALYSIS_FILE = "analysis.md"  # the reading of the tables, by hand, beside the records
STALE_MARK = "(old settings)"  # beside a method whose only record predates its current settings


def _python_m(module: str, args: list[str], log_path: str) -> float:
    """Run `python -m module args` from the repository root, appending to log_path; seconds."""
    t0 = time.time()
    with open(log_path, "a") as log:
        code = subprocess.call([sys.executable, "-m", module, *args], cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": ROOT})
    if code:
        raise SystemExit(f"{module} {' '.join(args)} failed (exit {code}); see {log_path}.")
    return time.time() - t0


def _add_wall(workdir: str, key: str, seconds: float) -> None:
    path = os.path.join(workdir, "wall_seconds.json")
    walls = json.load(open(path)) if os.path.exists(path) else {}
    walls[key] = walls.get(key, 0.0) + seconds
    with open(path, "w") as f:
        json.dump(walls, f, indent=2)


def _finished(workdir: str) -> bool:
    path = os.path.join(workdir, "metrics.json")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return "wall_seconds_this_run" in json.load(f)  # written only at the last step


# ---- what outlives a sitting ----------------------------------------------------------------------
def _expanded(args: list[str]) -> list[str]:
    """args with each --flagfile replaced by its lines (recursively; comments dropped), so a
    record notices a change inside a config; paths of the run itself are left out."""
    out = []
    for arg in args:
        if arg.startswith("--flagfile="):
            with open(os.path.join(ROOT, arg.split("=", 1)[1])) as f:
                lines = [ln.strip() for ln in f]
            out += _expanded([ln for ln in lines if ln and not ln.startswith("#")])
        elif not arg.startswith(("--workdir=", "--classifier_workdir=")):
            out.append(arg)
    return out


def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def classifier_digest(workdir: str) -> str:
    from amgan_tf.models.attribute_cnn import MODEL_DIR, WEIGHTS_FILE
    return _file_digest(os.path.join(workdir, MODEL_DIR, WEIGHTS_FILE))


def settings_digest(args: list[str], classifier: str, judge: str) -> str:
    """What a record must match to stand for a run: its settings and the weights it used."""
    text = json.dumps([_expanded(args), classifier_digest(classifier), classifier_digest(judge)])
    return hashlib.sha256(text.encode()).hexdigest()


_KEPT = ("attribute_cnn", "classifier_config.json", "classifier_metrics.json")


def restore_classifier(workdir: str, name: str) -> None:
    """Bring back a shared CNN or judge that an earlier sitting kept, before anything trains."""
    from amgan_tf import classifier_lib
    kept = os.path.join(FLAGS.records, "classifiers", name)
    if classifier_lib.is_trained(workdir) or not os.path.isdir(kept):
        return
    print(f"Restoring {name} from {kept}", flush=True)
    _copy_kept(kept, workdir)


def keep_classifier(workdir: str, name: str) -> None:
    kept = os.path.join(FLAGS.records, "classifiers", name)
    if os.path.isdir(kept):
        return
    tmp = kept + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    _copy_kept(workdir, tmp)
    os.replace(tmp, kept)


def _copy_kept(source: str, target: str) -> None:
    """The parts of a trained CNN that loading it needs, from one folder into another."""
    os.makedirs(target, exist_ok=True)
    for item in _KEPT:
        src = os.path.join(source, item)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(target, item))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(ln.split(":", 1) for ln in f.read().split("\n\n")[0].splitlines()
                        if ":" in ln)
        info = {k.strip(): v.strip() for k, v in info.items()}
        return (f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model "
                f"{info.get('model', '?')}), {os.cpu_count()} cores")
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_record(slug: str) -> dict | None:
    path = os.path.join(FLAGS.records, f"{slug}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_record(slug: str, digest: str) -> dict | None:
    """The kept record if it was made with exactly these settings, CNN and judge."""
    record = read_record(slug)
    return record if record is not None and record.get("digest") == digest else None


def stale_record(slug: str) -> dict:
    """A kept record of other settings (an older config, CNN or judge), flagged for the report
    until its method is retrained; {} if none was kept."""
    record = read_record(slug)
    return {**record, "stale": True} if record is not None else {}


def grid_edits(schema, labels) -> list[tuple[int, int, int]]:
    """(input index, manipulated attribute r, target value) of each grid row."""
    edits = []
    for i in range(GRID_INPUTS):
        for r, attr in enumerate(schema.manipulated):
            current = labels[i, schema.manipulated_columns[r]]
            edits.append((i, r, int((max(current, 0) + 1) % len(attr.values))))
    return edits


def grid_column(workdir: str, group: str, path: str) -> None:
    """This method's results for the grid's fixed inputs and edits, as a vertical strip PNG (and
    the group's inputs and edits beside it, once)."""
    from PIL import Image

    from amgan_tf import trained
    from amgan_tf.data import datasets
    model = trained.load_generator(workdir)
    test = datasets.load_split(model.config.data, "test", limit=GRID_INPUTS)
    edits = grid_edits(model.schema, test.labels)
    tiles, inputs = [], []
    for i, r, target in edits:
        m = model.schema.encode_batch(np.array([r]), np.array([target]))
        out, _ = model.edit(test.images[i:i + 1], m)
        tiles.append(out.numpy()[0])
        inputs.append(test.images[i])
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)
    inputs_path = os.path.join(os.path.dirname(path), f"grid_inputs_{group}.png")
    if not os.path.exists(inputs_path):
        Image.fromarray(np.concatenate(inputs, axis=0)).save(inputs_path)
        with open(os.path.join(os.path.dirname(path), f"grid_edits_{group}.json"), "w") as f:
            json.dump([[model.schema.manipulated[r].name, model.schema.manipulated[r].values[t]]
                       for _, r, t in edits], f)


def save_record(row: dict, group: str, digest: str) -> dict:
    os.makedirs(FLAGS.records, exist_ok=True)
    grid_column(row["workdir"], group, os.path.join(FLAGS.records, f"{row['slug']}_grid.png"))
    record = {**{k: row[k] for k in ("name", "slug", "command", "report", "walls")},
              "digest": digest, "commit": _commit(), "cpu": _cpu(),
              "finished": time.strftime("%Y-%m-%d %H:%M")}
    path = os.path.join(FLAGS.records, f"{row['slug']}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)
    return record


def claim_workdir(workdir: str, args: list[str]) -> None:
    """A run folder serves one set of settings: a finished run is reused only if it matches."""
    path, settings = os.path.join(workdir, "settings.json"), _expanded(args)
    if os.path.exists(path):
        with open(path) as f:
            before = json.load(f)
        if before != settings:
            differ = sorted(set(before) ^ set(settings))
            raise SystemExit(f"{workdir} holds a run with other settings (differing: "
                             f"{' '.join(differ)}); delete that folder to train it again.")
        return
    with open(path, "w") as f:
        json.dump(settings, f, indent=1)


def judge_args(slug: str) -> tuple[str, list[str]]:
    """(workdir, train_classifier arguments) of the independent judge of group `slug`."""
    workdir = os.path.join(FLAGS.root, f"judge_{slug}")
    return workdir, [*JUDGES[slug], f"--workdir={workdir}",
                     *shlex.split(FLAGS.judge_extra_flags)]


def restore_judge(slug: str) -> str:
    workdir, _ = judge_args(slug)
    restore_classifier(workdir, f"judge_{slug}")
    return workdir


def ensure_judge(slug: str) -> str:
    workdir, args = judge_args(slug)
    restore_judge(slug)
    if not os.path.exists(os.path.join(workdir, "classifier_metrics.json")):
        os.makedirs(workdir, exist_ok=True)
        print(f"Training the independent {slug} judge in {workdir}...", flush=True)
        _add_wall(workdir, "train", _python_m("amgan_tf.train_classifier", args,
                                              os.path.join(workdir, "log.txt")))
    keep_classifier(workdir, f"judge_{slug}")
    return workdir


def run_method(name: str, slug: str, train_flags: list[str], group: str, classifier: str,
               judge: str, chosen: bool = True) -> dict:
    """The method's record: kept from an earlier sitting if its settings match, else (if chosen)
    trained or resumed, evaluated and kept. While it is unfinished (--no_train, or not chosen),
    a record of other settings stands in, flagged stale; {} if there is none."""
    from amgan_tf import classifier_lib
    workdir = os.path.join(FLAGS.root, slug)
    args = [*train_flags, f"--workdir={workdir}", f"--classifier_workdir={classifier}",
            *shlex.split(FLAGS.extra_flags)]
    if classifier_lib.is_trained(classifier) and classifier_lib.is_trained(judge):
        record = load_record(slug, settings_digest(args, classifier, judge))
        if record is not None:
            return record
    if not chosen:
        return stale_record(slug)
    os.makedirs(workdir, exist_ok=True)
    claim_workdir(workdir, args)
    log = os.path.join(workdir, "log.txt")
    if not FLAGS.no_train and not _finished(workdir):
        if read_record(slug) is not None:
            print(f"The kept record of {name} was made with other settings or another CNN/judge; "
                  "retraining.", flush=True)
        print(f"Training {name} in {workdir} (resumes if stopped before)...", flush=True)
        _add_wall(workdir, "train", _python_m("amgan_tf.train", args, log))
    if not _finished(workdir):
        return stale_record(slug)
    keep_classifier(classifier, os.path.basename(classifier))  # the first run trained it
    digest = settings_digest(args, classifier, judge)
    record = load_record(slug, digest)  # kept by a sitting that shared this CNN
    if record is not None:
        return record
    evaluation = os.path.join(workdir, "evaluation")
    if not os.path.exists(os.path.join(evaluation, "metrics.json")):
        print(f"Evaluating {name}...", flush=True)
        _add_wall(workdir, "evaluate", _python_m("amgan_tf.evaluate", [
            f"--workdir={workdir}", f"--judge_workdir={judge}", f"--output={evaluation}"], log))
    with open(os.path.join(evaluation, "metrics.json")) as f:
        report = json.load(f)
    with open(os.path.join(workdir, "wall_seconds.json")) as f:
        walls = json.load(f)
    row = {"name": name, "slug": slug, "workdir": workdir, "report": report, "walls": walls,
           "command": shlex.join(["python", "-m", "amgan_tf.train", *args])}
    return save_record(row, group, digest)


# ---- the report ----------------------------------------------------------------------------------
def _pct(v):
    return f"{100 * v:.1f}%"


def _minutes(s):
    return f"{s / 60:.0f} min"


def _label(row: dict) -> str:
    return row["name"] + (f" {STALE_MARK}" if row.get("stale") else "")


def _reference(rows: list[dict]) -> dict:
    """The report whose "change nothing" and ceiling rows head the tables: a current row's, as
    evaluation may have changed since a stale one was scored."""
    return next((r for r in rows if not r.get("stale")), rows[0])["report"]


def tables(rows: list[dict]) -> list[str]:
    first = _reference(rows)
    attrs = [k for k in first["accuracy_independent_judge"] if k != "mean"]
    out = ["| method | " + " | ".join(attrs) + " | mean | training wall time |",
           "|---|" + "---|" * (len(attrs) + 2)]
    nothing = first["accuracy_independent_judge_change_nothing"]
    out.append("| change nothing | " + " | ".join(_pct(nothing[a]) for a in attrs)
               + f" | {_pct(nothing['mean'])} | |")
    for row in rows:
        acc = row["report"]["accuracy_independent_judge"]
        out.append(f"| {_label(row)} | " + " | ".join(_pct(acc[a]) for a in attrs)
                   + f" | {_pct(acc['mean'])} | {_minutes(row['walls'].get('train', 0))} |")
    if "retrieval_realism" in first:
        rr = first["retrieval_realism"]
        out += ["", f"Top-k retrieval (hit rate at k = {' / '.join(RETRIEVAL_KS)}; the paper "
                    f"reports k = 30, which a gallery of {rr['gallery_images']} test images "
                    "saturates: the ceiling row is the share of queries whose wanted labels "
                    "exist in the gallery at all), FID and KID x 1000 on the judge's avg-pool "
                    "features:", "",
                "| method | " + " | ".join(f"top-k {a}" for a in attrs) + " | FID | KID |",
                "|---|" + "---|" * (len(attrs) + 2)]

        def hits(retrieval, who):
            return " | ".join(" / ".join(f"{100 * retrieval[a][who][k]:.1f}" for k in RETRIEVAL_KS)
                              for a in attrs)

        out.append("| ceiling | " + " | ".join(_pct(rr["retrieval"][a]["ceiling"]) for a in attrs)
                   + " | | |")
        out.append(f"| change nothing | {hits(rr['retrieval'], 'input')} | "
                   f"{rr['fid']['input']:.2f} | {1000 * rr['kid']['input']:.2f} |")
        for row in rows:
            rr = row["report"]["retrieval_realism"]
            out.append(f"| {_label(row)} | {hits(rr['retrieval'], 'model')} | "
                       f"{rr['fid']['model']:.2f} | {1000 * rr['kid']['model']:.2f} |")
    if "counterfactual_mean_abs_error" in first:
        cf = first["counterfactual_mean_abs_error"]
        out += ["", "Against SynthFashion's true counterfactuals (MAE in 0-255 levels; outside = "
                    "outside the truly changed region; IoU of the attention at a >= 0.5):", "",
                "| method | " + " | ".join(f"MAE {a}" for a in attrs) + " | "
                + " | ".join(f"outside {a}" for a in attrs) + " | "
                + " | ".join(f"IoU {a}" for a in attrs) + " |",
                "|---|" + "---|" * (3 * len(attrs))]
        out.append("| change nothing | " + " | ".join(f"{cf[a]['input']:.2f}" for a in attrs)
                   + " | " + " | ".join(f"{cf[a]['input_outside_changed']:.2f}" for a in attrs)
                   + " | " + " | ".join("0" for _ in attrs) + " |")
        for row in rows:
            cf = row["report"]["counterfactual_mean_abs_error"]
            out.append(f"| {_label(row)} | " + " | ".join(f"{cf[a]['amgan']:.2f}" for a in attrs)
                       + " | " + " | ".join(f"{cf[a]['amgan_outside_changed']:.2f}"
                                            for a in attrs)
                       + " | " + " | ".join(f"{cf[a]['attention']['iou']:.2f}" for a in attrs)
                       + " |")
    return out


def retrieval_plot(rows: list[dict], path: str) -> None:
    from amgan_tf.visualize import line_plot
    curves = {}
    for row in rows:
        rr = row["report"]["retrieval_realism"]["retrieval"]
        ks = sorted(int(k) for k in next(iter(rr.values()))["model"])
        curves[_label(row)] = {k: float(np.mean([r["model"][str(k)] for r in rr.values()]))
                               for k in ks}
    rr = _reference(rows)["retrieval_realism"]["retrieval"]
    curves["change nothing"] = {k: float(np.mean([r["input"][str(k)] for r in rr.values()]))
                                for k in ks}
    line_plot(curves, "top-k retrieval, mean over attributes", "k", "hit rate",
              size=(760, 460), dashed=("change nothing",)).save(path)


def grid(rows: list[dict], group: str, path: str) -> None:
    """The same test inputs and edits (one per attribute) across methods, from the kept columns."""
    from PIL import Image

    from amgan_tf.visualize import labelled_grid

    def strip(name):
        return np.asarray(Image.open(os.path.join(FLAGS.records, name)).convert("RGB"))

    inputs = strip(f"grid_inputs_{group}.png")
    with open(os.path.join(FLAGS.records, f"grid_edits_{group}.json")) as f:
        edits = json.load(f)
    size = inputs.shape[1]
    columns = [strip(f"{row['slug']}_grid.png") for row in rows]
    tiles, captions = [], []
    for k, (attribute, value) in enumerate(edits):
        for column, caption in [(inputs, [f"{attribute}->", value[:9]])] + [
                (col, [_label(row)[:14], _label(row)[14:28]]) for row, col in zip(rows, columns)]:
            tiles.append(column[k * size:(k + 1) * size])
            captions.append(caption)
    labelled_grid(np.stack(tiles), captions, cols=1 + len(rows), scale=2,
                  font_size=9).save(path)


def write_results(synth: list[dict], real: list[dict]) -> None:
    docs = os.path.dirname(os.path.abspath(FLAGS.results))
    os.makedirs(docs, exist_ok=True)
    lines = ["# Results: AMGAN, its baselines and ablations", "",
             "Written by `python benchmarks/comparison.py` (restartable; see its docstring). "
             "Every method trains from its config in `configs/` on the quick-start budget "
             "(SynthFashion 64 px, same iterations and seed, one shared attribute CNN) and is "
             "judged by an independently trained attribute CNN "
             "(`configs/classifier_synthfashion_judge.cfg`: other seed and backbone). FID and KID "
             "use that judge's avg-pool features, not Inception (its weights cannot be "
             "downloaded here), so they are not comparable with published FIDs.", "",
             "Machines: no GPU; each method's CPU is given with its command below (sittings "
             "may run on different hosts, so compare wall times only between rows on the same "
             "CPU).", ""]
    if any(row.get("stale") for row in synth + real):
        lines += [f"Rows marked {STALE_MARK} are kept from a sitting with other settings (an "
                  "older config, attribute CNN or judge; their commands and commits are below): "
                  "shown until the script retrains them, not comparable with the others.", ""]
    if synth:
        lines += ["## SynthFashion", "", "Manipulation accuracy by the independent judge:", ""]
        lines += tables(synth)
        retrieval_plot(synth, os.path.join(docs, "results_retrieval.png"))
        grid(synth, "synth", os.path.join(docs, "results_grid.png"))
        lines += ["", "![retrieval](results_retrieval.png)", "",
                  "Same inputs, one edit per attribute, across methods:", "",
                  "![grid](results_grid.png)", ""]
    if real:
        lines += ["## Real photos (clothing_small, sleeve long <-> short)", "",
                  "Judged by a clothing_small CNN of another seed and layout, on its test split:",
                  ""]
        lines += tables(real)
    analysis = os.path.join(FLAGS.records, ANALYSIS_FILE)
    if os.path.exists(analysis):  # written by hand from the tables above, kept with the records
        with open(analysis) as f:
            lines += ["## What the comparison shows", "", f.read().strip(), ""]
    lines += ["", "## Commands", ""]
    for row in synth + real:
        train_time = _minutes(row["walls"].get("train", 0))
        lines.append(f"- {_label(row)}: `{row['command']}` (training {train_time}, "
                     f"evaluation {_minutes(row['walls'].get('evaluate', 0))}; {row['cpu']}; "
                     f"commit {row['commit']}, {row['finished']})"
                     + (f". {row['note']}" if row.get("note") else ""))
    for slug, group in (("synth", synth), ("clothing", real)):
        if group:
            lines.append(f"- the {slug} judge: `" + shlex.join(
                ["python", "-m", "amgan_tf.train_classifier", *judge_args(slug)[1]]) + "`")
    lines.append("- each method's scores: `python -m amgan_tf.evaluate --workdir=<its workdir> "
                 "--judge_workdir=<its judge> --output=<its workdir>/evaluation`")
    missing = [name for name, _, _ in SYNTH + REAL
               if name not in {row["name"] for row in synth + real if not row.get("stale")}]
    if missing:
        lines += ["", f"Not yet finished (run the script again to continue): "
                      f"{', '.join(missing)}."]
    with open(FLAGS.results, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"Wrote {FLAGS.results}", flush=True)


def main(argv):
    del argv
    FLAGS.root = os.path.abspath(FLAGS.root)  # the binaries run from the repository root
    os.makedirs(FLAGS.root, exist_ok=True)
    wanted = set(FLAGS.only)

    def chosen(name, slug):
        return not wanted or name in wanted or slug in wanted

    results = {"synth": [], "real": []}
    for group, methods, classifier in (
            ("synth", SYNTH, os.path.join(FLAGS.root, "classifier")),
            ("real", REAL, os.path.join(FLAGS.root, "classifier_clothing"))):
        todo = [m for m in methods if chosen(m[0], m[1])]
        restore_classifier(classifier, os.path.basename(classifier))
        judge_slug = "synth" if group == "synth" else "clothing"
        # Without a method to train, only the kept judge is needed (to check the records).
        judge = ensure_judge(judge_slug) if todo else restore_judge(judge_slug)
        for name, slug, train_flags in methods:  # every kept record is reported
            row = run_method(name, slug, train_flags, group, classifier, judge,
                             chosen=chosen(name, slug))
            if row:
                results[group].append(row)
    write_results(results["synth"], results["real"])


if __name__ == "__main__":
    app.run(main)
