"""Agent settings: environment variables prefixed ``TESTBED_AGENT_`` or a ``.env`` file."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AgentSettings"]


class AgentSettings(BaseSettings):
    """Everything the agent daemon reads from its environment (CLI flags override)."""

    model_config = SettingsConfigDict(env_prefix="TESTBED_AGENT_", env_file=".env", extra="ignore")

    agent_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.-]+$")
    controller_url: str = "http://127.0.0.1:8080"
    enrol_token: str = "change-me"
    profile: str = Field(default="sim", description="rpi4, jetson-nano or sim.")
    state_dir: Path = Field(default=Path("agent-state"), description="Identity key lives here.")
    data_dir: Optional[Path] = Field(default=None, description="Datasets; default ../shared/data.")
    dvfs_sysfs_root: Path = Field(default=Path("/"), description="Root of /sys (tests: a fake).")
    torch_threads: int = Field(default=1, ge=1)
    heartbeat_s: float = Field(default=2.0, gt=0)
    request_timeout_s: float = Field(default=60.0, gt=0)
    max_backoff_s: float = Field(default=5.0, gt=0)
    #: Stop after this many seconds without reaching the controller (0: never).
    give_up_after_s: float = Field(default=0.0, ge=0)
