"""Agent settings: environment variables prefixed ``TESTBED_AGENT_`` or a ``.env`` file.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Dict, Optional

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol.profiles import BUILTIN_PROFILES, DeviceProfile, resolve_profile

__all__ = ["DVFS_KINDS", "ENERGY_METERS", "SIM_PROFILES", "AgentSettings"]

#: Values of ``dvfs`` (those of ``edge_agent.dvfs.BACKEND_KINDS``; not imported from there
#: so that reading the settings loads no backend).
DVFS_KINDS = ("auto", "cpufreq", "jetson", "simulated")
#: Values of ``energy_meter``.
ENERGY_METERS = ("auto", "none")
#: Profile names of an agent that is no particular board: it plays the profile of the UE it is
#: handed (rpi4 until a task names one).
SIM_PROFILES = ("sim", "simulated")


class AgentSettings(BaseSettings):
    """Everything the agent daemon reads from its environment (CLI flags override)."""

    model_config = SettingsConfigDict(env_prefix="TESTBED_AGENT_", env_file=".env", extra="ignore")

    agent_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.-]+$")
    controller_url: str = "http://127.0.0.1:8080"
    enrol_token: str = "change-me"
    profile: str = Field(
        default="sim",
        description="Device profile this agent plays: rpi4, jetson-nano, a custom one from "
        "`device_profiles`, or sim (whatever profile the UE it is handed has).",
    )
    device_profiles: Dict[str, DeviceProfile] = Field(
        default_factory=dict,
        description="Custom device profiles by name, beside the built-in ones (JSON).",
    )
    dvfs: str = Field(
        default="auto", description="DVFS backend: auto, cpufreq, jetson or simulated."
    )
    energy_meter: str = Field(default="auto", description="auto (INA3221 where present) or none.")
    state_dir: Path = Field(default=Path("agent-state"), description="Identity key lives here.")
    data_dir: Optional[Path] = Field(default=None, description="Datasets; default ../shared/data.")
    dvfs_sysfs_root: Path = Field(
        default=Path("/"), description="Root of /sys for DVFS and the INA3221 (tests: a fake)."
    )
    torch_threads: int = Field(default=1, ge=1)
    heartbeat_s: float = Field(default=2.0, gt=0)
    request_timeout_s: float = Field(default=60.0, gt=0)
    max_backoff_s: float = Field(default=5.0, gt=0)
    task_wait_s: float = Field(
        default=20.0, ge=0, le=30.0, description="Long poll for tasks, s (0: plain polling)."
    )
    overlap_evaluation: bool = Field(
        default=True,
        description="Score the global model (test shard, loss before training) in a thread "
        "beside the SGD loop rather than before it; the energy meter's reading then includes "
        "that scoring, and on a board with one free core it slows the loop instead.",
    )
    #: Stop after this many seconds without reaching the controller (0: never).
    give_up_after_s: float = Field(default=0.0, ge=0)

    @field_validator("dvfs")
    @classmethod
    def _known_dvfs(cls, kind: str) -> str:
        if kind not in DVFS_KINDS:
            raise ValueError(f"must be one of {', '.join(DVFS_KINDS)}; got {kind!r}")
        return kind

    @field_validator("energy_meter")
    @classmethod
    def _known_meter(cls, kind: str) -> str:
        if kind not in ENERGY_METERS:
            raise ValueError(f"must be one of {', '.join(ENERGY_METERS)}; got {kind!r}")
        return kind

    @model_validator(mode="after")
    def _known_profile(self) -> AgentSettings:
        if self.profile not in SIM_PROFILES:
            try:
                resolve_profile(self.profile, self.device_profiles)
            except KeyError as err:
                raise ValueError(f"`profile`: {err.args[0]}") from None
        return self

    def device_profile(self, name: Optional[str] = None) -> DeviceProfile:
        """The profile called ``name`` (default ``profile``): a custom one of
        ``device_profiles`` first, then a built-in one; ``sim`` gives rpi4.

        Raises:
            KeyError: no profile has that name; the message lists the known ones.
        """
        name = self.profile if name is None else name
        if name in SIM_PROFILES:
            return BUILTIN_PROFILES["rpi4"]
        return resolve_profile(name, self.device_profiles)
