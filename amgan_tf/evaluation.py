"""Manipulation quality as the paper measures it: the attribute CNN judges manipulated images.

Classification accuracy (PAPER.md, Evaluation): each test image is manipulated to a target value of
attribute r; the frozen attribute CNN predicts attribute r of the result; accuracy is the share
equal to the target, per attribute and averaged. Targets are spread deterministically over all
other values so runs and methods are compared on the same edits.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from amgan_tf import metrics
from amgan_tf.attributes import MISSING, AttributeSchema
from amgan_tf.edit import REGION_THRESHOLD, apply_edit
from amgan_tf.imaging import to_float
from amgan_tf.visualize import labelled_grid, mask_rgb


def manipulation_targets(labels: np.ndarray, schema: AttributeSchema, r: int) -> np.ndarray:
    """Target value of attribute r for each example: every other value in turn (-1 if unlabelled)."""
    col = schema.manipulated_columns[r]
    k = schema.block_sizes[r]
    c_org = labels[:, col]
    shift = 1 + np.arange(len(labels)) % (k - 1)
    return np.where(c_org == MISSING, MISSING, (c_org + shift) % k).astype(np.int32)


def manipulate_batches(model, images: np.ndarray, labels: np.ndarray, r: int,
                       targets: np.ndarray, batch_size: int = 64):
    """Yield (edited uint8 images, attention, index slice) for examples with a known target,
    edited by the same `apply_edit` as the CLI and the exports (CAM attention, if configured,
    uses the images' true labels)."""
    schema = model.schema
    col = schema.manipulated_columns[r]
    keep = np.flatnonzero(targets != MISSING)
    for lo in range(0, len(keep), batch_size):
        idx = keep[lo:lo + batch_size]
        m = tf.constant(schema.encode_batch(np.full(len(idx), r), targets[idx]))
        r_vec, c_of_x = tf.fill([len(idx)], r), tf.constant(labels[idx, col], tf.int32)

        def generate(x, m):
            return model.generate(x, m, r_vec, c_of_x)[1:]

        out, a = apply_edit(generate, images[idx], m, int(images.shape[1]),
                            attention_floor=model.attention_floor)
        yield out, a, idx


def manipulation_accuracy(model, judge, images: np.ndarray, labels: np.ndarray,
                          batch_size: int = 64) -> dict[str, float]:
    """Per manipulated attribute: share of manipulated images that `judge` classifies as the target;
    'mean' averages over attributes."""
    schema = model.schema
    out = {}
    for r, attr in enumerate(schema.manipulated):
        judge_col = judge.schema.column(attr.name)
        targets = manipulation_targets(labels, schema, r)
        predicted = np.full(len(labels), MISSING, np.int32)
        for x_fake, _, idx in manipulate_batches(model, images, labels, r, targets, batch_size):
            predicted[idx] = judge.predict_labels(to_float(x_fake)).numpy()[:, judge_col]
        out[attr.name] = metrics.classification_accuracy(predicted, targets)
    out["mean"] = float(np.mean([out[a.name] for a in schema.manipulated]))
    return out


def unchanged_accuracy(judge, schema, images: np.ndarray, labels: np.ndarray,
                       batch_size: int = 256) -> dict[str, float]:
    """The "change nothing" row of `manipulation_accuracy`: how often `judge` already sees the
    target value in the unedited input."""
    predicted = np.concatenate([judge.predict_labels(to_float(images[lo:lo + batch_size])).numpy()
                                for lo in range(0, len(images), batch_size)])
    out = {}
    for r, attr in enumerate(schema.manipulated):
        targets = manipulation_targets(labels, schema, r)
        out[attr.name] = metrics.classification_accuracy(
            predicted[:, judge.schema.column(attr.name)], targets)
    out["mean"] = float(np.mean([out[a.name] for a in schema.manipulated]))
    return out


def judge_features(judge, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The judge's avg-pool features [N, D] of uint8 images (retrieval, FID, KID)."""
    return np.concatenate([
        judge.features(to_float(images[lo:lo + batch_size]), training=False)["avgpool"].numpy()
        for lo in range(0, len(images), batch_size)]) if len(images) else np.zeros((0, 0))


def retrieval_and_realism(model, judge, images: np.ndarray, labels: np.ndarray,
                          ks=range(1, 31), batch_size: int = 64, seed: int = 0) -> dict:
    """The paper's top-k retrieval and FID/KID, on the judge's avg-pool features.

    A seeded random half of `images` is the gallery and the real set (not the first half: a split
    stored class by class, as a folder layout is, would leave the gallery one class); the other
    half is edited (every manipulated attribute, targets as in `manipulation_targets`) into the
    queries. A query hits
    at k when one of its k nearest gallery images has exactly the wanted labels: the input's, with
    the edited attribute set to its target (every labelled attribute counts, the reference-only
    ones too, as in the paper). The unedited queries are the "change nothing" row; their FID to
    the gallery is the floor set by two halves of the same split."""
    schema = model.schema
    half = len(images) // 2
    order = np.random.default_rng(seed).permutation(len(images))
    gallery, g_labels = images[order[:half]], labels[order[:half]]
    queries, q_labels = images[order[half:]], labels[order[half:]]
    g_feat, q_feat = judge_features(judge, gallery), judge_features(judge, queries)
    out = {"gallery_images": half, "query_images": len(queries), "retrieval": {}}
    edited = []
    for r, attr in enumerate(schema.manipulated):
        targets = manipulation_targets(q_labels, schema, r)
        keep = targets != MISSING
        wanted = q_labels.copy()
        wanted[:, schema.manipulated_columns[r]] = targets
        fake = np.zeros_like(queries)
        for x_fake, _, idx in manipulate_batches(model, queries, q_labels, r, targets,
                                                 batch_size):
            fake[idx] = x_fake.numpy()
        f_feat = judge_features(judge, fake[keep])
        edited.append(f_feat)
        out["retrieval"][attr.name] = {
            "model": metrics.retrieval_hits(f_feat, wanted[keep], g_feat, g_labels, ks),
            "input": metrics.retrieval_hits(q_feat[keep], wanted[keep], g_feat, g_labels, ks),
            # share of queries whose wanted labels exist in the gallery at all: the best any
            # method can reach
            "ceiling": metrics.retrieval_ceiling(wanted[keep], g_labels)}
    edited = np.concatenate(edited)
    out["fid"] = {"model": metrics.frechet_distance(edited, g_feat),
                  "input": metrics.frechet_distance(q_feat, g_feat)}
    kid_model, kid_input = (metrics.kernel_distance(f, g_feat, seed=seed) for f in (edited, q_feat))
    out["kid"] = {"model": kid_model[0], "model_std": kid_model[1], "input": kid_input[0],
                  "input_std": kid_input[1]}
    return out


def region_edit_vectors(model, edit: tuple[str, str], region: tuple[str, str]):
    """(m, m_region) of a region edit; a clear error for unknown names or a CAM-attention model,
    so callers can check before any work."""
    if getattr(getattr(model, "config", None), "attention_source", "generator") == "cam":
        raise ValueError("Region edits need a learned attention mask; this model uses the CAM.")
    return model.schema.encode(*edit), model.schema.encode(*region)


def region_edit(model, images: np.ndarray, edit: tuple[str, str], region: tuple[str, str],
                threshold: float = REGION_THRESHOLD):
    """(uint8 edited images, mask): `edit` (attribute, value) applied only inside the mask of
    `region` (attribute, value), by the same `apply_edit` as the CLI (Eq. 12). Needs the model's
    own attention: a CAM-attention model's mask does not depend on the target."""
    m, m_region = (tf.constant(np.repeat(v[None], len(images), 0))
                   for v in region_edit_vectors(model, edit, region))
    return apply_edit(lambda x, mm: model.generate(x, mm)[1:], images, m, int(images.shape[1]),
                      m_region, threshold, True, attention_floor=model.attention_floor)


def sample_sheet(model, images: np.ndarray, labels: np.ndarray, scale: int = 2,
                 region_edits=()):
    """Rows of (input, then the input manipulated to every value of every attribute, then each
    region edit ((attribute, value), (region attribute, region value))), each followed by a row
    of the attention masks; captions name the target."""
    schema = model.schema
    n = len(images)
    targets = [(r, v) for r, a in enumerate(schema.manipulated) for v in range(len(a.values))]
    tiles, captions = [], []
    results, names = [], []
    for r, v in targets:
        x_fake, a, _ = next(manipulate_batches(model, images, labels, r,
                                               np.full(n, v, np.int32), batch_size=n))
        results.append((x_fake.numpy(), a.numpy()[..., 0]))
        names.append(schema.manipulated[r].values[v][:8])
    for edit, region in region_edits:
        x_fake, a = region_edit(model, images, edit, region)
        results.append((x_fake.numpy(), a.numpy()[..., 0]))
        names.append(f"{edit[1][:6]} in {region[1][:6]}")
    blank = np.full_like(images[0], 255)
    for i in range(n):
        tiles.append(images[i])
        captions.append(["input"])
        for name, (fake, _) in zip(names, results):
            tiles.append(fake[i])
            captions.append([name])
        tiles.append(blank)
        captions.append(["mask"])
        for _, att in results:
            tiles.append(mask_rgb(att[i]))
            captions.append([""])
    return labelled_grid(np.stack(tiles), captions, cols=1 + len(results), scale=scale,
                         font_size=9)


def counterfactual_error(model, synth, indices, batch_size: int = 64,
                         mask_threshold: float = 0.5) -> dict[str, dict]:
    # `synth` is an amgan_tf.data.synthfashion.SynthFashion of the training seed and size.
    """SynthFashion only: how far manipulated images are from the TRUE counterfactuals.

    For example i and attribute r (targets as in `manipulation_targets`), SynthFashion renders the
    same figure with only that attribute changed. Per attribute, for the manipulated image
    ('amgan') and the unchanged input ('input', the do-nothing baseline) against it:
    - mean absolute error in [0, 255] units, overall and 'outside' the union of the garment and
      arm masks of both renderings;
    - 'outside_changed': the error outside the truly changed region (pixels the counterfactual
      changes, grown by 1 px for the antialiased edge), where a perfect edit changes nothing;
    - PSNR and SSIM (per image, averaged);
    - 'attention': the mask's IoU, precision and recall against the truly changed region at
      `mask_threshold`, and the best IoU over thresholds (pooled over pixels)."""
    schema = model.schema
    images, labels, masks = [], [], []
    for i in indices:
        image, label, mask = synth.example(int(i))
        images.append(image)
        labels.append(label)
        masks.append(np.maximum(mask["garment"], mask["arm"]))
    images, labels, masks = np.stack(images), np.stack(labels), np.stack(masks)
    out = {}
    for r, attr in enumerate(schema.manipulated):
        targets = manipulation_targets(labels, schema, r)
        cf, cf_mask = [], []
        for i, t in zip(indices, targets):
            image, _, mask = synth.example(int(i), **{attr.name: attr.values[int(t)]})
            cf.append(image)
            cf_mask.append(np.maximum(mask["garment"], mask["arm"]))
        cf, cf_mask = np.stack(cf).astype(np.float32), np.stack(cf_mask)
        fake = np.empty_like(cf)
        attention = np.zeros(cf.shape[:3], np.float32)
        for x_fake, a, idx in manipulate_batches(model, images, labels, r, targets, batch_size):
            fake[idx] = x_fake.numpy()
            attention[idx] = a.numpy()[..., 0]
        outside = (np.maximum(masks, cf_mask) == 0)[..., None]
        err = np.abs(fake - cf)
        base = np.abs(images.astype(np.float32) - cf)
        n_out = np.maximum(outside.sum() * 3, 1)
        changed = metrics.changed_region(images, cf)
        unchanged = ~metrics.dilate(changed, 1)[..., None]
        n_unchanged = np.maximum(unchanged.sum() * 3, 1)
        best_iou, best_threshold = metrics.best_threshold_iou(attention, changed)
        out[attr.name] = {
            "amgan": float(err.mean()), "input": float(base.mean()),
            "amgan_outside": float((err * outside).sum() / n_out),
            "input_outside": float((base * outside).sum() / n_out),
            "amgan_outside_changed": float((err * unchanged).sum() / n_unchanged),
            "input_outside_changed": float((base * unchanged).sum() / n_unchanged),
            "psnr": {"amgan": float(metrics.psnr(fake, cf).mean()),
                     "input": float(metrics.psnr(images, cf).mean())},
            "ssim": {"amgan": float(metrics.ssim(fake, cf).mean()),
                     "input": float(metrics.ssim(images, cf).mean())},
            "attention": {"threshold": mask_threshold,
                          **metrics.mask_scores(attention, changed, mask_threshold),
                          "best_iou": best_iou, "best_threshold": best_threshold},
            "changed_share": float(changed.mean())}
    return out


def markdown_report(report: dict) -> str:
    """`amgan_tf.evaluate`'s report as a Markdown table per attribute, with the do-nothing
    baseline (the unchanged input) beside the model in every column where it has a value."""
    lines = []
    acc = [("training CNN", report.get("accuracy_training_cnn")),
           ("training CNN, change nothing", report.get("accuracy_training_cnn_change_nothing")),
           ("independent judge", report.get("accuracy_independent_judge")),
           ("independent judge, change nothing",
            report.get("accuracy_independent_judge_change_nothing"))]
    acc = [(name, a) for name, a in acc if a]
    if acc:
        attrs = [k for k in acc[0][1] if k != "mean"]
        lines += [f"Manipulation accuracy ({report['test_images']} test images):", "",
                  "| judge | " + " | ".join(attrs) + " | mean |",
                  "|---|" + "---|" * (len(attrs) + 1)]
        lines += [f"| {name} | " + " | ".join(f"{100 * a[k]:.1f}%" for k in attrs)
                  + f" | {100 * a['mean']:.1f}% |" for name, a in acc]
    cf = report.get("counterfactual_mean_abs_error")
    if cf:
        first = next(iter(cf.values()))
        t = first["attention"]["threshold"]
        lines += ["", f"Against SynthFashion's true counterfactuals "
                      f"({report.get('counterfactual_images', '?')} test images; model / change "
                      f"nothing; MAE in 0-255 levels):", "",
                  "| attribute | MAE | MAE outside the truly changed region | PSNR dB | SSIM | "
                  f"attention IoU (a >= {t}) | precision / recall | best IoU (threshold) |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, e in cf.items():
            a = e["attention"]
            lines.append(
                f"| {name} | {e['amgan']:.2f} / {e['input']:.2f} | "
                f"{e['amgan_outside_changed']:.2f} / {e['input_outside_changed']:.2f} | "
                f"{e['psnr']['amgan']:.2f} / {e['psnr']['input']:.2f} | "
                f"{e['ssim']['amgan']:.3f} / {e['ssim']['input']:.3f} | {a['iou']:.3f} / 0 | "
                f"{a['precision']:.3f} / {a['recall']:.3f} | "
                f"{a['best_iou']:.3f} ({a['best_threshold']:.2f}) |")
    rr = report.get("retrieval_realism")
    if rr:
        curves = {name: {w: {int(k): v for k, v in r[w].items()} for w in ("model", "input")}
                  for name, r in rr["retrieval"].items()}  # keys are strings after JSON
        ks = [k for k in (1, 5, 10, 30) if k in next(iter(curves.values()))["model"]]
        lines += ["", f"Top-k retrieval ({rr['query_images']} edited queries against a gallery of "
                      f"{rr['gallery_images']} real test images, the independent judge's avg-pool "
                      f"features; model / change nothing):", "",
                  "| attribute | " + " | ".join(f"top-{k}" for k in ks)
                  + " | ceiling (wanted labels in the gallery) |",
                  "|---|" + "---|" * (len(ks) + 1)]
        for name, c in curves.items():
            m, i = c["model"], c["input"]
            lines.append(f"| {name} | " + " | ".join(f"{100 * m[k]:.1f} / {100 * i[k]:.1f}%"
                                                    for k in ks)
                         + f" | {100 * rr['retrieval'][name]['ceiling']:.1f}% |")
        lines += ["", "Realism against the gallery (the judge's avg-pool features, not Inception: "
                      "its weights cannot be downloaded here, so these are not comparable with "
                      "published FIDs):", "",
                  "| | FID | KID x 1000 |", "|---|---|---|",
                  f"| model | {rr['fid']['model']:.3f} | {1000 * rr['kid']['model']:.2f} "
                  f"+- {1000 * rr['kid']['model_std']:.2f} |",
                  f"| change nothing | {rr['fid']['input']:.3f} | "
                  f"{1000 * rr['kid']['input']:.2f} +- {1000 * rr['kid']['input_std']:.2f} |"]
    return "\n".join(lines) + "\n"
