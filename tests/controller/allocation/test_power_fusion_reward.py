import numpy as np
import pytest

from controller.allocation.fusion import fuse, project_bandwidth, project_power
from controller.allocation.instance import ObjectiveWeights
from controller.allocation.pipeline import BandwidthMode, allocate_for_power
from controller.allocation.power import MIN_POWER_FRACTION, convex_power, least_power
from controller.allocation.scenario import random_instance
from controller.allocation.system_model import comm_latency
from controller.round.reward import round_reward


@pytest.mark.parametrize("bandwidth", ["uniform", "exact"])
def test_convex_power_never_loses_to_full_power(bandwidth: BandwidthMode) -> None:
    for seed in range(3):
        inst = random_instance(
            np.random.default_rng(seed),
            6,
            weights=ObjectiveWeights(beta=1.0, gamma=0.1),
            gain_db=(-100.0, -80.0),
            update_bits=2e7,
        )
        full = allocate_for_power(inst, inst.p_max_w, bandwidth=bandwidth)
        conv = convex_power(inst, bandwidth=bandwidth)
        assert conv.objective <= full.objective * (1 + 1e-12)
    assert conv.objective < full.objective  # strong channels: lower power saves energy
    assert np.all(conv.power_w >= MIN_POWER_FRACTION * inst.p_max_w)


def test_least_power_inverts_the_rate() -> None:
    inst = random_instance(np.random.default_rng(0), 5)
    b = np.full(5, 2e6)
    tau = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    p = least_power(inst, b, tau)
    np.testing.assert_allclose(comm_latency(b, inst.snr_bandwidth_hz(p), inst.update_bits), tau)


def test_projection_and_fusion_are_feasible() -> None:
    inst = random_instance(np.random.default_rng(1), 4)
    p = project_power(inst, np.array([-1.0, np.nan, 10.0, 0.1]))
    assert np.all(p > 0)
    assert np.all(p <= inst.p_max_w)
    assert p[1] == inst.p_max_w[1]
    assert p[2] == inst.p_max_w[2]
    b = project_bandwidth(inst, np.array([0.0, -3.0, 1.0, np.inf]))
    assert np.all(b > 0)
    assert b.sum() == pytest.approx(inst.bandwidth_hz)
    alloc = fuse(inst, np.array([0.05, 0.1, 0.2, 0.3]))
    assert alloc.bandwidth_hz.sum() <= inst.bandwidth_hz * (1 + 1e-12)
    assert alloc.power_w.max() <= inst.p_max_w.max()
    with pytest.raises(ValueError, match="bandwidth_hz"):
        fuse(inst, inst.p_max_w, resolve=None)
    with pytest.raises(ValueError, match="power_w"):
        project_power(inst, np.ones(3))


def test_reward_is_the_design_formula() -> None:
    w = ObjectiveWeights(alpha=2.0, beta=0.5, gamma=0.1)
    r = round_reward(w, accuracy=0.9, energy_j=np.array([1.0, 2.0]), latency_s=np.array([3.0, 4.0]))
    assert r == pytest.approx(2.0 * 0.9 - 0.5 * 3.0 - 0.1 * 7.0)
    with pytest.raises(ValueError, match="accuracy"):
        round_reward(w, accuracy=1.5, energy_j=np.ones(1), latency_s=np.ones(1))
