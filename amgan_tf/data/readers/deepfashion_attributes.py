"""DeepFashion Category-and-Attribute benchmark, fine annotations (`Anno_fine`).

The 26 fine attributes form 6 mutually exclusive groups (the type column of list_attr_cloth.txt),
so each group becomes one categorical attribute. Copies of `{split}_attr.txt` come either as 26
binary columns or as 6 per-group indices (0-based within the group); both are accepted.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from amgan_tf.attributes import MISSING, Attribute, AttributeSchema, UnknownAttributeError
from amgan_tf.data.readers import _textfiles
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError, RawExample

NAME = "deepfashion_attributes"
ANNO_SUBDIRS = ("", "Anno_fine", os.path.join("Anno", "Anno_fine"))
HOW_TO_GET = (
    "The DeepFashion Category and Attribute Prediction Benchmark is distributed by the DeepFashion "
    "authors (mmlab.ie.cuhk.edu.hk/projects/DeepFashion/AttributePrediction.html) after agreeing to "
    "its licence; put the Anno_fine files (train.txt, train_attr.txt, train_cate.txt, ..., "
    "list_attr_cloth.txt, list_category_cloth.txt) in the data directory (or its Anno_fine/ "
    "sub-folder) and the images (img/...) under the data directory, as the listed paths expect.")
# The type column of Anno_fine/list_attr_cloth.txt.
GROUP_NAMES = {1: "pattern", 2: "sleeve", 3: "length", 4: "neckline", 5: "fabric", 6: "fit"}
CATEGORY = "category"


class DeepFashionAttributesReader:
    name = NAME

    def __init__(self, manual_dir: str,
                 manipulated: Sequence[str] = tuple(GROUP_NAMES.values()),
                 reference: Sequence[str] = (CATEGORY,)):
        both = set(manipulated) & set(reference)
        if both:
            raise ValueError(f"Attributes {sorted(both)} are both manipulated and reference-only.")
        self.manual_dir = manual_dir
        self.manipulated = tuple(manipulated)
        self.reference = tuple(reference)
        self._groups: list[tuple[str, tuple[str, ...]]] | None = None
        self._column_group: list[int] | None = None
        self._schema: AttributeSchema | None = None

    def _path(self, filename: str) -> str:
        return _textfiles.find_file(self.manual_dir, filename, ANNO_SUBDIRS, NAME, HOW_TO_GET)

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test")

    def check(self) -> None:
        self._path("list_attr_cloth.txt")
        self._path("list_category_cloth.txt")
        for split in self.splits():
            for suffix in ("", "_attr", "_cate"):
                self._path(f"{split}{suffix}.txt")
        listed = _textfiles.read_path_list(self._path("train.txt"))
        if not listed:
            raise DataFilesError(f"{NAME}: {self._path('train.txt')!r} lists no images.")
        first = os.path.join(self.manual_dir, listed[0][1])
        if not os.path.isfile(first):
            raise DataFilesError(f"{NAME}: the first listed image {first!r} was not found. {HOW_TO_GET}")

    # ---- schema ----------------------------------------------------------------------------
    def _load_groups(self) -> None:
        if self._groups is not None:
            return
        path = self._path("list_attr_cloth.txt")
        rows = _named_rows(path)
        types = [_textfiles.parse_int(t, path, line) for line, _, t in rows]
        order = sorted(set(types))
        self._groups = [(GROUP_NAMES.get(t, f"group_{t}"),
                         tuple(name for (_, name, _), ty in zip(rows, types) if ty == t))
                        for t in order]
        self._column_group = [order.index(t) for t in types]

    def _categories(self) -> tuple[str, ...]:
        return tuple(name for _, name, _ in _named_rows(self._path("list_category_cloth.txt")))

    def schema(self) -> AttributeSchema:
        if self._schema is None:
            self._load_groups()
            available = {name: values for name, values in self._groups}
            available[CATEGORY] = self._categories()
            for wanted in (*self.manipulated, *self.reference):
                if wanted not in available:
                    raise UnknownAttributeError(f"Unknown attribute {wanted!r} for dataset {NAME}; "
                                                f"valid attributes: {', '.join(available)}.")
            self._schema = AttributeSchema(
                tuple(Attribute(name, values, name in self.manipulated)
                      for name, values in available.items()
                      if name in self.manipulated or name in self.reference), dataset=NAME)
        return self._schema

    # ---- examples --------------------------------------------------------------------------
    def read_split(self, split: str) -> tuple[list[str], np.ndarray]:
        """(absolute image paths, int32 labels in schema order) of a split, fully validated."""
        if split not in self.splits():
            raise ValueError(f"Unknown split {split!r}; {NAME} has {self.splits()}.")
        schema = self.schema()
        images = _textfiles.read_path_list(self._path(f"{split}.txt"))
        groups = self._read_attr(self._path(f"{split}_attr.txt"))
        cates = self._read_cate(self._path(f"{split}_cate.txt"))
        list_path = self._path(f"{split}.txt")
        for other, rows in ((f"{split}_attr.txt", groups), (f"{split}_cate.txt", cates)):
            if len(rows) != len(images):
                raise LabelFormatError(f"{self._path(other)}, line {min(len(rows), len(images)) + 1}: "
                                       f"{len(rows)} rows but {list_path} lists {len(images)} images.")
        columns = {name: groups[:, g] for g, (name, _) in enumerate(self._groups)}
        columns[CATEGORY] = cates
        labels = np.stack([columns[name] for name in schema.names], axis=1).astype(np.int32)
        root = os.path.abspath(self.manual_dir)
        return [os.path.join(root, rel) for _, rel in images], labels

    def _read_attr(self, path: str) -> np.ndarray:
        """Per-group 0-based values from binary (26 columns) or group-index (6 columns) rows."""
        n_attr, n_groups = len(self._column_group), len(self._groups)
        skip = 2 if _textfiles.has_count_header(path) else 0
        out = []
        for k, (line, tokens) in enumerate(_textfiles.data_lines(path)):
            if k < skip:
                continue
            values = [_textfiles.parse_int(t, path, line) for t in tokens]
            if len(values) == n_attr:
                out.append(self._from_binary(values, path, line))
            elif len(values) == n_groups:
                out.append(self._from_groups(values, path, line))
            else:
                raise LabelFormatError(f"{path}, line {line}: {len(values)} columns; expected {n_attr} "
                                       f"binary attribute columns or {n_groups} group indices.")
        return np.asarray(out, np.int64).reshape(len(out), n_groups)

    def _from_binary(self, bits: list[int], path: str, line: int) -> list[int]:
        row = [MISSING] * len(self._groups)
        position = [0] * len(self._groups)
        for bit, g in zip(bits, self._column_group):
            if bit not in (0, 1, -1):  # -1 (absent) is used by some DeepFashion copies
                raise LabelFormatError(f"{path}, line {line}: binary columns must be 0/1, got {bit}.")
            if bit == 1:
                if row[g] != MISSING:
                    raise LabelFormatError(f"{path}, line {line}: group {self._groups[g][0]!r} has "
                                           f"more than one attribute set.")
                row[g] = position[g]
            position[g] += 1
        return row

    def _from_groups(self, values: list[int], path: str, line: int) -> list[int]:
        for (name, names), v in zip(self._groups, values):
            if not MISSING <= v < len(names):
                raise LabelFormatError(f"{path}, line {line}: group {name!r} index {v} is outside "
                                       f"0..{len(names) - 1} (-1 = missing).")
        return values

    def _read_cate(self, path: str) -> np.ndarray:
        n = len(self._categories())
        skip = 2 if _textfiles.has_count_header(path) else 0
        out = []
        for k, (line, tokens) in enumerate(_textfiles.data_lines(path)):
            if k < skip:
                continue
            if len(tokens) != 1:
                raise LabelFormatError(f"{path}, line {line}: {len(tokens)} columns, expected 1 "
                                       f"(a 1-based category index).")
            v = _textfiles.parse_int(tokens[0], path, line)
            if not 1 <= v <= n:
                raise LabelFormatError(f"{path}, line {line}: category {v} is outside 1..{n}.")
            out.append(v - 1)
        return np.asarray(out, np.int64)

    def examples(self, split: str) -> Iterator[RawExample]:
        paths, labels = self.read_split(split)
        for i, (path, row) in enumerate(zip(paths, labels)):
            yield RawExample(key=f"{split}_{i:06d}", image=path, labels=row)


def _named_rows(path: str) -> list[tuple[int, str, str]]:
    """(line, name, type) rows of a count/header list file; names may contain spaces."""
    lines = list(_textfiles.data_lines(path))
    if len(lines) < 2 or len(lines[0][1]) != 1:
        raise LabelFormatError(f"{path}, line 1: expected a count line then a header line.")
    count = _textfiles.parse_int(lines[0][1][0], path, lines[0][0])
    rows = []
    for line, tokens in lines[2:]:
        if len(tokens) < 2:
            raise LabelFormatError(f"{path}, line {line}: expected '<name> <type>'.")
        rows.append((line, " ".join(tokens[:-1]), tokens[-1]))
    if len(rows) != count:
        raise LabelFormatError(f"{path}, line 1: the count line says {count} but "
                               f"{len(rows)} rows follow.")
    return rows
