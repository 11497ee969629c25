import json

import numpy as np
import pytest

from amgan_tf.attributes import MISSING, Attribute, AttributeSchema, UnknownAttributeError


@pytest.fixture
def schema():
    return AttributeSchema((
        Attribute("sleeve", ("sleeveless", "short", "long")),
        Attribute("category", ("top", "dress"), manipulated=False),
        Attribute("colour", ("red", "green", "blue", "black")),
    ), dataset="toy")


def test_sizes_and_offsets(schema):
    assert schema.num_values == 7 and schema.num_attributes == 2 and schema.m_dim == 9
    assert schema.offsets == (0, 3)
    assert schema.manipulated_columns == (0, 2)
    assert [a.name for a in schema.reference_only] == ["category"]


def test_encode_puts_value_and_r(schema):
    m = schema.encode("colour", "blue")
    expected = np.zeros(9, np.float32)
    expected[3 + 2] = 1  # colour block starts at 3
    expected[7 + 1] = 1  # r = 1 (second manipulated attribute)
    np.testing.assert_array_equal(m, expected)
    assert schema.decode(m) == ("colour", "blue")
    assert schema.decode(schema.encode("sleeve", 0)) == ("sleeve", "sleeveless")


def test_encode_batch_matches_single(schema):
    m = schema.encode_batch(np.array([0, 1, 1]), np.array([2, 0, 3]))
    np.testing.assert_array_equal(m[0], schema.encode("sleeve", "long"))
    np.testing.assert_array_equal(m[2], schema.encode("colour", "black"))
    with pytest.raises(ValueError, match="out of range"):
        schema.encode_batch(np.array([0]), np.array([3]))


def test_unknown_names_list_valid_ones(schema):
    with pytest.raises(UnknownAttributeError, match="valid attributes: sleeve, category, colour"):
        schema.attribute("collar")
    with pytest.raises(UnknownAttributeError, match="valid values: red, green, blue, black"):
        schema.encode("colour", "mauve")
    with pytest.raises(UnknownAttributeError, match="cannot be manipulated"):
        schema.encode("category", "dress")
    with pytest.raises(KeyError):  # also a KeyError for dict-style callers
        schema.column("nope")


def test_labels_round_trip_and_missing(schema):
    row = schema.labels_from_dict({"sleeve": "long", "colour": 1})
    np.testing.assert_array_equal(row, [2, MISSING, 1])
    assert schema.labels_to_dict(row) == {"sleeve": "long", "category": None, "colour": "green"}
    with pytest.raises(UnknownAttributeError):
        schema.labels_from_dict({"neckline": "v"})


def test_validate_labels(schema):
    schema.validate_labels(np.array([[0, 1, 3], [-1, -1, -1]]))
    with pytest.raises(ValueError, match="row 1 has value 4 for attribute 'colour'"):
        schema.validate_labels(np.array([[0, 1, 3], [0, 0, 4]]))
    with pytest.raises(ValueError, match=r"expected shape \[n, 3\]"):
        schema.validate_labels(np.zeros((2, 2)))


def test_json_round_trip(schema, tmp_path):
    path = tmp_path / "schema.json"
    schema.save(str(path))
    assert AttributeSchema.load(str(path)) == schema
    assert json.loads(schema.to_json())["attributes"][1]["manipulated"] is False
    with pytest.raises(ValueError, match="Not an attribute schema"):
        AttributeSchema.from_dict({"attrs": []})


def test_invalid_definitions():
    with pytest.raises(ValueError, match="at least two values"):
        Attribute("x", ("a",))
    with pytest.raises(ValueError, match="repeated value names"):
        Attribute("x", ("a", "a"))
    with pytest.raises(ValueError, match="at least one manipulated"):
        AttributeSchema((Attribute("x", ("a", "b"), manipulated=False),))
