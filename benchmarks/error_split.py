"""Where a model's edits of one attribute lose to doing nothing: evaluate's counterfactual error
split by the input's and the target's value, beside what simple phase-blind answers would score.

    python benchmarks/error_split.py --workdir=runs/quickstart [--attribute=pattern] [--images=300]

On evaluate's counterfactual images and targets (the same 300 test figures), per
(input value -> target value) pair, MAE (0-255) against SynthFashion's counterfactual of:
- the model's edit;
- doing nothing;
- the model's edit with the truly changed region filled by the edit's own mean colour there
  (its colour right, its pattern dropped): if this beats the model, the drawn pattern costs more
  than it earns;
- the oracle: the true counterfactual re-rendered at another random pattern phase (a crisp,
  correct pattern that cannot see the phase).
And inside the truly changed region: the luminance contrast (std) of the model's edit and of the
truth, and the per-image mean-colour error (what a colour bias alone would cost).
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
from absl import app, flags

from amgan_tf import trained
from amgan_tf.data.synthfashion import SynthFashion, render
from amgan_tf.evaluation import manipulate_batches, manipulation_targets
from amgan_tf.metrics import changed_region

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained SynthFashion AMGAN workdir.")
flags.DEFINE_string("attribute", "pattern", "The manipulated attribute to split.")
flags.DEFINE_integer("images", 300, "Test figures (evaluate's counterfactual set).")
flags.mark_flag_as_required("workdir")

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def main(argv):
    del argv
    model, _, train_config = trained.load_trained(FLAGS.workdir)
    config = train_config.data
    synth = SynthFashion(config.seed, config.image_size)
    schema = model.schema
    names = [a.name for a in schema.manipulated]
    if FLAGS.attribute not in names:
        raise SystemExit(f"--attribute={FLAGS.attribute!r} is not manipulated by this model; "
                         f"choose one of {', '.join(names)}.")
    r = names.index(FLAGS.attribute)
    attr = schema.manipulated[r]
    idx = np.arange(config.num_train, config.num_train + FLAGS.images)
    images, labels = zip(*(synth.example(int(i))[:2] for i in idx))
    images, labels = np.stack(images), np.stack(labels)
    targets = manipulation_targets(labels, schema, r)
    fake = np.zeros(images.shape, np.float32)
    for out, _, sel in manipulate_batches(model, images, labels, r, targets):
        fake[sel] = out.numpy()
    rng = np.random.default_rng(1)
    rows = collections.defaultdict(list)
    for n, (i, t) in enumerate(zip(idx, targets)):
        spec = synth.spec(int(i))
        cf_spec = spec.replace(**{attr.name: attr.values[int(t)]})
        x = images[n].astype(np.float32)
        cf = render(cf_spec, config.image_size)[0].astype(np.float32)
        y = fake[n]
        region = changed_region(x[None], cf[None], grow=1)[0]
        filled = y.copy()
        if region.any():
            filled[region] = y[region].mean(axis=0)
        oracle = render(dataclasses.replace(cf_spec, pattern_phase=tuple(rng.uniform(0, 1, 2))),
                        config.image_size)[0].astype(np.float32)
        luma_y, luma_cf = y[region] @ LUMA, cf[region] @ LUMA
        bias = (np.abs(y[region].mean(axis=0) - cf[region].mean(axis=0)).mean()
                * region.mean() if region.any() else 0.0)
        rows[(getattr(spec, attr.name), attr.values[int(t)])].append((
            np.abs(y - cf).mean(), np.abs(x - cf).mean(), np.abs(filled - cf).mean(),
            np.abs(oracle - cf).mean(),
            luma_y.std() if region.any() else 0.0, luma_cf.std() if region.any() else 0.0, bias))
    print(f"{FLAGS.workdir}: {attr.name} edits of {len(idx)} test figures, MAE to the counterfactual")
    print("| input -> target | images | model | nothing | model, region filled with its mean | "
          "oracle (random phase) | contrast model / truth | mean-colour error |")
    print("|---|---|---|---|---|---|---|---|")
    every = []
    for (source, target), values in sorted(rows.items()):
        a = np.array(values)
        every.append(a)
        print(f"| {source} -> {target} | {len(a)} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} | "
              f"{a[:, 2].mean():.2f} | {a[:, 3].mean():.2f} | {a[:, 4].mean():.1f} / "
              f"{a[:, 5].mean():.1f} | {a[:, 6].mean():.2f} |")
    a = np.concatenate(every)
    print(f"| all | {len(a)} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} | {a[:, 2].mean():.2f} "
          f"| {a[:, 3].mean():.2f} | {a[:, 4].mean():.1f} / {a[:, 5].mean():.1f} | "
          f"{a[:, 6].mean():.2f} |")


if __name__ == "__main__":
    app.run(main)
