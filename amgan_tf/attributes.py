"""The attribute schema shared by data, models, losses, export and clients.

One object answers every question about attributes: which exist, their value names, which are
manipulated (they make up `m`), which only take part in reference matching (category, gender),
and how a manipulation is encoded as `m = {m_1..m_N, r}` (PAPER.md): a one-hot target value over
the N values of the manipulated attributes (only attribute r's block non-zero) followed by a
one-hot r over the M manipulated attributes.

Labels everywhere are int32 rows in `schema.attributes` order, with MISSING (-1) for no label.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable, Sequence

import numpy as np

MISSING = -1


class UnknownAttributeError(KeyError, ValueError):
    """An attribute or value name that the schema does not have; the message lists valid names."""

    def __str__(self) -> str:  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]
    manipulated: bool = True

    def __post_init__(self):
        object.__setattr__(self, "values", tuple(self.values))
        if not self.name:
            raise ValueError("An attribute needs a non-empty name.")
        if len(self.values) < 2:
            raise ValueError(f"Attribute {self.name!r} needs at least two values, got {self.values}.")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"Attribute {self.name!r} has repeated value names: {self.values}.")

    def value_index(self, value: str | int) -> int:
        """Index of a value given by name or index; errors list the valid names."""
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if 0 <= int(value) < len(self.values):
                return int(value)
            raise UnknownAttributeError(
                f"Value index {value} is out of range for attribute {self.name!r} "
                f"(0..{len(self.values) - 1}: {', '.join(self.values)}).")
        try:
            return self.values.index(value)
        except ValueError:
            raise UnknownAttributeError(
                f"Unknown value {value!r} for attribute {self.name!r}; valid values: "
                f"{', '.join(self.values)}.") from None


@dataclasses.dataclass(frozen=True)
class AttributeSchema:
    """Attributes of a dataset, in label-column order."""

    attributes: tuple[Attribute, ...]
    dataset: str = ""

    def __post_init__(self):
        object.__setattr__(self, "attributes", tuple(self.attributes))
        names = [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"Repeated attribute names in schema: {names}.")
        if not self.manipulated:
            raise ValueError("A schema needs at least one manipulated attribute.")

    # ---- lookups -------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def manipulated(self) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if a.manipulated)

    @property
    def reference_only(self) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if not a.manipulated)

    @property
    def num_attributes(self) -> int:
        """M: the number of manipulated attributes."""
        return len(self.manipulated)

    @property
    def num_values(self) -> int:
        """N: the number of values over the manipulated attributes."""
        return sum(len(a.values) for a in self.manipulated)

    @property
    def m_dim(self) -> int:
        return self.num_values + self.num_attributes

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each manipulated attribute's block inside the N value slots."""
        out, start = [], 0
        for a in self.manipulated:
            out.append(start)
            start += len(a.values)
        return tuple(out)

    @property
    def block_sizes(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.manipulated)

    @property
    def manipulated_columns(self) -> tuple[int, ...]:
        """Label column of each manipulated attribute (r -> column)."""
        return tuple(i for i, a in enumerate(self.attributes) if a.manipulated)

    def attribute(self, name: str) -> Attribute:
        return self.attributes[self.column(name)]

    def column(self, name: str) -> int:
        """Label column of an attribute by name."""
        for i, a in enumerate(self.attributes):
            if a.name == name:
                return i
        raise UnknownAttributeError(
            f"Unknown attribute {name!r} for dataset {self.dataset or '?'}; valid attributes: "
            f"{', '.join(self.names)}.")

    def r_index(self, name: str) -> int:
        """Index r of a manipulated attribute (its position in m's last M slots)."""
        attr = self.attribute(name)
        if not attr.manipulated:
            raise UnknownAttributeError(
                f"Attribute {name!r} is used only for reference matching and cannot be manipulated; "
                f"manipulated attributes: {', '.join(a.name for a in self.manipulated)}.")
        return [a.name for a in self.manipulated].index(name)

    def value_index(self, attribute: str, value: str | int) -> int:
        return self.attribute(attribute).value_index(value)

    def value_name(self, attribute: str, index: int) -> str:
        attr = self.attribute(attribute)
        attr.value_index(int(index))  # range check with a clear error
        return attr.values[int(index)]

    # ---- manipulation vector -------------------------------------------------------------------
    def encode(self, attribute: str, value: str | int) -> np.ndarray:
        """`m` for "set `attribute` to `value`" as a float32 vector of length N + M."""
        r = self.r_index(attribute)
        v = self.value_index(attribute, value)
        return self.encode_batch(np.array([r]), np.array([v]))[0]

    def encode_batch(self, r: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Vectorised `m` for integer arrays r (manipulated-attribute index) and value (within r)."""
        r = np.asarray(r, np.int64)
        value = np.asarray(value, np.int64)
        sizes = np.array(self.block_sizes)
        if np.any((r < 0) | (r >= self.num_attributes)):
            raise ValueError(f"r must be in [0, {self.num_attributes}), got {r}.")
        if np.any((value < 0) | (value >= sizes[r])):
            raise ValueError(f"value out of range for its attribute: r={r}, value={value}.")
        m = np.zeros(r.shape + (self.m_dim,), np.float32)
        slot = np.array(self.offsets)[r] + value
        np.put_along_axis(m, slot[..., None], 1.0, axis=-1)
        np.put_along_axis(m, (self.num_values + r)[..., None], 1.0, axis=-1)
        return m

    def decode(self, m: Sequence[float]) -> tuple[str, str]:
        """(attribute name, value name) of a single manipulation vector."""
        m = np.asarray(m, np.float32)
        if m.shape != (self.m_dim,):
            raise ValueError(f"A manipulation vector has length N + M = {self.m_dim}, got shape {m.shape}.")
        r = int(np.argmax(m[self.num_values:]))
        start = self.offsets[r]
        v = int(np.argmax(m[start:start + self.block_sizes[r]]))
        attr = self.manipulated[r]
        return attr.name, attr.values[v]

    # ---- labels --------------------------------------------------------------------------------
    def labels_from_dict(self, labels: dict[str, str | int | None]) -> np.ndarray:
        """Label row from {attribute: value name or index}; absent or None means MISSING."""
        unknown = set(labels) - set(self.names)
        if unknown:
            self.column(sorted(unknown)[0])  # raises with the valid names
        row = np.full((len(self.attributes),), MISSING, np.int32)
        for i, a in enumerate(self.attributes):
            v = labels.get(a.name)
            if v is not None and v != MISSING:
                row[i] = a.value_index(v)
        return row

    def labels_to_dict(self, row: Iterable[int]) -> dict[str, str | None]:
        return {a.name: (a.values[int(v)] if int(v) != MISSING else None)
                for a, v in zip(self.attributes, row)}

    def validate_labels(self, labels: np.ndarray, source: str = "labels") -> None:
        """Fail fast on label arrays of the wrong width or with out-of-range values."""
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.shape[1] != len(self.attributes):
            raise ValueError(f"{source}: expected shape [n, {len(self.attributes)}] "
                             f"({', '.join(self.names)}), got {labels.shape}.")
        for i, a in enumerate(self.attributes):
            col = labels[:, i]
            bad = (col != MISSING) & ((col < 0) | (col >= len(a.values)))
            if np.any(bad):
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{source}: row {row} has value {int(col[row])} for attribute "
                                 f"{a.name!r}, which has {len(a.values)} values.")

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"dataset": self.dataset,
                "attributes": [{"name": a.name, "values": list(a.values),
                                "manipulated": a.manipulated} for a in self.attributes]}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict) -> "AttributeSchema":
        try:
            attrs = tuple(Attribute(a["name"], tuple(a["values"]), bool(a.get("manipulated", True)))
                          for a in d["attributes"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"Not an attribute schema (need 'attributes': [{{name, values, "
                             f"manipulated}}]): missing {e}.") from None
        return cls(attrs, dataset=d.get("dataset", ""))

    @classmethod
    def from_json(cls, text: str) -> "AttributeSchema":
        return cls.from_dict(json.loads(text))

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.to_json(indent=2))

    @classmethod
    def load(cls, path: str) -> "AttributeSchema":
        with open(path) as f:
            return cls.from_json(f.read())
