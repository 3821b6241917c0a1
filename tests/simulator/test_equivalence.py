"""Both drivers of the round core give the same rounds (DESIGN section 8).

The networked testbed runs a small experiment with real processes (the AP cluster's GNU Radio
flowgraphs on the simulated source, the controller under uvicorn, four agents); the simulator
then runs the same spec from that run's CSI (its rounds' planning gains and anchor frames) and
the same world as the air. Client selections, plans (P, B, f), MCS choices and link outcomes
must be identical round by round, and accuracies within half a point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator import simulate
from testbed.launcher import run_experiment
from tests.simulator.conftest import small_spec

pytestmark = pytest.mark.slow


def test_networked_and_in_process_drivers_agree(tmp_path: Path) -> None:
    # a modelled deadline shorter than the slower UEs' uploads: the link drops updates
    spec = small_spec(rounds=3, engine={"kind": "processes"}, link={"deadline_s": 0.7})
    summary = run_experiment(spec, tmp_path / "net")
    assert summary["status"] == "completed"
    import json

    net = json.loads((tmp_path / "net" / "rounds.json").read_text())
    sim = simulate(spec, experiment_id="replay", replay=net).rounds
    assert [r["index"] for r in sim] == [r["index"] for r in net] == [0, 1, 2]
    dropouts = arrived = 0
    for a, b in zip(net, sim, strict=True):
        pa, pb = a["allocation"], b["allocation"]
        assert pa["ue_ids"] == pb["ue_ids"] == a["details"]["selected"] == b["details"]["selected"]
        for key in ("power_w", "bandwidth_hz", "freq_hz"):
            np.testing.assert_allclose(pb[key], pa[key], rtol=1e-9, err_msg=key)
        assert pa["mcs_index"] == pb["mcs_index"]
        assert a["details"]["link"]["status"] == b["details"]["link"]["status"]
        assert a["link_dropouts"] == b["link_dropouts"]
        dropouts += a["link_dropouts"]
        arrived += len(a["details"]["contributors"])
        assert sorted(a["details"]["contributors"]) == sorted(b["details"]["contributors"])
        assert abs(a["accuracy"] - b["accuracy"]) <= 0.005
        assert a["model_latency_s"] == pytest.approx(b["model_latency_s"], rel=1e-9)
    assert dropouts > 0
    assert arrived > 0  # the link layer lost some updates, not all of them
