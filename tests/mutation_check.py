"""Mutation check: does the suite notice when the training maths or the tools are wired wrong?

    .venv/bin/python tests/mutation_check.py [--only NAME,NAME] [--list] [--keep]

Each mutation is a named one-line bug (an exact string in one file and its replacement). For
each, the tracked tree is copied to a temporary folder, the bug applied there, and the tests that
guard that code are run on the copy; a mutation is CAUGHT when at least one test fails (pytest
exit 1). Other exits (collection errors, a string no longer found) are reported as ERROR, never as
caught. A mutant that cannot change behaviour is listed with the reason, and reported EQUIV once
its tests are seen to pass on it. Not part of the default CI run (about 25 minutes on 2 cores);
see BUILD_NOTES.md. Exit status: 0 when every other mutation is caught.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIRING = "tests/test_train_step_wiring.py"
RESUME = "tests/test_train.py::test_killed_run_resumes_exactly_like_an_uninterrupted_one"
REGION = "tests/test_manipulate_region.py"
SYNTH = "tests/test_synthfashion.py"
JUDGE = "tests/test_train.py::test_evaluate_binary_uses_the_independent_judge"
REPLICAS = "tests/test_amgan.py::test_mirrored_two_replicas_equal_one"
CAMS = "tests/test_cam_eval.py::test_report_scores_the_cam_of_the_true_value"
EXPORT = "tests/test_export.py"
SERVING = "tests/test_serving.py"
FAULTS = "tests/test_fault_tolerance.py"
METRICS = "tests/test_metrics.py"
PREFERENCE = "tests/test_preference.py"


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    # Set when the "bug" cannot change behaviour (an equivalent mutant): the reason, and the
    # tests must PASS on it (that is checked), since no test can tell it from the original.
    equivalent: str = ""


MUTATIONS = (
    # ---- fault tolerance (issue 12) ----------------------------------------------------------
    Mutation("restore_tries_only_the_newest", "amgan_tf/loop.py",
             "            continue\n        if damaged and quarantine:",
             "            break\n        if damaged and quarantine:",
             (FAULTS + "::test_damaged_newest_checkpoint_falls_back_to_the_previous_one",)),
    Mutation("all_damaged_starts_from_scratch", "amgan_tf/loop.py",
             "    if damaged:\n        listing", "    if False:\n        listing",
             (FAULTS + "::test_every_checkpoint_damaged_refuses_to_start_from_scratch",)),
    Mutation("settings_changes_not_refused", "amgan_tf/loop.py",
             "        if diffs:\n            raise", "        if False:\n            raise",
             (FAULTS + "::test_other_settings_and_damaged_config_are_refused",
              FAULTS + "::test_claim_workdir_lists_every_difference")),
    Mutation("partial_checkpoint_left_after_failed_write", "amgan_tf/loop.py",
             'for partial in _files_of(prefix) + glob.glob(glob.escape(prefix) + "_temp*"):',
             "for partial in []:",
             (FAULTS + "::test_full_disk_while_saving_keeps_the_previous_checkpoint",)),
    Mutation("non_finite_not_checked", "amgan_tf/loop.py",
             "        check_finite(logs, s, checkpoints.latest, advice)", "        pass",
             ("tests/test_train.py::test_non_finite_loss_stops_and_keeps_last_checkpoint",)),
    Mutation("bomb_error_not_caught", "amgan_tf/imaging.py",
             "except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:",
             "except Image.DecompressionBombWarning as e:",
             (FAULTS + "::test_damaged_images_are_skipped_counted_and_labels_stay_attached",)),
    Mutation("cam_target_power_ignored", "amgan_tf/models/amgan.py",
             "a_star = a_star ** cfg.cam_target_power", "a_star = a_star",
             (WIRING + "::test_sharpened_cam_target",)),
    Mutation("cam_target_threshold_ignored", "amgan_tf/models/amgan.py",
             "a_star = tf.cast(a_star >= cfg.cam_target_threshold, a_star.dtype)",
             "a_star = a_star", (WIRING + "::test_binary_cam_target",)),
    Mutation("edit_region_without_the_target_cam", "amgan_tf/models/amgan.py",
             "tf.maximum(cam_org, cam_trg)[..., None]", "cam_org[..., None]", (WIRING + "::test_outside_change_term",)),
    Mutation("edit_region_not_grown", "amgan_tf/models/amgan.py",
             "grow = 2 * (image_size // 32) + 1", "grow = 1",
             (WIRING + "::test_outside_change_term",)),
    Mutation("keep_loss_counts_the_changed_attribute", "amgan_tf/losses.py",
             "total += tf.where(column == i, tf.zeros_like(kl), kl)", "total += kl",
             ("tests/test_losses.py::test_keep_attributes_loss_is_the_kl_of_the_unchanged_heads",
              WIRING + "::test_keep_attributes_term")),
    Mutation("keep_loss_compares_the_input_with_itself", "amgan_tf/models/amgan.py",
             'f_real["logits"], f_fake["logits"], tf.gather', 'f_real["logits"], f_real["logits"], tf.gather',
             (WIRING + "::test_keep_attributes_term",)),
    Mutation("keep_loss_unweighted", "amgan_tf/losses.py",
             '"keep": "lambda_keep"}', '"keep": None}', (WIRING + "::test_keep_attributes_term",)),
    Mutation("error_split_pairs_by_the_target_only", "benchmarks/error_split.py",
             "rows[(getattr(spec, attr.name), attr.values[int(t)])]",
             "rows[(attr.values[int(t)], attr.values[int(t)])]",
             ("tests/test_diagnostics.py::test_error_split_counts_every_figure_and_scores_doing_nothing",)),
    Mutation("error_split_nothing_is_the_edit", "benchmarks/error_split.py",
             "np.abs(y - cf).mean(), np.abs(x - cf).mean(),", "np.abs(y - cf).mean(), np.abs(y - cf).mean(),",
             ("tests/test_diagnostics.py::test_error_split_counts_every_figure_and_scores_doing_nothing",)),
    Mutation("outside_loss_counts_inside", "amgan_tf/losses.py",
             "keep = 1.0 - _as_map(_f32(region))[..., None]",
             "keep = _as_map(_f32(region))[..., None]",
             ("tests/test_losses.py::test_outside_change_loss_counts_only_the_change_outside_the_region",)),
    Mutation("region_example_edits_outside", "amgan_tf/evaluation.py",
             "m_region, threshold, True)", "m_region, threshold, False)",
             ("tests/test_evaluation.py::test_region_edit_of_a_perfect_model_recolours_only_the_sleeves",)),
    Mutation("evaluate_classifier_ignores_the_recorded_data", "amgan_tf/evaluate_classifier.py",
             "flags_common.dataset_config(FLAGS, _recorded_data(FLAGS.workdir))",
             "flags_common.dataset_config(FLAGS)",
             ("tests/test_own_photos.py::test_attribute_cnn_trains_on_the_mapped_folders_and_is_evaluated_on_them",)),
    # ---- evaluation metrics and the preference tool (issue 11) -------------------------------
    Mutation("comparison_retrains_finished_runs", "benchmarks/comparison.py",
             'return "wall_seconds_this_run" in json.load(f)', "return False",
             ("tests/test_comparison.py",)),
    Mutation("comparison_record_ignores_settings", "benchmarks/comparison.py",
             "text = json.dumps([_expanded(args), ", "text = json.dumps([[], ",
             ("tests/test_comparison.py",)),
    Mutation("comparison_kept_classifiers_not_restored", "benchmarks/comparison.py",
             "if classifier_lib.is_trained(workdir) or not os.path.isdir(kept):",
             "if True:", ("tests/test_comparison.py",)),
    Mutation("subpixel_phase_taps_swapped", "amgan_tf/models/networks.py",
             "taps = ((3, 1), (2, 0))", "taps = ((3, 1), (0, 2))",
             ("tests/test_amgan.py::test_subpixel_form_of_the_transposed_convolution_is_exact",
              "tests/test_export_portable.py::test_tfjs_in_node_equals_the_saved_model")),
    Mutation("edit_ignores_training_resize", "amgan_tf/edit.py",
             "x = to_float(resize_images(images, size, resize))",
             'x = to_float(resize_images(images, size, "pad"))',
             ("tests/test_manipulate_region.py::test_edits_see_and_map_back_the_image_as_training_did",
              "tests/test_export.py::test_exports_edit_as_the_training_data_was_resized")),
    Mutation("stale_checkpoint_state_kept", "amgan_tf/loop.py",
             "elif os.path.basename(listed.model_checkpoint_path) != os.path.basename(found[0]):",
             "elif False:",
             ("tests/test_fault_tolerance.py::test_state_file_behind_the_newest_checkpoint_is_updated",)),
    Mutation("retrieval_gallery_first_half", "amgan_tf/evaluation.py",
             "order = np.random.default_rng(seed).permutation(len(images))",
             "order = np.arange(len(images))",
             ("tests/test_evaluation.py::test_retrieval_gallery_is_a_random_half_even_of_a_class_ordered_split",)),
    Mutation("residual_colour_head_ignores_input", "amgan_tf/models/networks.py",
             "h = h + _atanh(tf.clip_by_value(x, -1.0 + 1e-3, 1.0 - 1e-3))", "h = h",
             ("tests/test_amgan.py::test_residual_colour_head_starts_as_the_input",)),
    Mutation("auto_precision_ignores_the_cpu", "amgan_tf/precision.py",
             'return "mixed_bfloat16" if flags & set(BF16_CPU_FLAGS) else "float32"',
             'return "mixed_bfloat16"', ("tests/test_precision.py",)),
    Mutation("tf_context_started_before_the_strategy", "amgan_tf/runtime.py",
             "    try:\n        result = body()",
             "    tune_malloc()\n    try:\n        result = body()",
             ("tests/test_multiworker.py",)),
    Mutation("fused_heads_swap_channels", "amgan_tf/models/networks.py",
             "return out[..., :3], out[..., 3:]", "return out[..., 1:], out[..., :1]",
             ("tests/test_amgan.py::test_fused_heads_equal_the_two_head_layers",)),
    Mutation("unet_skip_from_the_wrong_level", "amgan_tf/models/networks.py",
             "y = tf.concat([y, encoded[-1]], axis=-1)", "y = tf.concat([y, encoded[0]], axis=-1)",
             ("tests/test_amgan.py::test_unet_skips_carry_the_encoder_levels_to_the_decoder",)),
    Mutation("retrieval_k_off_by_one", "amgan_tf/metrics.py",
             "float((first_hit < k).mean())", "float((first_hit <= k).mean())",
             (METRICS + "::test_retrieval_hits_on_a_toy_gallery",)),
    Mutation("fid_without_cross_term", "amgan_tf/metrics.py",
             "np.trace(sa + sb - 2 * root)", "np.trace(sa + sb - root)",
             (METRICS + "::test_frechet_and_kernel_distances_known_values",)),
    Mutation("preference_records_shown_position", "amgan_tf/preference.py",
             '"chosen": t.order[option]', '"chosen": t.order[0]',
             (PREFERENCE + "::test_a_rater_clicks_through_the_page",)),
    # ---- mixed precision (issue 9) -----------------------------------------------------------
    Mutation("g_loss_not_loss_scaled", "amgan_tf/models/amgan.py",
             "scaled = total * loss_scale(self.g_opt)", "scaled = total",
             (WIRING + "::test_mixed_precision_step_matches_float32",)),
    Mutation("critic_loss_not_loss_scaled", "amgan_tf/models/amgan.py",
             "scaled = total * scale", "scaled = total",
             (WIRING + "::test_mixed_precision_step_matches_float32",)),
    Mutation("critic_policy_ignored", "amgan_tf/models/networks.py",
             "with layer_dtype_policy(config.dtype_policy):\n            for i",
             "with layer_dtype_policy('float32'):\n            for i",
             (WIRING + "::test_mixed_precision_step_matches_float32",)),
    # ---- the table -------------------------------------------------------------------
    Mutation("g_cls_against_c_org", "amgan_tf/models/amgan.py",
             "cls = losses.classification_loss(cls_logits, r, c_trg,",
             "cls = losses.classification_loss(cls_logits, r, c_org,", (WIRING,)),
    Mutation("att_target_cam_of_c_trg", "amgan_tf/models/amgan.py",
             "a_star = tf.stop_gradient(self._cam(x_real, r, c_org))",
             "a_star = tf.stop_gradient(self._cam(x_real, r, c_trg))", (WIRING,)),
    Mutation("cycle_through_m_trg", "amgan_tf/models/amgan.py",
             "x_rec, a_rec, _ = self.generate(x_fake, m_org, r, c_trg)",
             "x_rec, a_rec, _ = self.generate(x_fake, m_trg, r, c_trg)", (WIRING,)),
    Mutation("resume_skips_networks", "amgan_tf/train_lib.py",
             "ckpt.restore(latest).assert_existing_objects_matched()",
             "tf.train.Checkpoint(g_opt=model.g_opt, d_opt=model.d_opt, step=step)"
             ".restore(latest).expect_partial()", (RESUME,),
             equivalent="Keras 3 optimizers track the variables they update "
                        "(g_opt/_trainable_variables/N in the checkpoint), so restoring both "
                        "optimizers restores every trainable weight of G, D_I and D_C; the "
                        "networks have no other variables"),
    Mutation("resume_restores_step_only", "amgan_tf/train_lib.py",
             "ckpt.restore(latest).assert_existing_objects_matched()",
             "tf.train.Checkpoint(step=step).restore(latest).expect_partial()", (RESUME,)),
    Mutation("resume_skips_optimizer_state", "amgan_tf/train_lib.py",
             "ckpt.restore(latest).assert_existing_objects_matched()",
             "tf.train.Checkpoint(step=step, G_weights=trained.network_weights(model.G), "
             "D_I_weights=trained.network_weights(model.D_I), "
             "D_C_weights=trained.network_weights(model.D_C)).restore(latest).expect_partial()",
             (RESUME,)),
    Mutation("region_mode_ignored", "amgan_tf/edit.py",
             "return tf.where(tf.cast(inside, tf.bool), a1, (1.0 - a1) * a_edit)",
             "return a_edit", (REGION,)),
    Mutation("region_inside_outside_swapped", "amgan_tf/edit.py",
             "return tf.where(tf.cast(inside, tf.bool), a1, (1.0 - a1) * a_edit)",
             "return tf.where(tf.cast(inside, tf.bool), (1.0 - a1) * a_edit, a1)", (REGION,)),
    Mutation("synth_counterfactual_redraws_torso", "amgan_tf/data/synthfashion.py",
             "return dataclasses.replace(self, **changes)",
             'return dataclasses.replace(self, **{"colour_jitter": (1.0, 0.0, 0.0), '
             '"pattern_phase": (0.25, 0.5), **changes})', (SYNTH,)),
    Mutation("evaluate_judge_is_training_cnn", "amgan_tf/evaluate.py",
             "judge = load_attribute_cnn(FLAGS.judge_workdir)", "judge = cnn", (JUDGE,)),
    # ---- more of the same kinds --------------------------------------------------------------
    Mutation("critic_cls_against_c_trg", "amgan_tf/models/amgan.py",
             "cls = losses.classification_loss(cls_real, r, c_org,",
             "cls = losses.classification_loss(cls_real, r, c_trg,", (WIRING,)),
    Mutation("gp_alpha_of_d_i_for_both", "amgan_tf/models/amgan.py",
             "alpha = gp_alpha[:, j]", "alpha = gp_alpha[:, 0]", (WIRING,)),
    Mutation("perceptual_ignores_ref_weight", "amgan_tf/models/amgan.py",
             "[tf.stop_gradient(f_ref[k]) for k in cfg.perceptual_layers], ref_weight)",
             "[tf.stop_gradient(f_ref[k]) for k in cfg.perceptual_layers], 1.0)", (WIRING,)),
    Mutation("perceptual_against_x_real", "amgan_tf/models/amgan.py",
             "f_ref = self.cnn.features(x_ref, training=False)",
             "f_ref = self.cnn.features(x_real, training=False)", (WIRING,)),
    Mutation("g_crop_of_x_real", "amgan_tf/models/amgan.py",
             "(crop_fake,) = self._crops(a, x_fake)", "(crop_fake,) = self._crops(a, x_real)",
             (WIRING,)),
    Mutation("g_adv_without_d_c", "amgan_tf/models/amgan.py",
             "adv = adv + losses.wgan_generator_loss(src_c)", "adv = adv", (WIRING,)),
    Mutation("cam_column_is_r", "amgan_tf/models/amgan.py",
             "return self.cnn.cam(x, tf.gather(self.r_columns, r), value)",
             "return self.cnn.cam(x, r, value)", (WIRING,)),
    Mutation("loss_mean_per_replica", "amgan_tf/losses.py",
             "return tf.nn.compute_average_loss(_f32(per_example), global_batch_size=global_batch_size)",
             "return tf.reduce_mean(_f32(per_example))", (REPLICAS,)),
    Mutation("resume_restarts_data_stream", "amgan_tf/train_lib.py",
             "data = iter(batches.distribute(strategy, start_step))",
             "data = iter(batches.distribute(strategy, 0))", (RESUME,)),
    Mutation("cam_report_value_zero", "amgan_tf/cam_eval.py",
             "out.append(model.cam(x, column, data.labels[lo:lo + batch_size, column],",
             "out.append(model.cam(x, column, 0,", (CAMS,)),
    Mutation("composite_ignores_padding_offset", "amgan_tf/imaging.py",
             "return side, (side - h) // 2, (side - w) // 2", "return side, 0, 0", (REGION,)),
    Mutation("blend_at_training_size", "amgan_tf/edit.py",
             "out = mask * z_full + (1.0 - mask) * to_float(images)",
             "out = tf.image.resize(a * z + (1.0 - a) * x, (side, side))"
             "[:, top:top + h, left:left + w]", (REGION,)),
    # ---- loader, export and serving ----------------------------------------------------------
    Mutation("loader_skips_generator_restore", "amgan_tf/trained.py",
             "tf.train.Checkpoint(step=step, G_weights=network_weights(G)).restore(latest)",
             "tf.train.Checkpoint(step=step).restore(latest)", (EXPORT,)),
    Mutation("export_region_mode_ignored", "amgan_tf/export_lib.py",
             'tf.equal(mode, "inside"))', "True)", (EXPORT,)),
    Mutation("export_value_slot_without_offset", "amgan_tf/export_lib.py",
             "slots.append(offset + v)", "slots.append(v)", (EXPORT,)),
    Mutation("server_ignores_signature_name", "amgan_tf/serving/server.py",
             "name = name or DEFAULT_SIGNATURE", "name = DEFAULT_SIGNATURE", (SERVING,)),
    Mutation("server_missing_signature_code", "amgan_tf/serving/server.py",
             'raise ServingError("FAILED_PRECONDITION", f\'Serving signature key',
             'raise ServingError("INVALID_ARGUMENT", f\'Serving signature key', (SERVING,)),
    Mutation("server_never_swaps_versions", "amgan_tf/serving/server.py",
             "if entry.current is not None and entry.current.version == newest:",
             "if entry.current is not None:", (SERVING,)),
    Mutation("client_drops_region", "amgan_tf/serving/client.py",
             'self.predict("manipulate_region" if region else "serving_default", inputs)',
             'self.predict("serving_default", inputs)', (SERVING,)),
)


def copy_tree(dest: str) -> None:
    """The files git tracks, plus untracked ones it does not ignore, as in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def run_one(m: Mutation, keep: bool) -> tuple[str, str, float]:
    tmp = tempfile.mkdtemp(prefix=f"mutant_{m.name}_")
    t0 = time.time()
    try:
        copy_tree(tmp)
        path = os.path.join(tmp, m.path)
        with open(path) as f:
            text = f.read()
        if text.count(m.old) != 1:
            return "ERROR", f"expected the original line once in {m.path}, found " \
                            f"{text.count(m.old)} times", 0.0
        with open(path, "w") as f:
            f.write(text.replace(m.old, m.new))
        env = {**os.environ, "PYTHONPATH": tmp, "PYTHONDONTWRITEBYTECODE": "1"}
        where = subprocess.run([sys.executable, "-c", "import amgan_tf; print(amgan_tf.__file__)"],
                               cwd=tmp, env=env, capture_output=True, text=True).stdout.strip()
        if not where.startswith(tmp):
            return "ERROR", f"the copy imports amgan_tf from {where!r}, not the mutant", 0.0
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               *m.tests], cwd=tmp, env=env, capture_output=True, text=True)
        failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
        if m.equivalent:
            if proc.returncode == 0:
                return "EQUIV", f"tests pass, as they must: {m.equivalent}", time.time() - t0
            return "ERROR", f"marked equivalent but tests failed: {failed or proc.returncode}", \
                time.time() - t0
        if proc.returncode == 1 and failed:
            return "CAUGHT", ", ".join(f.split("::", 1)[-1] for f in failed), time.time() - t0
        if proc.returncode == 0:
            return "MISSED", "all selected tests passed", time.time() - t0
        return "ERROR", f"pytest exit {proc.returncode}: {proc.stdout[-400:]}", time.time() - t0
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="Comma-separated mutation names.")
    parser.add_argument("--list", action="store_true", help="List the mutations and exit.")
    parser.add_argument("--keep", action="store_true", help="Keep the mutated copies.")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only.split(",")]
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:38s} {m.path}")
        return 0
    unknown = set(filter(None, args.only.split(","))) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"error: unknown mutations {sorted(unknown)}; see --list", file=sys.stderr)
        return 2
    results = []
    for i, m in enumerate(chosen, 1):
        status, detail, seconds = run_one(m, args.keep)
        results.append(status)
        print(f"[{i}/{len(chosen)}] {status:6s} {m.name:38s} {seconds:5.0f} s  {detail}",
              flush=True)
    caught, equivalent = results.count("CAUGHT"), results.count("EQUIV")
    real = len(chosen) - equivalent
    print(f"{caught} of {real} mutations caught"
          + (f" ({equivalent} equivalent, confirmed harmless)" if equivalent else "")
          + ("" if caught == real else f"; {real - caught} not"))
    return 0 if caught == real else 1


if __name__ == "__main__":
    sys.exit(main())
