"""``mode: fedmarl`` in the simulator: the agents' DRQNs federated through the round core.

Every selected agent learns each round, whether or not the radio carries its network's change;
each committed network is the previous one plus the weighted mean of the changes that arrived
(replayed here with the agents' own players); the round's accuracy is the evaluation's task
success rate, scored by the next round's agents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge_agent.marl import MarlPlayer
from protocol.spec import ExperimentSpec, parse_spec
from simulator import simulate


def _spec(**changes: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "name": "fedmarl-sim",
        "seed": 3,
        "mode": "fedmarl",
        "fedmarl": {"slots": 60, "episodes_per_round": 2, "eval_episodes": 1},
        "topology": {
            "area_m": 600,
            "aps": [{"id": "ap0", "antennas": 2}],
            "ues": [{"id": f"ue{i}", "profile": ("rpi4", "jetson-nano")[i % 2]} for i in range(4)],
        },
        "radio": {"bandwidth_hz": 2.0e6, "sample_rate_hz": 1.0e6, "tau_p": 8, "tau_c": 200},
        "fl": {"rounds": 4},
        "algorithm": {"name": "fedavg"},
        "secure_aggregation": {"enabled": True, "threshold": 3},
        "engine": {"kind": "sim"},
    }
    data.update(changes)
    return parse_spec(data, source="test")


def _replay(spec: ExperimentSpec, rounds: list[dict[str, Any]], first: np.ndarray) -> np.ndarray:
    """Each round: every selected agent learns from the network; the committed one adds the
    weighted mean of the changes that arrived. The last network."""
    ues = spec.topology.ues
    cfg = spec.fedmarl.model_dump(mode="json")
    profiles = [u.profile for u in ues]
    players = {u.id: MarlPlayer(cfg, i, len(ues), profiles, spec.seed) for i, u in enumerate(ues)}
    flat = first.astype(np.float32)
    for r in rounds:
        learnt = {u: players[u].train(flat, r["index"]) for u in r["details"]["selected"]}
        for u, result in learnt.items():
            assert r["details"]["losses"][u] == pytest.approx(result.loss, rel=1e-4, abs=1e-7)
        if not r["updated"]:
            continue
        q, contributors = r["details"]["weights"], r["details"]["contributors"]
        total = sum(q[u] for u in contributors)
        expected = flat.astype(np.float64)
        for u in contributors:
            expected += q[u] * learnt[u].delta.astype(np.float64) / total
        flat = expected.astype(np.float32)
    return flat


def test_the_agents_learn_and_federate_their_networks_in_process() -> None:
    from simulator.marl import MarlBackend

    # a deadline that the slower uploads miss: the radio drops some changes, not all
    spec = _spec(link={"deadline_s": 1.5}, secure_aggregation={"enabled": False})
    first = MarlBackend(spec).initial
    result = simulate(spec, experiment_id="fedmarl-sim-test")
    rounds = result.rounds
    assert [r["index"] for r in rounds] == [0, 1, 2, 3]
    assert sum(r["link_dropouts"] for r in rounds) > 0
    assert sum(len(r["details"]["contributors"]) for r in rounds) > 0
    last = _replay(spec, rounds, first)
    np.testing.assert_allclose(result.model, last, atol=1e-5)
    assert np.abs(last - first).max() > 1e-3  # learning started (16 sequences in a replay)
    for r, after in zip(rounds, [*rounds[1:], None], strict=True):
        marl = r["details"]["model_fedmarl"]
        assert r["accuracy"] == pytest.approx(marl["success_rate"])
        assert 0.0 <= marl["success_rate"] <= 1.0
        assert marl["bits_per_joule"] > 0
        # scored by the agents of the next round, the last round by all of them
        names = [u.id for u in spec.topology.ues] if after is None else after["details"]["selected"]
        assert r["details"]["evaluated_by"] == sorted(names)


def test_secure_aggregation_sums_the_changes_that_arrived() -> None:
    spec = _spec(link={"deadline_s": 1.5}, fl={"rounds": 3})
    rounds = simulate(spec, experiment_id="fedmarl-sim-secure").rounds
    assert sum(r["link_dropouts"] for r in rounds) > 0
    for r in rounds:
        assert r["updated"]
        assert r["details"]["secagg"]["contributors"] == len(r["details"]["contributors"]) >= 3


def test_fedmarl_refuses_ray_and_the_evaluation_rejects_bad_places() -> None:
    spec = _spec()
    with pytest.raises(ValueError, match="`backend`: mode fedmarl's agents learn in this process"):
        simulate(spec, experiment_id="x", backend="ray")
    player = MarlPlayer(spec.fedmarl.model_dump(mode="json"), 0, 4, ["rpi4"] * 4, 3)
    with pytest.raises(ValueError, match="`places` must lie in"):
        player.evaluate_places(np.zeros(1, dtype=np.float32), 0, [4])


def test_one_run_reports_every_place_as_its_own_agent_would() -> None:
    spec = _spec()
    cfg = spec.fedmarl.model_dump(mode="json")
    from simulator.marl import MarlBackend

    vector = MarlBackend(spec).initial
    profiles = [u.profile for u in spec.topology.ues]
    players = [MarlPlayer(cfg, i, 4, profiles, spec.seed) for i in range(4)]
    joint = players[0].evaluate_places(vector, 7, [0, 1, 2, 3])
    for i, p in enumerate(players):
        own = p.evaluate(vector, 7)
        assert own.keys() == joint[i].keys()
        for key, value in own.items():
            assert joint[i][key] == pytest.approx(value, nan_ok=True), key
