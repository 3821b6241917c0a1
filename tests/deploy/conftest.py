"""Fixtures of the deployment tests: paths and tool environment (``kit``), and a project wheel.

The test suite imports modules with ``--import-mode=importlib``, so shared helpers live here and
reach the tests as fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]

#: What the wheel is built from: the packages and the project metadata, nothing else.
_WHEEL_SOURCES = (
    "pyproject.toml",
    "README.md",
    "protocol",
    "sim_backend",
    "ap_cluster",
    "flowgraphs",
    "controller",
    "edge_agent",
    "testbed",
)


class DeployKit:
    """Paths of deploy/ and the tools of the project's venv, with the environment to run them."""

    repo = _REPO
    deploy = _REPO / "deploy"
    example_inventory = _REPO / "deploy" / "inventories" / "example"
    demo_vault_password = example_inventory / "demo-vault-password.txt"
    vault_file = example_inventory / "group_vars" / "all" / "vault.yml"
    playbooks = ("site.yml", "controller.yml", "ap_hosts.yml", "edge_boards.yml")
    venv_bin = Path(sys.executable).parent

    def tool(self, name: str) -> str:
        """Path of a tool: the venv's (ansible-playbook, yamllint, ...), else one on PATH."""
        path = self.venv_bin / name
        if path.exists():
            return str(path)
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed (looked in {self.venv_bin} and PATH)")
        return found

    def env(self, tmp: Path) -> dict[str, str]:
        """Environment for Ansible: deploy/ansible.cfg, temp dirs under ``tmp``, no colour."""
        env = dict(os.environ)
        env.update(
            {
                "PATH": f"{self.venv_bin}{os.pathsep}{env.get('PATH', '')}",
                "ANSIBLE_CONFIG": str(self.deploy / "ansible.cfg"),
                "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-local"),
                "ANSIBLE_REMOTE_TEMP": str(tmp / "ansible-remote"),
                "ANSIBLE_NOCOLOR": "1",
                "NO_COLOR": "1",
                "PY_COLORS": "0",
            }
        )
        return env


@pytest.fixture(scope="session")
def kit() -> DeployKit:
    return DeployKit()


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of the working tree, built offline (no build isolation) from a clean copy."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in _WHEEL_SOURCES:
        path = _REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        elif path.exists():
            shutil.copy2(path, src / name)
    out = base / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("*.whl")
    return wheel
