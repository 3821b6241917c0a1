"""Where trained policies live, so that ``--policy NAME`` finds them.

A name resolves to ``<policy_dir>/<NAME>.pt``; a path to an existing file is used as is. The
folder comes from :class:`PolicyStoreSettings` (environment variable ``TESTBED_POLICY_DIR``,
default ``./policies``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PolicyStoreSettings", "get_policy_settings", "policy_path"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class PolicyStoreSettings(BaseSettings):
    """Location of the policy files."""

    model_config = SettingsConfigDict(env_prefix="TESTBED_", extra="ignore")

    policy_dir: Path = Field(default=Path("policies"), description="Folder of NAME.pt files.")


@lru_cache
def get_policy_settings() -> PolicyStoreSettings:
    return PolicyStoreSettings()


def policy_path(name_or_path: str, *, settings: PolicyStoreSettings | None = None) -> Path:
    """The file of policy ``name_or_path``: an existing file, else ``<policy_dir>/<name>.pt``.

    Raises:
        ValueError: the name is neither a file nor a plain name (letters, digits, ``_.-``).
    """
    p = Path(name_or_path)
    if p.is_file():
        return p
    if not _NAME.match(name_or_path):
        raise ValueError(f"`policy`: {name_or_path!r} is neither a file nor a policy name")
    folder = (settings or get_policy_settings()).policy_dir
    return folder / f"{name_or_path}.pt"
