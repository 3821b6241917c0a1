"""Model weights on the wire and on disk, in the safetensors format, with NumPy only.

The layout is safetensors' own (8-byte little-endian header length, a JSON header giving each
tensor's dtype, shape and byte range, then the raw little-endian data), so files written here load
with the ``safetensors`` library and vice versa. The tensor order of the model is kept in the
header metadata (``__metadata__.order``), because aggregation works on one flat float32 vector
and both ends must flatten in the same order.

Kept Python 3.8 compatible and free of torch: edge boards and the controller both use it.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = ["TensorFileError", "decode", "encode", "flatten", "unflatten"]

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
_NAMES = {np.dtype(v).str: k for k, v in _DTYPES.items()}
_MAX_HEADER = 16 * 1024 * 1024


class TensorFileError(ValueError):
    """Bytes that are not a well-formed tensor file; the message says what is wrong."""


def encode(
    tensors: Dict[str, np.ndarray],
    order: Optional[List[str]] = None,
    metadata: Optional[Dict[str, str]] = None,
) -> bytes:
    """Serialise ``tensors`` (kept in ``order``, default insertion order) to safetensors bytes."""
    names = list(tensors) if order is None else list(order)
    if sorted(names) != sorted(tensors):
        raise ValueError("`order` must list exactly the tensor names")
    header: Dict[str, object] = {
        "__metadata__": {**(metadata or {}), "order": json.dumps(names)},
    }
    chunks: List[bytes] = []
    offset = 0
    for name in names:
        arr = np.ascontiguousarray(tensors[name])
        key = _NAMES.get(arr.dtype.newbyteorder("<").str)
        if key is None:
            raise ValueError(f"tensor `{name}`: unsupported dtype {arr.dtype}")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": key,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(chunks)


def decode(blob: bytes) -> Tuple[Dict[str, np.ndarray], List[str], Dict[str, str]]:
    """Parse safetensors bytes into (tensors, order, metadata); raise :class:`TensorFileError`."""
    if len(blob) < 8:
        raise TensorFileError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise TensorFileError(f"header length {n} exceeds the {len(blob)} bytes given")
    try:
        header = json.loads(blob[8 : 8 + n])
    except ValueError:
        raise TensorFileError("header is not JSON") from None
    if not isinstance(header, dict):
        raise TensorFileError("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    body = memoryview(blob)[8 + n :]
    tensors: Dict[str, np.ndarray] = {}
    for name, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            start, end = (int(v) for v in info["data_offsets"])
            shape = tuple(int(d) for d in info["shape"])
        except (KeyError, TypeError, ValueError):
            raise TensorFileError(f"tensor `{name}`: bad header entry {info!r}") from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= start <= end <= len(body) or end - start != count * dtype.itemsize:
            raise TensorFileError(f"tensor `{name}`: byte range {start}..{end} does not fit")
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
    order = json.loads(meta["order"]) if "order" in meta else sorted(tensors)
    if sorted(order) != sorted(tensors):
        raise TensorFileError("metadata `order` does not list the tensors")
    return tensors, order, {k: v for k, v in meta.items() if k != "order"}


def flatten(tensors: Dict[str, np.ndarray], order: List[str]) -> np.ndarray:
    """One float32 vector of all tensors in ``order``: shape ``[sum of sizes]``."""
    if not order:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([np.asarray(tensors[k], dtype=np.float32).ravel() for k in order])


def unflatten(
    vector: np.ndarray, template: Dict[str, np.ndarray], order: List[str]
) -> Dict[str, np.ndarray]:
    """Split ``vector`` back into tensors shaped like ``template`` (float32)."""
    sizes = [int(np.prod(template[k].shape)) for k in order]
    if vector.shape != (sum(sizes),):
        raise ValueError(f"`vector` has shape {vector.shape}, the model needs ({sum(sizes)},)")
    out: Dict[str, np.ndarray] = {}
    start = 0
    for name, size in zip(order, sizes):
        out[name] = vector[start : start + size].astype(np.float32).reshape(template[name].shape)
        start += size
    return out
