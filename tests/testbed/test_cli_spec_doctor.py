"""The `testbed` CLI: spec validation and doctor, run as a user would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from protocol.spec import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TESTBED = [sys.executable, "-m", "testbed"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESTBED, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_help_lists_commands() -> None:
    proc = _run("--help")
    assert proc.returncode == 0
    for command in ("doctor", "spec", "bench"):
        assert command in proc.stdout


def test_spec_validate_accepts_examples() -> None:
    proc = _run("spec", "validate", "examples/quickstart.yaml", "examples/lab.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "quickstart.yaml: ok" in proc.stdout
    assert "lab.yaml: ok" in proc.stdout


def test_spec_validate_rejects_with_field_paths(tmp_path: Path) -> None:
    data = load_yaml((ROOT / "examples/quickstart.yaml").read_text())
    data["radio"]["bandwidth_hz"] = -5
    data["radio"]["tau_p"] = 500
    data["dataset"]["partition"] = {"kind": "dirichlet", "alpha": 0}
    data["topology"]["aps"][0]["gain"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    proc = _run("spec", "validate", str(bad))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    for field in (
        "radio.bandwidth_hz",
        "dataset.partition.dirichlet.alpha",
        "topology.aps.0.gain",
    ):
        assert field in proc.stderr


def test_doctor_json_reports_the_stack() -> None:
    proc = _run("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    versions = report["versions"]
    assert versions["gnuradio"].startswith("3.10")
    assert versions["numpy"].startswith("1.")
    assert versions["torch"].startswith("2.13.0")
    for name in ("uhd", "cvxpy", "pyzmq", "cryptography", "fastapi"):
        assert versions[name], name
    assert report["usrp"]["attached"] in (True, False)
    assert isinstance(report["usrp"]["detail"], str)
    assert "policies" in report["dvfs"]["cpufreq"]
    assert report["dvfs"]["suggested_backend"] in ("cpufreq", "jetson", "simulated")
