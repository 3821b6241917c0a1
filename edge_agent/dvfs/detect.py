"""Choosing a DVFS backend for this host, and describing what the host offers.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from edge_agent.dvfs.base import DVFSBackend, DVFSError, DVFSPermissionError
from edge_agent.dvfs.cpufreq import CPUFREQ_DIR, CpufreqBackend, CpufreqPolicy, find_policies
from edge_agent.dvfs.jetson import Devfreq, JetsonBackend, Nvpmodel, find_gpu_devfreq, find_nvpmodel
from edge_agent.dvfs.simulated import SimulatedBackend
from edge_agent.energy import describe_power_monitors
from protocol.profiles import BUILTIN_PROFILES, DeviceProfile, resolve_profile

__all__ = ["BACKEND_KINDS", "describe_host", "detect_backend"]

_log = logging.getLogger(__name__)

#: Values of ``detect_backend(kind=...)``.
BACKEND_KINDS = ("auto", "cpufreq", "jetson", "simulated")

_SIM_NAMES = ("sim", "simulated")


def _resolve(profile: Union[str, DeviceProfile, None]) -> Optional[DeviceProfile]:
    if isinstance(profile, DeviceProfile):
        return profile
    if profile is None or profile in _SIM_NAMES:
        return None
    return resolve_profile(profile)


def _is_jetson_profile(profile: Optional[DeviceProfile]) -> bool:
    return profile is not None and (
        profile.nvpmodel_modes is not None or profile.name.startswith("jetson")
    )


def _first_unwritable(sysfs_root: Union[str, Path]) -> Optional[Path]:
    for pol in find_policies(sysfs_root):
        for name in ("scaling_governor", "scaling_min_freq", "scaling_max_freq"):
            path = pol / name
            if not os.access(path, os.W_OK):
                return path
    return None


def _check_writable(sysfs_root: Union[str, Path]) -> None:
    bad = _first_unwritable(sysfs_root)
    if bad is not None:
        raise DVFSPermissionError(
            f"{bad} is not writable by this process: run the agent as root or grant it write "
            "access to the cpufreq files (the edge role of deploy/ does this)"
        )


def detect_backend(
    profile: Union[str, DeviceProfile, None],
    sysfs_root: Union[str, Path] = "/",
    *,
    kind: str = "auto",
    nvpmodel_path: Optional[str] = None,
    cpufreq_mode: str = "auto",
) -> DVFSBackend:
    """The DVFS backend for this agent.

    Args:
        profile: the board's device profile or its name (``rpi4``, ``jetson-nano``, custom);
            ``sim``/None for a simulated board. The simulated backend uses its levels (the
            rpi4 levels for ``sim``).
        sysfs_root: prefix of ``/sys``.
        kind: ``auto``, ``cpufreq``, ``jetson`` or ``simulated``. ``auto`` picks Jetson for a
            Jetson profile on a host with nvpmodel or a Tegra GPU devfreq, else cpufreq where
            the policies exist and are writable, else (with a warning) simulated; an explicit
            kind raises when the host cannot provide it.
        nvpmodel_path: the ``nvpmodel`` command (Jetson).
        cpufreq_mode: ``auto``, ``userspace`` or ``bounds`` (see :class:`CpufreqBackend`).

    Raises:
        DVFSMissingError, DVFSPermissionError: an explicit ``kind`` that this host lacks or
            that this process may not drive; the message names the file.
    """
    if kind not in BACKEND_KINDS:
        raise ValueError(f"`kind` must be one of {BACKEND_KINDS}, got {kind!r}")
    prof = _resolve(profile)
    sim_levels = (prof or BUILTIN_PROFILES["rpi4"]).f_levels_hz
    if kind == "simulated" or (kind == "auto" and prof is None):
        return SimulatedBackend(sim_levels)
    modes = prof.nvpmodel_modes if prof is not None else None
    if kind == "jetson":
        _check_writable(sysfs_root)
        return JetsonBackend(
            sysfs_root, nvpmodel_path=nvpmodel_path, modes=modes, mode=cpufreq_mode
        )
    if kind == "cpufreq":
        backend = CpufreqBackend(sysfs_root, mode=cpufreq_mode)
        _check_writable(sysfs_root)
        return backend
    # auto, for a hardware profile
    policies = find_policies(sysfs_root)
    if not policies:
        reason = f"no cpufreq policy under {Path(sysfs_root) / CPUFREQ_DIR}"
    elif _first_unwritable(sysfs_root) is not None:
        reason = f"{_first_unwritable(sysfs_root)} is not writable"
    else:
        jetson_host = find_nvpmodel(nvpmodel_path) is not None or (
            find_gpu_devfreq(sysfs_root) is not None
        )
        if _is_jetson_profile(prof) and jetson_host:
            return JetsonBackend(
                sysfs_root, nvpmodel_path=nvpmodel_path, modes=modes, mode=cpufreq_mode
            )
        return CpufreqBackend(sysfs_root, mode=cpufreq_mode)
    _log.warning("DVFS simulated for profile %s: %s", prof.name if prof else None, reason)
    return SimulatedBackend(sim_levels)


def _nvpmodel_info(nvpmodel_path: Optional[str]) -> Dict[str, object]:
    path = find_nvpmodel(nvpmodel_path)
    info: Dict[str, object] = {"path": path or nvpmodel_path, "present": path is not None}
    info["mode"] = None
    if path is not None:
        try:
            name, mode_id = Nvpmodel(path, timeout_s=5.0).query()
            info["mode"] = {"name": name, "id": mode_id}
        except DVFSError as err:
            info["error"] = str(err)
    return info


def describe_host(
    sysfs_root: Union[str, Path] = "/", nvpmodel_path: Optional[str] = None
) -> Dict[str, Any]:
    """What this host offers for DVFS and energy measurement (JSON-serialisable).

    Keys: ``sysfs_root``; ``cpufreq`` (``path``, ``policies``: governor, available governors
    and frequencies in Hz, bounds, ``userspace``, ``writable`` of each); ``nvpmodel``
    (``path``, ``present``, active ``mode``); ``gpu_devfreq`` (or None); ``power_monitors``
    (INA3221 channels); ``suggested_backend`` and ``reason``: what
    ``detect_backend(<hardware profile>, kind="auto")`` would choose.
    """
    policies = [CpufreqPolicy(p) for p in find_policies(sysfs_root)]
    gpu = find_gpu_devfreq(sysfs_root)
    nv = _nvpmodel_info(nvpmodel_path)
    unwritable = _first_unwritable(sysfs_root)
    if not policies:
        suggested, reason = "simulated", "no cpufreq policy"
    elif unwritable is not None:
        suggested, reason = "simulated", f"{unwritable} is not writable by this process"
    elif nv["present"] or gpu is not None:
        suggested, reason = "jetson", "cpufreq writable, nvpmodel or Tegra GPU devfreq present"
    else:
        suggested, reason = "cpufreq", "cpufreq policies writable"
    descs: List[Dict[str, object]] = [p.describe() for p in policies]
    return {
        "sysfs_root": str(sysfs_root),
        "cpufreq": {"path": str(Path(sysfs_root) / CPUFREQ_DIR), "policies": descs},
        "nvpmodel": nv,
        "gpu_devfreq": Devfreq(gpu).describe() if gpu is not None else None,
        "power_monitors": describe_power_monitors(sysfs_root),
        "suggested_backend": suggested,
        "reason": reason,
    }
