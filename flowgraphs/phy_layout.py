"""The PHY flowgraphs' constants (``phy_tx.grc``, ``phy_rx.grc`` import them; NumPy and
GNU Radio only, so ``grcc`` can evaluate them).

The OFDM burst's layout is IEEE 802.11a's 64-point grid (48 data subcarriers, 4 pilots at +-7
and +-21, DC and the band edges empty; a 16-sample cyclic prefix) with a Schmidl-Cox preamble
of two symbols (gr-digital's layout and construction, our own seeded draws). The modulations
are Gray-mapped square QAM with unit mean power (:func:`gray_qam`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTIVE",
    "CP_LEN",
    "FFT_LEN",
    "OCCUPIED",
    "PILOTS",
    "PILOT_SYMBOLS",
    "SYMBOL_SAMPLES",
    "SYNC_WORD1",
    "SYNC_WORD2",
    "gray_qam",
    "gray_qam_points",
]

FFT_LEN = 64
CP_LEN = 16
#: Samples of one OFDM symbol on the air.
SYMBOL_SAMPLES = FFT_LEN + CP_LEN
#: Data subcarriers (one pattern for every symbol), negative below DC.
OCCUPIED = (
    (
        *range(-26, -21),
        *range(-20, -7),
        *range(-6, 0),
        *range(1, 7),
        *range(8, 21),
        *range(22, 27),
    ),
)
PILOTS = ((-21, -7, 7, 21),)
_PILOT_SIGNS = np.random.default_rng(0x5EED).choice([-1.0, 1.0], size=127)
#: Pilot values per symbol, cycled (802.11a's polarity pattern idea: a pseudo-random sign per
#: symbol, the fourth pilot inverted).
PILOT_SYMBOLS = tuple((float(s), float(s), float(s), float(-s)) for s in _PILOT_SIGNS)


def _active() -> list[int]:
    return sorted((c % FFT_LEN) for c in (*OCCUPIED[0], *PILOTS[0]))


def _sync_words() -> tuple[tuple[complex, ...], tuple[complex, ...]]:
    """Word 1: BPSK on every odd active subcarrier (scaled by sqrt 2), so its time signal has
    two equal halves (Schmidl-Cox timing and fine offset); word 2: BPSK on all of them (the
    channel estimate and the integer offset). Both in shifted (DC-centred) order."""
    rng = np.random.default_rng(42)
    active = set(_active())
    w1 = np.zeros(FFT_LEN, dtype=complex)
    w2 = np.zeros(FFT_LEN, dtype=complex)
    for k in range(FFT_LEN):
        if k in active:
            w2[k] = rng.choice([-1.0, 1.0])
            if k % 2:
                w1[k] = np.sqrt(2.0) * rng.choice([-1.0, 1.0])
    return tuple(np.fft.fftshift(w1).tolist()), tuple(np.fft.fftshift(w2).tolist())


SYNC_WORD1, SYNC_WORD2 = _sync_words()
#: Every subcarrier that carries a payload symbol or a pilot (the payload equaliser's set).
ACTIVE = (tuple(sorted((*OCCUPIED[0], *PILOTS[0]))),)


def gray_qam_points(bits_per_symbol: int) -> npt.NDArray[np.complex128]:
    """``[2^b]`` square QAM points, Gray-coded per axis (the symbol's upper half of bits on I,
    lower on Q, most significant first), unit mean power."""
    if bits_per_symbol not in (2, 4, 6):
        raise ValueError(f"`bits_per_symbol` must be 2, 4 or 6, got {bits_per_symbol}")
    k = bits_per_symbol // 2
    m = 2**k
    level = {i ^ (i >> 1): i for i in range(m)}  # Gray code -> amplitude level
    values = np.arange(2**bits_per_symbol)
    i_level = np.array([level[v >> k] for v in values])
    q_level = np.array([level[v & (m - 1)] for v in values])
    points = (2 * i_level - (m - 1)) + 1j * (2 * q_level - (m - 1))
    return np.asarray(points / np.sqrt(np.mean(np.abs(points) ** 2)), dtype=np.complex128)


def gray_qam(bits_per_symbol: int) -> Any:
    """The GNU Radio constellation of :func:`gray_qam_points` (nearest-point decisions, soft
    decisions for the decoder)."""
    from gnuradio import digital

    points = gray_qam_points(bits_per_symbol)
    return digital.constellation_calcdist(
        points.tolist(),
        list(range(points.size)),
        4,
        1,
        digital.constellation.POWER_NORMALIZATION,
    )
