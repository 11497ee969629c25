import json
import logging
import os

import numpy as np
import pytest
import scipy.io

from amgan_tf.attributes import MISSING
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError
from amgan_tf.data.readers.deepfashion_synthesis import DeepFashionSynthesisReader, derive_names
from tests.fixtures import DFS_LAYOUTS, write_deepfashion_synthesis


@pytest.mark.parametrize("layout", sorted(DFS_LAYOUTS))
def test_layouts_are_found_and_pixels_match(tmp_path, layout):
    truth = write_deepfashion_synthesis(str(tmp_path), layout=layout)
    reader = DeepFashionSynthesisReader(str(tmp_path), split_mode="official")
    reader.check()
    examples = list(reader.examples("train")) + list(reader.examples("test"))
    assert len(examples) == 12
    for ex in examples:
        k = int(ex.key.split("_")[1])
        assert ex.image.dtype == np.uint8 and ex.image.shape == (8, 6, 3)  # H, W from (N, C, W, H)
        np.testing.assert_array_equal(ex.image, truth["images"][k])
        np.testing.assert_array_equal(ex.masks["segmentation"], truth["segmentation"][k])
        np.testing.assert_array_equal(ex.masks["garment"], truth["segmentation"][k] == 3)
        np.testing.assert_array_equal(ex.labels, truth["labels"][k])
        assert ex.labels.dtype == np.int32


def test_schema_and_names_derived_from_sentences(tmp_path, caplog):
    write_deepfashion_synthesis(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        schema = DeepFashionSynthesisReader(str(tmp_path)).schema()
    assert [a.name for a in schema.manipulated] == ["colour", "sleeve"]
    assert [a.name for a in schema.reference_only] == ["category", "gender"]
    assert [len(a.values) for a in schema.attributes] == [17, 4, 19, 2]
    assert schema.attribute("colour").values[:4] == ("black", "white", "red", "colour_3")
    assert schema.attribute("sleeve").values == ("sleeveless", "short", "long", "sleeve_3")
    assert schema.attribute("category").values[:5] == ("blouse", "t-shirt", "sweater", "dress",
                                                      "category_4")
    assert schema.attribute("gender").values == ("female", "male")
    assert "colour_<0-based code>" in caplog.text  # unnamed codes are reported, not guessed


def test_ambiguous_words_fall_back_to_placeholders(caplog):
    vocab = {"black": r"\bblack\b", "white": r"\bwhite\b"}
    codes = np.array([0, 0, 1, 2])
    sentences = ["a black top", "a black dress", "black and white", "a top"]
    with caplog.at_level(logging.WARNING):
        names = derive_names("colour", 3, codes, sentences, vocab, 0.4)
    assert names == ("black", "colour_1", "colour_2")
    assert "ambiguous" in caplog.text and "no colour word" in caplog.text


def test_names_file_overrides(tmp_path):
    write_deepfashion_synthesis(str(tmp_path))
    names = {"colour": [f"c{i}" for i in range(17)], "sleeve": ["none", "short", "mid", "long"]}
    path = tmp_path / "names.json"
    path.write_text(json.dumps(names))
    schema = DeepFashionSynthesisReader(str(tmp_path), names_file=str(path)).schema()
    assert schema.attribute("colour").values == tuple(names["colour"])
    assert schema.attribute("sleeve").values == ("none", "short", "mid", "long")
    assert schema.attribute("gender").values == ("female", "male")  # still derived
    path.write_text(json.dumps({"sleeve": ["a", "b"]}))
    with pytest.raises(LabelFormatError, match="needs 4 names"):
        DeepFashionSynthesisReader(str(tmp_path), names_file=str(path)).schema()


def test_official_split_uses_ind_mat(tmp_path):
    truth = write_deepfashion_synthesis(str(tmp_path), test_ind=(0, 5, 9))
    reader = DeepFashionSynthesisReader(str(tmp_path), split_mode="official")
    np.testing.assert_array_equal(reader.split_indices("test"), [0, 5, 9])
    np.testing.assert_array_equal(reader.split_indices("train"), truth["train"])
    assert [e.key for e in reader.examples("test")] == ["df_000000", "df_000005", "df_000009"]


def test_paper_split_sizes_and_determinism(tmp_path):
    write_deepfashion_synthesis(str(tmp_path), n=40)
    a = DeepFashionSynthesisReader(str(tmp_path), paper_test_size=7, seed=3)
    b = DeepFashionSynthesisReader(str(tmp_path), paper_test_size=7, seed=3)
    c = DeepFashionSynthesisReader(str(tmp_path), paper_test_size=7, seed=4)
    test, train = a.split_indices("test"), a.split_indices("train")
    assert len(test) == 7 and len(train) == 33
    assert sorted(np.concatenate([test, train]).tolist()) == list(range(40))
    np.testing.assert_array_equal(test, b.split_indices("test"))
    assert not np.array_equal(test, c.split_indices("test"))
    expected = np.sort(np.random.default_rng(3).permutation(40)[:7])
    np.testing.assert_array_equal(test, expected)


def test_chunked_reading_of_sparse_and_dense_indices(tmp_path, monkeypatch):
    truth = write_deepfashion_synthesis(str(tmp_path), n=30, test_ind=(0, 14, 29))
    monkeypatch.setattr("amgan_tf.data.readers.deepfashion_synthesis.CHUNK", 4)
    reader = DeepFashionSynthesisReader(str(tmp_path), split_mode="official")
    for split in ("train", "test"):
        for ex in reader.examples(split):
            np.testing.assert_array_equal(ex.image, truth["images"][int(ex.key[3:])])


@pytest.mark.parametrize("missing", ["G2.h5", "language_original.mat", "ind.mat"])
def test_missing_file_is_named(tmp_path, missing):
    write_deepfashion_synthesis(str(tmp_path))
    os.remove(tmp_path / missing)
    with pytest.raises(DataFilesError) as err:
        DeepFashionSynthesisReader(str(tmp_path)).check()
    msg = str(err.value)
    assert missing in msg and str(tmp_path) in msg and "FashionSynthesis.html" in msg
    assert "benchmark/" in msg


def test_missing_directory(tmp_path):
    with pytest.raises(DataFilesError, match="does not exist"):
        DeepFashionSynthesisReader(str(tmp_path / "nope")).check()


def test_out_of_range_code_names_file_and_row(tmp_path):
    truth = write_deepfashion_synthesis(str(tmp_path))
    path = truth["paths"]["language_original.mat"]
    mat = scipy.io.loadmat(path)
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    mat["sleeve_"][4, 0] = 9
    scipy.io.savemat(path, mat, format="5")
    with pytest.raises(LabelFormatError, match=r"language_original\.mat, row 5: sleeve_ = 9"):
        DeepFashionSynthesisReader(str(tmp_path)).schema()


def test_labels_are_never_missing(tmp_path):
    write_deepfashion_synthesis(str(tmp_path))
    reader = DeepFashionSynthesisReader(str(tmp_path), paper_test_size=2)
    assert all((e.labels != MISSING).all() for e in reader.examples("test"))
