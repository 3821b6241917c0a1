"""The joint KKT Newton solver (softmax path) against the nested exact solver and cvxpy."""

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import lambertw

from controller.allocation import bandwidth as bandwidth_module
from controller.allocation.bandwidth import solve_bandwidth_exact, solve_bandwidth_softmax
from controller.allocation.csm import schedule_frequencies
from controller.allocation.instance import ObjectiveWeights
from controller.allocation.kkt_newton import KktProblem, least_round_latency, solve_kkt_newton
from controller.allocation.pipeline import allocate_for_power
from controller.allocation.reference import solve_joint_cvxpy
from controller.allocation.scenario import random_instance
from controller.allocation.system_model import (
    comm_latency,
    evaluate,
    min_comm_latency,
    rate_equation_root,
)

pytestmark = pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning")


@given(
    data=st.data(),
    beta=st.sampled_from([0.05, 0.5, 2.0]),
    gamma=st.sampled_from([1.0, 0.2, 0.0]),
)
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_joint_newton_converges_to_the_nested_exact_solution(
    data: st.DataObject, beta: float, gamma: float, instance_strategy: Any, draw_power: Any
) -> None:
    inst = data.draw(instance_strategy(beta=beta, levels="continuous", max_users=40))
    inst = replace(inst, weights=replace(inst.weights, gamma=gamma))
    p = draw_power(data, inst)
    fit = solve_kkt_newton(KktProblem.from_instance(inst, p))
    assert fit is not None, "the joint Newton iteration did not converge"
    assert fit.bandwidth_hz.sum() == pytest.approx(inst.bandwidth_hz, rel=1e-12)
    exact = allocate_for_power(inst, p, bandwidth="exact")
    fast = allocate_for_power(inst, p, bandwidth="softmax")
    assert fast.objective == pytest.approx(exact.objective, rel=1e-9)
    np.testing.assert_allclose(fast.bandwidth_hz, exact.bandwidth_hz, rtol=1e-3, atol=1.0)


def test_one_user_whose_energy_optimum_sets_the_deadline() -> None:
    """sum nu jumps from >= gamma to 0 at the energy-only deadline: the optimum sits there.

    The nested solver used to raise on this instance (its bracket had no sign change).
    """
    inst = random_instance(
        np.random.default_rng(1),
        1,
        weights=ObjectiveWeights(beta=2.0, gamma=0.2),
        levels="continuous",
    )
    p = inst.p_max_w
    ref = solve_joint_cvxpy(inst, p)
    ref_obj = evaluate(inst, ref.bandwidth_hz, p, ref.freq_hz).objective
    exact = allocate_for_power(inst, p, bandwidth="exact")
    fast = allocate_for_power(inst, p, bandwidth="softmax")
    assert exact.objective == pytest.approx(ref_obj, rel=1e-4)
    assert fast.objective == pytest.approx(exact.objective, rel=1e-9)
    np.testing.assert_allclose(exact.freq_hz, inst.f_min_hz)  # the board idles at f_min


def test_softmax_falls_back_to_the_nested_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = random_instance(np.random.default_rng(3), 12, levels="continuous")
    p = inst.p_max_w * 0.5
    direct = solve_bandwidth_softmax(inst, p)
    monkeypatch.setattr(bandwidth_module, "solve_kkt_newton", lambda *a, **k: None)
    fallback = solve_bandwidth_softmax(inst, p)
    assert fallback.bandwidth_hz.sum() == pytest.approx(inst.bandwidth_hz, rel=1e-12)
    np.testing.assert_allclose(fallback.bandwidth_hz, direct.bandwidth_hz, rtol=1e-4)


def test_gives_up_with_none_when_out_of_iterations() -> None:
    inst = random_instance(np.random.default_rng(4), 30, levels="continuous")
    assert solve_kkt_newton(KktProblem.from_instance(inst, inst.p_max_w), max_iter=1) is None


def test_least_round_latency_finishes_everyone_together() -> None:
    inst = random_instance(np.random.default_rng(5), 200, levels="continuous")
    a = inst.snr_bandwidth_hz(inst.p_max_w)
    comp = inst.workload_cycles / inst.f_max_hz
    t, b = least_round_latency(a, comp, inst.update_bits, inst.bandwidth_hz)
    assert b.sum() <= inst.bandwidth_hz
    assert b.sum() == pytest.approx(inst.bandwidth_hz, rel=1e-10)
    np.testing.assert_allclose(comm_latency(b, a, inst.update_bits) + comp, t, rtol=1e-9)
    assert t > float(np.max(min_comm_latency(a, inst.update_bits) + comp))


def test_rate_equation_root_matches_lambert_w_from_tiny_to_near_one() -> None:
    c = 10.0 ** np.linspace(-14, -1e-3, 400)
    y = rate_equation_root(c)
    # y = ln Y with Y = -W_{-1}(-c e^-c) / c
    y_ref = np.log(-lambertw(-c * np.exp(-c), k=-1).real / c)
    np.testing.assert_allclose(y, y_ref, rtol=1e-9)
    # near the branch point (huge bandwidth, y -> 0), where Lambert W itself loses digits:
    # the equation itself, and its first-order solution y ~ 2 (1 - c)
    near = 1.0 - 10.0 ** np.linspace(-2, -12, 200)
    y = rate_equation_root(near)
    np.testing.assert_allclose(near * np.expm1(y) / y, 1.0, rtol=1e-14)
    np.testing.assert_allclose(y, 2.0 * (1.0 - near), rtol=0.02)


def test_csm_answer_does_not_depend_on_the_hint() -> None:
    inst = random_instance(
        np.random.default_rng(6), 50, weights=ObjectiveWeights(beta=0.5), levels="continuous"
    )
    p = inst.p_max_w
    sol = solve_bandwidth_exact(inst, p)
    tau = comm_latency(sol.bandwidth_hz, inst.snr_bandwidth_hz(p), inst.update_bits)
    args = (tau, inst.workload_cycles, inst.f_min_hz, inst.f_max_hz, inst.kappa, inst.weights)
    free = schedule_frequencies(*args).round_latency_s
    for hint in (sol.round_latency_s, 0.5 * free, 3.0 * free):
        t = schedule_frequencies(*args, deadline_hint_s=hint).round_latency_s
        assert t == pytest.approx(free, rel=2e-9)
