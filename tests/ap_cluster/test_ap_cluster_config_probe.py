"""Cluster file, estimator math, probe and hardware errors: clear messages, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ap_cluster import (
    ClusterConfigError,
    cluster_config_from_spec,
    load_cluster_config,
    mmse_coefficients,
)
from ap_cluster.estimation import estimate_pbeta
from ap_cluster.probe import find_devices, parse_find_devices
from protocol.spec import ExperimentSpec, parse_spec
from testbed.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _spec(backend: str = "sim") -> ExperimentSpec:
    return parse_spec(
        {
            "name": "c",
            "topology": {
                "aps": [{"id": "ap0"}, {"id": "ap1", "host": "10.0.0.7"}],
                "ues": [{"id": "ue0"}, {"id": "ue1"}],
            },
            "backend": {"kind": backend},
            "weights": {"lambda": 0.3},
        }
    )


def test_cluster_config_from_spec_ports_endpoints_and_yaml(tmp_path: Path) -> None:
    cfg = cluster_config_from_spec(_spec(), pub_base_port=5600)
    assert [a.bind for a in cfg.aps] == ["tcp://*:5600", "tcp://*:5601"]
    assert cfg.endpoints() == ["tcp://127.0.0.1:5600", "tcp://10.0.0.7:5601"]
    assert cfg.endpoints_by_ap()["ap1"] == "tcp://10.0.0.7:5601"
    back = load_cluster_config(cfg.dump_yaml(tmp_path / "c.yaml"))
    assert back == cfg
    assert back.spec.weights.lambda_ == 0.3
    plain = tmp_path / "plain.yaml"  # as written with model_dump(mode="json"): no aliases
    plain.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert load_cluster_config(plain) == cfg


def test_cluster_config_errors_name_the_field(tmp_path: Path) -> None:
    data = cluster_config_from_spec(_spec(), pub_base_port=5600).model_dump(mode="json")
    data["aps"][1]["id"] = "ap9"
    data["publish_interval_s"] = -1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterConfigError) as info:
        load_cluster_config(bad)
    assert "publish_interval_s" in str(info.value)
    with pytest.raises(ClusterConfigError, match="cannot read"):
        load_cluster_config(tmp_path / "missing.yaml")


def test_mmse_coefficients_and_pilot_power_estimate() -> None:
    pbeta, k, sigma2, p = np.array([2.0, 1.0, 4.0]), np.array([0, 1, 0]), 0.5, np.full(3, 0.25)
    coef = mmse_coefficients(pbeta, k, sigma2, p, 4)
    # sqrt(p) beta / (tau_p sum p beta + sigma2) = (p beta) / (sqrt(p) (4 * load + 0.5))
    np.testing.assert_allclose(coef, [2.0 / (0.5 * 24.5), 1.0 / (0.5 * 4.5), 4.0 / (0.5 * 24.5)])
    bin_power = 16 * np.array([6.0, 1.0, 0.0, 0.0]) + 4 * sigma2  # E|z|^2 per pilot
    np.testing.assert_allclose(estimate_pbeta(bin_power, k, sigma2, 4), [3.0, 1.0, 3.0])


def test_probe_without_device_is_a_plain_message() -> None:
    res = find_devices()
    assert not res.ok
    assert "no USRP found" in res.message
    out = CliRunner().invoke(app, ["ap", "probe"])
    assert out.exit_code == 1
    assert "no USRP found" in out.output
    assert "Traceback" not in out.output
    assert isinstance(out.exception, SystemExit)
    missing = find_devices(exe="uhd_find_devices_not_installed")
    assert "not installed" in missing.message


def test_parse_find_devices_output() -> None:
    text = """[INFO] [UHD] linux; GNU C++ version 12.2.0
--------------------------------------------------
-- UHD Device 0
--------------------------------------------------
Device Address:
    serial: 3215ABC
    name: MyB210
    product: B210
    type: b200
"""
    assert parse_find_devices(text) == [
        {"serial": "3215ABC", "name": "MyB210", "product": "B210", "type": "b200"}
    ]


def test_uhd_runner_without_device_exits_with_a_clear_error(tmp_path: Path) -> None:
    path = cluster_config_from_spec(_spec("uhd"), pub_base_port=20200).dump_yaml(
        tmp_path / "u.yaml"
    )
    cmd = [sys.executable, "-m", "ap_cluster.runner", "--cluster", str(path), "--ap", "ap0"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert res.returncode == 3
    assert "no usable USRP" in res.stderr
    assert "Traceback" not in res.stderr
    res = subprocess.run(
        [*cmd[:-1], "apX"], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert res.returncode == 4
    assert "unknown AP" in res.stderr
