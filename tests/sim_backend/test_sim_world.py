"""The simulated world: statistics against theory, and one world across processes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from protocol.spec import ExperimentSpec, parse_spec
from sim_backend import (
    CSIOnlySimulator,
    IQGenerator,
    World,
    assign_pilots,
    bessel_j0,
    nmse_theory,
    path_loss_db,
    thermal_noise_w,
)
from sim_backend.fading import GaussMarkovFading, ShadowingField
from sim_backend.geometry import RandomWaypoint, distances_3d


def _spec(n_aps: int = 4, n_ues: int = 6, seed: int = 3, **radio: Any) -> ExperimentSpec:
    return parse_spec(
        {
            "name": "t",
            "seed": seed,
            "topology": {
                "aps": [{"id": f"ap{i}"} for i in range(n_aps)],
                "ues": [{"id": f"ue{i}", "speed_mps": 20.0} for i in range(n_ues)],
            },
            "radio": {"tau_p": 4, **radio},
        }
    )


def test_same_world_in_two_independent_simulators() -> None:
    spec = _spec()
    a, b = World(spec), World(_spec())
    np.testing.assert_array_equal(a.pilot_index, b.pilot_index)
    for frame in (0, 1234, 40_000):
        np.testing.assert_array_equal(a.ue_positions(frame), b.ue_positions(frame))
        np.testing.assert_array_equal(a.large_scale(frame), b.large_scale(frame))
    # b only ever simulates AP 2, in another order and chunking: same values as a.
    g_a = a.small_scale(2, 0, 700)
    late = b.small_scale(2, 300, 400)
    early = b.small_scale(2, 0, 300)
    np.testing.assert_array_equal(g_a, np.concatenate([early, late]))
    np.testing.assert_array_equal(a.large_scale(9, [2]), b.large_scale(9)[:, [2]])
    blk_a, blk_b = IQGenerator(a, 1).block(3), IQGenerator(b, 1).block(3)
    np.testing.assert_array_equal(blk_a.samples, blk_b.samples)
    np.testing.assert_array_equal(blk_a.h, blk_b.h)
    other = World(_spec(seed=4))
    assert not np.array_equal(other.small_scale(2, 0, 10), g_a[:10])


def test_a_fading_cache_changes_no_value_and_holds_what_it_may() -> None:
    rho = np.full(3, 0.99)
    plain = GaussMarkovFading(seed=2, ap=1, n_ues=3, n_ant=2, rho=rho, block=16)
    per_block = 16 * 3 * 2 * 16  # B of one complex128 block
    cached = GaussMarkovFading(
        seed=2, ap=1, n_ues=3, n_ant=2, rho=rho, block=16, cache_bytes=4 * per_block
    )
    want = plain.frames(0, 200)
    for start, count in ((150, 30), (0, 200), (40, 10), (190, 10), (41, 9)):
        np.testing.assert_array_equal(cached.frames(start, count), want[start : start + count])
    assert len(cached._cache) == 4  # the four most recent blocks, no more
    assert len(plain._cache) == 1
    with pytest.raises(ValueError, match="cache_bytes"):
        GaussMarkovFading(seed=2, ap=1, n_ues=3, n_ant=2, rho=rho, cache_bytes=-1)


def test_rayleigh_power_and_jakes_time_correlation() -> None:
    rho = np.full(40, bessel_j0(2 * math.pi * 200.0 * 2e-4))  # f_D = 200 Hz, T = 0.2 ms
    g = GaussMarkovFading(seed=1, ap=0, n_ues=40, n_ant=2, rho=rho, block=128).frames(0, 3000)
    assert np.mean(np.abs(g) ** 2) == pytest.approx(1.0, abs=0.05)
    for lag in (1, 5):
        corr = np.mean(g[lag:] * np.conj(g[:-lag])).real / np.mean(np.abs(g) ** 2)
        assert corr == pytest.approx(rho[0] ** lag, abs=0.03)
    assert bessel_j0(1.0) == pytest.approx(0.7651976866, abs=1e-9)
    assert bessel_j0(2.404825557695773) == pytest.approx(0.0, abs=1e-9)
    world = World(_spec())
    fd = 20.0 * 3.5e9 / 299_792_458.0
    assert world.rho[0] == pytest.approx(bessel_j0(2 * math.pi * fd * 200 / 1e6))


def test_shadowing_std_and_spatial_correlation() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1000, (40, 2))
    step = np.array([9.0, 0.0])  # 2^(-9/9) = 0.5 at 9 m
    f0, f1, far = [], [], []
    for ap in range(300):
        field = ShadowingField(seed=7, ap=ap)
        f0.append(field(x))
        f1.append(field(x + step))
        far.append(field(x + np.array([300.0, 0.0])))
    a, b, c = (np.concatenate(v) for v in (f0, f1, far))
    assert np.mean(a) == pytest.approx(0.0, abs=0.15)
    assert np.std(a) == pytest.approx(4.0, rel=0.04)
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(0.5, abs=0.04)
    assert abs(np.corrcoef(a, c)[0, 1]) < 0.05


def test_path_loss_noise_and_wrap_around_distance() -> None:
    assert path_loss_db(np.array([100.0]))[0] == pytest.approx(-30.5 - 73.4)
    assert 10 * math.log10(thermal_noise_w(20e6, 7.0)) + 30 == pytest.approx(-93.99, abs=0.01)
    ue, ap = np.array([[5.0, 500.0]]), np.array([[995.0, 500.0]])
    d = distances_3d(ue, ap, area_m=1000.0, height_m=10.0, wrap=True)
    assert d[0, 0] == pytest.approx(math.hypot(10.0, 10.0))
    d = distances_3d(ue, ap, area_m=1000.0, height_m=10.0, wrap=False)
    assert d[0, 0] == pytest.approx(math.hypot(990.0, 10.0))


def test_random_waypoint_moves_at_speed_inside_the_area() -> None:
    rwp = RandomWaypoint(
        seed=2,
        start_m=np.array([[100.0, 100.0], [np.nan, np.nan]]),
        speed_mps=np.array([5.0, 0.0]),
        area_m=500.0,
    )
    p = np.array([rwp.positions(t) for t in np.arange(0, 2000, 0.5)])
    assert np.all((p >= 0) & (p <= 500))
    np.testing.assert_array_equal(p[0, 0], [100.0, 100.0])
    step = np.linalg.norm(np.diff(p[:, 0], axis=0), axis=1)
    assert step.max() <= 2.5 + 1e-9
    assert np.median(step) == pytest.approx(2.5)
    assert np.ptp(p[:, 1], axis=0).max() == 0.0  # speed 0 stays put


def test_pilot_assignment_orthogonal_then_least_interference() -> None:
    beta = np.array([[1.0, 0.1], [0.1, 1.0], [0.9, 0.2], [0.05, 0.8]])
    np.testing.assert_array_equal(assign_pilots(beta[:2], 4), [0, 1])
    # UE 2's master AP is 0, where pilot 1 (UE 1: 0.1) interferes least; UE 3's master is AP 1,
    # where pilot 0 carries 0.1 and pilot 1 carries 1.0 + 0.2: it joins pilot 0.
    np.testing.assert_array_equal(assign_pilots(beta, 2), [0, 1, 1, 0])
    world = World(_spec(n_ues=7))
    assert sorted(set(world.pilot_index.tolist())) == [0, 1, 2, 3]


def test_csi_only_mode_matches_theory_with_contamination() -> None:
    spec = _spec(n_aps=3, n_ues=6, snr_override_db=0.0)
    world = World(spec, rho_override=0.0)
    batch = CSIOnlySimulator(world).frames(0, 3000)
    cfg = world.cfg
    pbeta = cfg.pilot_power_w * world.large_scale(0, [0])[:, 0]
    th_ls, th_mmse = nmse_theory(pbeta, world.pilot_index, cfg.noise_var_w, cfg.tau_p)
    ls = np.mean(np.abs(batch.ls - batch.h) ** 2, axis=(0, 1, 3)) / batch.beta.mean(axis=(0, 1))
    mmse = np.mean(np.abs(batch.mmse - batch.h) ** 2, axis=(0, 1, 3)) / batch.beta.mean(axis=(0, 1))
    np.testing.assert_allclose(ls, th_ls, rtol=0.08)
    np.testing.assert_allclose(mmse, th_mmse, rtol=0.08)
    assert th_ls.max() > 1.0 > th_ls.min()  # UEs 4, 5 share a pilot: contamination


def test_iq_frames_carry_pilot_power_then_noise() -> None:
    spec = _spec(n_aps=1, n_ues=3, snr_override_db=10.0)
    world = World(spec, rho_override=0.0)
    fb = IQGenerator(world, 0).frames(600)
    cfg = world.cfg
    y = fb.samples.reshape(2, 600, cfg.tau_c)
    sigma2 = cfg.noise_var_w
    assert np.mean(np.abs(y[:, :, cfg.tau_p :]) ** 2) == pytest.approx(sigma2, rel=0.02)
    pilot_power = np.mean(np.abs(y[:, :, : cfg.tau_p]) ** 2)
    assert pilot_power == pytest.approx(sigma2 * (1 + 3 * 10.0), rel=0.06)
    assert fb.h.shape == (600, 3, 2)
    assert fb.beta.shape == (600, 3)
