"""The report's statistics: means with 95% intervals over seeds, and paired t-tests (scipy).

Both work on the values of one metric per seed; seeds are paired across methods because every
method runs the same seeds (same data partition, same world). Values that are NaN (a run that
never reached its target, say) are left out of a mean, and their pair out of a test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["PairedTest", "mean_ci", "paired_t_test"]


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The mean of the finite ``values`` and the half-width of its ``level`` interval
    (Student's t, ``n - 1`` degrees of freedom); the half-width is NaN for fewer than two."""
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * sem


@dataclass(frozen=True)
class PairedTest:
    """A two-sided paired t-test of ``a`` against ``b``.

    Attributes:
        n: pairs used.
        mean_diff: mean of ``a - b``.
        t, p: the statistic and its two-sided p-value. Pairs that all differ by the same
            amount have no variance: ``t`` is 0 and ``p`` 1 if that amount is 0, else ``t`` is
            infinite with the sign of the difference and ``p`` 0.
        significant: ``p < alpha``.
    """

    n: int
    mean_diff: float
    t: float
    p: float
    significant: bool


def paired_t_test(a: Sequence[float], b: Sequence[float], alpha: float = 0.01) -> PairedTest:
    """Paired t-test of ``a`` against ``b`` (same length: one value per seed), at ``alpha``.

    Raises:
        ValueError: ``a`` and ``b`` differ in length, or fewer than two finite pairs remain.
    """
    if len(a) != len(b):
        raise ValueError(f"`a` and `b` must pair up, got {len(a)} and {len(b)} values")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 2:
        raise ValueError(f"a paired t-test needs two finite pairs, got {len(pairs)}")
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    d = x - y
    mean_diff = float(d.mean())
    if np.allclose(d, d[0], rtol=0.0, atol=1e-12):
        t = 0.0 if abs(mean_diff) <= 1e-12 else math.copysign(math.inf, mean_diff)
        p = 1.0 if t == 0.0 else 0.0
    else:
        res = stats.ttest_rel(x, y)
        t, p = float(res.statistic), float(res.pvalue)
    return PairedTest(n=len(pairs), mean_diff=mean_diff, t=t, p=p, significant=p < alpha)
