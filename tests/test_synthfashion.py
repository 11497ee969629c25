import colorsys

import numpy as np
import pytest

from amgan_tf.data import synthfashion
from amgan_tf.data.synthfashion import MASK_NAMES, SynthFashion


def test_deterministic_from_seed_and_index():
    a = SynthFashion(seed=1, size=48).example(7)
    b = SynthFashion(seed=1, size=48).example(7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = SynthFashion(seed=2, size=48).example(7)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("size", [32, 64, 100, 256])
def test_sizes_and_mask_shapes(size):
    image, labels, masks = SynthFashion(0, size).example(0)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert set(masks) == set(MASK_NAMES)
    for m in masks.values():
        assert m.shape == (size, size) and set(np.unique(m)) <= {0, 1}
    assert labels.shape == (5,)


def test_rejects_out_of_range_size():
    with pytest.raises(ValueError, match="32..256"):
        SynthFashion(0, 16)


def test_mask_relations():
    for i in range(10):
        _, labels, m = SynthFashion(0, 64).example(i)
        assert np.all(m["sleeve"] <= m["garment"])
        np.testing.assert_array_equal(m["torso"], m["garment"] & (1 - m["sleeve"]))
        assert m["arm"].sum() > 0 and m["torso"].sum() > 0
        if synthfashion.SLEEVES[labels[0]] == "sleeveless":
            assert m["sleeve"].sum() == 0


def test_sleeve_area_grows_with_length():
    ds = SynthFashion(0, 64)
    areas = [ds.example(4, sleeve=s)[2]["sleeve"].sum() for s in synthfashion.SLEEVES]
    assert areas == sorted(areas) and areas[0] == 0 and areas[-1] > 2 * areas[1] > 0


def test_counterfactual_changes_only_its_region():
    ds = SynthFashion(5, 64)
    for i in range(6):
        x, labels, m = ds.example(i)
        for value in synthfashion.SLEEVES:
            y, labels_y, m_y = ds.example(i, sleeve=value)
            assert labels_y[0] == synthfashion.SLEEVES.index(value)
            np.testing.assert_array_equal(labels_y[1:], labels[1:])
            # Outside the union of both arms' regions (plus a 1 px antialiasing rim) nothing moves.
            region = np.maximum(m["arm"], m_y["arm"]) | np.maximum(m["garment"], m_y["garment"])
            region = _dilate(region)
            assert np.array_equal(x[region == 0], y[region == 0])
        colour = "green" if synthfashion.COLOURS_LIST[labels[1]] != "green" else "red"
        y, _, m_y = ds.example(i, colour=colour)
        np.testing.assert_array_equal(m_y["garment"], m["garment"])
        outside = _dilate(m["garment"]) == 0
        assert np.array_equal(x[outside], y[outside])
        assert np.abs(x[m["garment"] == 1].astype(int) - y[m["garment"] == 1]).mean() > 20


def _dilate(mask):
    out = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out = np.maximum(out, np.roll(np.roll(mask, dy, 0), dx, 1))
    return out


def _hsv(rgb):
    return colorsys.rgb_to_hsv(*(np.asarray(rgb) / 255.0))


def test_colours_are_nameable_from_pixels():
    """The median plain-garment pixel lands in its named colour's HSV neighbourhood."""
    ds = SynthFashion(11, 64)
    for i in range(4):
        for name, (h, s, v) in synthfashion.COLOURS.items():
            x, _, m = ds.example(i, colour=name, pattern="plain")
            ph, ps, pv = _hsv(np.median(x[m["torso"] == 1], axis=0))
            assert abs(pv - v) < 0.2, name
            if s > 0.3:  # hue is meaningful only for saturated colours
                dh = min(abs(ph * 360 - h), 360 - abs(ph * 360 - h))
                assert dh < 15 and abs(ps - s) < 0.25, name
            else:
                assert ps < 0.2, name


def test_patterns_differ_in_texture():
    ds = SynthFashion(2, 96)
    std = {}
    for p in synthfashion.PATTERNS:
        x, _, m = ds.example(1, pattern=p, colour="blue")
        std[p] = x[m["torso"] == 1].astype(float).std(axis=0).mean()
    assert std["plain"] < 12 and min(std["stripes"], std["dots"], std["checks"]) > 2 * std["plain"]


def test_labels_are_balanced():
    _, labels = SynthFashion(0, 32).arrays(0, 800)
    for col, attr in enumerate(synthfashion.schema().attributes):
        counts = np.bincount(labels[:, col], minlength=len(attr.values))
        assert counts.min() > 0.6 * 800 / len(attr.values), attr.name


def test_unknown_counterfactual_value():
    with pytest.raises(KeyError, match="valid values: sleeveless, short, three_quarter, long"):
        SynthFashion(0, 32).example(0, sleeve="cap")


def _changed(x, y):
    return np.any(x != y, axis=-1)


def test_same_value_counterfactual_is_the_original():
    ds = SynthFashion(4, 48)
    for i in range(4):
        x, labels, m = ds.example(i)
        spec = ds.spec(i)
        same = {a: getattr(spec, a) for a in ("sleeve", "colour", "pattern")}
        y, labels_y, m_y = ds.example(i, **same)
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(labels, labels_y)
        for name in MASK_NAMES:
            np.testing.assert_array_equal(m[name], m_y[name])


def test_counterfactual_spec_changes_only_the_named_attribute():
    import dataclasses
    spec = SynthFashion(6, 64).spec(3)
    for name, value in (("sleeve", "long"), ("colour", "pink"), ("pattern", "checks")):
        other = dataclasses.asdict(spec.replace(**{name: value}))
        for field, v in dataclasses.asdict(spec).items():
            assert other[field] == (value if field == name else v), field


def test_sleeve_edit_leaves_the_torso_away_from_the_arms_untouched():
    """Only arms, sleeves and the garment outline near the shoulders may change: the torso's
    colour, jitter, pattern and shading stay the same pixel for pixel."""
    ds = SynthFashion(5, 64)
    compared = 0
    for i in range(8):
        x, labels, m = ds.example(i)
        for value in synthfashion.SLEEVES:
            if synthfashion.SLEEVES.index(value) == labels[0]:
                continue
            y, _, m_y = ds.example(i, sleeve=value)
            may_change = (m["arm"] | m_y["arm"] | m["sleeve"] | m_y["sleeve"]
                          | (m["garment"] ^ m_y["garment"]))
            torso_kept = (m["torso"] & m_y["torso"]) & (_dilate(may_change) == 0)
            assert torso_kept.sum() > 0.4 * m["torso"].sum()  # most of the torso is compared
            assert not _changed(x, y)[torso_kept].any()
            assert _changed(x, y)[may_change == 1].mean() > 0.05  # the edit did change the arms
            compared += int(torso_kept.sum())
    assert compared > 10_000


@pytest.mark.parametrize("attribute", ["colour", "pattern"])
def test_garment_edits_change_only_the_garment(attribute):
    ds = SynthFashion(8, 64)
    values = synthfashion.COLOURS_LIST if attribute == "colour" else synthfashion.PATTERNS
    for i in range(6):
        x, labels, m = ds.example(i)
        col = synthfashion.schema().column(attribute)
        for k, value in enumerate(values):
            if k == labels[col]:
                continue
            y, labels_y, m_y = ds.example(i, **{attribute: value})
            assert labels_y[col] == k
            for name in MASK_NAMES:  # the shapes stay; only the cloth is repainted
                np.testing.assert_array_equal(m_y[name], m[name])
            changed = _changed(x, y)
            assert not changed[_dilate(m["garment"]) == 0].any()
            assert changed[m["garment"] == 1].mean() > (0.5 if attribute == "colour" else 0.1)


def test_pattern_edit_from_plain_keeps_the_base_cloth():
    """Plain -> stripes repaints only the stripes: the base cloth between them (same colour and
    jitter, same shading) is pixel-identical."""
    ds = SynthFashion(9, 64)
    checked = 0
    for i in range(40):
        x, labels, m = ds.example(i)
        if synthfashion.PATTERNS[labels[2]] != "plain":
            continue
        y, _, _ = ds.example(i, pattern="stripes")
        torso = m["torso"] == 1
        kept = ~_changed(x, y) & torso
        assert 0.3 < kept.sum() / torso.sum() < 0.8  # stripes cover 45% of the cloth
        checked += 1
    assert checked >= 5
