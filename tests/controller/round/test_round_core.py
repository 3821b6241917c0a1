"""The round core's steps as pure functions: plan, link, weights, update, record."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller import round as core
from controller.algorithms import make_algorithm
from controller.link import choose_mcs, get_table
from controller.round import ClientReport
from protocol.spec import ExperimentSpec, parse_spec


def _spec(**link: Any) -> ExperimentSpec:
    return parse_spec(
        {
            "name": "core",
            "seed": 5,
            "topology": {
                "aps": [{"id": "ap0"}],
                "ues": [
                    {"id": "ue0", "profile": "rpi4"},
                    {"id": "ue1", "profile": "jetson-nano"},
                    {"id": "ue2", "profile": "rpi4"},
                ],
            },
            "dataset": {"samples_per_client": 500},
            "algorithm": {"name": "fedavg"},
            "link": link,
            "secure_aggregation": {"enabled": False},
        }
    )


IDS = ["ue0", "ue1", "ue2"]
GAINS = np.array([1e-9, 3e-11, 1e-10])  # -90, -105, -100 dB
BITS = 2e6


def _plan(spec: ExperimentSpec, gains: np.ndarray = GAINS) -> core.RoundPlan:
    alg = make_algorithm(spec.algorithm, spec.weights, seed=spec.seed)
    return core.plan(
        alg,
        spec,
        index=0,
        ue_ids=IDS,
        gains=gains,
        samples=dict.fromkeys(IDS, 500),
        update_bits=BITS,
        anchor_frame=1000,
    )


def _reports(plan: core.RoundPlan, f_scale: float = 1.0) -> dict[str, ClientReport]:
    return {
        u: ClientReport(u, loss=1.0 + i, samples=500, measured_train_s=2.0 + i,
                        freq_applied_hz=float(plan.allocation.freq_hz[i]) * f_scale)
        for i, u in enumerate(plan.ue_ids)
    }  # fmt: skip


def _truth(plan: core.RoundPlan, req: core.LinkRequest, scale: float, n: int = 3) -> np.ndarray:
    """The estimate, scaled, as the true gain of the first ``n`` planned users at every try."""
    g = plan.instance.gain[:n, None] * scale
    return np.broadcast_to(g, req.frames.shape).copy()


def test_plan_picks_the_highest_mcs_below_the_planned_sinr_minus_backoff() -> None:
    spec = _spec(backoff_db=2.0)
    p = _plan(spec)
    assert p.link is not None
    a = p.allocation
    sinr_db = 10 * np.log10(a.power_w * GAINS / (p.instance.noise_psd_w_per_hz * a.bandwidth_hz))
    np.testing.assert_allclose(p.link.planned_sinr_db, sinr_db)
    table = get_table("nr-64qam")
    pos = choose_mcs(table, sinr_db, 2.0)
    np.testing.assert_array_equal(p.mcs_index, np.where(pos >= 0, table.index[pos], -1))
    # The deadline derived from the plan: factor x the planned latency at the MCS rates.
    compute = p.instance.workload_cycles / a.freq_hz
    airtime = p.link.n_blocks * p.link.block_airtime_s
    assert p.deadline_s == pytest.approx(1.5 * np.max(compute + airtime))


def test_true_channel_equal_to_the_estimate_delivers_every_update() -> None:
    spec = _spec()
    p = _plan(spec)
    reports = _reports(p)
    req = core.link_request(p, reports)
    assert req is not None
    assert req.frames.min() >= 1000  # anchor + t / frame period
    res = core.resolve_link(spec, p, reports, req, _truth(p, req, 1.0))
    assert res.arrived == IDS
    assert res.dropped == []
    assert p.link is not None
    airtime = p.link.n_blocks * p.link.block_airtime_s
    np.testing.assert_allclose(res.model_arrival_s, req.model_compute_s + airtime, rtol=1e-9)


def test_a_faded_channel_loses_updates_and_costs_retries() -> None:
    spec = _spec()
    p = _plan(spec)
    reports = _reports(p)
    req = core.link_request(p, reports)
    assert req is not None
    res = core.resolve_link(spec, p, reports, req, _truth(p, req, 1e-3))  # -6 dB
    assert res.dropped  # 30 dB below the plan: every MCS fails
    assert set(res.status.tolist()) <= {1, 2}
    assert np.all(res.model_latency_s[res.status != 0] == p.deadline_s)
    assert res.retries.sum() > 0


def test_energy_uses_the_applied_frequency_and_the_ues_own_profile() -> None:
    spec = _spec()
    p = _plan(spec)
    slow = _reports(p, f_scale=0.5)
    req = core.link_request(p, slow)
    assert req is not None
    res = core.resolve_link(spec, p, slow, req, _truth(p, req, 1.0))
    inst, a = p.instance, p.allocation
    f = a.freq_hz * 0.5
    compute_energy = inst.kappa * inst.workload_cycles * f**2
    assert res.outcome is not None
    np.testing.assert_allclose(
        res.model_energy_j, a.power_w * res.outcome.airtime_s + compute_energy, rtol=1e-9
    )
    # Jetson (ue1) and rpi4 boards differ in kappa and cycles per sample.
    assert inst.kappa[1] != inst.kappa[0]
    # Half the frequency doubles the modelled compute time.
    full = core.link_request(p, _reports(p))
    assert full is not None
    np.testing.assert_allclose(req.model_compute_s, 2 * full.model_compute_s)


def test_link_outcomes_are_a_function_of_seed_and_round() -> None:
    spec = _spec()
    p = _plan(spec)
    reports = _reports(p)
    req = core.link_request(p, reports)
    assert req is not None
    truth = _truth(p, req, 10 ** (-0.8 / 10))
    a = core.resolve_link(spec, p, reports, req, truth)
    b = core.resolve_link(spec, p, reports, req, truth)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.retries, b.retries)


def test_link_layer_off_delivers_everything_at_the_system_model_latency() -> None:
    spec = _spec(enabled=False)
    p = _plan(spec)
    reports = _reports(p)
    assert core.link_request(p, reports) is None
    res = core.resolve_link(spec, p, reports, None, None)
    assert res.arrived == IDS
    np.testing.assert_allclose(res.model_latency_s, p.allocation.latency_s, rtol=1e-9)


def test_record_counts_link_and_crash_dropouts_and_rewards_delivery() -> None:
    spec = _spec()
    p = _plan(spec)
    reports = _reports(p)
    del reports["ue2"]  # crashed: no report
    req = core.link_request(p, reports)
    assert req is not None
    good = core.resolve_link(spec, p, reports, req, _truth(p, req, 1.0, n=2))
    bad = core.resolve_link(spec, p, reports, req, _truth(p, req, 1e-3, n=2))
    kw: dict[str, Any] = {
        "accuracy": 0.9,
        "loss": 0.3,
        "fairness_var": 0.01,
        "previous_model_time_s": 7.0,
    }
    r_good = core.record(spec, p, reports, good, ["ue0", "ue1"], updated=True, **kw)
    r_bad = core.record(spec, p, reports, bad, [], updated=False, **kw)
    assert (r_good.link_dropouts, r_good.crash_dropouts) == (0, 1)
    assert r_bad.link_dropouts == 2
    assert r_bad.crash_dropouts == 1
    assert not r_bad.updated
    assert r_good.model_time_s == pytest.approx(7.0 + r_good.model_latency_s)
    assert r_good.measured_train_s == 3.0  # the slowest contributor (ue1)
    assert r_good.measured_energy_j is None  # no board has a meter
    assert r_bad.reward < r_good.reward  # lost updates cost the deadline and their energy
    assert r_good.mean_mcs_index is not None


def test_weights_and_update_cover_only_arrived_updates() -> None:
    spec = _spec()
    alg = make_algorithm(spec.algorithm, spec.weights, seed=0)
    p = _plan(spec)
    reports = _reports(p)
    q = core.weights(alg, reports, ["ue0", "ue2"])
    assert set(q) == {"ue0", "ue2"}
    assert sum(q.values()) == pytest.approx(1.0)
    w = np.zeros(4, dtype=np.float32)
    new = core.apply_update(w, np.array([1.0, 2.0, 3.0, 4.0]), q, ["ue0", "ue2"])
    assert new is not None
    np.testing.assert_allclose(new, [1.0, 2.0, 3.0, 4.0])
    assert core.apply_update(w, np.ones(4), q, []) is None
