"""The agent's train stage: it reports what it measures (wall time, the frequency the DVFS backend
applied, INA3221 energy where a meter exists) and plays its UE's device profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.agent import Agent
from edge_agent.dvfs import SimulatedBackend
from edge_agent.models import build_model, parameters_to_vector
from edge_agent.settings import AgentSettings
from protocol import tensorfile
from protocol.profiles import BUILTIN_PROFILES
from protocol.rounds import EvalTask, PrepareTask, Task, TrainReport, TrainTask

_INPUT_RAIL_W = 5.0
_JETSON_1132_MHZ = 1132.8e6  # the Jetson Nano level above 1.05 GHz (1036.8 MHz is below)


class _Data:
    name = "mnist"

    def __init__(self, n: int = 48) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        self.y = rng.integers(0, 10, n)

    def __len__(self) -> int:
        return len(self.y)


def _ina3221_tree(root: Path, input_mw: int = 5000) -> None:
    """An L4T 32 (Jetson Nano) INA3221: POM_5V_IN draws ``input_mw``."""
    dev = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    dev.mkdir(parents=True)
    for i, (name, mw) in enumerate((("POM_5V_IN", input_mw), ("POM_5V_GPU", 0), ("POM_5V_CPU", 0))):
        (dev / f"rail_name_{i}").write_text(name + "\n")
        (dev / f"in_power{i}_input").write_text(f"{mw}\n")


def _agent(tmp_path: Path, **settings: Any) -> Agent:
    """An agent that trains on random data from a seeded global model, with no controller."""
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir(exist_ok=True)
    opts: dict[str, Any] = {
        "agent_id": "ue0",
        "state_dir": tmp_path / "state",
        "dvfs_sysfs_root": sysfs,
    }
    opts.update(settings)
    agent = Agent(AgentSettings(_env_file=None, **opts))
    data = _Data()
    agent._local_data = lambda *_: data  # type: ignore[method-assign]
    w_global = parameters_to_vector(build_model("mnist_cnn", seed=0))
    agent._model_vector = lambda *_: w_global  # type: ignore[method-assign]
    return agent


def _task(freq_hz: float = 1.05e9, profile: str | None = None) -> Task:
    train = TrainTask(
        ue_id="ue0",
        client_index=0,
        n_clients=1,
        model_version=0,
        model_name="mnist_cnn",
        dataset={"name": "mnist"},
        seed=0,
        local_epochs=1,
        batch_size=16,
        learning_rate=0.05,
        momentum=0.0,
        freq_hz=freq_hz,
        power_w=0.1,
        bandwidth_hz=1e6,
        comm_latency_s=0.5,
        secure_aggregation=False,
        profile=profile,
    )
    return Task(experiment_id="e", round=0, stage="train", train=train, model_name="mnist_cnn")


def _train(agent: Agent, task: Task) -> TrainReport:
    body, content_type = agent._train(task)
    assert content_type == "application/json"
    return TrainReport.model_validate_json(body)


def test_ina3221_energy_is_reported_as_measured(tmp_path: Path) -> None:
    _ina3221_tree(tmp_path / "sysfs")
    agent = _agent(tmp_path, profile="jetson-nano", dvfs="simulated")
    report = _train(agent, _task())
    assert report.meter == "ina3221"
    assert report.measured_energy_j is not None
    assert report.measured_energy_j > 0
    # a constant 5 W rail over an interval that holds the SGD loop
    assert report.measured_energy_j >= _INPUT_RAIL_W * report.train_s * (1 - 1e-6)
    assert report.train_s > 0
    assert report.samples == 48


def test_without_a_meter_no_energy_is_reported(tmp_path: Path) -> None:
    report = _train(_agent(tmp_path, profile="rpi4", dvfs="simulated"), _task())
    assert report.measured_energy_j is None
    assert report.meter == "none"
    assert "energy_j" not in report.model_dump()


def test_energy_meter_none_ignores_the_ina3221(tmp_path: Path) -> None:
    _ina3221_tree(tmp_path / "sysfs")
    agent = _agent(tmp_path, profile="jetson-nano", dvfs="simulated", energy_meter="none")
    assert agent.meter is None
    report = _train(agent, _task())
    assert (report.measured_energy_j, report.meter) == (None, "none")


def test_freq_applied_is_the_level_the_backend_set(tmp_path: Path) -> None:
    agent = _agent(tmp_path, profile="rpi4", dvfs="simulated")
    assert isinstance(agent.dvfs, SimulatedBackend)
    report = _train(agent, _task(freq_hz=1.05e9))
    assert report.freq_applied_hz == pytest.approx(1.1e9)  # rounded up to the next 100 MHz
    assert agent.dvfs.history == [report.freq_applied_hz]
    report = _train(agent, _task(freq_hz=9e9))
    assert report.freq_applied_hz == pytest.approx(1.5e9)  # capped at the top level


def test_jetson_profile_on_a_simulated_backend_has_the_jetson_levels(tmp_path: Path) -> None:
    agent = _agent(tmp_path, profile="jetson-nano", dvfs="simulated")
    assert isinstance(agent.dvfs, SimulatedBackend)
    assert agent.profile.name == "jetson-nano"
    assert agent.dvfs.levels_hz() == BUILTIN_PROFILES["jetson-nano"].f_levels_hz
    report = _train(agent, _task(freq_hz=1.05e9))
    assert report.freq_applied_hz == pytest.approx(_JETSON_1132_MHZ)


def test_a_sim_agent_plays_the_profile_the_task_names(tmp_path: Path) -> None:
    agent = _agent(tmp_path)  # profile sim, dvfs auto: simulated with the rpi4 levels
    assert isinstance(agent.dvfs, SimulatedBackend)
    assert agent.dvfs.levels_hz()[-1] == pytest.approx(1.5e9)
    report = _train(agent, _task(freq_hz=1.05e9, profile="jetson-nano"))
    assert agent.profile.name == "jetson-nano"
    assert report.freq_applied_hz == pytest.approx(_JETSON_1132_MHZ)
    report = _train(agent, _task(freq_hz=1.05e9, profile="no-such-board"))
    assert report.freq_applied_hz == pytest.approx(_JETSON_1132_MHZ)  # kept, with a warning


def test_a_board_agent_keeps_its_own_profile(tmp_path: Path) -> None:
    agent = _agent(tmp_path, profile="rpi4", dvfs="simulated")
    report = _train(agent, _task(freq_hz=1.05e9, profile="jetson-nano"))
    assert agent.profile.name == "rpi4"
    assert report.freq_applied_hz == pytest.approx(1.1e9)


def test_custom_profiles_resolve_from_settings(tmp_path: Path) -> None:
    custom = BUILTIN_PROFILES["rpi4"].model_copy(
        update={"name": "slowbox", "f_levels_hz": [0.4e9, 0.8e9]}
    )
    agent = _agent(tmp_path, profile="slowbox", device_profiles={"slowbox": custom})
    assert agent.profile.name == "slowbox"
    assert agent.dvfs.levels_hz() == [0.4e9, 0.8e9]  # no cpufreq in the fake tree: simulated
    assert _train(agent, _task(freq_hz=0.5e9)).freq_applied_hz == pytest.approx(0.8e9)

    sim = _agent(tmp_path, device_profiles={"slowbox": custom})
    assert _train(sim, _task(freq_hz=0.5e9, profile="slowbox")).freq_applied_hz == 0.8e9


def test_settings_reject_unknown_profile_backend_and_meter() -> None:
    with pytest.raises(ValidationError, match="unknown device profile `nope`"):
        AgentSettings(_env_file=None, profile="nope")
    with pytest.raises(ValidationError, match="dvfs"):
        AgentSettings(_env_file=None, dvfs="turbo")
    with pytest.raises(ValidationError, match="energy_meter"):
        AgentSettings(_env_file=None, energy_meter="model")
    s = AgentSettings(_env_file=None)
    assert (s.profile, s.dvfs, s.energy_meter) == ("sim", "auto", "auto")
    assert s.device_profile().name == "rpi4"


def test_scoring_beside_the_sgd_loop_reports_what_scoring_before_it_does(
    tmp_path: Path,
) -> None:
    """The global model's test score and loss before training, computed in a thread beside the
    SGD loop (the default) or before it, are the same numbers, and so is the update: scoring
    draws nothing from the RNG the loop's dropout uses."""
    evaluate = EvalTask(
        model_version=0,
        shard_index=0,
        n_shards=1,
        client_index=0,
        n_clients=1,
        dataset={"name": "mnist"},
    )
    task = _task().model_copy(update={"evaluate": evaluate})
    results = []
    for overlap in (True, False):
        agent = _agent(tmp_path, dvfs="simulated", overlap_evaluation=overlap)
        test = _Data(n=40)
        test.x = test.x[::-1].copy()
        agent._test_shard = lambda *_, shard=test: shard  # type: ignore[method-assign]
        report = _train(agent, task)
        assert agent._round is not None
        results.append((report, agent._round.delta))
    (beside, delta_beside), (before, delta_before) = results
    assert beside.evaluation is not None
    assert beside.evaluation == before.evaluation
    assert beside.evaluation.total == 40
    assert np.isfinite(beside.loss)
    assert beside.loss == before.loss == beside.evaluation.train_loss
    np.testing.assert_array_equal(delta_beside, delta_before)


def test_init_loads_the_local_data_the_first_train_task_uses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ``init`` stage loads the UE's MNIST partition, so the first round's train stage
    finds it cached; data that cannot load is logged and the initial model still goes."""
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir()
    agent = Agent(
        AgentSettings(_env_file=None, agent_id="ue1", state_dir=tmp_path, dvfs_sysfs_root=sysfs)
    )
    dataset = {"name": "mnist", "samples_per_client": 120}
    prepare = PrepareTask(client_index=1, n_clients=6, dataset=dataset, seed=3)
    init = Task(experiment_id="e", stage="init", model_name="mnist_cnn", seed=3, prepare=prepare)
    body, _ = agent._init(init)
    tensors, order, _ = tensorfile.decode(body)
    assert order
    assert all(np.isfinite(tensors[k]).all() for k in order)
    loaded = agent._data.train
    assert len(loaded) == 120
    assert agent._local_data(dataset, 1, 6, 3) is loaded  # the train stage's call: a cache hit

    bad = prepare.model_copy(update={"dataset": {"name": "mnist", "path": "no-such-folder"}})
    body_again, _ = agent._init(init.model_copy(update={"prepare": bad}))
    assert body_again == body
    assert "could not load the local data" in caplog.text
