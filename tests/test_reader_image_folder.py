import json
import os

import numpy as np
import pytest
from PIL import Image

from amgan_tf.attributes import MISSING, UnknownAttributeError
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError
from amgan_tf.data.readers.image_folder import CLOTHING_SMALL_SLEEVE, ImageFolderReader

ROOT = os.path.join(os.path.dirname(__file__), "data", "clothing_small")


def _folder_files(split, folder):
    return sorted(f"{split}/{folder}/{f}" for f in os.listdir(os.path.join(ROOT, split, folder)))


def test_value_map_reads_sleeve_and_ignores_other_folders():
    reader = ImageFolderReader(ROOT, **CLOTHING_SMALL_SLEEVE)
    reader.check()
    assert reader.splits() == ("train", "test")
    schema = reader.schema()
    assert schema.names == ("sleeve",) and schema.attribute("sleeve").values == ("long", "short")
    examples = list(reader.examples("train"))
    keys = [e.key for e in examples]
    assert keys == _folder_files("train", "longsleeve") + _folder_files("train", "t-shirt")
    assert not any("/shirt/" in k for k in keys)  # unmapped folder ignored
    labels = {e.key.split("/")[1]: int(e.labels[0]) for e in examples}
    assert labels == {"longsleeve": 0, "t-shirt": 1}
    for ex in examples:
        assert os.path.isabs(ex.image) and ex.labels.dtype == np.int32
        with Image.open(ex.image) as im:
            assert im.size[0] > 0
    assert len(list(reader.examples("test"))) == 4


def test_folders_are_values_by_default_and_values_order():
    reader = ImageFolderReader(ROOT, attribute="garment")
    assert reader.schema().attribute("garment").values == ("longsleeve", "shirt", "t-shirt")
    assert len(list(reader.examples("test"))) == 6
    reader = ImageFolderReader(ROOT, values=("short", "long"), value_map=CLOTHING_SMALL_SLEEVE["value_map"])
    labels = {e.key.split("/")[1]: int(e.labels[0]) for e in reader.examples("test")}
    assert labels == {"longsleeve": 1, "t-shirt": 0}


def test_unknown_value_raises():
    reader = ImageFolderReader(ROOT, values=("long", "short"))
    with pytest.raises(UnknownAttributeError, match="longsleeve"):
        list(reader.examples("train"))


def test_csv_multi_attribute(tmp_path):
    rows = [("train/longsleeve", "long", "blue"), ("train/t-shirt", "short", ""),
            ("test/shirt", "long", "white")]
    lines = ["path,sleeve,colour"]
    for folder, sleeve, colour in rows:
        rel = _folder_files(*folder.split("/"))[0]
        lines.append(f"{rel},{sleeve},{colour}")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    reader = ImageFolderReader(ROOT, label_file=str(csv_path))
    reader.check()
    schema = reader.schema()
    assert schema.names == ("sleeve", "colour")
    assert schema.attribute("colour").values == ("blue", "white")
    assert reader.splits() == ("train", "test")
    train = list(reader.examples("train"))
    assert [e.key for e in train] == [lines[1].split(",")[0], lines[2].split(",")[0]]
    np.testing.assert_array_equal(train[0].labels, [0, 0])
    np.testing.assert_array_equal(train[1].labels, [1, MISSING])
    test = list(reader.examples("test"))
    np.testing.assert_array_equal(test[0].labels, [0, 1])
    assert os.path.isfile(test[0].image)


def test_csv_wrong_column_count(tmp_path):
    rel = _folder_files("train", "shirt")[0]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(f"path,sleeve,colour\n{rel},long,blue\n{rel},long\n")
    with pytest.raises(LabelFormatError) as err:
        ImageFolderReader(ROOT, label_file=str(csv_path)).schema()
    assert "labels.csv, line 3: 2 columns, expected 3" in str(err.value)


def test_json_labels_and_unknown_value(tmp_path):
    rel = _folder_files("test", "t-shirt")[0]
    spec = {"attributes": [{"name": "sleeve", "values": ["long", "short"]},
                           {"name": "gender", "values": ["f", "m"], "manipulated": False}],
            "labels": {rel: {"sleeve": "short"}}}
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(spec))
    reader = ImageFolderReader(ROOT, label_file=str(path))
    assert [a.name for a in reader.schema().reference_only] == ["gender"]
    (ex,) = list(reader.examples("test"))
    np.testing.assert_array_equal(ex.labels, [1, MISSING])
    spec["labels"][rel] = {"sleeve": "three_quarter"}
    path.write_text(json.dumps(spec))
    with pytest.raises(UnknownAttributeError, match="three_quarter"):
        ImageFolderReader(ROOT, label_file=str(path)).schema()


def test_missing_root_and_label_file(tmp_path):
    with pytest.raises(DataFilesError, match="does not exist"):
        ImageFolderReader(str(tmp_path / "nope")).check()
    with pytest.raises(DataFilesError, match="nothere.csv"):
        ImageFolderReader(ROOT, label_file="nothere.csv").check()
