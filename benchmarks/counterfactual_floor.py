"""How low the error to SynthFashion's true counterfactual can go for an edit that cannot see what
the input does not show, beside doing nothing.

    python benchmarks/counterfactual_floor.py [--images=300] [--samples=8] [--image_size=64]

Same test figures and targets as `amgan_tf.evaluate`'s counterfactual scores. A plain garment
shows nothing of the pattern's phase and period (per figure, uniform in SynthFashion), so a
pattern drawn on it cannot know where the stripes, dots or checks fall. For every edit this scores
two oracles that know everything else exactly (outside the truly changed region they copy the
input; inside it they are the true counterfactual):
- 'sharp': the truth rendered with what the input does not show resampled (phase and period
  from a plain garment; the horizontal phase from stripes, which dots and checks need), i.e. a
  perfect-looking pattern in the wrong place; mean over --samples draws;
- 'median': the per-pixel median over those draws, the L1-optimal prediction under that
  uncertainty (it blurs or drops the pattern).
Where the input shows all the target needs, both oracles equal the truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from absl import app, flags

from amgan_tf.data.synthfashion import SynthFashion, render
from amgan_tf.evaluation import manipulation_targets
from amgan_tf.metrics import changed_region

FLAGS = flags.FLAGS
flags.DEFINE_integer("images", 300, "Test figures (from index --num_train on, as evaluate).")
flags.DEFINE_integer("samples", 8, "Draws of the unobservable phase and period per edit.")
flags.DEFINE_integer("image_size", 64, "Render size.")
flags.DEFINE_integer("num_train", 12000, "Index of the first test figure (the training count).")
flags.DEFINE_integer("seed", 0, "SynthFashion seed.")


def _unobservable(pattern: str, target: str) -> set[str]:
    """The pattern parameters the target needs that the input's pattern does not show: a plain
    garment shows none; horizontal stripes show the period and the vertical phase, not the
    horizontal one that dots and checks need; dots and checks show all."""
    if target == "plain":
        return set()
    if pattern == "plain":
        return {"period", "pu", "pv"}
    if pattern == "stripes" and target in ("dots", "checks"):
        return {"pu"}
    return set()


def edit_floor(synth: SynthFashion, index: int, attr: str, value: str, samples: int,
               rng: np.random.Generator) -> dict[str, float]:
    """Whole-image MAE (0-255) to the truth of: doing nothing, the sharp and the median oracle."""
    spec = synth.spec(index)
    x, _ = render(spec, synth.size)
    truth_spec = spec.replace(**{attr: value})
    truth, _ = render(truth_spec, synth.size)
    x, truth = x.astype(np.float32), truth.astype(np.float32)
    changed = changed_region(x[None], truth[None], grow=1)[0][..., None]
    hidden = _unobservable(spec.pattern, truth_spec.pattern)
    if not hidden:
        draws = [truth]  # what the truth needs is visible (or irrelevant): the oracle can be exact
    else:
        def resampled():
            period, (pu, pv) = truth_spec.pattern_period, truth_spec.pattern_phase
            if "period" in hidden:
                period = float(rng.uniform(0.13, 0.17))
            pu = float(rng.uniform(0, 1)) if "pu" in hidden else pu
            pv = float(rng.uniform(0, 1)) if "pv" in hidden else pv
            return dataclasses.replace(truth_spec, pattern_period=period, pattern_phase=(pu, pv))
        draws = [render(resampled(), synth.size)[0].astype(np.float32) for _ in range(samples)]
    sharp = np.mean([np.abs(np.where(changed, d, x) - truth).mean() for d in draws])
    median = np.where(changed, np.median(np.stack(draws), axis=0), x)
    return {"input": float(np.abs(x - truth).mean()), "sharp": float(sharp),
            "median": float(np.abs(median - truth).mean()),
            "unobservable": float(len(draws) > 1)}


def main(argv):
    del argv
    synth = SynthFashion(FLAGS.seed, FLAGS.image_size)
    schema = synth.schema
    idx = np.arange(FLAGS.num_train, FLAGS.num_train + FLAGS.images)
    labels = np.stack([synth.spec(int(i)).labels() for i in idx])
    rng = np.random.default_rng(0)
    print("| attribute | edits | phase unobservable | MAE: change nothing | sharp oracle | "
          "median oracle |\n|---|---|---|---|---|---|")
    for r, attr in enumerate(schema.manipulated):
        targets = manipulation_targets(labels, schema, r)
        rows = [edit_floor(synth, int(i), attr.name, attr.values[int(t)], FLAGS.samples, rng)
                for i, t in zip(idx, targets)]
        mean = {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
        print(f"| {attr.name} | {len(rows)} | {100 * mean['unobservable']:.0f}% | "
              f"{mean['input']:.2f} | {mean['sharp']:.2f} | {mean['median']:.2f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
