"""Converge test: apply the real roles to this machine, each host staged under a prefix.

Four inventory hosts, all ``ansible_connection: local``, run ``converge.yml`` (each host applies
its class's role, all at once): the controller, an AP host, a Raspberry Pi 4 and a Jetson Nano
board. The inventory has the groups of deploy/ (the controller derives its CSI endpoints from
``ap_hosts``) and takes its tokens from the example vault. Each role writes into its own throw-away
root under ``tmp_path`` (``*_root``, DESTDIR-like), creates a real virtual environment there
and installs a wheel of the working tree into it (``--no-deps``), but installs no OS packages,
creates no users and starts nothing. The test then checks that:

- the rendered unit files pass ``systemd-analyze verify --root`` (which also checks that each
  ``ExecStart``/``ExecStartPre`` binary exists inside the root);
- the environment files, cluster.yaml, udev/sudoers/sysctl files say what the inventory said,
  including the tokens decrypted from the example vault;
- the DVFS helper really grants group write access on a fake sysfs tree;
- a second run reports ``changed=0`` on every host.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
# The roles refuse to run a service as root: as root, stage for the `daemon` system account.
USER = "daemon" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
GROUP = "daemon" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name
CONTROLLER_URL = "http://192.0.2.10:8123"
AP_HOST_ADDRESS = "192.0.2.21"
SPEC = Path(__file__).with_name("lab_spec.yaml")
# ap0 on the base port (the first AP of this host), ap1 on a port of its own.
APS = [{"id": "ap0"}, {"id": "ap1", "zmq_port": 5600}]


class _VaultYAML(yaml.SafeLoader):
    """Reads ``!vault`` values as their ciphertext."""


def _vault_ciphertext(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_VaultYAML.add_constructor("!vault", _vault_ciphertext)


def _vault_secrets(kit: Any) -> dict[str, str]:
    """The example vault's secrets, decrypted with the demo password."""
    from ansible.parsing.vault import VaultLib, VaultSecret  # type: ignore[import-untyped]

    password = kit.demo_vault_password.read_bytes().strip()
    vault = VaultLib([("default", VaultSecret(password))])
    data = yaml.load(kit.vault_file.read_text(), Loader=_VaultYAML)
    return {key: vault.decrypt(text).decode() for key, text in data.items()}


def _host_vars(root: Path, wheel: Path, prefix: str) -> dict[str, Any]:
    """What every staged host needs: its root, no system changes, the wheel, no CLI check."""
    return {
        "converge_role": prefix,  # each role's variables carry its name as their prefix
        f"{prefix}_root": str(root),
        f"{prefix}_manage_packages": False,
        f"{prefix}_create_user": False,
        f"{prefix}_manage_services": False,
        f"{prefix}_user": USER,
        f"{prefix}_group": GROUP,
        f"{prefix}_wheel": str(wheel),
        f"{prefix}_pip_extra_args": "--no-deps --no-index",
        f"{prefix}_verify_cli": False,
    }


def _inventory(tmp: Path, wheel: Path, images: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """The test inventory (deploy/'s groups, all hosts local) and each host's staging root."""
    roots = {name: tmp / "roots" / name for name in ("controller", "ap", "rpi4", "jetson")}

    def edge(name: str, profile: str, ue: str) -> dict[str, Any]:
        return {
            **_host_vars(roots[name], wheel, "edge_agent"),
            "edge_agent_python": "/usr/bin/python3",
            "edge_agent_pip_bootstrap": [],
            "edge_agent_profile": profile,
            "edge_agent_id": ue,
            "edge_agent_data_dir": "/srv/testbed/data",
            "edge_agent_controller_url": CONTROLLER_URL,
            "edge_agent_extra_env": {"TESTBED_AGENT_HEARTBEAT_S": 3},
        }

    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "/usr/bin/python3",
                "controller_token": "{{ vault_controller_token }}",
                "controller_enrol_token": "{{ vault_enrol_token }}",
                "edge_agent_enrol_token": "{{ vault_enrol_token }}",
            },
            "children": {
                "controllers": {
                    "hosts": {
                        "controller-test": {
                            **_host_vars(roots["controller"], wheel, "controller"),
                            "controller_listen_host": "127.0.0.1",
                            "controller_port": 8123,
                            "controller_grafana_enabled": True,
                            "controller_grafana_prometheus_url": "http://prometheus.lab:9090",
                        }
                    }
                },
                "ap_hosts": {
                    "hosts": {
                        "ap-test": {
                            **_host_vars(roots["ap"], wheel, "ap_node"),
                            "ansible_host": AP_HOST_ADDRESS,
                            "ap_node_spec_file": str(SPEC),
                            "ap_node_aps": APS,
                            "ap_node_cluster_options": {"estimator": "ls"},
                            "ap_node_uhd_images_source": "copy",
                            "ap_node_uhd_images_src": str(images),
                            "ap_node_uhd_images_dir": "/srv/uhd/images",
                        }
                    }
                },
                # The Jetson host is not in `jetson_nano`: that group's bootstrap play would run
                # apt-get on this machine. Its profile exercises the role's Jetson paths.
                "edge_boards": {
                    "hosts": {"jetson-test": edge("jetson", "jetson-nano", "ue5")},
                    "children": {"rpi4": {"hosts": {"rpi4-test": edge("rpi4", "rpi4", "ue1")}}},
                },
            },
        }
    }, roots


_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)


def _play(kit: Any, tmp: Path, inventory: Path) -> dict[str, dict[str, int]]:
    """Run converge.yml; return the PLAY RECAP counts per host (fail with the log's tail)."""
    cmd = [
        kit.tool("ansible-playbook"),
        "-i",
        str(inventory),
        "--vault-password-file",
        str(kit.demo_vault_password),
        "-e",
        f"@{kit.vault_file}",
        str(Path(__file__).with_name("converge.yml")),
    ]
    env = kit.env(tmp)
    proc = subprocess.run(cmd, cwd=kit.deploy, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        pytest.fail(f"ansible-playbook rc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr}")
    recap = proc.stdout.split("PLAY RECAP", 1)[-1]
    return {
        m["host"]: {k: int(v) for k, v in (kv.split("=") for kv in m["counts"].split())}
        for m in _RECAP.finditer(recap)
    }


def _changed_tasks(kit: Any, tmp: Path, inventory: Path) -> dict[str, int]:
    return {host: counts["changed"] for host, counts in _play(kit, tmp, inventory).items()}


def _env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines, single quotes removed as systemd's EnvironmentFile= removes them."""
    lines = path.read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key: value[1:-1] if value[:1] == value[-1:] == "'" else value for key, value in pairs}


def _unit(path: Path) -> dict[str, str]:
    """The ``Key=value`` lines of a unit file (last one wins), without section names."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out[key] = value
    return out


def _verify_unit(root: Path, unit: str) -> None:
    """``systemd-analyze verify --root``: no errors and no warnings about our unit."""
    if SYSTEMD_ANALYZE is None or not SYSTEM_UNITS.is_dir():
        pytest.fail("systemd-analyze and /usr/lib/systemd/system are needed to verify the units")
    target = root / "usr" / "lib" / "systemd" / "system"
    if not target.exists():
        shutil.copytree(SYSTEM_UNITS, target, symlinks=False, ignore_dangling_symlinks=True)
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    ours = [line for line in proc.stderr.splitlines() if unit in line or str(root) in line]
    assert proc.returncode == 0, proc.stderr
    assert not ours, ours


@pytest.fixture(scope="module")
def converged(
    kit: Any, tmp_path_factory: pytest.TempPathFactory, project_wheel: Path
) -> dict[str, Any]:
    """Run the playbooks twice; return the roots, the vault secrets and each run's changes."""
    tmp = tmp_path_factory.mktemp("converge")
    images = tmp / "lab-images"
    images.mkdir()
    (images / "usrp_b210_fpga.bin").write_bytes(b"\x00fake fpga image")
    (images / "usrp_b200_fw.hex").write_text(":00000001FF\n")
    inventory_data, roots = _inventory(tmp, project_wheel, images)
    inventory = tmp / "hosts.yml"
    inventory.write_text(yaml.safe_dump(inventory_data, sort_keys=False))
    first = _changed_tasks(kit, tmp, inventory)
    second = _changed_tasks(kit, tmp, inventory)
    return {"roots": roots, "secrets": _vault_secrets(kit), "first": first, "second": second}


def test_first_run_changes_every_host(converged: dict[str, Any]) -> None:
    assert set(converged["first"]) == {"controller-test", "ap-test", "rpi4-test", "jetson-test"}
    assert all(n > 0 for n in converged["first"].values()), converged["first"]


def test_second_run_changes_nothing(converged: dict[str, Any]) -> None:
    assert converged["second"] == dict.fromkeys(converged["first"], 0)


def test_nothing_is_written_outside_the_roots(converged: dict[str, Any]) -> None:
    assert converged["first"], "the playbook ran"
    for path in ("/etc/testbed", "/opt/testbed", "/etc/systemd/system/testbed-agent.service"):
        assert not Path(path).exists(), f"{path} was written on this machine"


@pytest.mark.parametrize(
    ("host", "unit"),
    [
        ("controller", "testbed-controller.service"),
        ("ap", "testbed-ap.service"),
        ("rpi4", "testbed-agent.service"),
        ("jetson", "testbed-agent.service"),
    ],
)
def test_units_are_valid(converged: dict[str, Any], host: str, unit: str) -> None:
    root = converged["roots"][host]
    assert (root / "etc" / "systemd" / "system" / unit).is_file()
    _verify_unit(root, unit)


def test_controller_configuration_matches_the_inventory(converged: dict[str, Any]) -> None:
    root, secrets = converged["roots"]["controller"], converged["secrets"]
    env_path = root / "etc" / "testbed" / "controller.env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o640
    env = _env_file(env_path)
    assert env == {
        "TESTBED_CONTROLLER_HOST": "127.0.0.1",
        "TESTBED_CONTROLLER_PORT": "8123",
        "TESTBED_CONTROLLER_TOKEN": secrets["vault_controller_token"],
        "TESTBED_CONTROLLER_ENROL_TOKEN": secrets["vault_enrol_token"],
        "TESTBED_CONTROLLER_DATABASE_URL": "sqlite:////var/lib/testbed-controller/controller.db",
        "TESTBED_CONTROLLER_DATA_DIR": "/var/lib/testbed-controller/models",
        # Derived from the ap_hosts group: the `connect` endpoints of the AP host's cluster.yaml.
        "TESTBED_CONTROLLER_CSI_ENDPOINTS": json.dumps(
            [f"tcp://{AP_HOST_ADDRESS}:5550", f"tcp://{AP_HOST_ADDRESS}:5600"]
        ),
    }
    unit = _unit(root / "etc" / "systemd" / "system" / "testbed-controller.service")
    assert unit["ExecStart"] == (
        "/opt/testbed/venv/bin/testbed controller serve --host 127.0.0.1 --port 8123"
    )
    assert unit["EnvironmentFile"] == "/etc/testbed/controller.env"
    assert unit["User"] == USER
    assert (root / "var" / "lib" / "testbed-controller" / "models").is_dir()
    assert (root / "opt" / "testbed" / "venv" / "bin" / "testbed").is_file()
    # Grafana: the dashboard (the one whose queries tests/integration/test_live.py checks)
    # and the data source pointing at the inventory's Prometheus.
    board = root / "var" / "lib" / "grafana" / "dashboards" / "testbed-controller.json"
    shipped = Path(__file__).resolve().parents[2] / "deploy/roles/controller/files"
    assert board.read_bytes() == (shipped / "grafana-dashboard.json").read_bytes()
    provisioning = root / "etc" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "testbed.yaml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus.lab:9090"
    folder = yaml.safe_load((provisioning / "dashboards" / "testbed.yaml").read_text())
    assert folder["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


@pytest.mark.parametrize(
    ("host", "profile", "ue"), [("rpi4", "rpi4", "ue1"), ("jetson", "jetson-nano", "ue5")]
)
def test_agent_configuration_matches_the_inventory(
    converged: dict[str, Any], host: str, profile: str, ue: str
) -> None:
    root, secrets = converged["roots"][host], converged["secrets"]
    env_path = root / "etc" / "testbed" / "agent.env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o640
    assert _env_file(env_path) == {
        "TESTBED_AGENT_CONTROLLER_URL": CONTROLLER_URL,
        "TESTBED_AGENT_ENROL_TOKEN": secrets["vault_enrol_token"],
        "TESTBED_AGENT_PROFILE": profile,
        "TESTBED_AGENT_STATE_DIR": "/var/lib/testbed-agent",
        "TESTBED_AGENT_DVFS_SYSFS_ROOT": "/",
        "TESTBED_AGENT_TORCH_THREADS": "4",
        "TESTBED_AGENT_AGENT_ID": ue,
        "TESTBED_AGENT_DATA_DIR": "/srv/testbed/data",
        "TESTBED_AGENT_HEARTBEAT_S": "3",
    }
    unit = _unit(root / "etc" / "systemd" / "system" / "testbed-agent.service")
    assert unit["ExecStart"] == (
        f"/opt/testbed/venv/bin/testbed-agent --controller {CONTROLLER_URL} --profile {profile}"
    )
    assert unit["ExecStartPre"] == "+/usr/local/libexec/testbed-dvfs-permissions"
    assert unit["User"] == USER
    # sudo (nvpmodel on the Jetson) needs set-uid; elsewhere the agent gets no new privileges.
    assert unit["NoNewPrivileges"] == ("no" if profile == "jetson-nano" else "yes")
    sudoers = root / "etc" / "sudoers.d" / "testbed-nvpmodel"
    wrapper = root / "opt" / "testbed" / "bin" / "nvpmodel"
    if profile == "jetson-nano":
        assert stat.S_IMODE(sudoers.stat().st_mode) == 0o440
        rule = sudoers.read_text()
        assert f"%{GROUP} ALL=(root) NOPASSWD: /usr/sbin/nvpmodel -q, " in rule
        assert rule.rstrip().endswith("/usr/sbin/nvpmodel -m 0, /usr/sbin/nvpmodel -m 1")
        # The agent runs the first nvpmodel on its PATH: the wrapper, which goes through sudo.
        assert unit["Environment"].startswith("PATH=/opt/testbed/bin:")
        assert unit["ReadWritePaths"] == "-/run/sudo -/var/lib/sudo"
        assert 'exec sudo -n /usr/sbin/nvpmodel "$@"' in wrapper.read_text()
        assert os.access(wrapper, os.X_OK)
    else:
        assert not sudoers.exists()
        assert not wrapper.exists()
    rules = (root / "etc" / "udev" / "rules.d" / "90-testbed-dvfs.rules").read_text()
    assert 'SUBSYSTEM=="cpu", RUN+="/usr/local/libexec/testbed-dvfs-permissions"' in rules


def _fake_sysfs(prefix: Path) -> dict[str, Path]:
    """``PREFIX/sys`` with one cpufreq policy and the Nano's GPU devfreq, files mode 0644."""
    policy = prefix / "sys" / "devices" / "system" / "cpu" / "cpufreq" / "policy0"
    gpu = prefix / "sys" / "devices" / "57000000.gpu" / "devfreq" / "57000000.gpu"
    files = {
        name: policy / name
        for name in ("scaling_setspeed", "scaling_governor", "scaling_min_freq", "scaling_max_freq")
    }
    files.update(
        {f"gpu_{n}": gpu / n for n in ("governor", "min_freq", "max_freq", "userspace/set_freq")}
    )
    files["cpuinfo_max_freq"] = policy / "cpuinfo_max_freq"
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0\n")
        path.chmod(0o644)
    return files


@pytest.mark.parametrize("host", ["rpi4", "jetson"])
def test_dvfs_helper_grants_group_write(
    converged: dict[str, Any], tmp_path: Path, host: str
) -> None:
    helper = converged["roots"][host] / "usr" / "local" / "libexec" / "testbed-dvfs-permissions"
    files = _fake_sysfs(tmp_path)
    subprocess.run(["/bin/sh", str(helper), str(tmp_path)], check=True, timeout=30)
    writable = {name for name, path in files.items() if path.stat().st_mode & stat.S_IWGRP}
    cpu = {"scaling_setspeed", "scaling_governor", "scaling_min_freq", "scaling_max_freq"}
    gpu = {"gpu_governor", "gpu_min_freq", "gpu_max_freq", "gpu_userspace/set_freq"}
    # Only the DVFS controls, and the GPU only on the Jetson; read-only limits stay read-only.
    assert writable == (cpu | gpu if host == "jetson" else cpu)


def test_ap_host_configuration_matches_the_inventory(converged: dict[str, Any]) -> None:
    from ap_cluster.config import load_cluster_config
    from protocol.spec import load_spec

    root = converged["roots"]["ap"]
    # The real schema of `testbed ap serve --cluster`: the rendered file must load.
    cluster = load_cluster_config(root / "etc" / "testbed" / "cluster.yaml")
    assert cluster.spec == load_spec(SPEC)
    assert [ap.model_dump() for ap in cluster.aps] == [
        {
            "id": "ap0",
            "bind": "tcp://*:5550",
            "connect": f"tcp://{AP_HOST_ADDRESS}:5550",
            "host": "ap-test",
        },
        {
            "id": "ap1",
            "bind": "tcp://*:5600",
            "connect": f"tcp://{AP_HOST_ADDRESS}:5600",
            "host": "ap-test",
        },
    ]
    assert cluster.estimator == "ls"
    assert _env_file(root / "etc" / "testbed" / "ap.env") == {"UHD_IMAGES_DIR": "/srv/uhd/images"}
    assert (root / "srv" / "uhd" / "images" / "usrp_b210_fpga.bin").is_file()
    unit = _unit(root / "etc" / "systemd" / "system" / "testbed-ap.service")
    assert unit["ExecStart"] == (
        "/opt/testbed/venv/bin/testbed ap serve --cluster /etc/testbed/cluster.yaml"
    )
    udev = (root / "etc" / "udev" / "rules.d" / "50-testbed-usrp.rules").read_text()
    assert 'ATTRS{idVendor}=="2500", ATTRS{idProduct}=="0020", MODE:="0660"' in udev
    sysctl = (root / "etc" / "sysctl.d" / "60-testbed-ap.conf").read_text()
    assert "net.core.rmem_max = 33554432" in sysctl
    tmpfiles = (root / "etc" / "tmpfiles.d" / "testbed-usbfs.conf").read_text()
    assert "w /sys/module/usbcore/parameters/usbfs_memory_mb - - - - 1000" in tmpfiles
    # GNU Radio, PMT and UHD are linked from the OS into the venv, and nothing else is.
    site = next((root / "opt" / "testbed" / "venv" / "lib").glob("python3*/site-packages"))
    for module in ("gnuradio", "pmt", "uhd"):
        link = site / module
        assert link.is_symlink()
        assert os.readlink(link) == f"/usr/lib/python3/dist-packages/{module}"
    assert not (site / "numpy").exists()


def test_controller_settings_accept_the_environment_file(
    converged: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's own settings class reads the rendered file (tokens, JSON list, port)."""
    from controller.settings import ControllerSettings

    env = _env_file(converged["roots"]["controller"] / "etc" / "testbed" / "controller.env")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = ControllerSettings(_env_file=None)
    assert settings.port == 8123
    assert settings.token.get_secret_value() == converged["secrets"]["vault_controller_token"]
    assert settings.csi_endpoints == [
        f"tcp://{AP_HOST_ADDRESS}:5550",
        f"tcp://{AP_HOST_ADDRESS}:5600",
    ]
    assert not settings.dev_mode


@pytest.mark.parametrize(("host", "ue"), [("rpi4", "ue1"), ("jetson", "ue5")])
def test_agent_settings_accept_the_environment_file(
    converged: dict[str, Any], monkeypatch: pytest.MonkeyPatch, host: str, ue: str
) -> None:
    from edge_agent.settings import AgentSettings

    env = _env_file(converged["roots"][host] / "etc" / "testbed" / "agent.env")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = AgentSettings(_env_file=None)
    assert settings.agent_id == ue
    assert settings.controller_url == CONTROLLER_URL
    assert settings.enrol_token == converged["secrets"]["vault_enrol_token"]
    assert settings.dvfs_sysfs_root == Path("/")
    assert settings.state_dir == Path("/var/lib/testbed-agent")
    assert settings.torch_threads == 4
