import json
import os

import numpy as np
import pytest

from amgan_tf.attributes import MISSING, UnknownAttributeError
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError
from amgan_tf.data.readers.shopping100k import Shopping100kReader
from tests.fixtures import SHOPPING_ATTR_NUM, write_shopping100k

# Columns of the 12 attr_num.txt attributes kept by default, in schema (file) order.
KEPT = {"category": 0, "collar": 1, "color": 2, "fastening": 4, "gender": 6, "pattern": 8,
        "sleeve_length": 10}


def test_schema_keeps_selected_attributes(tmp_path):
    write_shopping100k(str(tmp_path))
    schema = Shopping100kReader(str(tmp_path)).schema()
    assert schema.names == tuple(KEPT)
    assert [a.name for a in schema.manipulated] == ["collar", "color", "fastening", "pattern",
                                                   "sleeve_length"]
    assert [a.name for a in schema.reference_only] == ["category", "gender"]
    assert [len(a.values) for a in schema.attributes] == [SHOPPING_ATTR_NUM[c] for c in KEPT.values()]
    assert schema.attribute("collar").values[:2] == ("collar_0", "collar_1")


@pytest.mark.parametrize("image_root", ["Images", ""])
def test_labels_and_paths(tmp_path, image_root):
    truth = write_shopping100k(str(tmp_path), image_root=image_root)
    reader = Shopping100kReader(str(tmp_path))
    reader.check()
    for split in reader.splits():
        examples = list(reader.examples(split))
        want = truth[split]["labels"][:, list(KEPT.values())]
        np.testing.assert_array_equal(np.stack([e.labels for e in examples]), want)
        for ex, rel in zip(examples, truth[split]["paths"]):
            assert ex.image == os.path.join(str(tmp_path), image_root, rel) if image_root else \
                ex.image == os.path.join(str(tmp_path), rel)
            assert os.path.isabs(ex.image) and os.path.isfile(ex.image)
    train = np.stack([e.labels for e in reader.examples("train")])
    assert train[0, 1] == MISSING and train[-1, 6] == MISSING  # all-zero blocks


def test_names_file_overrides(tmp_path):
    write_shopping100k(str(tmp_path))
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"values": {"gender": ["men", "women"]}}))
    schema = Shopping100kReader(str(tmp_path), names_file=str(names)).schema()
    assert schema.attribute("gender").values == ("men", "women")
    names.write_text(json.dumps({"values": {"gender": ["men"]}}))
    with pytest.raises(LabelFormatError, match="'gender' has 2 values"):
        Shopping100kReader(str(tmp_path), names_file=str(names)).schema()


def test_custom_selection_and_unknown_attribute(tmp_path):
    write_shopping100k(str(tmp_path))
    schema = Shopping100kReader(str(tmp_path), manipulated=("neckline",), reference=()).schema()
    assert schema.names == ("neckline",) and len(schema.attributes[0].values) == 11
    with pytest.raises(UnknownAttributeError, match="sleeve"):
        Shopping100kReader(str(tmp_path), manipulated=("sleeve",)).schema()


@pytest.mark.parametrize("missing", ["imgs_test.txt", "labels_train.txt", "attr_num.txt"])
def test_missing_list_file_is_named(tmp_path, missing):
    write_shopping100k(str(tmp_path))
    os.remove(tmp_path / missing)
    with pytest.raises(DataFilesError) as err:
        Shopping100kReader(str(tmp_path)).check()
    assert missing in str(err.value) and str(tmp_path) in str(err.value)


def test_missing_first_image(tmp_path):
    truth = write_shopping100k(str(tmp_path))
    os.remove(tmp_path / "Images" / truth["train"]["paths"][0])
    with pytest.raises(DataFilesError, match=truth["train"]["paths"][0]):
        Shopping100kReader(str(tmp_path)).check()


def _edit_line(path, number, edit):
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("edit,message", [
    (lambda l: l + " 0", "line 3: 152 columns, expected 151"),
    (lambda l: "x" + l[1:], "line 3: expected an integer"),
    (lambda l: "2" + l[1:], "line 3: label columns must be 0 or 1"),
    (lambda l: "1 1" + l[3:], "line 3: attribute 'category' has"),
])
def test_malformed_label_line(tmp_path, edit, message):
    write_shopping100k(str(tmp_path))
    path = tmp_path / "labels_train.txt"
    _edit_line(path, 3, edit)
    with pytest.raises(LabelFormatError) as err:
        list(Shopping100kReader(str(tmp_path)).examples("train"))
    assert "labels_train.txt" in str(err.value) and message in str(err.value)


def test_line_count_mismatch(tmp_path):
    write_shopping100k(str(tmp_path))
    path = tmp_path / "labels_test.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(LabelFormatError, match=r"imgs_test\.txt, line 3: 3 images but only 2"):
        list(Shopping100kReader(str(tmp_path)).examples("test"))
    with open(path, "a") as f:
        f.write(" ".join(["0"] * 151) + "\n")
        f.write(" ".join(["0"] * 151) + "\n")
    with pytest.raises(LabelFormatError, match=r"labels_test\.txt, line 4: more label rows"):
        list(Shopping100kReader(str(tmp_path)).examples("test"))


def test_packaged_names_load_via_importlib():
    from importlib import resources
    data = json.loads(resources.files("amgan_tf.data.readers").joinpath(
        "names", "shopping100k.json").read_text())
    assert len(data["attributes"]) == len(SHOPPING_ATTR_NUM) and "source" in data
