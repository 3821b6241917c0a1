"""`testbed doctor`: what this host has, for bug reports and for the setup check.

Versions of the stack, whether a USRP is attached, and this host's DVFS capabilities. GNU Radio
and UHD are queried in subprocesses: their Python modules may not load in one process (DESIGN
section 11), and a broken install should show as a line in the report, not a crash.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

import typer

#: Distribution names reported with their installed versions.
_PACKAGES = ("numpy", "torch", "cvxpy", "pyzmq", "cryptography", "fastapi", "pydantic")
_PROBE_TIMEOUT_S = 20.0


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _run(cmd: list[str], timeout_s: float = _PROBE_TIMEOUT_S) -> tuple[int, str]:
    """Run ``cmd``; return (exit code, stdout+stderr). A missing program gives code 127."""
    if shutil.which(cmd[0]) is None and not cmd[0].startswith("/"):
        return 127, f"{cmd[0]}: not found"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"{cmd[0]}: timed out after {timeout_s:g} s"
    except OSError as err:
        return 126, f"{cmd[0]}: {err.strerror}"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _gnuradio_version() -> str | None:
    code, out = _run([sys.executable, "-c", "from gnuradio import gr; print(gr.version())"])
    return out.splitlines()[-1] if code == 0 and out else None


def _uhd_version() -> str | None:
    code, out = _run(["uhd_config_info", "--version"])
    if code != 0 or not out:
        return None
    return out.splitlines()[-1].removeprefix("UHD ").strip()


def usrp_status() -> dict[str, Any]:
    """Whether a USRP is attached, from ``uhd_find_devices`` (run in a subprocess)."""
    code, out = _run(["uhd_find_devices"])
    if code == 127:
        return {
            "attached": False,
            "detail": "uhd_find_devices not installed (apt install uhd-host)",
        }
    devices = [line.split(":", 1)[1].strip() for line in out.splitlines() if "serial:" in line]
    if devices:
        return {"attached": True, "serials": devices, "detail": f"{len(devices)} device(s)"}
    detail = "no USRP found" if "No UHD Devices Found" in out else out.splitlines()[-1:]
    return {"attached": False, "detail": detail if isinstance(detail, str) else " ".join(detail)}


def collect() -> dict[str, Any]:
    """The whole report as a JSON-serialisable dict."""
    from edge_agent.dvfs import describe_host

    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "gnuradio": _gnuradio_version(),
        "uhd": _uhd_version(),
    }
    versions.update({name: _dist_version(name) for name in _PACKAGES})
    return {
        "host": platform.node(),
        "machine": platform.machine(),
        "versions": versions,
        "usrp": usrp_status(),
        "dvfs": describe_host("/"),
    }


def _print_human(report: dict[str, Any]) -> None:
    typer.echo(f"host      {report['host']} ({report['machine']})")
    for name, version in report["versions"].items():
        typer.echo(f"{name:<13} {version or 'MISSING'}")
    usrp = report["usrp"]
    typer.echo(f"usrp          {'attached: ' if usrp['attached'] else ''}{usrp['detail']}")
    dvfs = report["dvfs"]
    typer.echo(f"dvfs          {json.dumps(dvfs, sort_keys=True)}")


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Report versions (GNU Radio, UHD, NumPy, torch, cvxpy, pyzmq, cryptography, FastAPI),
    attached USRPs and this host's DVFS capabilities."""
    report = collect()
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_human(report)
