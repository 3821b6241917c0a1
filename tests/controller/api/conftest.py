"""Fixtures: a real uvicorn server running the controller app, and an operator client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.testing import TOKEN, Server, make_settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(make_settings(tmp_path)) as srv:
        yield srv


@pytest.fixture
def operator(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client
