import os

import numpy as np
import pytest

from amgan_tf.attributes import MISSING, UnknownAttributeError
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError
from amgan_tf.data.readers.deepfashion_attributes import DeepFashionAttributesReader
from tests.fixtures import ANNO_FINE_CATEGORIES, write_deepfashion_attributes

GROUPS = ("pattern", "sleeve", "length", "neckline", "fabric", "fit")


def _labels(reader, split):
    return np.stack([e.labels for e in reader.examples(split)])


@pytest.mark.parametrize("encoding", ["binary", "group"])
def test_labels_match_written_truth(tmp_path, encoding):
    truth = write_deepfashion_attributes(str(tmp_path), encoding=encoding)
    reader = DeepFashionAttributesReader(str(tmp_path))
    reader.check()
    assert reader.splits() == ("train", "val", "test")
    for split in reader.splits():
        want = np.concatenate([truth[split]["groups"], truth[split]["category"][:, None]], axis=1)
        np.testing.assert_array_equal(_labels(reader, split), want)
        paths = [e.image for e in reader.examples(split)]
        assert paths == [os.path.join(str(tmp_path), r) for r in truth[split]["paths"]]
    assert _labels(reader, "train")[0, 2] == MISSING


def test_both_encodings_give_identical_labels(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write_deepfashion_attributes(str(a), encoding="binary")
    write_deepfashion_attributes(str(b), encoding="group")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(_labels(DeepFashionAttributesReader(str(a)), split),
                                      _labels(DeepFashionAttributesReader(str(b)), split))


def test_schema_groups_from_list_attr_cloth(tmp_path):
    write_deepfashion_attributes(str(tmp_path), anno_subdir="Anno_fine")
    schema = DeepFashionAttributesReader(str(tmp_path)).schema()
    assert schema.names == GROUPS + ("category",)
    assert schema.attribute("pattern").values == ("floral", "graphic", "striped", "embroidered",
                                                  "pleated", "solid", "lattice")
    assert schema.attribute("sleeve").values == ("long_sleeve", "short_sleeve", "sleeveless")
    assert schema.attribute("neckline").values == ("crew_neckline", "v_neckline",
                                                   "square_neckline", "no_neckline")
    assert schema.attribute("category").values == tuple(n for n, _ in ANNO_FINE_CATEGORIES)
    assert "Tank Top" in schema.attribute("category").values  # names with spaces
    assert [a.name for a in schema.reference_only] == ["category"]


def test_manipulated_selection(tmp_path):
    write_deepfashion_attributes(str(tmp_path))
    reader = DeepFashionAttributesReader(str(tmp_path), manipulated=("sleeve", "pattern"),
                                         reference=("category", "fit"))
    schema = reader.schema()
    assert schema.names == ("pattern", "sleeve", "fit", "category")
    assert [a.name for a in schema.manipulated] == ["pattern", "sleeve"]
    assert _labels(reader, "val").shape == (2, 4)
    with pytest.raises(UnknownAttributeError, match="texture"):
        DeepFashionAttributesReader(str(tmp_path), manipulated=("texture",)).schema()


def _edit_line(path, number, edit):
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("encoding,edit,message", [
    ("binary", lambda l: l + " 0", "line 2: 27 columns; expected 26"),
    ("binary", lambda l: "1 1" + l[3:], "line 2: group 'pattern' has more than one"),
    ("binary", lambda l: "5" + l[1:], "line 2: binary columns must be 0/1"),
    ("group", lambda l: "7" + l[1:], "line 2: group 'pattern' index 7 is outside 0..6"),
    ("group", lambda l: "a" + l[1:], "line 2: expected an integer"),
])
def test_malformed_attr_line(tmp_path, encoding, edit, message):
    write_deepfashion_attributes(str(tmp_path), encoding=encoding)
    _edit_line(tmp_path / "val_attr.txt", 2, edit)
    with pytest.raises(LabelFormatError) as err:
        list(DeepFashionAttributesReader(str(tmp_path)).examples("val"))
    assert "val_attr.txt" in str(err.value) and message in str(err.value)


def test_bad_category_and_count_lines(tmp_path):
    write_deepfashion_attributes(str(tmp_path))
    _edit_line(tmp_path / "test_cate.txt", 2, lambda l: "99")
    with pytest.raises(LabelFormatError, match=r"test_cate\.txt, line 2: category 99 is outside"):
        list(DeepFashionAttributesReader(str(tmp_path)).examples("test"))
    _edit_line(tmp_path / "list_attr_cloth.txt", 1, lambda l: "25")
    with pytest.raises(LabelFormatError, match=r"list_attr_cloth\.txt, line 1: the count line says 25"):
        DeepFashionAttributesReader(str(tmp_path)).schema()


def test_row_count_mismatch(tmp_path):
    write_deepfashion_attributes(str(tmp_path))
    path = tmp_path / "train_attr.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(LabelFormatError, match=r"train_attr\.txt, line 4: 3 rows but"):
        list(DeepFashionAttributesReader(str(tmp_path)).examples("train"))


@pytest.mark.parametrize("missing", ["list_attr_cloth.txt", "val_cate.txt", "test.txt"])
def test_missing_file_is_named(tmp_path, missing):
    write_deepfashion_attributes(str(tmp_path))
    os.remove(tmp_path / missing)
    with pytest.raises(DataFilesError) as err:
        DeepFashionAttributesReader(str(tmp_path)).check()
    assert missing in str(err.value) and str(tmp_path) in str(err.value)
    assert "AttributePrediction.html" in str(err.value)
