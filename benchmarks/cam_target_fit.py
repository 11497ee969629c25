"""How well the CAM attention target a* fits the region a perfect edit changes (SynthFashion).

    python benchmarks/cam_target_fit.py --classifier_workdir=runs/quickstart/classifier
        [--images=300] [--sharpness=1,2,4] [--binary=0.2,0.4] [--workdir=runs/quickstart]

L_a pulls G's attention towards a*, the CAM of the input's current value, normalised to [0, 1].
If a* itself leaks outside the truly changed region, so will the attention. For each manipulated
attribute and each target sharpness s (the normalised CAM raised to the power s) this prints the
L1 distance to the true region (what L_a measures), the IoU at 0.5 and at the best threshold, and
the mean target value inside the region (how much of a change the blend lets through there) and
outside it (the leak); --binary adds binary targets (CAM >= t). With --workdir it adds the
trained G's own attention as a row, for comparison. Rows with "the target on the truth" add the
CAM of the target value on the true counterfactual (the edit region --lambda_out uses, for a
perfect edit).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import app, flags

from amgan_tf import metrics, trained
from amgan_tf.data.synthfashion import SynthFashion
from amgan_tf.evaluation import manipulation_targets
from amgan_tf.models.amgan import edit_region
from amgan_tf.models.attribute_cnn import load_attribute_cnn

FLAGS = flags.FLAGS
flags.DEFINE_string("classifier_workdir", None, "The attribute CNN's training workdir.")
flags.DEFINE_string("workdir", None, "Optional trained AMGAN workdir: adds its attention.")
flags.DEFINE_integer("images", 300, "Test figures per attribute.")
flags.DEFINE_integer("seed", 0, "SynthFashion seed of the training data.")
flags.DEFINE_integer("image_size", 64, "SynthFashion image size.")
flags.DEFINE_integer("num_train", 12000, "Training figures (test figures follow them).")
flags.DEFINE_list("sharpness", ["1", "2", "4"], "Powers applied to the normalised CAM.")
flags.DEFINE_list("binary", [], "Thresholds t of binary targets CAM >= t.")
flags.mark_flag_as_required("classifier_workdir")


def _row(name, maps, truth):
    best_iou, best_t = metrics.best_threshold_iou(maps, truth)
    scores = metrics.mask_scores(maps, truth, 0.5)
    l1 = float(np.abs(maps - truth).mean())
    leak = float(maps[~metrics.dilate(truth, 1)].mean())
    print(f"| {name} | {l1:.3f} | {scores['iou']:.2f} | {best_iou:.2f} at {best_t:.2f} | "
          f"{float(maps[truth].mean()):.2f} | {leak:.3f} |")


def main(argv):
    del argv
    cnn = load_attribute_cnn(FLAGS.classifier_workdir)
    model = trained.load_generator(FLAGS.workdir) if FLAGS.workdir else None
    synth = SynthFashion(FLAGS.seed, FLAGS.image_size)
    indices = range(FLAGS.num_train, FLAGS.num_train + FLAGS.images)
    examples = [synth.example(i) for i in indices]
    images = np.stack([e[0] for e in examples])
    labels = np.stack([e[1] for e in examples])
    schema = cnn.schema
    x = tf.constant(images.astype(np.float32) / 127.5 - 1.0)
    for r, attr in enumerate(schema.manipulated):
        targets = manipulation_targets(labels, schema, r)
        col = schema.manipulated_columns[r]
        truths = np.stack([synth.example(i, **{attr.name: attr.values[int(t)]})[0]
                           for i, t in zip(indices, targets)])
        truth = metrics.changed_region(images, truths)
        cam = cnn.cam(x, col, labels[:, col]).numpy()
        # --lambda_out's region: also the CAM of the TARGET value on the edited image (here the
        # true counterfactual, i.e. a perfect edit), grown.
        x_true = tf.constant(truths.astype(np.float32) / 127.5 - 1.0)
        cam_trg = cnn.cam(x_true, col, targets).numpy()
        union = np.maximum(cam, cam_trg)
        region = edit_region(cam, cam_trg, FLAGS.image_size).numpy()[..., 0]
        print(f"\n{attr.name}: {len(images)} test figures, truly changed region "
              f"{truth.mean():.1%} of the pixels")
        print("| target | L1 to the true region | IoU at 0.5 | best IoU | mean inside | "
              "mean outside |")
        print("|---|---|---|---|---|---|")
        for s in map(float, FLAGS.sharpness):
            _row(f"CAM^{s:g}", cam ** s, truth)
            _row(f"max(CAM, CAM of the target on the truth)^{s:g}", union ** s, truth)
        for t in map(float, FLAGS.binary):
            _row(f"CAM >= {t:g}", (cam >= t).astype(np.float32), truth)
        _row("L_out region (that max, grown)", region, truth)
        print(f"L_out weight (1 - region) on truly changed pixels: {(1 - region)[truth].mean():.3f}"
              f", elsewhere: {(1 - region)[~metrics.dilate(truth, 1)].mean():.3f}")
        if model is not None:
            m = model.schema.encode_batch(np.full(len(targets), r), targets)
            a, _ = model.attention_and_colour(x, tf.constant(m))
            _row(f"G attention ({FLAGS.workdir})", a.numpy()[..., 0], truth)


if __name__ == "__main__":
    app.run(main)
