"""``testbed ap probe``: the attached USRPs, found by ``uhd_find_devices`` in a subprocess.

A subprocess keeps UHD's own Python module (or GNU Radio's) out of this process, and a missing
device, a missing UHD install or a hung USB bus each end in one plain sentence.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

__all__ = ["ProbeResult", "find_devices", "parse_find_devices"]


@dataclass
class ProbeResult:
    """``devices``: one dict per USRP (``serial``, ``product``, ``type``, ``name``...)."""

    devices: list[dict[str, str]] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.devices)


def parse_find_devices(text: str) -> list[dict[str, str]]:
    """Devices in ``uhd_find_devices`` output (``Device Address:`` blocks of ``key: value``)."""
    devices: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Device Address"):
            current = {}
            devices.append(current)
        elif current is not None and ":" in line and not line.startswith(("-", "[")):
            key, _, val = line.partition(":")
            current[key.strip()] = val.strip()
    return [d for d in devices if d]


def find_devices(
    args: str = "", *, timeout_s: float = 30.0, exe: str = "uhd_find_devices"
) -> ProbeResult:
    """Run ``uhd_find_devices [--args ARGS]``; never raises for a missing device or tool."""
    path = shutil.which(exe)
    if path is None:
        return ProbeResult(message=f"`{exe}` is not installed (install UHD: apt install uhd-host)")
    cmd = [path] + (["--args", args] if args else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(message=f"`{exe}` did not answer within {timeout_s:g} s")
    except OSError as err:
        return ProbeResult(message=f"cannot run `{exe}`: {err.strerror}")
    devices = parse_find_devices(out.stdout)
    if devices:
        names = ", ".join(
            f"{d.get('product', d.get('type', '?'))} serial={d.get('serial', '?')}" for d in devices
        )
        return ProbeResult(devices=devices, message=f"{len(devices)} USRP(s): {names}")
    where = f" matching `{args}`" if args else ""
    return ProbeResult(
        message=f"no USRP found{where}: check the USB 3 cable and power, and `lsusb` "
        "(B210: 2500:0020)"
    )
