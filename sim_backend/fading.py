"""Large- and small-scale fading (DESIGN section 4, after Demir, Björnson and Sanguinetti 2021).

- Path loss ``beta[dB] = -30.5 - 36.7 log10(d / 1 m) + F``.
- Shadowing ``F ~ N(0, 4^2)`` dB, correlated between UE positions as ``4^2 2^(-delta / 9 m)``
  and independent across APs: each AP has its own Gaussian random field over the plane,
  realised as a sum of sinusoids whose wave vectors are drawn from the field's spectral
  density, so it can be evaluated at any (moving) position in any process.
- Small-scale fading: Rayleigh, ``g ~ CN(0, 1)`` per UE, AP antenna, evolving from frame to
  frame as Gauss-Markov ``g[n] = rho g[n-1] + sqrt(1 - rho^2) w[n]`` with the Jakes
  coefficient ``rho = J0(2 pi f_D T)``, ``f_D = v f_c / c``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from protocol.arrays import NDArrayComplex, NDArrayFloat
from sim_backend._rng import TAG_SHADOWING, TAG_SMALL_SCALE, complex_normal, keyed_rng

__all__ = [
    "SHADOW_DECORR_M",
    "SHADOW_STD_DB",
    "GaussMarkovFading",
    "ShadowingField",
    "bessel_j0",
    "jakes_rho",
    "path_loss_db",
]


SHADOW_STD_DB = 4.0
#: Distance over which the shadowing correlation falls by e: 2^(-d/9) = exp(-d/(9/ln 2)).
SHADOW_DECORR_M = 9.0 / math.log(2.0)


def path_loss_db(d_m: NDArrayFloat) -> NDArrayFloat:
    """Path gain without shadowing, dB (negative), for 3-D distances ``d_m`` (m)."""
    return -30.5 - 36.7 * np.log10(d_m)


def bessel_j0(x: NDArrayFloat | float) -> NDArrayFloat:
    """Bessel function of the first kind, order 0: ``(1/pi) int_0^pi cos(x sin t) dt``.

    The integrand is smooth and periodic, so the midpoint rule converges spectrally; 256 nodes
    are exact to machine precision for ``|x| < 100`` (far beyond any frame-to-frame Doppler).
    """
    t = (np.arange(256) + 0.5) * (math.pi / 256)
    xa = np.asarray(x, dtype=np.float64)
    return np.mean(np.cos(xa[..., None] * np.sin(t)), axis=-1)


def jakes_rho(speed_mps: NDArrayFloat, *, fc_hz: float, period_s: float) -> NDArrayFloat:
    """Frame-to-frame correlation ``J0(2 pi f_D T)``, ``f_D = v f_c / c``; ``[U]``."""
    from sim_backend.config import SPEED_OF_LIGHT

    fd = np.asarray(speed_mps, dtype=np.float64) * fc_hz / SPEED_OF_LIGHT
    return bessel_j0(2.0 * math.pi * fd * period_s)


class ShadowingField:
    """One AP's shadowing field ``F(x)``, dB: zero mean, std 4 dB, correlation 2^(-|dx| / 9 m).

    ``F(x) = sigma sqrt(2/M) sum_m cos(k_m . x + phi_m)`` with isotropic wave vectors whose
    radius has the CDF ``1 - 1/sqrt(1 + (d k)^2)`` (the 2-D spectrum of ``exp(-r/d)``), so that
    ``E[F(x) F(x')] = sigma^2 exp(-|x - x'| / d)`` exactly; ``M`` sinusoids make ``F`` Gaussian
    to a close approximation.
    """

    def __init__(self, *, seed: int, ap: int, n_sinusoids: int = 256) -> None:
        rng = keyed_rng(seed, TAG_SHADOWING, ap)
        u = rng.uniform(0.0, 1.0, n_sinusoids)
        radius = np.sqrt(1.0 / (1.0 - u) ** 2 - 1.0) / SHADOW_DECORR_M
        angle = rng.uniform(0.0, 2.0 * math.pi, n_sinusoids)
        self._k = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        self._phase = rng.uniform(0.0, 2.0 * math.pi, n_sinusoids)
        self._amp = SHADOW_STD_DB * math.sqrt(2.0 / n_sinusoids)

    def __call__(self, xy_m: NDArrayFloat) -> NDArrayFloat:
        """Shadowing at ``[..., 2]`` positions (m): ``[...]`` dB."""
        arg = np.asarray(xy_m, dtype=np.float64) @ self._k.T + self._phase
        return self._amp * np.sum(np.cos(arg), axis=-1)


class GaussMarkovFading:
    """Normalised small-scale fading of one AP: ``g[n] : [U, N]`` complex, ``CN(0, 1)`` entries.

    Innovations are drawn per block of ``block`` frames from the keyed stream
    ``(seed, small_scale, ap, block_index)``; the recursion inside a block runs as a
    log-depth scan. The state at each block end is kept, so frames can be asked for in any
    order and every process computes bit-identical values for the same frame. The most
    recently used blocks are kept whole, up to ``cache_bytes`` (always at least one), so a
    reader that asks for the same frames again (the simulated air, after building ahead)
    does not recompute them.
    """

    def __init__(
        self,
        *,
        seed: int,
        ap: int,
        n_ues: int,
        n_ant: int,
        rho: NDArrayFloat,
        block: int = 256,
        cache_bytes: int = 0,
    ) -> None:
        if block < 1:
            raise ValueError("`block` must be >= 1.")
        if cache_bytes < 0:
            raise ValueError(f"`cache_bytes` must be >= 0, got {cache_bytes}.")
        self._seed, self._ap, self._block = seed, ap, block
        self._shape = (n_ues, n_ant)
        self._rho = np.clip(np.asarray(rho, dtype=np.float64), -1.0, 1.0)[:, None]
        self._innov = np.sqrt(np.maximum(0.0, 1.0 - self._rho**2))
        self._end_state: dict[int, NDArrayComplex] = {}
        self._cache: OrderedDict[int, NDArrayComplex] = OrderedDict()
        self._keep = max(1, cache_bytes // (block * n_ues * n_ant * 16))

    def _compute_block(self, b: int) -> NDArrayComplex:
        hit = self._cache.get(b)
        if hit is not None:
            self._cache.move_to_end(b)
            return hit
        rng = keyed_rng(self._seed, TAG_SMALL_SCALE, self._ap, b)
        w = complex_normal(rng, (self._block, *self._shape))
        if b == 0:
            x = self._innov * w
            x[0] = w[0]  # stationary start
        else:
            j = b - 1
            while j >= 0 and j not in self._end_state:
                j -= 1
            for missing in range(j + 1, b):  # fill the gap in order, never recursing deeply
                self._compute_block(missing)
            prev = self._end_state[b - 1]
            x = self._innov * w
            x[0] += self._rho * prev
        a, shift = self._rho, 1
        while shift < self._block:  # inclusive scan of x[n] = rho x[n-1] + b[n]
            x[shift:] = x[shift:] + a * x[:-shift]
            a, shift = a * a, shift * 2
        self._end_state[b] = x[-1].copy()
        self._cache[b] = x
        while len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return x

    def frames(self, start: int, count: int) -> NDArrayComplex:
        """``[count, U, N]`` complex128: frames ``start .. start + count - 1``."""
        if start < 0 or count < 0:
            raise ValueError("`start` and `count` must be >= 0.")
        out = np.empty((count, *self._shape), dtype=np.complex128)
        n = start
        while n < start + count:
            b, off = divmod(n, self._block)
            take = min(self._block - off, start + count - n)
            out[n - start : n - start + take] = self._compute_block(b)[off : off + take]
            n += take
        return out
