"""Keyed random streams: every random quantity of the world has its own key.

A stream is a pure function of ``(seed, tag, *indices)``, so two processes that build the
same world from the same spec draw identical numbers for the same quantity, whatever else
each of them simulates and in whatever order.
"""

from __future__ import annotations

import numpy as np

#: Stream tags (never renumber: that would change every simulated world).
TAG_AP_POSITION = 1
TAG_WAYPOINTS = 2
TAG_SHADOWING = 3
TAG_SMALL_SCALE = 4
TAG_NOISE = 5
TAG_NOISE_PREFIX = 6
TAG_CSI_ONLY_NOISE = 7
TAG_SAMPLED_PATH = 8
TAG_SAMPLED_LINK = 9


def keyed_rng(seed: int, tag: int, *indices: int) -> np.random.Generator:
    """A Philox generator keyed by ``(seed, tag, *indices)`` (all non-negative ints)."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, tag, *indices])))


def complex_normal(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: type = np.complex128
) -> np.ndarray:
    """``CN(0, 1)`` samples of ``shape``: complex128, or complex64 (drawn in float32, about
    1.4x faster: the IQ stream's noise, which the stream carries as complex64 anyway)."""
    if dtype not in (np.complex64, np.complex128):
        raise ValueError(f"`dtype` must be complex64 or complex128, got {dtype!r}")
    real = np.float32 if dtype is np.complex64 else np.float64
    x = rng.standard_normal((*shape, 2), dtype=real)  # (re, im) pairs: viewed as complex
    z: np.ndarray = x.view(dtype).reshape(shape)
    z *= np.sqrt(0.5).astype(real)
    return z
