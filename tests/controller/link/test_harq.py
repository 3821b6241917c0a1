"""HARQ accounting of one update: airtime, retries, energy, deadline, outage, attempt times."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller.link.bler import bler, bler_midpoint_db
from controller.link.harq import (
    ARRIVED,
    FAILED,
    LATE,
    OUTAGE,
    LinkConfig,
    LinkOutcome,
    LinkPlan,
    attempt_times,
    deadline_from_plan,
    plan_links,
    transmit,
)
from controller.link.mcs import get_table

N0 = 4e-21  # W/Hz, about -174 dBm/Hz
BW = 1e6  # Hz
P = 0.2  # W


def _gain_for_sinr_db(sinr_db: np.ndarray) -> np.ndarray:
    return 10 ** (np.asarray(sinr_db, dtype=np.float64) / 10) * N0 * BW / P


def _plan(
    cfg: LinkConfig, sinr_db: list[float], update_bits: float
) -> tuple[LinkPlan, dict[str, Any]]:
    u = len(sinr_db)
    kw: dict[str, Any] = {
        "power_w": np.full(u, P),
        "bandwidth_hz": np.full(u, BW),
        "noise_psd_w_per_hz": N0,
    }
    plan = plan_links(cfg, gain=_gain_for_sinr_db(np.array(sinr_db)), update_bits=update_bits, **kw)
    return plan, kw


def _send(
    cfg: LinkConfig,
    plan: LinkPlan,
    kw: dict[str, Any],
    compute_s: np.ndarray,
    deadline_s: float,
    gain: np.ndarray,
    uniforms: np.ndarray | None = None,
) -> LinkOutcome:
    times = attempt_times(plan, compute_s=compute_s, deadline_s=deadline_s)
    g = np.where(np.isnan(times), np.nan, gain.reshape(len(compute_s), -1))
    if uniforms is None:
        uniforms = np.full(times.shape, 0.999)
    return transmit(
        cfg, plan, compute_s=compute_s, deadline_s=deadline_s, true_gain=g, uniforms=uniforms, **kw
    )


@pytest.fixture
def cfg() -> LinkConfig:
    return LinkConfig(table=get_table("nr-64qam"), backoff_db=1.0, tbs_bits=8448, max_retx=3)


def test_plan_rates_and_blocks(cfg: LinkConfig) -> None:
    t = cfg.table
    sinr = [t.sinr_threshold_db[5] + 1.0, t.sinr_threshold_db[20] + 1.2, 40.0]
    plan, _ = _plan(cfg, sinr, update_bits=100_000)
    np.testing.assert_array_equal(plan.mcs, [5, 20, 28])
    np.testing.assert_allclose(plan.planned_sinr_db, sinr)
    np.testing.assert_allclose(plan.spectral_efficiency, t.spectral_efficiency[[5, 20, 28]])
    np.testing.assert_allclose(plan.rate_bps, plan.spectral_efficiency * BW)
    np.testing.assert_array_equal(plan.n_blocks, [12, 12, 12])  # ceil(1e5 / 8448)
    np.testing.assert_allclose(plan.block_airtime_s, 8448 / plan.rate_bps)
    np.testing.assert_array_equal(plan.max_attempts, [48, 48, 48])


def test_all_decode_accounting(cfg: LinkConfig) -> None:
    t = cfg.table
    sinr = [t.sinr_threshold_db[m] + 1.0 + 0.3 for m in (0, 7, 16, 28)]
    plan, kw = _plan(cfg, sinr, update_bits=50_000)
    compute = np.array([0.5, 0.1, 0.0, 2.0])
    gain = _gain_for_sinr_db(np.array(sinr))  # true gain equals the planned one
    out = _send(cfg, plan, kw, compute, np.inf, gain)
    airtime = plan.n_blocks * 8448 / plan.rate_bps
    np.testing.assert_array_equal(out.status, ARRIVED)
    assert out.arrived.all()
    assert out.status_names() == ["arrived"] * 4
    np.testing.assert_allclose(out.airtime_s, airtime)
    np.testing.assert_array_equal(out.transmissions, plan.n_blocks)
    np.testing.assert_array_equal(out.retries, 0)
    np.testing.assert_array_equal(out.blocks_delivered, plan.n_blocks)
    np.testing.assert_allclose(out.comm_energy_j, P * airtime)
    np.testing.assert_allclose(out.arrival_s, compute + airtime)
    np.testing.assert_allclose(out.true_sinr_db_mean, sinr)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_k_failures_of_block_zero_cost_k_block_airtimes(cfg: LinkConfig, k: int) -> None:
    sinr = [cfg.table.sinr_threshold_db[10] + 1.5] * 2
    plan, kw = _plan(cfg, sinr, update_bits=3 * 8448)
    compute = np.zeros(2)
    times = attempt_times(plan, compute_s=compute, deadline_s=np.inf)
    uniforms = np.full(times.shape, 0.999)
    uniforms[0, :k] = 0.0  # user 0: block 0 fails its first k tries (its BLER is > 0)
    out = _send(cfg, plan, kw, compute, np.inf, _gain_for_sinr_db(np.array(sinr)), uniforms)
    t_block = plan.block_airtime_s
    np.testing.assert_array_equal(out.status, [ARRIVED, ARRIVED])
    np.testing.assert_array_equal(out.retries, [k, 0])
    np.testing.assert_array_equal(out.transmissions, [3 + k, 3])
    np.testing.assert_allclose(out.airtime_s, (3 + np.array([k, 0])) * t_block)
    np.testing.assert_allclose(out.comm_energy_j, P * out.airtime_s)


def test_block_failing_every_try_loses_the_update(cfg: LinkConfig) -> None:
    sinr = [cfg.table.sinr_threshold_db[10] + 1.5]
    plan, kw = _plan(cfg, sinr, update_bits=3 * 8448)
    times = attempt_times(plan, compute_s=np.zeros(1), deadline_s=np.inf)
    uniforms = np.full(times.shape, 0.999)
    uniforms[0, 1 : 1 + cfg.max_retx + 1] = 0.0  # block 0 decodes, block 1 fails all 4 tries
    out = _send(cfg, plan, kw, np.zeros(1), np.inf, _gain_for_sinr_db(np.array(sinr)), uniforms)
    assert out.status_names() == ["failed"]
    assert out.status[0] == FAILED
    assert not out.arrived[0]
    assert out.arrival_s[0] == np.inf
    assert out.blocks_delivered[0] == 1
    assert out.transmissions[0] == 1 + cfg.max_retx + 1
    assert out.retries[0] == cfg.max_retx
    np.testing.assert_allclose(out.airtime_s, out.transmissions * plan.block_airtime_s)
    np.testing.assert_allclose(out.comm_energy_j, P * out.airtime_s)


@pytest.mark.parametrize("max_retx", [1, 3])
def test_chase_combining_needs_fewer_retries_at_low_sinr(max_retx: int) -> None:
    table = get_table("nr-64qam")
    u, m = 4000, 12
    plain = LinkConfig(table=table, max_retx=max_retx)
    chase = LinkConfig(table=table, max_retx=max_retx, chase_combining=True)
    planned = table.sinr_threshold_db[m] + 1.2
    # the true channel has faded to where one try fails 70% of the time
    true_db = bler_midpoint_db(table)[m] - np.log(0.7 / 0.3) / table.bler_slope_per_db[m]
    assert bler(table, np.array([m]), np.array([true_db]))[0] == pytest.approx(0.7)
    uniforms = np.random.default_rng(7).random((u, 1 + max_retx))
    results = []
    for cfg in (plain, chase):
        plan, kw = _plan(cfg, [planned] * u, update_bits=8448)
        assert np.all(plan.mcs == m)
        gain = np.full(u, _gain_for_sinr_db(np.array(true_db)))
        results.append(_send(cfg, plan, kw, np.zeros(u), np.inf, gain, uniforms))
    no_cc, cc = results
    if max_retx > 1:  # with one retry both make it whenever the first try fails
        assert cc.retries.mean() < no_cc.retries.mean() - 0.3
    assert np.all(cc.retries <= no_cc.retries)  # same uniforms: combining only helps
    assert np.mean(cc.status == FAILED) < np.mean(no_cc.status == FAILED)
    assert np.mean(no_cc.status == FAILED) == pytest.approx(0.7 ** (1 + max_retx), abs=0.03)


def test_deadline_makes_users_late_and_stops_airtime(cfg: LinkConfig) -> None:
    sinr = [cfg.table.sinr_threshold_db[8] + 1.5] * 3
    plan, kw = _plan(cfg, sinr, update_bits=3 * 8448)
    t_block = float(plan.block_airtime_s[0])
    compute = np.array([0.0, 0.0, 0.5 * t_block])
    deadline = 2.5 * t_block
    # user 0 starts 3 blocks before the deadline but ends at 3 t > deadline: late.
    # user 2 starts 2 blocks before the deadline; user 1 is on time with a longer deadline.
    out = _send(cfg, plan, kw, compute, deadline, _gain_for_sinr_db(np.array(sinr)))
    np.testing.assert_array_equal(out.status[[0, 2]], [LATE, LATE])
    assert out.status_names()[0] == "late"
    np.testing.assert_array_equal(out.transmissions[[0, 2]], [3, 2])
    np.testing.assert_allclose(out.airtime_s[[0, 2]], [2.5 * t_block, 2.0 * t_block])
    np.testing.assert_allclose(out.comm_energy_j, P * out.airtime_s)
    assert np.all(np.isinf(out.arrival_s[[0, 2]]))
    on_time = _send(cfg, plan, kw, compute, 3.5 * t_block, _gain_for_sinr_db(np.array(sinr)))
    np.testing.assert_array_equal(on_time.status, [ARRIVED, ARRIVED, ARRIVED])
    assert np.all(on_time.arrival_s <= 3.5 * t_block)


def test_outage_when_no_mcs_fits(cfg: LinkConfig) -> None:
    sinr = [cfg.table.sinr_threshold_db[0] + 0.5, 10.0]  # below the lowest threshold + back-off
    plan, kw = _plan(cfg, sinr, update_bits=20_000)
    assert plan.mcs[0] == -1
    assert (plan.rate_bps[0], plan.spectral_efficiency[0], plan.max_attempts[0]) == (0, 0, 0)
    assert plan.block_airtime_s[0] == np.inf
    assert plan.outage.tolist() == [True, False]
    times = attempt_times(plan, compute_s=np.zeros(2), deadline_s=np.inf)
    assert np.all(np.isnan(times[0]))
    out = _send(cfg, plan, kw, np.zeros(2), np.inf, _gain_for_sinr_db(np.array(sinr)))
    assert out.status[0] == OUTAGE
    assert out.status_names() == ["outage", "arrived"]
    assert (out.airtime_s[0], out.comm_energy_j[0], out.transmissions[0]) == (0, 0, 0)
    assert out.arrival_s[0] == np.inf
    assert np.isnan(out.true_sinr_db_mean[0])


def test_zero_bandwidth_is_outage(cfg: LinkConfig) -> None:
    plan = plan_links(
        cfg,
        power_w=np.array([P, P]),
        bandwidth_hz=np.array([0.0, BW]),
        gain=_gain_for_sinr_db(np.array([20.0, 20.0])),
        noise_psd_w_per_hz=N0,
        update_bits=8448,
    )
    assert plan.planned_sinr_db[0] == -np.inf
    assert plan.mcs[0] == -1
    assert plan.mcs[1] >= 0


def test_attempt_times_shape_and_nan_pattern(cfg: LinkConfig) -> None:
    t = cfg.table
    sinr = [t.sinr_threshold_db[3] + 1.5, t.sinr_threshold_db[20] + 1.5, -20.0]
    plan, _ = _plan(cfg, sinr, update_bits=2 * 8448)  # 2 blocks, up to 8 attempts each
    compute = np.array([0.01, 0.0, 0.0])
    free = attempt_times(plan, compute_s=compute, deadline_s=np.inf)
    assert free.shape == (3, 8)
    tb = plan.block_airtime_s
    np.testing.assert_allclose(free[:2], compute[:2, None] + np.arange(8) * tb[:2, None])
    assert np.all(np.isnan(free[2]))
    # a deadline leaves the attempts that start strictly before it
    deadline = float(compute[0] + 2.5 * tb[0])
    cut = attempt_times(plan, compute_s=compute, deadline_s=deadline)
    n1 = min(8, int(np.ceil(deadline / tb[1])))
    assert cut.shape == (3, max(3, n1))
    np.testing.assert_array_equal(np.sum(~np.isnan(cut), axis=1), [3, n1, 0])
    assert np.all(cut[~np.isnan(cut)] < deadline)
    # nothing fits a deadline before the compute ends
    assert attempt_times(plan, compute_s=compute + 1.0, deadline_s=0.5).shape == (3, 0)


def test_deadline_from_plan(cfg: LinkConfig) -> None:
    t = cfg.table
    plan, _ = _plan(cfg, [t.sinr_threshold_db[4] + 2, t.sinr_threshold_db[9] + 2, -30.0], 20_000)
    compute = np.array([0.2, 0.3, 5.0])
    expect = 1.5 * max(compute[:2] + plan.n_blocks[:2] * plan.block_airtime_s[:2])
    assert deadline_from_plan(plan, compute, 1.5) == pytest.approx(expect)
    all_out, _ = _plan(cfg, [-30.0, -40.0], 20_000)
    assert deadline_from_plan(all_out, np.zeros(2), 1.5) == np.inf
    with pytest.raises(ValueError, match="`factor`"):
        deadline_from_plan(plan, compute, 0.0)


def test_transmit_is_deterministic_and_checks_inputs(cfg: LinkConfig) -> None:
    sinr = [cfg.table.sinr_threshold_db[6] + 1.0] * 5
    plan, kw = _plan(cfg, sinr, update_bits=4 * 8448)
    compute = np.zeros(5)
    times = attempt_times(plan, compute_s=compute, deadline_s=np.inf)
    gain = np.where(np.isnan(times), np.nan, _gain_for_sinr_db(np.array(sinr) - 1.3)[:, None])
    u = np.random.default_rng(3).random(times.shape)
    a = transmit(cfg, plan, compute_s=compute, deadline_s=np.inf, true_gain=gain, uniforms=u, **kw)
    b = transmit(cfg, plan, compute_s=compute, deadline_s=np.inf, true_gain=gain, uniforms=u, **kw)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.airtime_s, b.airtime_s)
    bad = gain.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="`true_gain`"):
        transmit(cfg, plan, compute_s=compute, deadline_s=np.inf, true_gain=bad, uniforms=u, **kw)
    with pytest.raises(ValueError, match="`uniforms`"):
        transmit(
            cfg, plan, compute_s=compute, deadline_s=np.inf, true_gain=gain, uniforms=u[:, :2], **kw
        )


@pytest.mark.parametrize(
    ("field", "value"), [("backoff_db", -1.0), ("tbs_bits", 0), ("max_retx", -1)]
)
def test_link_config_validation(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"`{field}`"):
        LinkConfig(table=get_table("nr-64qam"), **{field: value})  # type: ignore[arg-type]
