"""FAL, FedAvg and FedProx weights (DESIGN section 6)."""

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.aggregation import (
    FairAggregation,
    FedAvg,
    FedProx,
    data_weights,
    fair_loss,
    fairness_variance,
    fal_weights,
    weighted_sum,
)

_clients = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0.0, 50.0), min_size=n, max_size=n),
        st.lists(st.integers(1, 10_000), min_size=n, max_size=n),
    )
)


@given(_clients)
@settings(max_examples=200, deadline=None)
def test_lambda_zero_gives_data_weights(case: tuple[list[float], list[int]]) -> None:
    losses, sizes = case
    q = fal_weights(losses, sizes, 0.0)
    np.testing.assert_allclose(q, np.array(sizes) / sum(sizes), rtol=1e-12)


@given(_clients, st.floats(0.0, 1e3))
@settings(max_examples=200, deadline=None)
def test_weights_are_a_distribution(case: tuple[list[float], list[int]], lam: float) -> None:
    losses, sizes = case
    q = fal_weights(losses, sizes, lam)
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(q >= 0)


def test_fal_follows_the_regularised_gradient() -> None:
    losses, sizes, lam = np.array([0.2, 0.5, 1.4]), np.array([100, 300, 600]), 0.1
    p = sizes / sizes.sum()
    expected = p + (2 * lam / 3) * (losses - losses.mean())  # all positive here
    np.testing.assert_allclose(fal_weights(losses, sizes, lam), expected / expected.sum())
    # the same weights are the gradient of F = sum p L + lam Var w.r.t. the losses
    eps = 1e-6
    grad = [
        (fair_loss(losses + eps * np.eye(3)[i], sizes, lam) - fair_loss(losses, sizes, lam)) / eps
        for i in range(3)
    ]
    np.testing.assert_allclose(grad, expected, rtol=1e-4)


def test_large_lambda_clips_the_best_off_clients_to_zero() -> None:
    q = fal_weights([0.0, 0.1, 5.0], [1, 1, 1], 100.0)
    assert q[0] == 0.0
    assert q[2] > 0.9


def test_fairness_variance_is_the_population_variance() -> None:
    assert fairness_variance([1.0, 3.0]) == pytest.approx(1.0)
    assert fairness_variance([2.0]) == 0.0


def test_rules_and_weighted_sum() -> None:
    assert FedAvg().proximal_mu == 0.0
    assert FedProx(0.1).proximal_mu == 0.1
    np.testing.assert_allclose(FedProx(0.1).weights([9, 1], [1, 3]), [0.25, 0.75])
    np.testing.assert_allclose(FairAggregation(0.0).weights([9, 1], [1, 3]), [0.25, 0.75])
    updates = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(weighted_sum(updates, [0.5, 0.5, 0.0]), [1.0, 2.0])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: data_weights([1, 0]), "data_sizes"),
        (lambda: data_weights([]), "data_sizes"),
        (lambda: fal_weights([1.0, np.nan], [1, 1], 0.1), "losses"),
        (lambda: fal_weights([1.0], [1, 1], 0.1), "losses"),
        (lambda: fal_weights([1.0], [1], -1.0), "lam"),
        (lambda: FedProx(-0.1), "mu"),
        (lambda: weighted_sum(np.ones((2, 3)), [1.0]), "updates"),
    ],
)
def test_errors_name_the_argument(call: Callable[[], object], name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
