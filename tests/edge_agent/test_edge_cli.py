"""The agent's two command lines (`testbed-agent` and `testbed agent run`) share one start-up
path; `--profile jetson-nano --dvfs simulated` plays the Jetson's levels on any host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import edge_agent.__main__ as agent_main
from edge_agent.agent import Agent
from edge_agent.dvfs import SimulatedBackend
from edge_agent.settings import AgentSettings
from protocol.profiles import BUILTIN_PROFILES


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The overrides each command hands to the shared ``serve`` (which is not run)."""
    calls: list[dict[str, Any]] = []

    def fake_serve(overrides: dict[str, Any], log_level: str = "info") -> int:
        calls.append(overrides)
        return 0

    monkeypatch.setattr(agent_main, "serve", fake_serve)
    return calls


def _agent(overrides: dict[str, Any], tmp_path: Path) -> Agent:
    settings = AgentSettings(
        _env_file=None, state_dir=tmp_path, dvfs_sysfs_root=tmp_path, **overrides
    )
    return Agent(settings)


def test_testbed_agent_flags(served: list[dict[str, Any]], tmp_path: Path) -> None:
    argv = ["--id", "ue3", "--profile", "jetson-nano", "--dvfs", "simulated"]
    assert agent_main.main([*argv, "--energy-meter", "none"]) == 0
    assert served[-1] == {
        "agent_id": "ue3",
        "profile": "jetson-nano",
        "dvfs": "simulated",
        "energy_meter": "none",
    }
    agent = _agent(served[-1], tmp_path)
    assert isinstance(agent.dvfs, SimulatedBackend)
    assert agent.dvfs.levels_hz() == BUILTIN_PROFILES["jetson-nano"].f_levels_hz
    assert agent.meter is None
    with pytest.raises(SystemExit):
        agent_main.main(["--dvfs", "turbo"])


def test_testbed_agent_run_flags(served: list[dict[str, Any]]) -> None:
    from testbed.commands.agent import app

    args = ["--profile", "jetson-nano", "--dvfs", "simulated", "--energy-meter", "auto"]
    result = CliRunner().invoke(app, [*args, "--id", "ue1"])
    assert result.exit_code == 0, result.output
    assert served[-1] == {
        "agent_id": "ue1",
        "profile": "jetson-nano",
        "dvfs": "simulated",
        "energy_meter": "auto",
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"profile": "nope"}, "profile"),
        ({"dvfs": "turbo"}, "dvfs"),
        ({"energy_meter": "model"}, "energy_meter"),
    ],
)
def test_serve_refuses_bad_settings(
    overrides: dict[str, Any], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agent_main.serve(overrides) == 2
    assert field in capsys.readouterr().err


def test_serve_refuses_a_backend_the_host_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = {"profile": "rpi4", "dvfs": "cpufreq", "state_dir": tmp_path}
    assert agent_main.serve({**overrides, "dvfs_sysfs_root": tmp_path}) == 2
    assert "--dvfs cpufreq" in capsys.readouterr().err
