"""Where a region edit's change lands, on SynthFashion where the true region is known.

    python benchmarks/region_edits.py --workdir=runs/quickstart [--images=100]
        [--thresholds=0.3,0.5,0.7] [--edit=colour:orange] [--region=sleeve:sleeveless]

For test figures whose region edit changes something (e.g. figures with sleeves), the region is
the set of pixels the TRUE counterfactual of the region edit changes (grown by 1 px). For each
--region_threshold it reports the pixels changed by more than 2 levels per image, the share of
the total change inside the region, and the mean absolute change inside and outside it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import app, flags

from amgan_tf import trained
from amgan_tf.data.synthfashion import SynthFashion
from amgan_tf.metrics import changed_region

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained SynthFashion AMGAN workdir.")
flags.DEFINE_integer("images", 100, "Test figures to try (those the region edit leaves "
                     "unchanged are skipped).")
flags.DEFINE_list("thresholds", ["0.3", "0.5", "0.7"], "Region thresholds.")
flags.DEFINE_string("edit", "colour:orange", "attribute:value of the edit.")
flags.DEFINE_string("region", "sleeve:sleeveless", "attribute:value whose mask is the region.")
flags.mark_flag_as_required("workdir")


def main(argv):
    del argv
    model = trained.load_generator(FLAGS.workdir)
    config = model.config.data
    synth = SynthFashion(config.seed, config.image_size)
    edit, region = FLAGS.edit.split(":"), FLAGS.region.split(":")
    images, truth = [], []
    for i in range(config.num_train, config.num_train + FLAGS.images):
        image, _, _ = synth.example(i)
        cf, _, _ = synth.example(i, **{region[0]: region[1]})
        images.append(image)
        truth.append(cf)
    images = np.stack(images)
    truth = changed_region(images, np.stack(truth), grow=1)
    keep = truth.reshape(len(truth), -1).any(axis=1)
    images, truth = images[keep], truth[keep]
    n = len(images)
    m = tf.constant(np.repeat(model.schema.encode(*edit)[None], n, 0))
    m_region = tf.constant(np.repeat(model.schema.encode(*region)[None], n, 0))
    print(f"{FLAGS.edit} inside the mask of {FLAGS.region}, {n} test figures "
          f"(region: {truth.mean():.1%} of the pixels)")
    print("| region threshold | pixels changed > 2 levels per image | share of the change inside "
          "the region | MAE inside / outside |")
    print("|---|---|---|---|")
    for t in map(float, FLAGS.thresholds):
        out, _ = model.edit(images, m, m_region, t, True)
        d = np.abs(out.numpy().astype(float) - images.astype(float))
        total = d.sum(axis=-1)
        share = total[truth].sum() / max(total.sum(), 1e-9)
        changed = (d.max(axis=-1) > 2).sum(axis=(1, 2)).mean()
        print(f"| relative {t} | {changed:.0f} | {share:.2f} | {d[truth].mean():.2f} / "
              f"{d[~truth].mean():.2f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
