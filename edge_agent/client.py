"""The agent's HTTP client: signed requests to the controller, with retries across restarts."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.auth import public_key_b64, sign_request
from protocol.rounds import (
    ENROL_TOKEN_HEADER,
    TASK_WAIT_MAX_S,
    EnrolRequest,
    EnrolResponse,
    Task,
)

__all__ = ["ControllerClient", "ControllerUnavailable", "Rejected"]

log = logging.getLogger(__name__)
_API = "/api/v1"


class ControllerUnavailable(ConnectionError):  # noqa: N818 (a state, not an error kind)
    """The controller could not be reached (it may be restarting)."""


class Rejected(RuntimeError):  # noqa: N818
    """The controller refused a request; ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {detail}")


class ControllerClient:
    """Signed calls to one controller."""

    def __init__(
        self, base_url: str, agent_id: str, key: Ed25519PrivateKey, timeout_s: float = 60.0
    ) -> None:
        self.agent_id = agent_id
        self._key = key
        # The timeout outlasts the longest long poll.
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=max(timeout_s, TASK_WAIT_MAX_S + 30.0)
        )

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        params: Optional[Dict[str, Any]] = None,
        content_type: str = "application/json",
        signed: bool = True,
        headers: Optional[Dict[str, str]] = None,
    ) -> httpx.Response:
        url = httpx.URL(_API + path, params=params)
        target = url.raw_path.decode()
        headers = {"Content-Type": content_type, **(headers or {})}
        if signed:
            headers.update(sign_request(self._key, self.agent_id, method, target, body))
        try:
            resp = self._http.request(method, target, content=body, headers=headers)
        except httpx.TransportError as err:
            raise ControllerUnavailable(f"{method} {path}: {err}") from None
        if resp.status_code >= 500:
            raise ControllerUnavailable(f"{method} {path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            try:
                detail = str(resp.json().get("detail", resp.text))
            except ValueError:
                detail = resp.text
            raise Rejected(resp.status_code, detail)
        return resp

    def enrol(self, profile: str, enrol_token: str) -> EnrolResponse:
        req = EnrolRequest(
            agent_id=self.agent_id, profile=profile, public_key=public_key_b64(self._key)
        )
        resp = self._request(
            "POST",
            "/agents/enrol",
            req.model_dump_json().encode(),
            signed=False,
            headers={ENROL_TOKEN_HEADER: enrol_token},
        )
        return EnrolResponse.model_validate_json(resp.content)

    def heartbeat(self, status: Dict[str, Any]) -> None:
        import json

        body = json.dumps({"status": status}).encode()
        self._request("POST", f"/agents/{self.agent_id}/heartbeat", body)

    def task(self, wait_s: float = 0.0) -> Task:
        """The stage to do now, waiting up to ``wait_s`` for one (long polling)."""
        params = {"wait_s": wait_s} if wait_s > 0 else None
        return Task.model_validate_json(
            self._request("GET", f"/agents/{self.agent_id}/task", params=params).content
        )

    def model(self, experiment_id: str, version: int) -> bytes:
        return self._request("GET", f"/experiments/{experiment_id}/models/{version}").content

    def submit(self, task: Task, body: bytes, content_type: str = "application/json") -> None:
        path = f"/experiments/{task.experiment_id}/rounds/{task.round}/{task.stage}"
        self._request(
            "POST", path, body, params={"attempt": task.attempt}, content_type=content_type
        )


def wait_for(what: str, call: Any, max_backoff_s: float, give_up_after_s: float = 0.0) -> Any:
    """Call ``call()`` until the controller answers, backing off up to ``max_backoff_s``."""
    delay, start = 0.2, time.monotonic()
    while True:
        try:
            return call()
        except ControllerUnavailable as err:
            if give_up_after_s and time.monotonic() - start > give_up_after_s:
                raise
            log.info("%s: controller unavailable (%s); retrying in %.1f s", what, err, delay)
            time.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
