"""CSM: exact, projected-gradient and cvxpy agree; DVFS rounding; shared edge cycles."""

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.allocation.csm import (
    round_up_to_levels,
    schedule_frequencies,
    schedule_frequencies_pgd,
    share_edge_cycles,
)
from controller.allocation.instance import ObjectiveWeights
from controller.allocation.reference import (
    schedule_frequencies_cvxpy,
    share_edge_cycles_cvxpy,
)
from controller.allocation.scenario import random_instance


def _case(seed: int, n: int, beta: float, gamma: float) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, n, levels="continuous")
    tau = rng.uniform(0.05, 3.0, n)
    return (
        tau,
        inst.workload_cycles,
        inst.f_min_hz,
        inst.f_max_hz,
        inst.kappa,
        ObjectiveWeights(beta=beta, gamma=gamma),
    )


def _objective(args: tuple[Any, ...], f: np.ndarray, t: float) -> float:
    tau, w, _, _, kappa, wts = args
    assert np.all(tau + w / f <= t * (1 + 1e-7))
    return wts.gamma * t + wts.beta * float(np.sum(kappa * w * f**2))


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 12),
    beta=st.sampled_from([0.0, 0.01, 0.1, 1.0, 10.0]),
    gamma=st.sampled_from([0.0, 0.1, 1.0]),
)
@settings(max_examples=20, deadline=None, derandomize=True)
def test_exact_pgd_and_cvxpy_agree(seed: int, n: int, beta: float, gamma: float) -> None:
    args = _case(seed, n, beta, gamma)
    exact = schedule_frequencies(*args)
    pgd = schedule_frequencies_pgd(*args)
    f_cvx, t_cvx = schedule_frequencies_cvxpy(*args)
    v_exact = _objective(args, exact.freq_hz, exact.round_latency_s)
    v_pgd = _objective(args, pgd.freq_hz, pgd.round_latency_s)
    v_cvx = args[5].gamma * t_cvx + args[5].beta * float(np.sum(args[4] * args[1] * f_cvx**2))
    assert v_exact <= v_cvx * (1 + 1e-5) + 1e-9
    assert v_pgd == pytest.approx(v_exact, rel=1e-6, abs=1e-9)


def test_latency_only_runs_the_straggler_flat_out_and_slows_the_rest() -> None:
    tau, w, fmin, fmax, kappa, _ = _case(3, 10, 0.0, 1.0)
    sched = schedule_frequencies(tau, w, fmin, fmax, kappa, ObjectiveWeights(beta=0.0))
    lat = tau + w / sched.freq_hz
    strag = int(np.argmax(tau + w / fmax))
    assert sched.freq_hz[strag] == fmax[strag]
    assert sched.round_latency_s == pytest.approx(lat.max())
    early = sched.freq_hz > fmin
    np.testing.assert_allclose(lat[early], sched.round_latency_s, rtol=1e-12)


def test_energy_weight_stretches_the_deadline() -> None:
    args0 = _case(4, 8, 0.0, 1.0)
    args1 = (*args0[:5], ObjectiveWeights(beta=5.0, gamma=1.0))
    assert (
        schedule_frequencies(*args1).round_latency_s > schedule_frequencies(*args0).round_latency_s
    )


def test_rounding_goes_up_to_the_next_level() -> None:
    levels = np.array([[1.0, 2.0, 3.0], [5.0, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    f = np.array([1.5, 5.0, 7.3])
    np.testing.assert_array_equal(round_up_to_levels(f, levels), [2.0, 5.0, 7.3])
    np.testing.assert_array_equal(
        round_up_to_levels(np.array([2.0 * (1 + 1e-12), 5.0, 1.0]), levels), [2.0, 5.0, 1.0]
    )


@given(seed=st.integers(0, 10_000), n=st.integers(1, 15))
@settings(max_examples=15, deadline=None, derandomize=True)
def test_shared_edge_cycles_match_cvxpy(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    tau = rng.uniform(0.0, 2.0, n)
    w = rng.uniform(1e8, 5e9, n)
    cap = float(rng.uniform(2e9, 2e10))
    share = share_edge_cycles(tau, w, cap)
    assert share.cycles_per_s.sum() <= cap * (1 + 1e-12)
    assert np.all(tau + w / share.cycles_per_s <= share.round_latency_s * (1 + 1e-12))
    _, t_cvx = share_edge_cycles_cvxpy(tau, w, cap)
    assert share.round_latency_s == pytest.approx(t_cvx, rel=1e-5)


def test_shared_edge_cycles_rejects_bad_capacity() -> None:
    with pytest.raises(ValueError, match="capacity_hz"):
        share_edge_cycles(np.ones(2), np.ones(2), 0.0)
