"""How well can ANY pattern edit score against SynthFashion's counterfactual, when the pattern's
phase is not in the input?

    python benchmarks/pattern_phase_oracle.py [--images=300] [--draws=4]

SynthFashion draws each figure's pattern phase at random (figure coordinates); a counterfactual
keeps it. From a patterned input G can read the phase, from a plain one it cannot. This scores,
on evaluate's 300 counterfactual images and targets, a phase-blind oracle: the TRUE counterfactual
re-rendered with another random phase (everything else exact), against doing nothing, split by
whether the input is plain. If the oracle loses to doing nothing on plain inputs, "beats doing
nothing" by MAE is out of reach there for any model that draws a crisp pattern.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from absl import app, flags

from amgan_tf.data import synthfashion
from amgan_tf.data.synthfashion import SynthFashion, render
from amgan_tf.evaluation import manipulation_targets

flags.DEFINE_integer("images", 300, "Test images (evaluate's counterfactual set).")
flags.DEFINE_integer("draws", 4, "Random phases per image for the oracle.")
flags.DEFINE_integer("seed", 0, "SynthFashion seed (the quick start's).")
flags.DEFINE_integer("size", 64, "Image size (the quick start's).")
flags.DEFINE_integer("num_train", 12000, "Training examples: the test split starts after them.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    synth = SynthFashion(FLAGS.seed, FLAGS.size)
    schema = synthfashion.schema()
    r = [a.name for a in schema.manipulated].index("pattern")
    attr = schema.manipulated[r]
    idx = np.arange(FLAGS.num_train, FLAGS.num_train + FLAGS.images)
    labels = np.stack([synth.spec(int(i)).labels() for i in idx])
    targets = manipulation_targets(labels, schema, r)
    rng = np.random.default_rng(1)
    rows = {True: [], False: []}  # input plain? -> (oracle MAE, nothing MAE)
    for n, (i, t) in enumerate(zip(idx, targets)):
        spec = synth.spec(int(i))
        x = render(spec, FLAGS.size)[0].astype(np.float32)
        cf_spec = spec.replace(pattern=attr.values[int(t)])
        cf = render(cf_spec, FLAGS.size)[0].astype(np.float32)
        oracle = np.mean([np.abs(render(dataclasses.replace(
            cf_spec, pattern_phase=tuple(rng.uniform(0, 1, 2))), FLAGS.size)[0] - cf).mean()
            for _ in range(FLAGS.draws)])
        rows[spec.pattern == "plain"].append((oracle, np.abs(x - cf).mean()))
        if (n + 1) % 50 == 0:
            print(f"{n + 1}/{len(idx)} images", flush=True)
    print("| input | images | phase-blind oracle MAE | change nothing MAE |")
    print("|---|---|---|---|")
    for plain, name in ((True, "plain"), (False, "patterned")):
        a = np.array(rows[plain])
        print(f"| {name} | {len(a)} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} |")
    a = np.array(rows[True] + rows[False])
    print(f"| all | {len(a)} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} |")


if __name__ == "__main__":
    app.run(main)
