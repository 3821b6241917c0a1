"""The interface the round engine calls, for every algorithm."""

from pathlib import Path

import numpy as np
import pytest

from controller.algorithms import (
    Algorithm,
    DRLResourceAllocation,
    Proposed,
    make_algorithm,
)
from controller.allocation.instance import ObjectiveWeights
from controller.allocation.scenario import random_instance
from protocol.spec import ALGORITHMS, AblationSpec, AlgorithmSpec, WeightsSpec

IDS = [f"ue{i}" for i in range(7)]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_make_strategy_builds_every_algorithm(name: str) -> None:
    strat = make_algorithm(AlgorithmSpec(name=name), WeightsSpec(), seed=0)
    assert isinstance(strat, Algorithm)
    assert strat.name == name
    inst = random_instance(np.random.default_rng(0), 5, weights=ObjectiveWeights(beta=0.2))
    alloc = strat.allocate(inst)
    assert alloc.bandwidth_hz.shape == (5,)
    q = strat.aggregation_weights([0.5, 1.0, 2.0, 0.1, 0.3], [100, 200, 300, 400, 500])
    assert q.sum() == pytest.approx(1.0)
    assert np.all(q >= 0)
    strat.observe(-1.0)  # a no-op or an online update, never an error
    assert strat.fedprox_mu == (0.01 if name == "fedprox" else 0.0)


def test_round_robin_cycles_through_everyone() -> None:
    strat = make_algorithm(AlgorithmSpec(name="rrs"), WeightsSpec(), seed=0)
    rng = np.random.default_rng(0)
    seen = [strat.select_clients(t, IDS, 3, rng) for t in range(7)]
    assert seen[0] == ["ue0", "ue1", "ue2"]
    assert seen[1] == ["ue3", "ue4", "ue5"]
    assert seen[2] == ["ue0", "ue1", "ue6"]
    counts = {u: sum(u in s for s in seen) for u in IDS}
    assert set(counts.values()) == {3}


def test_default_selection_is_seeded_and_sized() -> None:
    strat = make_algorithm(AlgorithmSpec(name="fedavg"), WeightsSpec(), seed=0)
    a = strat.select_clients(0, IDS, 4, np.random.default_rng(1))
    b = strat.select_clients(0, IDS, 4, np.random.default_rng(1))
    assert a == b
    assert len(set(a)) == 4
    assert a == sorted(a, key=IDS.index)
    assert strat.select_clients(0, IDS, 99, np.random.default_rng(1)) == IDS
    with pytest.raises(ValueError, match="`k`"):
        strat.select_clients(0, IDS, 0, np.random.default_rng(1))


def test_proposed_uses_fal_and_ablations_switch_modules_off() -> None:
    losses, sizes = [0.1, 0.2, 3.0], [100, 100, 100]
    w = WeightsSpec(**{"lambda": 1.0})
    full = make_algorithm(AlgorithmSpec(), w, seed=0)
    assert isinstance(full, Proposed)
    assert full.power == "drl"
    assert full.csm
    q = full.aggregation_weights(losses, sizes)
    assert q[2] > 1 / 3  # the worst-off client counts more
    no_fal = make_algorithm(AlgorithmSpec(ablation=AblationSpec(no_fal=True)), w, seed=0)
    np.testing.assert_allclose(no_fal.aggregation_weights(losses, sizes), [1 / 3] * 3)
    no_drl = make_algorithm(AlgorithmSpec(ablation=AblationSpec(no_drl=True)), w, seed=0)
    assert isinstance(no_drl, Proposed)
    assert no_drl.power == "convex"
    no_cra = make_algorithm(AlgorithmSpec(ablation=AblationSpec(no_cra=True)), w, seed=0)
    assert isinstance(no_cra, Proposed)
    assert no_cra.bandwidth == "uniform"
    inst = random_instance(np.random.default_rng(0), 4)
    np.testing.assert_allclose(no_cra.allocate(inst).bandwidth_hz, inst.bandwidth_hz / 4)
    no_csm = make_algorithm(AlgorithmSpec(ablation=AblationSpec(no_csm=True)), w, seed=0)
    np.testing.assert_array_equal(no_csm.allocate(inst).freq_hz, inst.f_max_hz)


def test_policy_files_are_loaded_and_checked(tmp_path: Path) -> None:
    proposed = make_algorithm(AlgorithmSpec(), WeightsSpec(), seed=4)
    path = proposed.save_policy(tmp_path / "p.pt")
    assert path is not None
    assert path.is_file()
    again = make_algorithm(AlgorithmSpec(), WeightsSpec(), seed=0, policy_path=path)
    assert isinstance(again, Proposed)
    assert again.policy is not None
    with pytest.raises(ValueError, match="policy_path"):
        make_algorithm(AlgorithmSpec(name="drl_ra"), WeightsSpec(), seed=0, policy_path=path)
    drl_ra = make_algorithm(AlgorithmSpec(name="drl_ra"), WeightsSpec(), seed=0)
    assert isinstance(drl_ra, DRLResourceAllocation)
    assert (
        make_algorithm(AlgorithmSpec(name="jcc"), WeightsSpec(), seed=0).save_policy(
            tmp_path / "none.pt"
        )
        is None
    )
