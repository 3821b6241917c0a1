"""Controller settings: environment variables prefixed ``TESTBED_CONTROLLER_`` or a ``.env`` file.

Injected through :func:`get_settings` (cached) so that tests build their own instance and swap it
in with ``app.dependency_overrides`` or ``create_app(settings)``. The two secrets are
:class:`pydantic.SecretStr`: they never appear in a repr, a log line or a validation error.
The limits (sizes, timeouts, connections) are described in docs/security.md.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PLACEHOLDER_SECRETS", "ControllerSettings", "get_settings", "secret_problem"]

#: Secrets that must never be used outside development mode.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "token", "dev", "test"})
_MIN_SECRET_CHARS = 16
_MIN_DISTINCT_CHARS = 8
_MiB = 1024 * 1024


def secret_problem(value: str) -> str | None:
    """Why ``value`` is not a usable secret (None when it is). Never quotes the value."""
    if value.strip().lower() in PLACEHOLDER_SECRETS:
        return "is a placeholder"
    if len(value) < _MIN_SECRET_CHARS:
        return f"is shorter than {_MIN_SECRET_CHARS} characters"
    if value != value.strip() or any(c.isspace() for c in value):
        return "contains whitespace"
    if len(set(value)) < _MIN_DISTINCT_CHARS:
        return f"has fewer than {_MIN_DISTINCT_CHARS} distinct characters"
    return None


class ControllerSettings(BaseSettings):
    """Everything the controller service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="TESTBED_CONTROLLER_", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    dev_mode: bool = Field(default=False, description="Allow placeholder secrets (never in a lab).")
    token: SecretStr = Field(default=SecretStr("change-me"), description="Operators' token.")
    enrol_token: SecretStr = Field(
        default=SecretStr("change-me"), description="Token agents enrol with (X-Enrol-Token)."
    )
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
    signature_window_s: float = Field(
        default=120.0, gt=0, le=3600, description="Agent clock skew bound, s."
    )
    heartbeat_timeout_s: float = Field(default=30.0, gt=0)
    autostart: bool = Field(default=True, description="Resume running experiments at start-up.")
    # -- limits (docs/security.md) -------------------------------------------------------------
    max_spec_bytes: int = Field(
        default=_MiB, ge=1024, description="Largest experiment spec body (POST /experiments), B."
    )
    max_small_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest enrolment, heartbeat or JSON body, B."
    )
    max_upload_bytes: int = Field(
        default=64 * _MiB,
        ge=_MiB,
        description="Ceiling of a stage upload, B; each experiment's own bound, derived from "
        "its model size, is lower.",
    )
    max_concurrent_uploads: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Stage uploads read at once; others wait for a slot (memory stays O(this x "
        "model size)).",
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="A request body must arrive within this, s."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A request's headers must arrive within this, s."
    )
    keep_alive_s: float = Field(default=5.0, gt=0, description="Idle keep-alive connections, s.")
    max_connections: int = Field(
        default=1024, ge=8, description="Open connections beyond this are closed at once."
    )
    graceful_shutdown_s: float = Field(
        default=3.0, gt=0, description="In-flight requests get this long after SIGTERM, s."
    )

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ControllerSettings:
        if self.dev_mode:
            return self
        token, enrol = self.token.get_secret_value(), self.enrol_token.get_secret_value()
        for name, value in (("token", token), ("enrol_token", enrol)):
            problem = secret_problem(value)
            if problem is not None:
                raise ValueError(
                    f"TESTBED_CONTROLLER_{name.upper()} {problem}; set a real secret (e.g. "
                    "`openssl rand -base64 24`) or TESTBED_CONTROLLER_DEV_MODE=1 for development"
                )
        if token == enrol:
            raise ValueError(
                "TESTBED_CONTROLLER_TOKEN and TESTBED_CONTROLLER_ENROL_TOKEN must differ: an "
                "agent's enrolment token must not grant operator rights"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> ControllerSettings:
    """The process-wide settings, read once from the environment."""
    return ControllerSettings()
