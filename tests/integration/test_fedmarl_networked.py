"""``mode: fedmarl`` across real processes: the AP cluster (GNU Radio on the sim source), the
controller under uvicorn and three agents federate their DRQN edge policies with secure
aggregation on.

Every round is the FL round with the agents' networks as the model: CRA plans the upload of
each network's change, the link decides which arrive, SecAgg+ sums them. The test replays the
agents' own learning here (the same players, seeded the same, round after round) and checks
that every committed network is the previous one plus exactly the weighted mean of the changes
that arrived, and that the rounds carry the environment's evaluation. The in-process simulator
then runs the same spec from the run's CSI (``engine: sim``): the same selections, plans, link
outcomes and evaluations round by round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.marl import MarlPlayer
from protocol import tensorfile
from protocol.spec import ExperimentSpec, parse_spec
from simulator import simulate
from tests.integration.conftest import run_networked

ROUNDS = 3

pytestmark = pytest.mark.slow


def _spec() -> ExperimentSpec:
    return parse_spec(
        {
            "name": "fedmarl-net",
            "seed": 5,
            "mode": "fedmarl",
            "fedmarl": {"slots": 60, "episodes_per_round": 2, "eval_episodes": 1},
            "topology": {
                "area_m": 300,
                "aps": [{"id": "ap0", "antennas": 2}],
                "ues": [
                    {"id": f"ue{i}", "profile": ("rpi4", "jetson-nano")[i % 2]} for i in range(3)
                ],
            },
            "radio": {"tau_p": 4, "tau_c": 100, "sample_rate_hz": 2e5, "snr_override_db": 25},
            "fl": {"rounds": ROUNDS, "round_deadline_s": 40},
            "algorithm": {"name": "fedavg"},
            "secure_aggregation": {"enabled": True, "threshold": 2},
        }
    )


def _replay(spec: ExperimentSpec, workdir: Path, eid: str, rounds: list[dict[str, Any]]) -> None:
    """Each committed network = previous + sum_u q_u delta_u / sum q_u over the arrived."""
    import torch

    torch.set_num_threads(1)  # as the agents: one thread, the same reduction order
    ues = spec.topology.ues
    cfg = spec.fedmarl.model_dump(mode="json")
    profiles = [u.profile for u in ues]
    players = {u.id: MarlPlayer(cfg, i, len(ues), profiles, spec.seed) for i, u in enumerate(ues)}
    models = workdir / "controller" / "models" / eid
    tensors, order, _ = tensorfile.decode((models / "v0.safetensors").read_bytes())
    first = last = tensorfile.flatten(tensors, order).astype(np.float64)
    version = 0
    for r in rounds:
        tensors, order, _ = tensorfile.decode((models / f"v{version}.safetensors").read_bytes())
        flat = tensorfile.flatten(tensors, order)
        deltas = {u: players[u].train(flat, r["index"]).delta for u in r["details"]["survivors"]}
        if not r["updated"]:
            continue
        q, contributors = r["details"]["weights"], r["details"]["contributors"]
        total = sum(q[u] for u in contributors)
        expected = flat.astype(np.float64)
        for u in contributors:
            expected += q[u] * deltas[u].astype(np.float64) / total
        got, _, _ = tensorfile.decode((models / f"v{version + 1}.safetensors").read_bytes())
        # Secure aggregation rounds each coordinate to 2^-16 (fixed point): exact up to that.
        np.testing.assert_allclose(tensorfile.flatten(got, order), expected, atol=1e-4)
        version += 1
        last = expected
    assert version == len(rounds)
    # Learning starts once a replay holds 16 sequences (round 1 here): the networks moved.
    assert np.abs(last - first).max() > 1e-3


def test_agents_federate_their_drqns_through_the_round(tmp_path: Path) -> None:
    spec = _spec()
    workdir = tmp_path / "run"
    eid, rounds = run_networked(spec, workdir)
    assert len(rounds) == ROUNDS
    assert all(r["updated"] for r in rounds)
    for r in rounds:
        marl = r["details"]["model_fedmarl"]
        assert r["accuracy"] == pytest.approx(marl["success_rate"])
        assert 0.0 <= marl["success_rate"] <= 1.0
        assert marl["agents"] == 3
        assert marl["bits_per_joule"] > 0
        assert r["model_latency_s"] > 0  # the upload of the network was planned and sent
    _replay(spec, workdir, eid, rounds)
    in_process = parse_spec({**spec.model_dump(mode="json"), "engine": {"kind": "sim"}})
    _same_rounds(rounds, simulate(in_process, experiment_id=eid, replay=rounds).rounds)


def _same_rounds(net: list[dict[str, Any]], sim: list[dict[str, Any]]) -> None:
    """The simulator's rounds are the networked ones: plans, link, learning, evaluation."""
    assert [r["index"] for r in sim] == [r["index"] for r in net]
    for a, b in zip(net, sim, strict=True):
        pa, pb = a["allocation"], b["allocation"]
        assert pa["ue_ids"] == pb["ue_ids"]
        for key in ("power_w", "bandwidth_hz", "freq_hz"):
            np.testing.assert_allclose(pb[key], pa[key], rtol=1e-9, err_msg=key)
        assert pa["mcs_index"] == pb["mcs_index"]
        assert a["details"]["link"]["status"] == b["details"]["link"]["status"]
        assert sorted(a["details"]["contributors"]) == sorted(b["details"]["contributors"])
        # the agents' TD losses: the same learning from networks equal to 2^-16 (SecAgg's grid)
        for u, loss in a["details"]["losses"].items():
            assert b["details"]["losses"][u] == pytest.approx(loss, rel=1e-4, abs=1e-7)
        assert b["details"]["evaluated_by"] == a["details"]["evaluated_by"]
        assert b["accuracy"] == pytest.approx(a["accuracy"], abs=0.02)
        ma, mb = a["details"]["model_fedmarl"], b["details"]["model_fedmarl"]
        assert mb["agents"] == ma["agents"]
        assert mb["success_rate"] == pytest.approx(ma["success_rate"], abs=0.02)
