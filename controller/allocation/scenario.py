"""Random, seeded allocation instances: for tests, benchmarks and offline policy training.

Defaults follow DESIGN sections 4-5: 20 MHz, ``N0 = -174 dBm/Hz + 7 dB``, gains ``G_u`` between
-130 and -100 dB (a few APs, two antennas each, hundreds of metres away), boards drawn from the
built-in RPi4 and Jetson Nano profiles, a model update of a few Mbit.
"""

from __future__ import annotations

import numpy as np

from controller.allocation.instance import AllocationInstance, ObjectiveWeights
from protocol.physics import noise_psd_w_per_hz
from protocol.profiles import BUILTIN_PROFILES

__all__ = ["NOISE_PSD_W_PER_HZ", "random_instance"]

#: ``-174 dBm/Hz`` thermal noise plus a 7 dB noise figure, W/Hz.
NOISE_PSD_W_PER_HZ = noise_psd_w_per_hz(7.0)


def random_instance(
    rng: np.random.Generator,
    n_users: int,
    *,
    weights: ObjectiveWeights | None = None,
    bandwidth_hz: float = 20e6,
    update_bits: float | None = None,
    gain_db: tuple[float, float] = (-130.0, -100.0),
    levels: str = "profiles",
) -> AllocationInstance:
    """A random instance of ``n_users`` users.

    Args:
        rng: the seeded generator everything is drawn from.
        n_users: ``U``, >= 1.
        weights: objective weights (default ``ObjectiveWeights()``).
        bandwidth_hz: ``B``, Hz.
        update_bits: ``S``, bit; default drawn in [1, 8] Mbit.
        gain_db: range of ``10 log10 G_u``, dB (uniform).
        levels: ``"profiles"`` (DVFS levels of the built-in boards), ``"continuous"`` (their
            ranges, no levels) or ``"mixed"`` (each user either way).
    """
    if n_users < 1:
        raise ValueError(f"`n_users` must be >= 1, got {n_users}.")
    if levels not in ("profiles", "continuous", "mixed"):
        raise ValueError(f"`levels` must be profiles, continuous or mixed, got {levels!r}.")
    profiles = list(BUILTIN_PROFILES.values())
    kind = rng.integers(0, len(profiles), n_users)
    width = max(len(p.f_levels_hz) for p in profiles)
    table = np.full((n_users, width), np.nan)
    for k, prof in enumerate(profiles):
        table[kind == k, : len(prof.f_levels_hz)] = prof.f_levels_hz
    discrete = {
        "profiles": np.ones(n_users, dtype=bool),
        "continuous": np.zeros(n_users, dtype=bool),
        "mixed": rng.random(n_users) < 0.5,
    }[levels]
    f_min = table[:, 0].copy()
    f_max = np.nanmax(table, axis=1)
    table[~discrete] = np.nan
    return AllocationInstance(
        gain=10 ** (rng.uniform(*gain_db, n_users) / 10.0),
        cycles_per_sample=np.array([profiles[k].cycles_per_sample for k in kind])
        * rng.uniform(0.7, 1.3, n_users),
        samples=rng.integers(100, 800, n_users).astype(np.float64),
        kappa=np.array([profiles[k].kappa for k in kind]),
        f_min_hz=f_min,
        f_max_hz=f_max,
        p_max_w=np.array([profiles[k].p_max_w for k in kind]),
        bandwidth_hz=bandwidth_hz,
        noise_psd_w_per_hz=NOISE_PSD_W_PER_HZ,
        update_bits=float(update_bits if update_bits is not None else rng.uniform(1e6, 8e6)),
        weights=weights or ObjectiveWeights(),
        f_levels_hz=table,
    )
