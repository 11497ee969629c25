import numpy as np
import pytest
import tensorflow as tf

from amgan_tf.attributes import MISSING
from amgan_tf.data import pipeline
from amgan_tf.data.pipeline import AmganBatches, PipelineConfig, ReferenceIndex


def test_iteration_contents(synth_train):
    cfg = PipelineConfig(batch_size=8, n_critic=2, seed=1, flip=False)
    batches = AmganBatches(synth_train, cfg)
    sch = synth_train.schema
    for step in range(6):
        it = batches.iteration(step)
        assert it["x_real"].shape == (8, 3, 32, 32, 3)
        r = step % sch.num_attributes  # alternates over attributes
        assert (it["r"] == r).all()
        col = sch.manipulated_columns[r]
        assert (it["c_org"] == it["label_org"][..., col]).all()
        assert (it["c_trg"] != it["c_org"]).all()
        np.testing.assert_array_equal(it["label_trg"][..., col], it["c_trg"])
        np.testing.assert_array_equal(np.delete(it["label_trg"], col, -1),
                                      np.delete(it["label_org"], col, -1))
        for b in range(8):
            for s in range(3):
                assert sch.decode(it["m_trg"][b, s]) == (
                    sch.manipulated[r].name, sch.manipulated[r].values[it["c_trg"][b, s]])
                assert sch.decode(it["m_org"][b, s])[1] == sch.manipulated[r].values[it["c_org"][b, s]]


def test_references_have_the_target_attributes(synth_train):
    batches = AmganBatches(synth_train, PipelineConfig(batch_size=16, n_critic=1, flip=False))
    by_image = {synth_train.images[i].tobytes(): i for i in range(len(synth_train))}
    found = 0
    for step in range(6):
        it = batches.iteration(step)
        for b in range(16):
            for s in range(2):
                if it["ref_weight"][b, s]:
                    found += 1
                    ref = by_image[it["x_ref"][b, s].tobytes()]
                    np.testing.assert_array_equal(synth_train.labels[ref], it["label_trg"][b, s])
    assert found > 60  # 400 images over 320 attribute tuples: most targets have a match


def test_reference_index_wildcards_and_misses():
    labels = np.array([[0, 1, 0], [0, 1, 1], [1, MISSING, 0], [1, 0, 0]])
    index = ReferenceIndex(labels)
    np.testing.assert_array_equal(index.candidates([0, 1, 1]), [1])
    np.testing.assert_array_equal(index.candidates([1, MISSING, 0]), [2, 3])  # missing = any
    assert len(index.candidates([1, 1, 0])) == 0  # a missing label never matches a known target
    ref = index.sample(np.array([[0, 1, 1], [1, 1, 1]]), np.array([0.5, 0.5]))
    np.testing.assert_array_equal(ref, [1, -1])


def test_missing_labels_are_never_manipulated(synth_train):
    data = synth_train.subset(np.arange(len(synth_train)))
    data.labels = data.labels.copy()
    data.labels[::2, 0] = MISSING
    batches = AmganBatches(data, PipelineConfig(batch_size=8, n_critic=0, flip=False))
    for step in (0, 3, 6):  # sleeve steps
        it = batches.iteration(step)
        assert (it["label_org"][..., 0] != MISSING).all()


def test_zero_weight_without_reference(synth_train):
    batches = AmganBatches(synth_train, PipelineConfig(batch_size=4, reference_matching=False))
    it = batches.iteration(0)
    assert (it["ref_weight"] == 0).all()


def test_deterministic_and_resumable(synth_train):
    cfg = PipelineConfig(batch_size=4, n_critic=1, seed=5)
    a = list(AmganBatches(synth_train, cfg).dataset(0).take(5).as_numpy_iterator())
    b = list(AmganBatches(synth_train, cfg).dataset(3).take(2).as_numpy_iterator())
    for x, y in zip(a[3:], b):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert a[0]["x_real"].dtype == np.float32
    assert -1.0 <= a[0]["x_real"].min() and a[0]["x_real"].max() <= 1.0


def test_epochs_cover_every_example_once():
    positions = np.arange(30)
    idx = pipeline.epoch_positions(10, seed=0, stream=0, positions=positions)
    for e in range(3):
        assert sorted(idx[10 * e:10 * (e + 1)]) == list(range(10))
    assert not np.array_equal(idx[:10], idx[10:20])


def test_replica_rows_concatenate_to_the_global_batch(synth_train):
    cfg = PipelineConfig(batch_size=8, n_critic=1, seed=2)
    batches = AmganBatches(synth_train, cfg)
    whole = batches.iteration(4)
    parts = list(zip(range(4), batches.rows_iterator(4, pipeline=0, num_pipelines=2, replicas=2)))
    parts += list(zip(range(4, 8), batches.rows_iterator(4, pipeline=1, num_pipelines=2,
                                                         replicas=2)))
    rows = [p for i, p in parts if i in (0, 1, 4, 5)]  # step 4, replicas 0..3 in order
    for key in whole:
        np.testing.assert_array_equal(np.concatenate([r[key] for r in rows]), whole[key])
    with pytest.raises(ValueError, match="divisible by the number of replicas"):
        next(batches.rows_iterator(0, num_pipelines=3))


def test_mirrored_strategy_gets_per_replica_rows(synth_train):
    cpus = tf.config.list_logical_devices("CPU")
    assert len(cpus) == 2  # conftest.py splits the CPU
    strategy = tf.distribute.MirroredStrategy([d.name for d in cpus[:2]])
    batches = AmganBatches(synth_train, PipelineConfig(batch_size=4, n_critic=0))
    element = next(iter(batches.distribute(strategy)))
    local = strategy.experimental_local_results(element["x_real"])
    assert [x.shape[0] for x in local] == [2, 2]


def test_classifier_dataset(synth_train):
    train = pipeline.classifier_dataset(synth_train, 32, seed=0)
    x, y = next(iter(train))
    assert x.shape == (32, 32, 32, 3) and y.shape == (32, 5)
    resumed = pipeline.classifier_dataset(synth_train, 32, seed=0, start_step=2)
    third = list(train.take(3).as_numpy_iterator())[2]
    np.testing.assert_array_equal(next(resumed.as_numpy_iterator())[1], third[1])
    ordered = list(pipeline.classifier_dataset(synth_train, 150, training=False).as_numpy_iterator())
    assert [len(b[1]) for b in ordered] == [150, 150, 100]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ordered]), synth_train.labels)
