"""Does an edit keep the attributes it does not change, as the frozen attribute CNN sees them?
The signal `--lambda_keep` (L_keep) trains on, measured on a trained model before paying for a run.

    python benchmarks/other_attribute_drift.py --workdir=runs/quickstart [--images=300]

For evaluate's 300 counterfactual test figures and each manipulated attribute: L_keep (the sum
over the other heads of KL(CNN(x) || CNN(x*))) of the model's edit and of SynthFashion's true
counterfactual (what a perfect edit costs: the CNN is not perfectly invariant), and per other
head the share of images whose predicted value flips. L_keep can only help where the edit's
figure is well above the truth's. Pattern edits to "plain" are also shown alone (BUILD_NOTES.md:
the edit repaints the garment's base colour there).
"""

from __future__ import annotations

import numpy as np
from absl import app, flags

from amgan_tf import losses, trained
from amgan_tf.data.synthfashion import SynthFashion
from amgan_tf.evaluation import manipulate_batches, manipulation_targets
from amgan_tf.imaging import to_float

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained SynthFashion AMGAN workdir (with its CNN).")
flags.DEFINE_integer("images", 300, "Test figures (evaluate's counterfactual set).")
flags.mark_flag_as_required("workdir")


def main(argv):
    del argv
    model, cnn, train_config = trained.load_trained(FLAGS.workdir)
    if cnn is None:
        raise SystemExit(f"{FLAGS.workdir} was trained without the attribute CNN; nothing to ask.")
    config = train_config.data
    synth = SynthFashion(config.seed, config.image_size)
    schema, heads = model.schema, [a.name for a in cnn.schema.attributes]
    idx = np.arange(config.num_train, config.num_train + FLAGS.images)
    images, labels = zip(*(synth.example(int(i))[:2] for i in idx))
    images, labels = np.stack(images), np.stack(labels)
    print(f"{FLAGS.workdir}: {len(idx)} test figures; L_keep = sum over the other heads of "
          f"KL(CNN(x) || CNN(edit)); flips = predicted value changed")
    print("| edit | images | L_keep edit | L_keep truth | flips edit / truth per other head |")
    print("|---|---|---|---|---|")
    for r, attr in enumerate(schema.manipulated):
        targets = manipulation_targets(labels, schema, r)
        fake = np.zeros(images.shape, np.uint8)
        for out, _, sel in manipulate_batches(model, images, labels, r, targets):
            fake[sel] = out.numpy()
        truth = np.stack([synth.example(int(i), **{attr.name: attr.values[int(t)]})[0]
                          for i, t in zip(idx, targets)])
        logits = [cnn(to_float(a), training=False) for a in (images, fake, truth)]
        column = np.full(len(idx), cnn.schema.column(attr.name), np.int32)
        keep = [losses.keep_attributes_loss(logits[0], l, column, cnn.head_sizes).numpy()
                for l in logits[1:]]
        pred = [np.stack([np.argmax(h, -1) for h in cnn.split_logits(l)], -1) for l in logits]
        rows = [(attr.name, np.ones(len(idx), bool))]
        if attr.name == "pattern" and "plain" in attr.values:
            rows.append(("pattern -> plain", targets == attr.values.index("plain")))
        for name, sel in rows:
            if not sel.any():
                continue
            flips = ", ".join(
                f"{h} {np.mean(pred[1][sel, j] != pred[0][sel, j]):.2f} / "
                f"{np.mean(pred[2][sel, j] != pred[0][sel, j]):.2f}"
                for j, h in enumerate(heads) if h != attr.name)
            print(f"| {name} | {sel.sum()} | {keep[0][sel].mean():.3f} | {keep[1][sel].mean():.3f} "
                  f"| {flips} |")


if __name__ == "__main__":
    app.run(main)
