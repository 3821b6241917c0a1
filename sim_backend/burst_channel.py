"""Bursts through a simulated link: gaps, timing offset, carrier offset, gain and noise.

Each burst is sent on its own (a transport block per burst) after a silent gap of random
length (the receiver's timing offset), multiplied by a complex gain (its channel: amplitude
and phase), turned by a carrier frequency offset (a B210's oscillator against the AP's), and
received in white Gaussian noise whose power sets the SNR per burst: the burst's mean power
times ``|gain|^2`` over the noise power, over the whole burst bandwidth. Vectorised NumPy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["air"]


def air(
    bursts: list[npt.NDArray[np.complex64]],
    snr_db: npt.ArrayLike,
    rng: np.random.Generator,
    *,
    gain: npt.ArrayLike = 1.0,
    cfo: float = 0.0,
    gap: tuple[int, int] = (100, 400),
) -> tuple[npt.NDArray[np.complex64], npt.NDArray[np.int64]]:
    """The received samples and where each burst begins in them.

    Args:
        bursts: the bursts' samples (complex64 each).
        snr_db: per burst (or one for all): received SNR, dB.
        gain: per burst (or one): complex channel gain (its phase rotates the burst).
        cfo: carrier offset, cycles per sample (normalised to the sample rate).
        gap: silent samples before each burst, drawn uniformly in ``[lo, hi)``; the last
            burst is followed by ``hi`` more.

    Returns:
        ``(iq [S] complex64, starts [n] int64)``.
    """
    n = len(bursts)
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (n,))
    g = np.broadcast_to(np.asarray(gain, dtype=np.complex128), (n,))
    lo, hi = gap
    if not 0 <= lo < hi:
        raise ValueError(f"`gap` must be (lo, hi) with 0 <= lo < hi, got {gap}")
    lengths = np.array([b.size for b in bursts], dtype=np.int64)
    gaps = rng.integers(lo, hi, size=n)
    starts = np.cumsum(gaps) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(starts[-1] + lengths[-1] + hi) if n else hi
    clean = np.zeros(total, dtype=np.complex128)
    noise_var = np.empty(total)
    noise_var[:] = np.nan
    edges = np.concatenate([[0], starts + lengths, [total]])
    for k, burst in enumerate(bursts):
        power = float(np.mean(np.abs(burst) ** 2)) * float(np.abs(g[k]) ** 2)
        clean[starts[k] : starts[k] + burst.size] = g[k] * burst
        # the noise of a burst's own stretch (and of the gap before it) is set by its SNR
        noise_var[edges[k] : edges[k + 1]] = power / 10 ** (snr[k] / 10)
    noise_var[edges[n] :] = noise_var[edges[n] - 1] if n else 1.0
    noise = np.sqrt(noise_var / 2) * (rng.standard_normal(total) + 1j * rng.standard_normal(total))
    rotated = (clean + noise) * np.exp(2j * np.pi * cfo * np.arange(total))
    return rotated.astype(np.complex64), starts.astype(np.int64)
