"""DeepFashion-Synthesis (FashionGAN, ICCV 2017): 78,979 128x128 images in one MATLAB HDF5 file.

G2.h5 is ~15 GB, so images are read lazily in chunks of sorted indices. MATLAB writes arrays
column-major, which h5py shows with the last two axes swapped; we swap them back. Value names are
not stored in the data (only integer codes), so they come from a user names file or are derived
from the engJ sentences (see names/deepfashion_synthesis.json), never silently guessed.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Iterator

import h5py
import numpy as np
import scipy.io

from amgan_tf.attributes import Attribute, AttributeSchema
from amgan_tf.data.readers import _textfiles
from amgan_tf.data.readers.base import DataFilesError, LabelFormatError, RawExample

log = logging.getLogger(__name__)

NAME = "deepfashion_synthesis"
FILES = ("G2.h5", "language_original.mat", "ind.mat")
SUBDIRS = ("", "Img", "Anno", "Eval", "benchmark", "supervision_signals")
HOW_TO_GET = (
    "DeepFashion-Synthesis is distributed by the DeepFashion authors "
    "(mmlab.ie.cuhk.edu.hk/projects/DeepFashion/FashionSynthesis.html) after agreeing to its "
    "licence; put G2.h5, language_original.mat and ind.mat in the data directory (or its Img/, "
    "Anno/, Eval/ or benchmark/, supervision_signals/ sub-folders).")

# attribute name -> (variable in language_original.mat, number of values, code of the first value)
CODES = {"colour": ("color_", 17, 1), "sleeve": ("sleeve_", 4, 1),
         "category": ("cate_new", 19, 1), "gender": ("gender_", 2, 0)}
MANIPULATED = ("colour", "sleeve")
SEGMENT_UPPER_CLOTHES = 3
CHUNK = 256


class DeepFashionSynthesisReader:
    name = NAME

    def __init__(self, manual_dir: str, split_mode: str = "paper", paper_test_size: int = 2000,
                 seed: int = 0, names_file: str | None = None):
        if split_mode not in ("paper", "official"):
            raise ValueError(f"split_mode must be 'paper' (random {paper_test_size}-image test set, "
                             f"as in AMGAN) or 'official' (ind.mat), got {split_mode!r}.")
        self.manual_dir = manual_dir
        self.split_mode = split_mode
        self.paper_test_size = int(paper_test_size)
        self.seed = seed
        self.names_file = names_file
        self._labels: np.ndarray | None = None
        self._sentences: list[str] | None = None
        self._schema: AttributeSchema | None = None

    # ---- files -----------------------------------------------------------------------------
    def _path(self, filename: str) -> str:
        return _textfiles.find_file(self.manual_dir, filename, SUBDIRS, NAME, HOW_TO_GET)

    def check(self) -> None:
        for filename in FILES:
            self._path(filename)
        g2 = self._path("G2.h5")
        with h5py.File(g2, "r") as f:
            for key in ("ih", "ih_mean", "b_"):
                if key not in f:
                    raise DataFilesError(f"{NAME}: {g2!r} has no dataset '/{key}' (found "
                                         f"{sorted(f.keys())}); is it the FashionGAN G2.h5? {HOW_TO_GET}")

    # ---- labels ----------------------------------------------------------------------------
    def _load_language(self) -> None:
        if self._labels is not None:
            return
        path = self._path("language_original.mat")
        mat = _loadmat(path)
        columns, n = [], None
        for attr, (var, count, first) in CODES.items():
            if var not in mat:
                raise LabelFormatError(f"{path}: variable {var!r} is missing "
                                       f"(found {sorted(k for k in mat if not k.startswith('__'))}).")
            codes = np.asarray(mat[var]).reshape(-1)
            n = len(codes) if n is None else n
            if len(codes) != n:
                raise LabelFormatError(f"{path}: {var!r} has {len(codes)} rows, expected {n}.")
            bad = ~np.isin(codes, np.arange(first, first + count))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise LabelFormatError(f"{path}, row {row + 1}: {var} = {float(codes[row]):g} is outside "
                                       f"{first}..{first + count - 1} (attribute {attr!r}).")
            columns.append(codes.astype(np.int64) - first)
        self._labels = np.stack(columns, axis=1).astype(np.int32)
        self._sentences = _cell_strings(mat["engJ"]) if "engJ" in mat else []
        if self._sentences and len(self._sentences) != n:
            raise LabelFormatError(f"{path}: engJ has {len(self._sentences)} rows, expected {n}.")

    def schema(self) -> AttributeSchema:
        if self._schema is None:
            self._load_language()
            names = self._value_names()
            self._schema = AttributeSchema(
                tuple(Attribute(a, names[a], a in MANIPULATED) for a in CODES), dataset=NAME)
        return self._schema

    def _value_names(self) -> dict[str, tuple[str, ...]]:
        user = _textfiles.load_json(self.names_file) if self.names_file else {}
        unknown = set(user) - set(CODES)
        if unknown:
            raise LabelFormatError(f"{self.names_file}: unknown keys {sorted(unknown)}; "
                                   f"expected some of {list(CODES)}.")
        defaults = _textfiles.packaged_names("deepfashion_synthesis.json")
        out = {}
        for col, (attr, (_, count, _)) in enumerate(CODES.items()):
            if attr in user:
                names = tuple(str(v) for v in user[attr])
                if len(names) != count:
                    raise LabelFormatError(f"{self.names_file}: {attr!r} needs {count} names, "
                                           f"got {len(names)}.")
                out[attr] = names
            else:
                out[attr] = derive_names(attr, count, self._labels[:, col], self._sentences,
                                         defaults["vocabulary"][attr], defaults["min_share"])
        return out

    # ---- splits ----------------------------------------------------------------------------
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def split_indices(self, split: str) -> np.ndarray:
        """Sorted 0-based image indices of a split."""
        if split not in self.splits():
            raise ValueError(f"Unknown split {split!r}; {NAME} has {self.splits()}.")
        self._load_language()
        n = len(self._labels)
        if self.split_mode == "official":
            path = self._path("ind.mat")
            var = f"{split}_ind"
            mat = _loadmat(path)
            if var not in mat:
                raise LabelFormatError(f"{path}: variable {var!r} is missing.")
            idx = np.asarray(mat[var]).reshape(-1).astype(np.int64)
            bad = (idx < 1) | (idx > n)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise LabelFormatError(f"{path}, row {row + 1}: {var} = {idx[row]} is outside 1..{n}.")
            return np.sort(idx - 1)
        if not 0 < self.paper_test_size < n:
            raise ValueError(f"paper_test_size must be in 1..{n - 1}, got {self.paper_test_size}.")
        perm = np.random.default_rng(self.seed).permutation(n)
        chosen = perm[:self.paper_test_size] if split == "test" else perm[self.paper_test_size:]
        return np.sort(chosen)

    # ---- examples --------------------------------------------------------------------------
    def examples(self, split: str) -> Iterator[RawExample]:
        indices = self.split_indices(split)
        labels = self._labels
        path = self._path("G2.h5")
        with h5py.File(path, "r") as f:
            ih, b = f["ih"], f["b_"]
            if ih.ndim != 4 or ih.shape[1] != 3 or ih.shape[0] != len(labels):
                raise LabelFormatError(f"{path}: /ih has shape {ih.shape}, expected "
                                       f"({len(labels)}, 3, W, H) to match language_original.mat.")
            mean = _to_hwc(np.asarray(f["ih_mean"], np.float32)[None])[0]
            for start in range(0, len(indices), CHUNK):
                chunk = indices[start:start + CHUNK]
                images = _to_hwc(_read_rows(ih, chunk).astype(np.float32))
                images = np.round(np.clip(images + mean, 0.0, 1.0) * 255.0).astype(np.uint8)
                segments = np.swapaxes(_read_rows(b, chunk), -1, -2)[:, 0].astype(np.uint8)
                for i, image, seg in zip(chunk, images, segments):
                    yield RawExample(
                        key=f"df_{int(i):06d}", image=image, labels=labels[i].copy(),
                        masks={"garment": (seg == SEGMENT_UPPER_CLOTHES).astype(np.uint8),
                               "segmentation": seg})


def _loadmat(path: str) -> dict:
    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5; the public release is v5.
        raise LabelFormatError(f"{path}: MATLAB v7.3 file; expected the v5 .mat of the "
                               f"public release.") from None


def _read_rows(dataset: h5py.Dataset, sorted_idx: np.ndarray) -> np.ndarray:
    """Rows `sorted_idx` of a dataset: one slice when dense, point selection when sparse."""
    lo, hi = int(sorted_idx[0]), int(sorted_idx[-1]) + 1
    if hi - lo <= 2 * len(sorted_idx):
        return dataset[lo:hi][sorted_idx - lo]
    return dataset[sorted_idx.tolist()]


def _to_hwc(x: np.ndarray) -> np.ndarray:
    """MATLAB-order (N, C, W, H) -> (N, H, W, C)."""
    return np.transpose(np.swapaxes(x, -1, -2), (0, 2, 3, 1))


def _cell_strings(cell) -> list[str]:
    """A MATLAB cell array of char arrays (as loaded by scipy) -> list of Python strings."""
    out = []
    for item in np.asarray(cell, dtype=object).reshape(-1):
        if isinstance(item, str):
            out.append(item)
        else:
            arr = np.asarray(item)
            out.append("".join(str(s) for s in arr.reshape(-1)) if arr.size else "")
    return out


def derive_names(attribute: str, count: int, codes: np.ndarray, sentences: list[str],
                 vocabulary: dict[str, str], min_share: float) -> tuple[str, ...]:
    """Name each code by its most frequent vocabulary word in the sentences; placeholders otherwise."""
    names = list(_textfiles.fallback_names(attribute, count))
    if not sentences:
        log.warning("%s: no engJ sentences to derive %s names from; using %s..%s. Pass names_file "
                    "to name them.", NAME, attribute, names[0], names[-1])
        return tuple(names)
    patterns = {word: re.compile(rx) for word, rx in vocabulary.items()}
    winners: dict[int, str] = {}
    problems: list[str] = []
    for code in range(count):
        counts: Counter[str] = Counter()
        for i in np.flatnonzero(codes == code):
            text = sentences[i].lower()
            for word, rx in patterns.items():
                counts[word] += len(rx.findall(text))
        ranked = [(w, c) for w, c in counts.most_common(3) if c > 0]
        if not ranked:
            problems.append(f"{code}: no {attribute} word")
        elif (len(ranked) > 1 and ranked[1][1] == ranked[0][1]) \
                or ranked[0][1] < min_share * sum(counts.values()):
            problems.append(f"{code}: ambiguous {dict(ranked)}")
        else:
            winners[code] = ranked[0][0]
    taken = Counter(winners.values())
    for code, word in sorted(winners.items()):
        if taken[word] > 1:
            problems.append(f"{code}: {word!r} also wins for another code")
        else:
            names[code] = word
    if problems:
        log.warning("%s: could not name %d of %d %s codes from the engJ sentences, so they keep "
                    "placeholder names %s_<0-based code> (pass names_file to name them): %s.", NAME,
                    len(problems), count, attribute, attribute, "; ".join(problems))
    return tuple(names)
