"""Small helpers shared by the readers: line-numbered text parsing, file search, names files.

Kept private so that every error a user sees names the file and 1-based line it came from.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Iterator, Sequence

from amgan_tf.data.readers.base import DataFilesError, LabelFormatError


def data_lines(path: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace tokens) of every line, blank lines skipped."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            tokens = line.split()
            if tokens:
                yield number, tokens


def parse_int(token: str, path: str, line: int) -> int:
    try:
        return int(token)
    except ValueError:
        raise LabelFormatError(f"{path}, line {line}: expected an integer, got {token!r}.") from None


def read_path_list(path: str) -> list[tuple[int, str]]:
    """(line number, relative path) of a one-path-per-line list; trailing blank lines allowed."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry:
            raise LabelFormatError(f"{path}, line {number}: empty line inside the image list.")
        out.append((number, entry))
    return out


def has_count_header(path: str) -> bool:
    """DeepFashion list files start with a count line and a header line; data files do not."""
    first = []
    for _, tokens in data_lines(path):
        first.append(tokens)
        if len(first) == 2:
            break
    if len(first) < 2 or len(first[0]) != 1 or not first[0][0].isdigit():
        return False
    return any(not _is_number(t) for t in first[1])


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def find_file(manual_dir: str, filename: str, subdirs: Sequence[str], dataset: str,
              how_to_get: str) -> str:
    """First existing `manual_dir/<sub>/filename`, else a DataFilesError naming where we looked."""
    if not os.path.isdir(manual_dir):
        raise DataFilesError(f"{dataset}: the data directory {manual_dir!r} does not exist. {how_to_get}")
    for sub in subdirs:
        candidate = os.path.join(manual_dir, sub, filename)
        if os.path.isfile(candidate):
            return candidate
    where = ", ".join(repr(s + "/") if s else "the directory itself" for s in subdirs)
    raise DataFilesError(
        f"{dataset}: required file {filename!r} was not found in {manual_dir!r} (searched {where}). "
        f"{how_to_get}")


def load_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise LabelFormatError(f"{path}, line {e.lineno}: not valid JSON ({e.msg}).") from None
    if not isinstance(data, dict):
        raise LabelFormatError(f"{path}, line 1: expected a JSON object at the top level.")
    return data


def packaged_names(filename: str) -> dict:
    """A default names file shipped in `amgan_tf/data/readers/names/`."""
    text = resources.files(__package__).joinpath("names", filename).read_text(encoding="utf-8")
    return json.loads(text)


def fallback_names(attribute: str, count: int) -> tuple[str, ...]:
    """Placeholder value names `<attribute>_<0-based index>` for when real names are unknown."""
    return tuple(f"{attribute}_{i}" for i in range(count))
