"""Energy: INA3221 readers against fake sysfs trees, and the model kappa c D f^2 + P T."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from edge_agent.energy import (
    Ina3221Meter,
    ModelEnergyMeter,
    comm_energy_j,
    compute_energy_j,
    compute_seconds,
    describe_power_monitors,
    detect_meter,
    find_ina3221_channels,
)
from protocol.profiles import BUILTIN_PROFILES


def _iio_tree(root: Path, powers_mw: tuple[int, ...] = (5000, 1000, 2000)) -> Path:
    dev = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    dev.mkdir(parents=True)
    for i, (name, mw) in enumerate(
        zip(("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"), powers_mw, strict=False)
    ):
        (dev / f"rail_name_{i}").write_text(name + "\n")
        (dev / f"in_power{i}_input").write_text(f"{mw}\n")
        (dev / f"in_voltage{i}_input").write_text("5000\n")
        (dev / f"in_current{i}_input").write_text(f"{mw // 5}\n")
    return dev


def _hwmon_tree(root: Path) -> Path:
    dev = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    dev.mkdir(parents=True)
    (dev / "name").write_text("ina3221\n")
    for i, (label, mv, ma) in enumerate(
        (("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 400), ("VDD_SOC", 5000, 300)), start=1
    ):
        (dev / f"in{i}_label").write_text(label + "\n")
        (dev / f"in{i}_input").write_text(f"{mv}\n")
        (dev / f"curr{i}_input").write_text(f"{ma}\n")
    return dev


def _write_atomically(path: Path, text: str) -> None:  # sysfs reads never see a half-written value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_model_formula() -> None:
    assert compute_energy_j(1e-27, 1e6, 1000, 1e9) == pytest.approx(1.0)
    assert compute_energy_j(1e-27, 1e6, 1000, 2e9) == pytest.approx(4.0)  # f^2
    assert compute_seconds(1e6, 1000, 1e9) == pytest.approx(1.0)
    assert comm_energy_j(0.2, 3.0) == pytest.approx(0.6)
    meter = ModelEnergyMeter(kappa=1e-27, cycles_per_sample=1e6)
    meter.start()
    reading = meter.stop(samples=2000, f_hz=1e9)
    assert reading.energy_j == pytest.approx(2.0)
    assert reading.source == "model"


def test_iio_layout_channels_and_total_rail(tmp_path: Path) -> None:
    dev = _iio_tree(tmp_path)
    channels = find_ina3221_channels(tmp_path)
    assert [c.label for c in channels] == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert channels[0].read_power_w() == pytest.approx(5.0)
    (dev / "in_power1_input").unlink()  # falls back to V * I
    assert channels[1].read_power_w() == pytest.approx(5.0 * 0.2)
    meter = detect_meter("jetson-nano", tmp_path)
    assert isinstance(meter, Ina3221Meter)
    assert [c.label for c in meter.channels] == ["POM_5V_IN"]
    both = detect_meter("jetson-nano", tmp_path, rails=["POM_5V_GPU", "POM_5V_CPU"])
    assert isinstance(both, Ina3221Meter)
    assert both.read_power_w() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="VDD_GPU"):
        detect_meter("jetson-nano", tmp_path, rails=["VDD_GPU"])


def test_hwmon_layout(tmp_path: Path) -> None:
    _hwmon_tree(tmp_path)
    channels = find_ina3221_channels(tmp_path)
    assert [c.label for c in channels] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert channels[0].read_power_w() == pytest.approx(6.0)
    info = describe_power_monitors(tmp_path)
    assert info[0]["label"] == "VDD_IN"
    assert info[0]["power_w"] == pytest.approx(6.0)


def test_meter_integrates_power_over_the_interval(tmp_path: Path) -> None:
    dev = _iio_tree(tmp_path, powers_mw=(4000, 0, 0))
    meter = detect_meter("jetson-nano", tmp_path, period_s=0.005)
    assert isinstance(meter, Ina3221Meter)
    meter.start()
    time.sleep(0.15)
    reading = meter.stop()
    assert reading.source == "ina3221"
    assert reading.power_samples >= 3
    assert reading.energy_j == pytest.approx(4.0 * reading.seconds, rel=1e-6)

    # power steps from 2 W to 6 W half-way: the energy lies strictly between the two
    _write_atomically(dev / "in_power0_input", "2000\n")
    step = threading.Timer(0.1, lambda: _write_atomically(dev / "in_power0_input", "6000\n"))
    meter.start()
    step.start()
    time.sleep(0.2)
    reading = meter.stop()
    step.join()
    assert 2.0 * reading.seconds < reading.energy_j < 6.0 * reading.seconds

    baseline = Ina3221Meter(meter.channels, period_s=0.005, baseline_w=1.0)
    baseline.start()
    time.sleep(0.05)
    reading = baseline.stop()
    assert reading.energy_j == pytest.approx(5.0 * reading.seconds, rel=1e-6)


def test_detect_meter_falls_back_to_the_model(tmp_path: Path) -> None:
    meter = detect_meter("rpi4", tmp_path)
    assert isinstance(meter, ModelEnergyMeter)
    assert meter.kappa == BUILTIN_PROFILES["rpi4"].kappa
    with pytest.raises(FileNotFoundError, match="ina3221"):
        detect_meter("jetson-nano", tmp_path, kind="ina3221")
