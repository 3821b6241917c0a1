"""Controller settings: environment variables prefixed ``TESTBED_CONTROLLER_`` or a ``.env`` file.

Injected through :func:`get_settings` (cached) so that tests build their own instance and swap it
in with ``app.dependency_overrides`` or ``create_app(settings)``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PLACEHOLDER_SECRETS", "ControllerSettings", "get_settings"]

#: Secrets that must never be used outside development mode.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "token", "dev", "test"})
_MIN_SECRET_CHARS = 16


class ControllerSettings(BaseSettings):
    """Everything the controller service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="TESTBED_CONTROLLER_", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    dev_mode: bool = Field(default=False, description="Allow placeholder secrets (never in a lab).")
    token: str = Field(default="change-me", description="Operators' bearer token.")
    enrol_token: str = Field(default="change-me", description="Token agents enrol with.")
    database_url: str = Field(
        default="sqlite:///testbed-controller.db",
        description="SQLAlchemy URL: sqlite:///PATH (WAL) or postgresql+psycopg://...",
    )
    data_dir: Path = Field(default=Path("controller-data"), description="Model files live here.")
    csi_endpoints: list[str] = Field(
        default_factory=list, description="ZeroMQ PUB endpoints of the AP cluster (tcp://...)."
    )
    csi_stale_s: float = Field(default=2.0, gt=0, description="CSI older than this is stale, s.")
    air_endpoint: str | None = Field(
        default=None,
        description=(
            "ZeroMQ REP endpoint of the AP cluster's simulated air (tcp://...; sim mode): the "
            "true channel each transport block sees. None: the APs' pilot measurements."
        ),
    )
    signature_window_s: float = Field(default=120.0, gt=0, description="Agent clock skew bound.")
    heartbeat_timeout_s: float = Field(default=30.0, gt=0)
    autostart: bool = Field(default=True, description="Resume running experiments at start-up.")

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ControllerSettings:
        if self.dev_mode:
            return self
        for name in ("token", "enrol_token"):
            value = getattr(self, name)
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < _MIN_SECRET_CHARS:
                raise ValueError(
                    f"TESTBED_CONTROLLER_{name.upper()} is a placeholder or shorter than "
                    f"{_MIN_SECRET_CHARS} characters; set a real secret or "
                    "TESTBED_CONTROLLER_DEV_MODE=1 for development"
                )
        return self


@lru_cache(maxsize=1)
def get_settings() -> ControllerSettings:
    """The process-wide settings, read once from the environment."""
    return ControllerSettings()
