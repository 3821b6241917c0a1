"""DVFS backends: Linux cpufreq, Jetson (nvpmodel + GPU devfreq) and simulated."""

from __future__ import annotations

from edge_agent.dvfs.base import (
    DVFSBackend,
    DVFSError,
    DVFSMissingError,
    DVFSPermissionError,
    round_up_to_level,
)
from edge_agent.dvfs.cpufreq import CPUFREQ_DIR, CpufreqBackend, find_policies
from edge_agent.dvfs.detect import BACKEND_KINDS, describe_host, detect_backend
from edge_agent.dvfs.jetson import (
    GPU_DEVFREQ_GLOBS,
    Devfreq,
    JetsonBackend,
    Nvpmodel,
    find_gpu_devfreq,
    find_nvpmodel,
)
from edge_agent.dvfs.simulated import SimulatedBackend

__all__ = [
    "BACKEND_KINDS",
    "CPUFREQ_DIR",
    "GPU_DEVFREQ_GLOBS",
    "CpufreqBackend",
    "DVFSBackend",
    "DVFSError",
    "DVFSMissingError",
    "DVFSPermissionError",
    "Devfreq",
    "JetsonBackend",
    "Nvpmodel",
    "SimulatedBackend",
    "describe_host",
    "detect_backend",
    "find_gpu_devfreq",
    "find_nvpmodel",
    "find_policies",
    "round_up_to_level",
]
