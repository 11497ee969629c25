"""TF Serving's wire conventions, shared by the server and the clients: status codes and their
HTTP equivalents, TensorProto <-> numpy with size limits, and the REST JSON tensor encoding
(row "instances" / columnar "inputs", {"b64": ...} for binary strings, outputs whose alias ends in
`_bytes` returned base64-encoded)."""

from __future__ import annotations

import base64

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

# Status codes (TensorFlow's = gRPC's numbers) and TF Serving's HTTP mapping of each.
CODES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
         5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
         9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
         13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
HTTP_STATUS = {"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
               "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
               "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
               "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
               "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}
MAX_ELEMENTS = 128 * 1024 * 1024  # per request tensor (a 4096 x 4096 x 3 uint8 batch of 2)
MAX_TENSOR_BYTES = 512 * 1024 * 1024  # per request tensor, after decoding
MAX_STRINGS = 1024 * 1024  # per request string tensor (each element is a Python object)


class ServingError(Exception):
    """An error with a status code name (e.g. 'INVALID_ARGUMENT') and a message for the caller."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


# ---- TensorProto ------------------------------------------------------------------------------
_FIELDS = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
           types_pb2.DT_INT32: "int_val", types_pb2.DT_UINT8: "int_val",
           types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val",
           types_pb2.DT_INT64: "int64_val", types_pb2.DT_BOOL: "bool_val",
           types_pb2.DT_STRING: "string_val", types_pb2.DT_HALF: "half_val"}


def dtype_name(enum: int) -> str:
    try:
        return tf.dtypes.as_dtype(enum).name
    except TypeError:
        return f"type {enum}"


def array_dtype_name(array: np.ndarray) -> str:
    """TensorFlow's name of a numpy array's dtype ('string' for bytes/str/object arrays)."""
    if array.dtype == object or array.dtype.kind in "SU":
        return "string"
    try:
        return tf.dtypes.as_dtype(array.dtype).name
    except TypeError:
        return str(array.dtype)


def tensor_from_proto(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    """numpy array of a request TensorProto, refusing malformed or oversized ones with
    INVALID_ARGUMENT before converting (a single value filling a large shape, which TF allows,
    is still bounded by the byte and string limits)."""
    if proto.dtype not in _FIELDS:
        raise invalid(f"tensor parsing error: {name}: unsupported dtype {dtype_name(proto.dtype)}")
    if proto.tensor_shape.unknown_rank:
        raise invalid(f"tensor parsing error: {name}: the shape has unknown rank")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise invalid(f"tensor parsing error: {name}: negative dimension in shape {dims}")
    count = 1
    for d in dims:
        count *= d
        if count > MAX_ELEMENTS:
            raise invalid(f"tensor parsing error: {name}: shape {dims} has more than "
                          f"{MAX_ELEMENTS} elements")
    values = getattr(proto, _FIELDS[proto.dtype])
    dtype = tf.dtypes.as_dtype(proto.dtype).as_numpy_dtype
    if proto.dtype == types_pb2.DT_STRING:
        if count > MAX_STRINGS:
            raise invalid(f"tensor parsing error: {name}: more than {MAX_STRINGS} strings")
    elif count * np.dtype(dtype).itemsize > MAX_TENSOR_BYTES:
        raise invalid(f"tensor parsing error: {name}: shape {dims} needs more than "
                      f"{MAX_TENSOR_BYTES} bytes")
    if proto.tensor_content:
        if proto.dtype == types_pb2.DT_STRING:
            raise invalid(f"tensor parsing error: {name}: strings cannot use tensor_content")
        expected = count * np.dtype(dtype).itemsize
        if len(proto.tensor_content) != expected:
            raise invalid(f"tensor parsing error: {name}: tensor_content has "
                          f"{len(proto.tensor_content)} bytes, shape {dims} needs {expected}")
    elif len(values) not in (count, 1) and not (count == 0 and len(values) == 0):
        raise invalid(f"tensor parsing error: {name}: {len(values)} values for shape {dims}")
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError, OverflowError) as e:  # e.g. int_val 300 for a uint8 tensor
        raise invalid(f"tensor parsing error: {name}: {e}") from None


def tensor_to_proto(array) -> tensor_pb2.TensorProto:
    return tf.make_tensor_proto(np.asarray(array))


# ---- REST JSON ---------------------------------------------------------------------------------
def _decode_strings(value, name):
    if isinstance(value, list):
        return [_decode_strings(v, name) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f"{name}: a binary value must be {{\"b64\": \"<base64 text>\"}}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise invalid(f"{name}: invalid base64 in {{\"b64\": ...}}") from None
    if isinstance(value, str):
        return value.encode()
    raise invalid(f"{name}: expected a string, got {type(value).__name__}")


def _shape_of(value, name) -> list[int]:
    """Shape of a nested list, refusing ragged ones (allocates nothing per element)."""
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]

    def check(v, depth):
        if depth == len(shape):
            if isinstance(v, list):
                raise invalid(f"{name}: ragged nested list (rows of different depths)")
            return
        if not isinstance(v, list) or len(v) != shape[depth]:
            raise invalid(f"{name}: ragged nested list (rows of different shapes)")
        for item in v:
            check(item, depth + 1)

    check(value, 0)
    return shape


def json_to_array(value, dtype: tf.DType, name: str) -> np.ndarray:
    """A JSON value as a numpy array of `dtype` (the signature's), with range checks."""
    shape = _shape_of(value, name)
    count = int(np.prod(shape)) if shape else 1
    if count > MAX_ELEMENTS:
        raise invalid(f"{name}: more than {MAX_ELEMENTS} elements")
    if dtype == tf.string:
        out = np.empty(shape, dtype=object)
        flat = _decode_strings(value, name)
        if shape:
            out[...] = np.array(flat, dtype=object).reshape(shape) if count else out
            return out
        return np.array(flat, dtype=object)
    try:
        array = np.array(value)
    except (ValueError, TypeError) as e:
        raise invalid(f"{name}: {e}") from None
    if array.dtype == object or array.dtype.kind in "USV":
        raise invalid(f"{name}: expected numbers for a {dtype.name} input")
    if dtype.is_integer:
        if array.dtype == bool:
            raise invalid(f"{name}: expected integers for a {dtype.name} input, got true/false")
        if array.size and (array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0)):
            raise invalid(f"{name}: expected integers for a {dtype.name} input")
        if array.size and (array.min() < dtype.min or array.max() > dtype.max):
            raise invalid(f"{name}: values out of range for {dtype.name}")
    elif dtype == tf.bool:
        if array.dtype != bool:
            raise invalid(f"{name}: expected true/false for a bool input")
    elif array.dtype == bool:
        raise invalid(f"{name}: expected numbers for a {dtype.name} input")
    return array.astype(dtype.as_numpy_dtype).reshape(shape)


def array_to_json(array: np.ndarray, alias: str):
    """A request or response tensor as TF Serving's REST JSON (strings of `*_bytes` aliases as
    {"b64": ...}); used by the server for outputs and by the REST client for inputs."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        encode = ((lambda b: {"b64": base64.b64encode(b).decode()}) if alias.endswith("_bytes")
                  else (lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b))
        flat = [encode(b) for b in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.shape \
            else flat[0]
    return array.tolist()
