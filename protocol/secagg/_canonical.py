"""Unambiguous byte strings for signatures and key derivation.

Each part is written as an 8-byte big-endian length and its bytes (text as UTF-8, integers as
their decimal text), so no two different lists of parts give the same bytes.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import struct
from typing import Union

__all__ = ["canonical"]

_Part = Union[bytes, str, int]


def canonical(*parts: _Part) -> bytes:
    """Length-prefixed concatenation of ``parts`` (bytes, str or int)."""
    out = bytearray()
    for part in parts:
        if isinstance(part, bool):
            raise TypeError("`parts` must be bytes, str or int, not bool.")
        if isinstance(part, int):
            data = str(part).encode("ascii")
        elif isinstance(part, str):
            data = part.encode("utf-8")
        else:
            data = bytes(part)
        out += struct.pack(">Q", len(data))
        out += data
    return bytes(out)
