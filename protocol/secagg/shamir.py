"""Shamir secret sharing of 32-byte secrets over the prime field GF(2^521 - 1).

A secret ``s`` (32 bytes, read as a big-endian integer below 2^256) is the constant term of a
random polynomial of degree ``threshold - 1``; holder ``x`` (an integer in 1..2^32) gets the
polynomial's value at ``x``. Any ``threshold`` shares give ``s`` back by Lagrange interpolation at
zero; fewer give no information about it. The modulus is the Mersenne prime 2^521 - 1, so no
primality claim needs checking, and every 256-bit secret is a field element.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Dict, Sequence, Tuple

__all__ = [
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "combine",
    "decode_share",
    "encode_share",
    "split",
]

#: The field modulus, the Mersenne prime 2^521 - 1.
PRIME = (1 << 521) - 1
#: Bytes of a secret.
SECRET_BYTES = 32
#: Bytes of a share value on the wire (big-endian field element).
SHARE_BYTES = 66
_MAX_X = 1 << 32


def _check_xs(xs: Sequence[int]) -> None:
    if len(set(xs)) != len(xs):
        raise ValueError("`xs` must be distinct.")
    for x in xs:
        if not 0 < x <= _MAX_X:
            raise ValueError(f"`xs` must lie in 1..2^32, got {x}.")


def split(secret: bytes, threshold: int, xs: Sequence[int]) -> Dict[int, int]:
    """Shares of ``secret`` for the holders ``xs``: {x: f(x)}.

    Args:
        secret: 32 bytes.
        threshold: shares needed to reconstruct, 1 <= threshold <= len(xs).
        xs: distinct holder coordinates in 1..2^32.
    """
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"`secret` must be {SECRET_BYTES} bytes, got {len(secret)}.")
    if not 1 <= threshold <= len(xs):
        raise ValueError(f"`threshold` must lie in 1..{len(xs)} (the holders), got {threshold}.")
    _check_xs(xs)
    coeffs = [int.from_bytes(secret, "big")] + [
        secrets.randbelow(PRIME) for _ in range(threshold - 1)
    ]
    shares = {}
    for x in xs:
        y = 0
        for c in reversed(coeffs):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y
    return shares


@lru_cache(maxsize=256)
def _lagrange_at_zero(xs: Tuple[int, ...]) -> Tuple[int, ...]:
    """Coefficients l_j with f(0) = sum_j l_j f(x_j) for any polynomial of degree < len(xs)."""
    out = []
    for j, xj in enumerate(xs):
        num, den = 1, 1
        for m, xm in enumerate(xs):
            if m != j:
                num = num * xm % PRIME
                den = den * (xm - xj) % PRIME
        out.append(num * pow(den, -1, PRIME) % PRIME)  # 3.8+: modular inverse
    return tuple(out)


def combine(shares: Dict[int, int], threshold: int) -> bytes:
    """The secret from at least ``threshold`` shares {x: f(x)}.

    Uses the ``threshold`` shares with the smallest ``x``; it cannot tell a wrong share from a
    right one, so callers check the result against a commitment.

    Raises:
        ValueError: too few shares, or the shares do not come from a 32-byte secret.
    """
    if threshold < 1 or len(shares) < threshold:
        raise ValueError(f"need `threshold` = {threshold} shares, got {len(shares)}.")
    xs = tuple(sorted(shares)[:threshold])
    _check_xs(xs)
    coeffs = _lagrange_at_zero(xs)
    value = sum(c * shares[x] for c, x in zip(coeffs, xs)) % PRIME
    if value >> (8 * SECRET_BYTES):
        raise ValueError("the shares are inconsistent: the result is not a 32-byte secret.")
    return value.to_bytes(SECRET_BYTES, "big")


def encode_share(value: int) -> bytes:
    """A share value as 66 big-endian bytes."""
    if not 0 <= value < PRIME:
        raise ValueError("`value` must be a field element.")
    return value.to_bytes(SHARE_BYTES, "big")


def decode_share(data: bytes) -> int:
    """A share value from its 66 bytes; raises ValueError when it is not a field element."""
    if len(data) != SHARE_BYTES:
        raise ValueError(f"a share must be {SHARE_BYTES} bytes, got {len(data)}.")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise ValueError("a share must be a field element (below 2^521 - 1).")
    return value
