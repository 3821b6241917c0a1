"""Helpers for tests and notebooks: a real controller on uvicorn in a background thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn

from controller.app import create_app
from controller.server import uvicorn_config
from controller.settings import ControllerSettings
from testbed.launcher import free_port

__all__ = ["ENROL", "TOKEN", "Server", "make_settings"]

TOKEN = "operator-token-for-tests-0123456789"
ENROL = "enrol-token-for-tests-0123456789"


class Server:
    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn_config(self.app, settings, "127.0.0.1", settings.port, "warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def make_settings(tmp: Path, **overrides: object) -> ControllerSettings:
    values: dict[str, object] = {
        "port": free_port(),
        "token": TOKEN,
        "enrol_token": ENROL,
        "database_url": f"sqlite:///{tmp / 'controller.db'}",
        "data_dir": tmp / "data",
        **overrides,
    }
    return ControllerSettings(**values)  # type: ignore[arg-type]
