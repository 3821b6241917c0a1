import numpy as np
import pytest

from controller.allocation.instance import ObjectiveWeights
from controller.allocation.scenario import random_instance
from controller.allocation.system_model import (
    bandwidth_for_latency,
    comm_latency,
    comm_latency_slope,
    evaluate,
    min_comm_latency,
    rate,
)


def test_inverse_rate_round_trips_over_decades() -> None:
    rng = np.random.default_rng(0)
    a = 10 ** rng.uniform(4, 10, 2000)
    s = 4e6
    tau = min_comm_latency(a, s) * 10 ** rng.uniform(-3, 6, a.size) + min_comm_latency(a, s)
    b = bandwidth_for_latency(tau, a, s)
    assert np.all(np.isfinite(b))
    np.testing.assert_allclose(comm_latency(b, a, s), tau, rtol=1e-6)


def test_inverse_rate_is_infinite_below_the_floor() -> None:
    a = np.array([1e6, 1e6])
    s = 1e6
    tau = min_comm_latency(a, s) * np.array([0.5, 1.0])
    assert np.all(np.isinf(bandwidth_for_latency(tau, a, s)))


def test_rate_is_shannon_and_saturates() -> None:
    a = np.array([1e6])
    assert rate(np.array([1e6]), a)[0] == pytest.approx(1e6)  # SNR 1: 1 bit/s/Hz
    assert rate(np.array([1e12]), a)[0] == pytest.approx(1e6 / np.log(2), rel=1e-5)
    assert rate(np.array([0.0]), a)[0] == 0.0


def test_latency_slope_matches_finite_difference() -> None:
    a, b, s = np.array([3e7]), np.array([2e6]), 5e6
    h = 1.0
    fd = (comm_latency(b + h, a, s) - comm_latency(b - h, a, s)) / (2 * h)
    np.testing.assert_allclose(comm_latency_slope(b, a, s), fd, rtol=1e-5)


def test_evaluate_adds_up() -> None:
    inst = random_instance(np.random.default_rng(1), 5, weights=ObjectiveWeights(beta=0.3))
    b = np.full(5, inst.bandwidth_hz / 5)
    p, f = inst.p_max_w, inst.f_max_hz
    alloc = evaluate(inst, b, p, f)
    t_comm = comm_latency(b, inst.snr_bandwidth_hz(p), inst.update_bits)
    np.testing.assert_allclose(alloc.latency_s, t_comm + inst.workload_cycles / f)
    np.testing.assert_allclose(
        alloc.energy_j, p * t_comm + inst.kappa * inst.workload_cycles * f**2
    )
    assert alloc.round_latency_s == alloc.latency_s.max()
    assert alloc.objective == pytest.approx(
        1.0 * alloc.round_latency_s + 0.3 * alloc.energy_j.sum()
    )
    d = alloc.to_dict()
    assert set(d) >= {"bandwidth_hz", "power_w", "freq_hz", "latency_s", "energy_j"}
    assert len(d["bandwidth_hz"]) == 5
