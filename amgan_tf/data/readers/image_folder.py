"""Images in `<root>/<split>/<folder>/*`: folders are values of one attribute, or a label file
(CSV or JSON) gives several attributes. The smallest way to bring one's own photos.
"""

from __future__ import annotations

import csv
import os
from typing import Iterator, Mapping, Sequence

import numpy as np

from amgan_tf.attributes import Attribute, AttributeSchema
from amgan_tf.data.readers import _textfiles
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError, RawExample

NAME = "image_folder"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLIT_ORDER = ("train", "validation", "val", "test")
HOW_TO_GET = ("Arrange images as <root>/<split>/<value folder>/*.jpg (e.g. train/longsleeve/x.jpg), "
              "or give label_file= a CSV (path,attr1,...) or JSON label file with paths relative to "
              "<root>.")

# Reads clothing-dataset-small as sleeve long vs short (other garment folders are ignored).
CLOTHING_SMALL_SLEEVE = dict(attribute="sleeve", value_map={"longsleeve": "long", "t-shirt": "short"})


class ImageFolderReader:
    name = NAME

    def __init__(self, manual_dir: str, attribute: str = "sleeve", values: Sequence[str] | None = None,
                 value_map: Mapping[str, str] | None = None, label_file: str | None = None,
                 splits: Sequence[str] | None = None):
        if label_file is not None and (values is not None or value_map is not None):
            raise ValueError("label_file defines the attributes and values; do not combine it with "
                             "values= or value_map=.")
        self.manual_dir = manual_dir
        self.attribute = attribute
        self.values = tuple(values) if values is not None else None
        self.value_map = dict(value_map) if value_map is not None else None
        self.label_file = label_file
        self._splits = tuple(splits) if splits is not None else None
        self._schema: AttributeSchema | None = None
        self._labelled: list[tuple[str, str, dict]] | None = None  # (split, relpath, {attr: value})
        self._json_schema: AttributeSchema | None = None

    # ---- layout ----------------------------------------------------------------------------
    def _root(self) -> str:
        if not os.path.isdir(self.manual_dir):
            raise DataFilesError(f"{NAME}: the data directory {self.manual_dir!r} does not exist. "
                                 f"{HOW_TO_GET}")
        return self.manual_dir

    def splits(self) -> tuple[str, ...]:
        if self._splits is not None:
            return self._splits
        if self.label_file is not None:
            found = {split for split, _, _ in self._label_rows()}
        else:
            root = self._root()
            found = {d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")}
        known = [s for s in SPLIT_ORDER if s in found]
        return tuple(known + sorted(found - set(known)))

    def _folder_images(self, split: str) -> list[tuple[str, str]]:
        """(relative path, folder) of the images of a split, sorted, in used folders only."""
        split_dir = os.path.join(self._root(), split)
        if not os.path.isdir(split_dir):
            raise DataFilesError(f"{NAME}: split folder {split_dir!r} does not exist. {HOW_TO_GET}")
        out = []
        for folder in sorted(os.listdir(split_dir)):
            if not os.path.isdir(os.path.join(split_dir, folder)) or folder.startswith("."):
                continue
            if self.value_map is not None and folder not in self.value_map:
                continue  # not one of the mapped folders: deliberately ignored
            for fname in sorted(os.listdir(os.path.join(split_dir, folder))):
                if fname.lower().endswith(IMAGE_EXTENSIONS):
                    out.append((f"{split}/{folder}/{fname}", folder))
        return out

    def check(self) -> None:
        root = self._root()
        if self.label_file is not None:
            rows = self._label_rows()
            if not rows:
                raise DataFilesError(f"{NAME}: {self._label_path()!r} labels no images.")
            first = os.path.join(root, rows[0][1])
            if not os.path.isfile(first):
                raise DataFilesError(f"{NAME}: the first labelled image {first!r} was not found.")
            return
        if not self.splits():
            raise DataFilesError(f"{NAME}: no split folders in {root!r}. {HOW_TO_GET}")
        for split in self.splits():
            if not self._folder_images(split):
                raise DataFilesError(f"{NAME}: no images in the used value folders of "
                                     f"{os.path.join(root, split)!r}. {HOW_TO_GET}")

    # ---- schema ----------------------------------------------------------------------------
    def schema(self) -> AttributeSchema:
        if self._schema is None:
            if self.label_file is not None:
                self._schema = self._label_schema()
            else:
                if self.values is not None:
                    values = self.values
                elif self.value_map is not None:
                    values = tuple(sorted(set(self.value_map.values())))
                else:
                    values = tuple(sorted({folder for split in self.splits()
                                           for _, folder in self._folder_images(split)}))
                self._schema = AttributeSchema((Attribute(self.attribute, values),), dataset=NAME)
        return self._schema

    # ---- label files -----------------------------------------------------------------------
    def _label_path(self) -> str:
        path = self.label_file
        if not os.path.isabs(path) and not os.path.isfile(path):
            path = os.path.join(self._root(), path)
        if not os.path.isfile(path):
            raise DataFilesError(f"{NAME}: label file {self.label_file!r} was not found (also looked "
                                 f"in {self.manual_dir!r}). {HOW_TO_GET}")
        return path

    def _label_rows(self) -> list[tuple[str, str, dict]]:
        if self._labelled is None:
            path = self._label_path()
            if path.lower().endswith(".json"):
                self._json_schema, rows = _read_json_labels(path)
            else:
                self._json_schema, rows = None, _read_csv_labels(path)
            self._labelled = sorted((rel.split("/", 1)[0], rel, labels) for rel, labels in rows)
        return self._labelled

    def _label_schema(self) -> AttributeSchema:
        rows = self._label_rows()
        if self._json_schema is not None:
            return self._json_schema
        names = list(rows[0][2]) if rows else []
        attrs = tuple(Attribute(n, tuple(sorted({r[n] for _, _, r in rows if r[n] is not None})))
                      for n in names)
        return AttributeSchema(attrs, dataset=NAME)

    # ---- examples --------------------------------------------------------------------------
    def examples(self, split: str) -> Iterator[RawExample]:
        schema = self.schema()
        root = os.path.abspath(self._root())
        if self.label_file is not None:
            for row_split, rel, labels in self._label_rows():
                if row_split == split:
                    yield RawExample(key=rel, image=os.path.join(root, rel),
                                     labels=schema.labels_from_dict(labels))
            return
        attr = schema.attributes[0]
        for rel, folder in self._folder_images(split):
            value = self.value_map[folder] if self.value_map is not None else folder
            yield RawExample(key=rel, image=os.path.join(root, rel),
                             labels=np.array([attr.value_index(value)], np.int32))


def _read_csv_labels(path: str) -> list[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or not rows[0] or rows[0][0].strip() != "path" or len(rows[0]) < 2:
        raise LabelFormatError(f"{path}, line 1: expected a header 'path,<attribute>,...'.")
    header = [h.strip() for h in rows[0]]
    out = []
    for number, row in enumerate(rows[1:], 2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise LabelFormatError(f"{path}, line {number}: {len(row)} columns, expected "
                                   f"{len(header)} ({', '.join(header)}).")
        rel = _clean_relpath(row[0], path, number)
        out.append((rel, {h: (c.strip() or None) for h, c in zip(header[1:], row[1:])}))
    return out


def _read_json_labels(path: str) -> tuple[AttributeSchema, list[tuple[str, dict]]]:
    data = _textfiles.load_json(path)
    try:
        schema = AttributeSchema.from_dict({"dataset": NAME, "attributes": data["attributes"]})
        labels = data["labels"]
    except KeyError as e:
        raise LabelFormatError(f"{path}, line 1: missing key {e} (need 'attributes' and "
                               f"'labels').") from None
    if not isinstance(labels, dict):
        raise LabelFormatError(f"{path}, line 1: 'labels' must map relative paths to "
                               f"{{attribute: value}}.")
    out = []
    for rel, row in labels.items():
        schema.labels_from_dict(row)  # unknown attributes or values fail here, with valid names
        out.append((_clean_relpath(rel, path, 1), row))
    return schema, out


def _clean_relpath(rel: str, path: str, line: int) -> str:
    rel = rel.strip().replace("\\", "/")
    if not rel or rel.startswith("/") or "/" not in rel:
        raise LabelFormatError(f"{path}, line {line}: image path {rel!r} must be relative to the "
                               f"root and start with its split folder (e.g. train/x.jpg).")
    return rel
