"""Mask generator: AES-256-CTR expanding a 32-byte key into a vector of ring elements.

``PRG(key)`` is the AES-256-CTR keystream of ``key`` with an all-zero initial counter block, read
as little-endian unsigned integers of the ring's width (``uint32`` or ``uint64``). Each key is
used for one stream only (keys are derived per round, purpose and pair), so the fixed counter
start never repeats a keystream.

:func:`apply_masks` adds and subtracts many such streams into one accumulator in place, chunk by
chunk, keeping one AES context per key alive across chunks, so the accumulator chunk and the
keystream stay in cache and nothing of size ``D`` is allocated per key.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from protocol.secagg.keys import KEY_BYTES

__all__ = ["CHUNK_BYTES", "apply_masks", "prg"]

#: Keystream bytes produced per key and step; 256 KiB keeps a chunk in L2 cache.
CHUNK_BYTES = 1 << 18
_ZERO_COUNTER = bytes(16)


def _stream(key: bytes) -> CipherContext:
    if len(key) != KEY_BYTES:
        raise ValueError(f"`key` must be {KEY_BYTES} bytes, got {len(key)}.")
    return Cipher(algorithms.AES(key), modes.CTR(_ZERO_COUNTER)).encryptor()


def _ring_dtype(acc: npt.NDArray[np.unsignedinteger]) -> np.dtype:
    if acc.dtype not in (np.dtype(np.uint32), np.dtype(np.uint64)):
        raise ValueError(f"`acc` must be uint32 or uint64, got {acc.dtype}.")
    if acc.ndim != 1 or not acc.flags.c_contiguous:
        raise ValueError("`acc` must be a contiguous 1-D array.")
    return acc.dtype.newbyteorder("<")


def prg(key: bytes, dim: int, dtype: npt.DTypeLike = np.uint32) -> npt.NDArray[np.unsignedinteger]:
    """The mask vector of ``key``.

    Returns:
        ``[dim]`` array of ``dtype`` (uint32 or uint64): the keystream as little-endian integers.
    """
    out = np.zeros(dim, dtype=dtype)
    apply_masks(out, add=[key], subtract=[])
    return out


def apply_masks(
    acc: npt.NDArray[np.unsignedinteger],
    *,
    add: Sequence[bytes],
    subtract: Sequence[bytes],
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    """In place: ``acc += sum(PRG(k) for k in add) - sum(PRG(k) for k in subtract)`` mod 2^bits.

    Args:
        acc: ``[D]`` contiguous uint32 or uint64 array (the ring Z_{2^32} or Z_{2^64}).
        add: 32-byte AES keys whose streams are added.
        subtract: 32-byte AES keys whose streams are subtracted.
        chunk_bytes: keystream bytes per step; a multiple of 16.
    """
    if chunk_bytes <= 0 or chunk_bytes % 16:
        raise ValueError("`chunk_bytes` must be a positive multiple of 16.")
    wire = _ring_dtype(acc)
    streams = [(_stream(k), np.add) for k in add] + [(_stream(k), np.subtract) for k in subtract]
    if not streams:
        return
    total = acc.size * acc.itemsize
    zeros = memoryview(bytes(chunk_bytes))
    buf = bytearray(chunk_bytes + 15)  # update_into wants block_size - 1 spare bytes
    for start in range(0, total, chunk_bytes):
        n = min(chunk_bytes, total - start)
        part = acc[start // acc.itemsize : (start + n) // acc.itemsize]
        for ctx, op in streams:
            ctx.update_into(zeros[:n], buf)
            op(part, np.frombuffer(buf, dtype=wire, count=part.size), out=part)
