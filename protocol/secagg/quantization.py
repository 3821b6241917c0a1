"""Fixed-point encoding of float vectors into the ring Z_{2^k}, and back.

``encode`` clips each coordinate to ``[-clip, clip]``, scales by ``2^fraction_bits`` and rounds
stochastically (up with probability equal to the fractional part), so the encoding is unbiased
and each coordinate is off by less than ``2^-fraction_bits``. Integers go into the ring as two's
complement; the sum of ``n`` encodings is read back as a signed integer, which is exact as long
as ``n * L < 2^(k-1)`` with ``L = ceil(clip * 2^fraction_bits)`` the largest level.
:func:`choose_ring_bits` picks the smaller of k = 32 and k = 64 that satisfies this and refuses
configurations that neither does.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import numpy.typing as npt

from protocol.secagg.errors import Reason, SecAggError

__all__ = [
    "RING_BITS",
    "check_encoded",
    "check_ring",
    "choose_ring_bits",
    "decode_mean",
    "decode_sum",
    "encode",
    "max_level",
    "quantisation_bound",
    "ring_dtype",
]

#: Ring widths (bits) the protocol supports: Z_{2^32} and Z_{2^64}.
RING_BITS = (32, 64)
_SIGNED = {32: np.int32, 64: np.int64}
_UNSIGNED = {32: np.uint32, 64: np.uint64}
_MAX_EXACT_LEVEL = 1 << 52  # float64 represents every integer up to 2^53 exactly


def max_level(clip: float, fraction_bits: int) -> int:
    """L = ceil(clip * 2^fraction_bits): the largest absolute encoded integer."""
    if not (clip > 0 and math.isfinite(clip)):
        raise ValueError(f"`clip` must be positive and finite, got {clip}.")
    if not 0 <= fraction_bits <= 52:
        raise ValueError(f"`fraction_bits` must lie in 0..52, got {fraction_bits}.")
    level = math.ceil(clip * 2.0**fraction_bits)
    if level > _MAX_EXACT_LEVEL:
        raise ValueError(
            f"`clip` * 2^`fraction_bits` = {level} exceeds 2^52; float64 would lose exactness."
        )
    return level


def quantisation_bound(fraction_bits: int) -> float:
    """Largest per-coordinate error of :func:`encode` inside the clip range: 2^-fraction_bits."""
    return 2.0**-fraction_bits


def ring_dtype(ring_bits: int) -> np.dtype:
    """The unsigned dtype of Z_{2^ring_bits}."""
    if ring_bits not in _UNSIGNED:
        raise ValueError(f"`ring_bits` must be one of {RING_BITS}, got {ring_bits}.")
    return np.dtype(_UNSIGNED[ring_bits])


def _fits(ring_bits: int, n_inputs: int, level: int) -> bool:
    return n_inputs * level < 1 << (ring_bits - 1)


def choose_ring_bits(n_inputs: int, clip: float, fraction_bits: int) -> int:
    """Smallest ring width in :data:`RING_BITS` whose sum of ``n_inputs`` encodings cannot overflow.

    Raises:
        SecAggError: ``modulus_too_small`` when even 2^64 is too small.
    """
    if n_inputs < 1:
        raise ValueError(f"`n_inputs` must be at least 1, got {n_inputs}.")
    level = max_level(clip, fraction_bits)
    for bits in RING_BITS:
        if _fits(bits, n_inputs, level):
            return bits
    raise SecAggError(
        Reason.MODULUS_TOO_SMALL,
        f"`n_inputs` ({n_inputs}) * ceil(`clip` * 2^`fraction_bits`) ({level}) must stay below "
        "2^63; lower `clip` or `fraction_bits`.",
    )


def check_ring(ring_bits: int, n_inputs: int, clip: float, fraction_bits: int) -> None:
    """Refuse ``ring_bits`` when the sum of ``n_inputs`` encodings could overflow it.

    Raises:
        SecAggError: ``modulus_too_small`` naming the parameters.
    """
    ring_dtype(ring_bits)
    level = max_level(clip, fraction_bits)
    if not _fits(ring_bits, n_inputs, level):
        raise SecAggError(
            Reason.MODULUS_TOO_SMALL,
            f"`ring_bits` = {ring_bits} cannot hold the sum of `n_inputs` = {n_inputs} values of "
            f"up to {level} (clip {clip}, {fraction_bits} fraction bits); need n * L < "
            f"2^{ring_bits - 1}.",
        )


def encode(
    vector: npt.ArrayLike,
    clip: float,
    fraction_bits: int,
    *,
    ring_bits: int = 32,
    rng: Optional[np.random.Generator] = None,
) -> npt.NDArray[np.unsignedinteger]:
    """Clip, scale and stochastically round ``vector`` into Z_{2^ring_bits}.

    Args:
        vector: ``[D]`` real values (float32 model updates or weights), finite.
        clip: clipping bound; coordinates are clipped to ``[-clip, clip]``.
        fraction_bits: fixed-point fraction bits; resolution ``2^-fraction_bits``.
        ring_bits: 32 or 64.
        rng: source of the rounding randomness; a fresh OS-seeded generator when None.

    Returns:
        ``[D]`` uint32 or uint64: two's-complement integers in ``[-L, L]``,
        ``L = ceil(clip * 2^fraction_bits)``.
    """
    x = np.asarray(vector, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"`vector` must be 1-D, got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("`vector` must be finite (no NaN or inf).")
    dtype = ring_dtype(ring_bits)
    max_level(clip, fraction_bits)
    gen = rng if rng is not None else np.random.default_rng()
    z = np.clip(x, -clip, clip)
    z *= 2.0**fraction_bits
    low = np.floor(z)
    z -= low  # fractional part in [0, 1)
    low += gen.random(z.shape) < z
    return low.astype(np.int64).astype(dtype)


def check_encoded(
    encoded: npt.NDArray[np.unsignedinteger], ring_bits: int, clip: float, fraction_bits: int
) -> None:
    """Refuse an encoding whose values lie outside ``[-L, L]`` (the modulus was sized for L).

    Raises:
        SecAggError: ``bad_length`` for a wrong dtype or shape, ``out_of_range`` otherwise.
    """
    dtype = ring_dtype(ring_bits)
    if encoded.dtype != dtype or encoded.ndim != 1:
        raise SecAggError(
            Reason.BAD_LENGTH, f"`encoded` must be a 1-D {dtype} array, got {encoded.dtype}."
        )
    level = max_level(clip, fraction_bits)
    signed = encoded.view(_SIGNED[ring_bits])
    if signed.size and (int(signed.max()) > level or int(signed.min()) < -level):
        raise SecAggError(Reason.OUT_OF_RANGE, f"`encoded` values must lie in [-{level}, {level}].")


def decode_sum(
    total: npt.NDArray[np.unsignedinteger], fraction_bits: int
) -> npt.NDArray[np.float64]:
    """The real-valued sum from the ring sum of encodings.

    Args:
        total: ``[D]`` uint32 or uint64, the sum of the encoded inputs mod 2^k.
        fraction_bits: as used by :func:`encode`.

    Returns:
        ``[D]`` float64: sum of the quantised inputs (exact up to float64 rounding).
    """
    bits = total.dtype.itemsize * 8
    if bits not in _SIGNED or total.dtype.kind != "u":
        raise ValueError(f"`total` must be uint32 or uint64, got {total.dtype}.")
    return total.view(_SIGNED[bits]).astype(np.float64) * 2.0**-fraction_bits


def decode_mean(
    total: npt.NDArray[np.unsignedinteger], fraction_bits: int, count: int
) -> npt.NDArray[np.float64]:
    """``decode_sum(total) / count``: the mean of ``count`` inputs; ``[D]`` float64."""
    if count < 1:
        raise ValueError(f"`count` must be at least 1, got {count}.")
    return decode_sum(total, fraction_bits) / count
