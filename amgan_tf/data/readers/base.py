"""What every dataset reader provides, and the errors readers raise.

A reader turns a user's local copy of a dataset (TFDS `manual_dir` style: nothing is ever
downloaded) into `RawExample`s in the label order of its `AttributeSchema`. TFDS builders
(`amgan_tf.data.builders`) wrap readers; readers themselves know nothing of TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Protocol

import numpy as np

from amgan_tf.attributes import AttributeSchema


class DataFilesError(FileNotFoundError):
    """A dataset directory is missing or incomplete; the message names the file and the fix."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LabelFormatError(ValueError):
    """A label or list file is malformed; the message names the file and the line."""


@dataclasses.dataclass
class RawExample:
    key: str
    image: np.ndarray | str  # uint8 [H, W, 3] array, or the path of an encoded image file
    labels: np.ndarray  # int32 [num attributes] in schema order, MISSING (-1) for no label
    masks: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # name -> uint8 [H, W]


class Reader(Protocol):
    name: str

    def schema(self) -> AttributeSchema: ...

    def splits(self) -> tuple[str, ...]: ...

    def check(self) -> None:
        """Raise DataFilesError naming the first missing file (cheap: no image is read)."""

    def examples(self, split: str) -> Iterator[RawExample]: ...


def require_file(path: str, dataset: str, how_to_get: str) -> str:
    """Return `path` if it exists, else raise DataFilesError saying what is missing and the fix."""
    if not os.path.exists(path):
        raise DataFilesError(
            f"{dataset}: required file {path!r} was not found. {how_to_get}")
    return path
