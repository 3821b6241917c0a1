"""`testbed deploy inventory --from SPEC.yaml`: an Ansible inventory from the hardware section."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from testbed.cli import app

FIXTURE = Path(__file__).with_name("lab_spec.yaml")
EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["deploy", "inventory", *args])


def _ansible_inventory(kit: Any, tmp_path: Path, inventory: Path) -> dict[str, Any]:
    """``ansible-inventory --list``: the inventory as Ansible reads it."""
    proc = subprocess.run(
        [kit.tool("ansible-inventory"), "-i", str(inventory), "--list"],
        cwd=kit.deploy,
        env=kit.env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _members(listing: dict[str, Any], group: str) -> set[str]:
    """Hosts of ``group`` and of its child groups."""
    entry = listing.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= _members(listing, child)
    return hosts


def test_fixture_spec_becomes_an_inventory(kit: Any, tmp_path: Path) -> None:
    spec = tmp_path / "specs" / "lab.yaml"
    spec.parent.mkdir()
    spec.write_text(FIXTURE.read_text())
    out = tmp_path / "inventories" / "lab" / "hosts.yml"
    result = _invoke("--from", str(spec), "--out", str(out), "--controller-host", "ctl.lab")
    assert result.exit_code == 0, result.output
    listing = _ansible_inventory(kit, tmp_path, out)
    hostvars = listing["_meta"]["hostvars"]
    assert _members(listing, "controllers") == {"ctl.lab"}
    assert _members(listing, "ap_hosts") == {"ap-a.lab", "ap-b.lab"}
    assert _members(listing, "rpi4") == {"rpi-0.lab"}
    assert _members(listing, "jetson_nano") == {"nano-0.lab"}
    # The UE without a host is simulated: it is not deployed.
    assert _members(listing, "edge_boards") == {"rpi-0.lab", "nano-0.lab"}
    # AP i of the spec publishes on 5550 + i; two APs share ap-a.lab.
    assert hostvars["ap-a.lab"]["ap_node_aps"] == [
        {"id": "ap0", "zmq_port": 5550},
        {"id": "ap1", "zmq_port": 5551},
    ]
    assert hostvars["ap-b.lab"]["ap_node_aps"] == [{"id": "ap2", "zmq_port": 5552}]
    nano, rpi = hostvars["nano-0.lab"], hostvars["rpi-0.lab"]
    assert (rpi["edge_agent_id"], rpi["edge_agent_profile"]) == ("rpi0", "rpi4")
    assert (nano["edge_agent_id"], nano["edge_agent_profile"]) == ("nano0", "jetson-nano")
    assert nano["ansible_python_interpreter"] == "/usr/bin/python3.8"
    assert rpi["ansible_python_interpreter"] == "/usr/bin/python3"
    assert rpi["edge_agent_controller_url"] == "http://ctl.lab:8080"
    assert hostvars["ctl.lab"]["controller_port"] == 8080
    assert rpi["edge_agent_enrol_token"] == "{{ vault_enrol_token }}"
    # In one tree, the spec is named relative to the inventory (as the ap_node role reads it).
    ref = hostvars["ap-a.lab"]["ap_node_spec_file"]
    assert ref == "{{ inventory_dir }}/../../specs/lab.yaml"
    assert "written by" in out.read_text().splitlines()[1]


def test_generated_groups_are_the_playbooks_groups(kit: Any, tmp_path: Path) -> None:
    out = tmp_path / "hosts.yml"
    assert _invoke("--from", str(FIXTURE), "--out", str(out)).exit_code == 0
    proc = subprocess.run(
        [kit.tool("ansible-playbook"), "-i", str(out), "--list-hosts", "site.yml"],
        cwd=kit.deploy,
        env=kit.env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed: dict[str, set[str]] = {}
    pattern = None
    for line in proc.stdout.splitlines():
        words = line.split()
        if line.lstrip().startswith("play #"):
            pattern = words[2].strip("():")
            listed[pattern] = set()
        elif pattern and len(words) == 1 and not line.lstrip().startswith("hosts ("):
            listed[pattern].add(words[0])
    assert listed == {
        "controllers": {"controller"},
        "ap_hosts": {"ap-a.lab", "ap-b.lab"},
        "jetson_nano": {"nano-0.lab"},
        "edge_boards": {"rpi-0.lab", "nano-0.lab"},
    }


@pytest.mark.skipif(not EXAMPLE_SPEC.exists(), reason="examples/lab.yaml is not in this checkout")
def test_example_lab_matches_the_example_inventory(kit: Any, tmp_path: Path) -> None:
    """deploy/inventories/example is what the command writes for examples/lab.yaml."""
    out = tmp_path / "hosts.yml"
    args = ("--from", str(EXAMPLE_SPEC), "--out", str(out), "--controller-host", "controller.lab")
    assert _invoke(*args).exit_code == 0
    generated = _ansible_inventory(kit, tmp_path, out)
    example = _ansible_inventory(kit, tmp_path, kit.example_inventory / "hosts.yml")
    for group in ("controllers", "ap_hosts", "edge_boards", "rpi4", "jetson_nano"):
        assert _members(generated, group) == _members(example, group), group
    keys = ("ap_node_aps", "edge_agent_id", "edge_agent_profile", "ansible_python_interpreter")
    for host, gen_vars in generated["_meta"]["hostvars"].items():
        ex_vars = example["_meta"]["hostvars"][host]
        for key in keys:
            assert gen_vars.get(key) == ex_vars.get(key), (host, key)


def test_stdout_names_the_spec_by_absolute_path() -> None:
    result = _invoke("--from", str(FIXTURE))
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    ap_vars = data["all"]["children"]["ap_hosts"]["vars"]
    assert ap_vars["ap_node_spec_file"] == str(FIXTURE.resolve())


def _spec_with(tmp_path: Path, **topology: Any) -> Path:
    spec = yaml.safe_load(FIXTURE.read_text())
    spec["topology"].update(topology)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_board_runs_one_agent(tmp_path: Path) -> None:
    ues = [
        {"id": "u0", "profile": "rpi4", "host": "rpi.lab"},
        {"id": "u1", "profile": "rpi4", "host": "rpi.lab"},
    ]
    result = _invoke("--from", str(_spec_with(tmp_path, ues=ues)))
    assert result.exit_code == 1
    assert "topology.ues.1.host: `rpi.lab` already runs topology.ues.0" in result.output


def test_custom_profiles_cannot_be_deployed(tmp_path: Path) -> None:
    spec = yaml.safe_load(FIXTURE.read_text())
    spec["device_profiles"] = {
        "pi5": {
            "name": "pi5",
            "f_levels_hz": [1.0e9, 2.4e9],
            "kappa": 1e-28,
            "idle_power_w": 2.5,
            "cycles_per_sample": 1e6,
            "p_max_w": 0.1,
        }
    }
    spec["topology"]["ues"] = [{"id": "u0", "profile": "pi5", "host": "pi5.lab"}]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = _invoke("--from", str(path))
    assert result.exit_code == 1
    assert "topology.ues.0.profile: `pi5` has no agent backend" in result.output


def test_a_spec_without_hosts_is_refused(tmp_path: Path) -> None:
    aps = [{"id": "ap0"}]
    ues = [{"id": "u0", "profile": "rpi4"}]
    result = _invoke("--from", str(_spec_with(tmp_path, aps=aps, ues=ues)))
    assert result.exit_code == 1
    assert "no AP or UE names a `host`" in result.output


def test_an_invalid_spec_reports_its_fields(tmp_path: Path) -> None:
    result = _invoke("--from", str(_spec_with(tmp_path, aps=[{"id": "ap0", "antennas": 0}])))
    assert result.exit_code == 1
    assert "topology.aps.0.antennas" in result.output
