"""The significance step on data with a known answer."""

from __future__ import annotations

import math

import pytest

from reproduce.stats import mean_ci, paired_t_test


def test_paired_t_test_matches_the_hand_computed_statistic() -> None:
    # Differences 1, 2, 3, 4: mean 2.5, sd sqrt(5/3), t = 2.5 / (sd / 2) = 3.8730, df 3.
    a = [11.0, 22.0, 33.0, 44.0]
    b = [10.0, 20.0, 30.0, 40.0]
    test = paired_t_test(a, b)
    assert test.n == 4
    assert test.mean_diff == pytest.approx(2.5)
    assert test.t == pytest.approx(2.5 / (math.sqrt(5.0 / 3.0) / 2.0), rel=1e-12)
    assert test.p == pytest.approx(0.030466, abs=1e-5)  # two-sided, t(3) distribution
    assert not test.significant  # not at 1%
    assert paired_t_test(a, b, alpha=0.05).significant
    assert paired_t_test(b, a).t == pytest.approx(-test.t)


def test_a_clear_difference_is_significant_at_one_percent() -> None:
    base = [0.50, 0.52, 0.49, 0.51, 0.50, 0.53]
    better = [x + 0.05 + 0.001 * i for i, x in enumerate(base)]
    test = paired_t_test(better, base)
    assert test.t > 50
    assert test.p < 1e-6
    assert test.significant


def test_degenerate_pairs_and_missing_values() -> None:
    same = paired_t_test([0.1, 0.2], [0.1, 0.2])
    assert (same.t, same.p, same.significant) == (0.0, 1.0, False)
    shifted = paired_t_test([1.0, 2.0], [0.0, 1.0])
    assert shifted.t == math.inf
    assert shifted.p == 0.0
    dropped = paired_t_test([1.0, math.nan, 3.0, 5.0], [0.0, 1.0, 1.0, 2.0])
    assert dropped.n == 3
    with pytest.raises(ValueError, match="two finite pairs"):
        paired_t_test([1.0, math.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="pair up"):
        paired_t_test([1.0, 2.0], [1.0])


def test_mean_ci_uses_student_t() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 / math.sqrt(3.0), rel=1e-6)  # t(0.975, 2) sd/sqrt(n)
    assert mean_ci([4.0, math.nan]) == (4.0, pytest.approx(math.nan, nan_ok=True))
    assert all(math.isnan(v) for v in mean_ci([]))
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=1.5)
