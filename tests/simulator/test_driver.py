"""The in-process driver: the networked run's outputs, secure aggregation, CSI that matters."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from protocol.spec import parse_spec
from simulator import simulate
from testbed.cli import app
from testbed.results import METRIC_COLUMNS
from tests.simulator.conftest import small_spec


def test_testbed_run_engine_sim_writes_the_networked_outputs(tmp_path: Path) -> None:
    spec = small_spec(secure=True)
    spec_file = tmp_path / "spec.yaml"
    data = spec.model_dump(mode="json", by_alias=True)
    data["engine"] = {"kind": "processes"}  # the command line picks the simulator
    spec_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(spec_file), "--engine", "sim", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "metrics.csv").open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == METRIC_COLUMNS
    assert [int(r[0]) for r in rows[1:]] == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "sim"
    assert summary["backend"] == "local"
    assert summary["secure_aggregation"] is True
    assert summary["aggregation"].startswith("secure")
    assert summary["channel"] == "exact"
    for plot in summary["plots"]:
        assert (out / plot).stat().st_size > 0
    rounds = json.loads((out / "rounds.json").read_text())
    for r in rounds:
        link = r["details"]["link"]
        arrived = [u for u, s in zip(link["ue_ids"], link["status"], strict=True) if s == "arrived"]
        sa = r["details"]["secagg"]
        assert sa["clients"] == 4
        assert sa["contributors"] == len(arrived)
        assert sorted(r["details"]["contributors"]) == sorted(arrived)
        assert r["link_dropouts"] == 4 - len(arrived)
        assert r["model_latency_s"] > 0
        assert r["accuracy"] is not None


def test_secure_and_plain_aggregation_agree() -> None:
    """The protocol's sum is the plain sum to its fixed-point precision (2^-16 per client)."""
    plain = simulate(small_spec(rounds=1), experiment_id="plain")
    secure = simulate(small_spec(secure=True, rounds=1), experiment_id="secure")
    assert secure.secure
    assert not plain.secure
    a, b = plain.rounds[0], secure.rounds[0]
    assert a["details"]["link"] == b["details"]["link"]
    assert np.abs(plain.model - secure.model).max() < 1e-3
    assert abs(a["accuracy"] - b["accuracy"]) <= 0.005


def test_large_rounds_aggregate_in_the_clear_and_say_so() -> None:
    from simulator import aggregation_note

    spec = small_spec(secure=True, engine={"kind": "sim", "secagg_max_clients": 3})
    assert aggregation_note(spec).startswith("plain: 4 clients per round exceed")
    result = simulate(
        spec.model_copy(update={"fl": spec.fl.model_copy(update={"rounds": 1})}),
        experiment_id="big",
    )
    assert not result.secure
    assert "secagg" not in result.rounds[0]["details"]


def test_the_csi_changes_the_plan() -> None:
    """A UE the CSI says is 30 dB weaker gets another bandwidth, MCS or outage."""
    from simulator.radio import ReplayRadio

    spec = small_spec(rounds=1)
    base = simulate(spec, experiment_id="base").rounds
    weak = json.loads(json.dumps(base))
    alloc = weak[0]["allocation"]
    alloc["gain"][0] *= 1e-3
    again = simulate(spec, experiment_id="replay", replay=base).rounds
    changed = simulate(spec, experiment_id="weak", replay=weak).rounds
    assert again[0]["allocation"] == base[0]["allocation"]  # the replay is faithful
    a, b = again[0]["allocation"], changed[0]["allocation"]
    assert a["bandwidth_hz"][0] != b["bandwidth_hz"][0] or a["mcs_index"][0] != b["mcs_index"][0]
    assert isinstance(ReplayRadio(spec, base).csi(0, 0.0, ["ue1"])[0], np.ndarray)


def test_engine_shorthand_and_errors_name_the_field() -> None:
    spec = small_spec(engine="sim")
    assert spec.engine.kind == "sim"
    assert spec.engine.backend == "local"
    import pytest

    from protocol.spec import SpecError

    data = spec.model_dump(mode="json", by_alias=True)
    data["engine"] = {"kind": "sim", "backend": "mpi"}
    with pytest.raises(SpecError, match=r"engine\.backend"):
        parse_spec(data)
