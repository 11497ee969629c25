"""Shopping100k (Ak et al., WACV 2018) in the list-file layout of the ADDE code.

Labels are concatenated one-hot blocks whose sizes come from attr_num.txt; an all-zero block means
the attribute is not labelled. Names are not in the data: they come from a names file (a packaged
default with attribute names only, overridable by the user).
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from amgan_tf.attributes import MISSING, Attribute, AttributeSchema, UnknownAttributeError
from amgan_tf.data.readers import _textfiles
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError, RawExample

NAME = "shopping100k"
LIST_SUBDIRS = ("", "splits", os.path.join("splits", "Shopping100k"))
IMAGE_ROOTS = ("Images", "images", "")
HOW_TO_GET = (
    "Shopping100k images are available from the dataset author on request "
    "(sites.google.com/view/kenanemirak/home); the list files imgs_{train,test}.txt, "
    "labels_{train,test}.txt and attr_num.txt are in the ADDE code "
    "(github.com/amzn/fashion-attribute-disentanglement, splits/Shopping100k, via git-lfs). Put the "
    "list files in the data directory (or its splits/ sub-folder) and the images under its Images/ "
    "sub-folder (or the directory itself) so that the listed relative paths resolve.")


class Shopping100kReader:
    name = NAME

    def __init__(self, manual_dir: str, names_file: str | None = None,
                 manipulated: Sequence[str] = ("collar", "color", "fastening", "pattern",
                                               "sleeve_length"),
                 reference: Sequence[str] = ("category", "gender")):
        both = set(manipulated) & set(reference)
        if both:
            raise ValueError(f"Attributes {sorted(both)} are both manipulated and reference-only.")
        self.manual_dir = manual_dir
        self.names_file = names_file
        self.manipulated = tuple(manipulated)
        self.reference = tuple(reference)
        self._schema: AttributeSchema | None = None
        self._attr_num: tuple[int, ...] | None = None
        self._image_root: str | None = None

    def _path(self, filename: str) -> str:
        return _textfiles.find_file(self.manual_dir, filename, LIST_SUBDIRS, NAME, HOW_TO_GET)

    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def check(self) -> None:
        for split in self.splits():
            self._path(f"imgs_{split}.txt")
            self._path(f"labels_{split}.txt")
        self._path("attr_num.txt")
        self.image_root()

    def image_root(self) -> str:
        """The directory the listed relative paths resolve against (checked on the first images)."""
        if self._image_root is None:
            listed = _textfiles.read_path_list(self._path("imgs_train.txt"))[:3]
            if not listed:
                raise DataFilesError(f"{NAME}: {self._path('imgs_train.txt')!r} lists no images.")
            roots = [os.path.join(self.manual_dir, r) for r in IMAGE_ROOTS]
            for root in roots:
                if all(os.path.isfile(os.path.join(root, rel)) for _, rel in listed):
                    self._image_root = os.path.abspath(root)
                    break
            else:
                raise DataFilesError(
                    f"{NAME}: the first listed image {listed[0][1]!r} was not found under any of "
                    f"{roots}. {HOW_TO_GET}")
        return self._image_root

    # ---- schema ----------------------------------------------------------------------------
    def attr_num(self) -> tuple[int, ...]:
        if self._attr_num is None:
            path = self._path("attr_num.txt")
            nums = [_textfiles.parse_int(t, path, line)
                    for line, tokens in _textfiles.data_lines(path) for t in tokens]
            if not nums or any(n < 2 for n in nums):
                raise LabelFormatError(f"{path}, line 1: expected one count >= 2 per attribute, "
                                       f"got {nums}.")
            self._attr_num = tuple(nums)
        return self._attr_num

    def _all_attributes(self) -> list[Attribute]:
        """Every attribute of attr_num.txt, named, before selection."""
        defaults = _textfiles.packaged_names("shopping100k.json")
        user = _textfiles.load_json(self.names_file) if self.names_file else {}
        source = self.names_file or "the packaged names/shopping100k.json"
        names = [str(n) for n in user.get("attributes", defaults["attributes"])]
        nums = self.attr_num()
        if len(names) != len(nums):
            raise LabelFormatError(f"{source}: {len(names)} attribute names for {len(nums)} "
                                   f"attributes in {self._path('attr_num.txt')}.")
        values = {**defaults.get("values", {}), **user.get("values", {})}
        unknown = set(values) - set(names)
        if unknown:
            raise UnknownAttributeError(f"{source}: value names given for unknown attributes "
                                        f"{sorted(unknown)}; attributes: {', '.join(names)}.")
        attrs = []
        for name, num in zip(names, nums):
            vals = tuple(str(v) for v in values.get(name) or _textfiles.fallback_names(name, num))
            if len(vals) != num:
                raise LabelFormatError(f"{source}: attribute {name!r} has {num} values in attr_num.txt "
                                       f"but {len(vals)} names.")
            attrs.append(Attribute(name, vals, name in self.manipulated))
        return attrs

    def schema(self) -> AttributeSchema:
        if self._schema is None:
            attrs = self._all_attributes()
            names = [a.name for a in attrs]
            for wanted in (*self.manipulated, *self.reference):
                if wanted not in names:
                    raise UnknownAttributeError(f"Unknown attribute {wanted!r} for dataset {NAME}; "
                                                f"valid attributes: {', '.join(names)}.")
            keep = set(self.manipulated) | set(self.reference)
            self._schema = AttributeSchema(tuple(a for a in attrs if a.name in keep), dataset=NAME)
        return self._schema

    # ---- examples --------------------------------------------------------------------------
    def read_split(self, split: str) -> tuple[list[str], np.ndarray]:
        """(absolute image paths, int32 labels in schema order) of a split, fully validated."""
        if split not in self.splits():
            raise ValueError(f"Unknown split {split!r}; {NAME} has {self.splits()}.")
        imgs_path, labels_path = self._path(f"imgs_{split}.txt"), self._path(f"labels_{split}.txt")
        images = _textfiles.read_path_list(imgs_path)
        schema = self.schema()
        nums = self.attr_num()
        names = [a.name for a in self._all_attributes()]
        keep = [names.index(a) for a in schema.names]
        starts = np.concatenate([[0], np.cumsum(nums)])
        width = int(starts[-1])
        rows = []
        for line, tokens in _textfiles.data_lines(labels_path):
            if len(tokens) != width:
                raise LabelFormatError(f"{labels_path}, line {line}: {len(tokens)} columns, expected "
                                       f"{width} (the sum of attr_num.txt).")
            try:
                bits = [int(t) for t in tokens]
            except ValueError:  # slow path only to name the bad token
                bits = [_textfiles.parse_int(t, labels_path, line) for t in tokens]
            if any(b not in (0, 1) for b in bits):
                raise LabelFormatError(f"{labels_path}, line {line}: label columns must be 0 or 1.")
            values = []
            for k, name in enumerate(names):
                block = bits[starts[k]:starts[k + 1]]
                ones = sum(block)
                if ones > 1:
                    raise LabelFormatError(f"{labels_path}, line {line}: attribute {name!r} "
                                           f"has {ones} ones in its one-hot block.")
                values.append(block.index(1) if ones else MISSING)
            rows.append([values[k] for k in keep])
            if len(rows) > len(images):
                raise LabelFormatError(f"{labels_path}, line {line}: more label rows than the "
                                       f"{len(images)} images of {imgs_path}.")
        if len(rows) != len(images):
            raise LabelFormatError(f"{imgs_path}, line {images[len(rows)][0]}: {len(images)} images "
                                   f"but only {len(rows)} label rows in {labels_path}.")
        root = self.image_root()
        labels = np.asarray(rows, np.int32).reshape(len(rows), len(keep))
        return [os.path.join(root, rel) for _, rel in images], labels

    def examples(self, split: str) -> Iterator[RawExample]:
        paths, labels = self.read_split(split)
        for i, (path, row) in enumerate(zip(paths, labels)):
            yield RawExample(key=f"{split}_{i:06d}", image=path, labels=row)
