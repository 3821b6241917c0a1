"""`testbed deploy ...`: Ansible inventories from an experiment's hardware section.

A lab describes its boards once, in the experiment spec (``topology.aps[].host``,
``topology.ues[].host``); ``testbed deploy inventory --from SPEC.yaml`` turns that into the
inventory the playbooks in ``deploy/`` run against (groups ``controllers``, ``ap_hosts`` and
``edge_boards`` with ``rpi4`` and ``jetson_nano`` below it). UEs without a host are simulated
and left out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
import yaml

from protocol.spec import ExperimentSpec, SpecError, load_spec

__all__ = ["AGENT_PROFILE_GROUPS", "InventoryError", "app", "inventory_from_spec"]

app = typer.Typer(help="Deployment with Ansible (deploy/).", no_args_is_help=True)

#: Inventory group of each agent profile, and that group's variables.
AGENT_PROFILE_GROUPS: dict[str, str] = {"rpi4": "rpi4", "jetson-nano": "jetson_nano"}
_GROUP_VARS: dict[str, dict[str, Any]] = {
    "rpi4": {"edge_agent_profile": "rpi4"},
    # JetPack 4's python3 is 3.6; Ansible and the agent use 3.8 (docs/edge-install.md).
    "jetson_nano": {
        "edge_agent_profile": "jetson-nano",
        "ansible_python_interpreter": "/usr/bin/python3.8",
    },
}
#: Variables every host gets: the interpreter, the role variables that point into the vault,
#: and the project wheel (``-e testbed_wheel=PATH``; empty: the roles install from an index).
_ALL_VARS: dict[str, Any] = {
    "ansible_python_interpreter": "/usr/bin/python3",
    "controller_token": "{{ vault_controller_token }}",
    "controller_enrol_token": "{{ vault_enrol_token }}",
    "edge_agent_enrol_token": "{{ vault_enrol_token }}",
    "testbed_wheel": "",
    "controller_wheel": "{{ testbed_wheel }}",
    "ap_node_wheel": "{{ testbed_wheel }}",
    "edge_agent_wheel": "{{ testbed_wheel }}",
}


class InventoryError(ValueError):
    """A spec whose hardware section cannot become an inventory; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _ap_hosts(spec: ExperimentSpec, zmq_base_port: int) -> dict[str, dict[str, Any]]:
    """``{host: {ap_node_aps: [...]}}``: AP ``i`` of the spec publishes on ``base + i``."""
    hosts: dict[str, dict[str, Any]] = {}
    for i, ap in enumerate(spec.topology.aps):
        if ap.host:
            entry = hosts.setdefault(ap.host, {"ap_node_aps": []})
            entry["ap_node_aps"].append({"id": ap.id, "zmq_port": zmq_base_port + i})
    return hosts


def _board_groups(spec: ExperimentSpec) -> dict[str, dict[str, dict[str, Any]]]:
    """``{group: {host: {edge_agent_id: ue.id}}}`` for every UE with a host (one per board)."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, ue in enumerate(spec.topology.ues):
        if not ue.host:
            continue
        where = f"topology.ues.{i}"
        if ue.host in seen:
            problems.append(
                f"{where}.host: `{ue.host}` already runs topology.ues.{seen[ue.host]}; "
                "a board runs one agent"
            )
            continue
        seen[ue.host] = i
        group = AGENT_PROFILE_GROUPS.get(ue.profile)
        if group is None:
            problems.append(
                f"{where}.profile: `{ue.profile}` has no agent backend; a deployed board runs "
                f"one of {sorted(AGENT_PROFILE_GROUPS)}"
            )
            continue
        groups.setdefault(group, {})[ue.host] = {"edge_agent_id": ue.id}
    if problems:
        raise InventoryError(problems)
    return groups


def inventory_from_spec(
    spec: ExperimentSpec,
    *,
    spec_ref: str,
    controller_host: str = "controller",
    controller_port: int = 8080,
    scheme: str = "http",
    zmq_base_port: int = 5550,
) -> dict[str, Any]:
    """The YAML inventory (as a mapping) of ``spec``'s hardware.

    Args:
        spec: the experiment; only ``topology.aps[].host`` and ``topology.ues[].host/profile``
            (and the spec itself, for the AP hosts' cluster.yaml) are used.
        spec_ref: how the AP hosts' role finds the spec file (``ap_node_spec_file``).
        controller_host: the controller host, as the boards reach it.
        controller_port: its TCP port.
        scheme: ``http`` or ``https``, for the boards' controller URL.
        zmq_base_port: CSI publisher port of the spec's first AP; AP ``i`` uses ``base + i``.

    Raises:
        InventoryError: no host at all, a board named twice, or a profile no agent runs.
    """
    aps = _ap_hosts(spec, zmq_base_port)
    boards = _board_groups(spec)
    if not aps and not boards:
        raise InventoryError(
            ["topology: no AP or UE names a `host`; the spec describes no hardware to deploy"]
        )
    children: dict[str, Any] = {
        "controllers": {"hosts": {controller_host: {"controller_port": controller_port}}},
    }
    if aps:
        children["ap_hosts"] = {"vars": {"ap_node_spec_file": spec_ref}, "hosts": aps}
    if boards:
        url = f"{scheme}://{controller_host}:{controller_port}"
        children["edge_boards"] = {
            "vars": {"edge_agent_controller_url": url},
            "children": {
                group: {"vars": dict(_GROUP_VARS[group]), "hosts": boards[group]}
                for group in AGENT_PROFILE_GROUPS.values()
                if group in boards
            },
        }
    return {"all": {"vars": dict(_ALL_VARS), "children": children}}


def _spec_ref(spec_path: Path, out: Path | None) -> str:
    """The spec's path as the inventory names it: relative to the inventory's folder when both
    lie in one tree (a repository), else absolute."""
    spec_abs = spec_path.resolve()
    if out is None:
        return str(spec_abs)
    out_dir = out.resolve().parent
    if os.path.commonpath([spec_abs, out_dir]) == os.path.sep:
        return str(spec_abs)
    return "{{ inventory_dir }}/" + Path(os.path.relpath(spec_abs, out_dir)).as_posix()


def _header(source: Path, spec: ExperimentSpec) -> str:
    return (
        f"---\n# Ansible inventory of experiment `{spec.name}`, written by\n"
        f"#   testbed deploy inventory --from {source}\n"
        "# from topology.aps[].host and topology.ues[].host. The tokens come from the vault:\n"
        "# put vault_controller_token and vault_enrol_token in group_vars/all/vault.yml next to\n"
        "# this file (`ansible-vault create`); see deploy/README.md.\n"
    )


def _summary(inventory: dict[str, Any]) -> str:
    children = inventory["all"]["children"]
    aps = children.get("ap_hosts", {}).get("hosts", {})
    n_aps = sum(len(h["ap_node_aps"]) for h in aps.values())
    boards = children.get("edge_boards", {}).get("children", {})
    per_group = ", ".join(f"{len(g['hosts'])} {name}" for name, g in boards.items())
    return f"{len(aps)} AP host(s) ({n_aps} APs), boards: {per_group or 'none'}, 1 controller"


@app.command("inventory")
def inventory(
    spec_path: Path = typer.Option(..., "--from", help="Experiment spec YAML with hosts."),
    out: Path | None = typer.Option(None, "--out", help="Write here (default: stdout)."),
    controller_host: str = typer.Option(
        "controller", "--controller-host", help="Controller host, as the boards reach it."
    ),
    controller_port: int = typer.Option(8080, "--controller-port", min=1, max=65535),
    https: bool = typer.Option(False, "--https", help="Boards reach the controller by HTTPS."),
    zmq_base_port: int = typer.Option(
        5550, "--zmq-base-port", min=1, max=65000, help="CSI port of the first AP; AP i: +i."
    ),
) -> None:
    """Write an Ansible inventory for deploy/ from an experiment's hardware section."""
    try:
        spec = load_spec(spec_path)
        data = inventory_from_spec(
            spec,
            spec_ref=_spec_ref(spec_path, out),
            controller_host=controller_host,
            controller_port=controller_port,
            scheme="https" if https else "http",
            zmq_base_port=zmq_base_port,
        )
    except (SpecError, InventoryError) as err:
        problems = err.problems
        typer.echo(f"{spec_path}: cannot write an inventory ({len(problems)} problem(s))", err=True)
        for line in problems:
            typer.echo(f"  - {line}", err=True)
        raise typer.Exit(code=1) from None
    text = _header(spec_path, spec) + yaml.safe_dump(data, sort_keys=False, width=100)
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}: {_summary(data)}", err=True)
