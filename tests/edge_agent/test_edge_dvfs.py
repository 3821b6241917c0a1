"""DVFS backends against a fake sysfs tree built in tmp_path."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from edge_agent.dvfs import (
    CpufreqBackend,
    DVFSMissingError,
    DVFSPermissionError,
    JetsonBackend,
    SimulatedBackend,
    describe_host,
    detect_backend,
    round_up_to_level,
)
from edge_agent.dvfs import base as dvfs_base
from edge_agent.dvfs import cpufreq as cpufreq_mod
from edge_agent.dvfs import detect as detect_mod

_RPI_KHZ = list(range(600000, 1500001, 100000))


def _policy(
    root: Path,
    n: int = 0,
    levels: list[int] = _RPI_KHZ,
    governors: str = "ondemand performance powersave userspace",
) -> Path:
    pol = root / "sys/devices/system/cpu/cpufreq" / f"policy{n}"
    pol.mkdir(parents=True)
    files = {
        "scaling_available_frequencies": " ".join(map(str, levels)) + " ",
        "scaling_available_governors": governors,
        "scaling_governor": "ondemand",
        "scaling_setspeed": "<unsupported>",
        "scaling_min_freq": str(levels[0]),
        "scaling_max_freq": str(levels[-1]),
        "scaling_cur_freq": str(levels[-1]),
        "cpuinfo_min_freq": str(levels[0]),
        "cpuinfo_max_freq": str(levels[-1]),
        "affected_cpus": "0 1 2 3",
        "scaling_driver": "cpufreq-dt",
    }
    for name, text in files.items():
        (pol / name).write_text(text + "\n")
    return pol


def _read(path: Path) -> str:
    return path.read_text().strip()


def test_round_up_to_level() -> None:
    levels = [1.0e9, 1.5e9]
    assert round_up_to_level(1.2e9, levels) == 1.5e9
    assert round_up_to_level(1.0e9, levels) == 1.0e9
    assert round_up_to_level(0.1e9, levels) == 1.0e9
    assert round_up_to_level(9e9, levels) == 1.5e9


def test_userspace_governor_setspeed_rounded_up_and_restored(tmp_path: Path) -> None:
    pol = _policy(tmp_path)
    with CpufreqBackend(tmp_path) as backend:
        assert backend.levels_hz()[0] == 600e6
        assert backend.levels_hz()[-1] == 1500e6
        assert _read(pol / "scaling_governor") == "ondemand"  # nothing written yet
        assert backend.set_frequency(1.05e9) == 1.1e9
        assert _read(pol / "scaling_governor") == "userspace"
        assert _read(pol / "scaling_setspeed") == "1100000"
        assert backend.set_frequency(3e9) == 1.5e9
        assert _read(pol / "scaling_setspeed") == "1500000"
        assert backend.current_hz() == 1.5e9
    assert _read(pol / "scaling_governor") == "ondemand"
    assert _read(pol / "scaling_min_freq") == "600000"
    assert _read(pol / "scaling_max_freq") == "1500000"


def test_bounds_fallback_without_userspace_and_kernel_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pol = _policy(tmp_path, governors="ondemand performance schedutil")
    real_write = cpufreq_mod.write_text

    def kernel_like_write(path: Path, value: str) -> None:  # min > max is refused
        real_write(path, value)
        if int(_read(pol / "scaling_min_freq")) > int(_read(pol / "scaling_max_freq")):
            raise AssertionError(f"min above max after writing {value} to {path.name}")

    monkeypatch.setattr(cpufreq_mod, "write_text", kernel_like_write)
    backend = CpufreqBackend(tmp_path)
    with backend:
        assert backend.set_frequency(750e6) == 800e6
        assert _read(pol / "scaling_min_freq") == _read(pol / "scaling_max_freq") == "800000"
        assert backend.set_frequency(1.45e9) == 1.5e9  # upward move
        assert backend.set_frequency(0.6e9) == 0.6e9  # downward move
        assert _read(pol / "scaling_governor") == "ondemand"
    assert _read(pol / "scaling_min_freq") == "600000"
    assert _read(pol / "scaling_max_freq") == "1500000"


def test_every_policy_is_driven_with_its_own_levels(tmp_path: Path) -> None:
    p0 = _policy(tmp_path, 0, levels=[500000, 1000000, 1400000])
    p4 = _policy(tmp_path, 4, levels=[700000, 1200000, 2000000])
    with CpufreqBackend(tmp_path) as backend:
        assert backend.set_frequency(0.9e9) == 1.0e9
        assert _read(p0 / "scaling_setspeed") == "1000000"
        assert _read(p4 / "scaling_setspeed") == "1200000"
    assert _read(p0 / "scaling_governor") == _read(p4 / "scaling_governor") == "ondemand"


def test_permission_error_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pol = _policy(tmp_path)

    def refuse(path: Path, mode: str = "r", *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(dvfs_base, "open", refuse, raising=False)
    backend = CpufreqBackend(tmp_path)
    with pytest.raises(DVFSPermissionError, match=re.escape(str(pol / "scaling_governor"))) as info:
        backend.set_frequency(1e9)
    assert isinstance(info.value, PermissionError)


def test_missing_file_and_missing_tree_are_named(tmp_path: Path) -> None:
    pol = _policy(tmp_path, governors="ondemand")
    (pol / "scaling_max_freq").unlink()
    with pytest.raises(DVFSMissingError, match="scaling_max_freq"):
        CpufreqBackend(tmp_path).set_frequency(1e9)
    empty = tmp_path / "empty"
    with pytest.raises(DVFSMissingError, match="no cpufreq policy under"):
        CpufreqBackend(empty)


def _jetson_tree(root: Path) -> tuple[Path, Path, Path]:
    levels = [102000, 307200, 614400, 921600, 1224000, 1479000]
    _policy(root, 0, levels=levels)
    gpu = root / "sys/devices/gpu.0/devfreq/57000000.gpu"
    gpu.mkdir(parents=True)
    hz = [76800000, 153600000, 307200000, 537600000, 768000000, 921600000]
    for name, text in {
        "available_frequencies": " ".join(map(str, hz)),
        "min_freq": "76800000",
        "max_freq": "921600000",
        "cur_freq": "76800000",
        "governor": "nvhost_podgov",
    }.items():
        (gpu / name).write_text(text + "\n")
    state = root / "nvpmodel.state"
    state.write_text("0")
    stub = root / "nvpmodel"
    stub.write_text(
        "#!/bin/sh\n"
        f'STATE="{state}"\n'
        'if [ "$1" = "-q" ]; then m=$(cat "$STATE");'
        ' if [ "$m" = 0 ]; then echo "NV Power Mode: MAXN"; else echo "NV Power Mode: 5W"; fi;'
        ' echo "$m"; exit 0; fi\n'
        'if [ "$1" = "-m" ]; then echo "$2" > "$STATE"; exit 0; fi\n'
        "exit 2\n"
    )
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return gpu, stub, state


def test_jetson_nvpmodel_gpu_devfreq_and_restore(tmp_path: Path) -> None:
    gpu, stub, state = _jetson_tree(tmp_path)
    backend = JetsonBackend(tmp_path, nvpmodel_path=str(stub), modes={"10W": 0, "5W": 1})
    with backend:
        assert backend.power_mode() == ("MAXN", 0)
        assert backend.set_power_mode("5W") == 1
        assert _read(state) == "1"
        assert backend.set_gpu_frequency(500e6) == 537.6e6
        assert _read(gpu / "min_freq") == _read(gpu / "max_freq") == "537600000"
        assert backend.set_frequency(1.0e9) == 1.2240e9
    assert _read(state) == "0"
    assert _read(gpu / "min_freq") == "76800000"
    assert _read(gpu / "max_freq") == "921600000"
    policy = tmp_path / "sys/devices/system/cpu/cpufreq/policy0"
    assert _read(policy / "scaling_governor") == "ondemand"


def test_detect_backend_choices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(detect_backend("sim", tmp_path), SimulatedBackend)
    fallback = detect_backend("rpi4", tmp_path / "nothing")
    assert isinstance(fallback, SimulatedBackend)
    assert fallback.levels_hz()[-1] == 1.5e9
    with pytest.raises(DVFSMissingError):
        detect_backend("rpi4", tmp_path / "nothing", kind="cpufreq")
    rpi = tmp_path / "rpi"
    _policy(rpi)
    assert type(detect_backend("rpi4", rpi)) is CpufreqBackend
    jet = tmp_path / "jet"
    _, stub, _ = _jetson_tree(jet)
    backend = detect_backend("jetson-nano", jet, nvpmodel_path=str(stub))
    assert isinstance(backend, JetsonBackend)
    assert backend.modes == {"10W": 0, "5W": 1}
    monkeypatch.setattr(detect_mod.os, "access", lambda path, mode: False)
    assert isinstance(detect_backend("rpi4", rpi), SimulatedBackend)
    with pytest.raises(DVFSPermissionError, match="scaling_governor"):
        detect_backend("rpi4", rpi, kind="cpufreq")


def test_simulated_backend_rounds_up_and_restores() -> None:
    sim = SimulatedBackend([1.5e9, 0.6e9, 1.0e9])
    with sim:
        assert sim.set_frequency(0.7e9) == 1.0e9
        assert sim.current_hz() == 1.0e9
    assert sim.current_hz() == 1.5e9
    assert sim.history == [1.0e9]


def test_describe_host_is_json_and_complete(tmp_path: Path) -> None:
    _, stub, _ = _jetson_tree(tmp_path)
    info = describe_host(tmp_path, nvpmodel_path=str(stub))
    json.dumps(info)
    (pol,) = info["cpufreq"]["policies"]
    assert pol["governor"] == "ondemand"
    assert "userspace" in pol["available_governors"]
    assert pol["available_frequencies_hz"][-1] == 1479000e3
    assert info["nvpmodel"]["mode"] == {"name": "MAXN", "id": 0}
    assert info["gpu_devfreq"]["available_frequencies_hz"][0] == 76.8e6
    assert info["suggested_backend"] == "jetson"
    bare = describe_host(tmp_path / "none", nvpmodel_path=str(tmp_path / "no-such-nvpmodel"))
    assert bare["suggested_backend"] == "simulated"
    assert bare["cpufreq"]["policies"] == []
    assert bare["nvpmodel"]["present"] is False
    assert bare["nvpmodel"]["mode"] is None
