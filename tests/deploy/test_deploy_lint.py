"""deploy/ is lint-clean (ansible-lint production profile, yamllint) and every playbook parses;
every role documents each of its defaults in its README."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml


def _run(kit: Any, tmp_path: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd),
        cwd=kit.deploy,
        env=kit.env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_yamllint_is_clean(kit: Any, tmp_path: Path) -> None:
    proc = _run(kit, tmp_path, kit.tool("yamllint"), "--strict", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_lint_production_profile_is_clean(kit: Any, tmp_path: Path) -> None:
    # The profile is set in deploy/.ansible-lint; naming it here too keeps the test honest.
    proc = _run(kit, tmp_path, kit.tool("ansible-lint"), "--profile", "production", "--offline")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert "Profile 'production' was required, and it passed" in proc.stderr + proc.stdout


def test_every_playbook_is_checked(kit: Any) -> None:
    on_disk = {p.name for p in kit.deploy.glob("*.yml")}
    assert on_disk == set(kit.playbooks)


@pytest.mark.parametrize(
    "playbook", ["site.yml", "controller.yml", "ap_hosts.yml", "edge_boards.yml"]
)
def test_playbook_syntax(kit: Any, tmp_path: Path, playbook: str) -> None:
    proc = _run(kit, tmp_path, kit.tool("ansible-playbook"), "--syntax-check", playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _readme_variables(readme: Path) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", readme.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("role", ["ap_node", "controller", "edge_agent"])
def test_role_defaults_are_prefixed_and_in_the_readme(kit: Any, role: str) -> None:
    defaults = yaml.safe_load((kit.deploy / "roles" / role / "defaults" / "main.yml").read_text())
    assert all(name.startswith(f"{role}_") for name in defaults), sorted(defaults)
    documented = _readme_variables(kit.deploy / "roles" / role / "README.md")
    assert set(defaults) == documented, {
        "undocumented": sorted(set(defaults) - documented),
        "not in defaults": sorted(documented - set(defaults)),
    }


def test_example_vault_is_encrypted(kit: Any) -> None:
    text = kit.vault_file.read_text()
    values = re.findall(r"^(vault_\w+): !vault \|\n\s+\$ANSIBLE_VAULT;1\.1;AES256", text, re.M)
    assert set(values) == {"vault_controller_token", "vault_enrol_token"}
    assert "demo-operator-" not in text  # the plaintext token is not there
    assert "demo-enrol-" not in text
