"""The REST API on a real uvicorn server: authentication, validation, unknown ids, agents."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from controller.settings import ControllerSettings
from protocol.auth import public_key_b64, sign_request
from protocol.spec import load_yaml
from testbed.testing import ENROL, Server, make_settings

ROOT = Path(__file__).resolve().parents[3]


def _spec() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml((ROOT / "examples/quickstart.yaml").read_text())
    return data


def test_health_and_docs_need_no_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/experiments" in schema["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/experiments"),
        ("POST", "/api/v1/experiments"),
        ("GET", "/api/v1/experiments/x"),
        ("POST", "/api/v1/experiments/x/start"),
        ("DELETE", "/api/v1/experiments/x"),
        ("GET", "/api/v1/experiments/x/rounds"),
        ("GET", "/api/v1/experiments/x/model"),
        ("GET", "/api/v1/agents"),
        ("GET", "/api/v1/csi"),
    ],
)
def test_unauthenticated_calls_get_401(server: Server, method: str, path: str) -> None:
    assert httpx.request(method, server.url + path).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.request(method, server.url + path, headers=wrong).status_code == 401


def test_invalid_spec_gets_422_naming_the_field(operator: httpx.Client) -> None:
    spec = _spec()
    spec["radio"]["bandwidth_hz"] = -3
    spec["topology"]["ues"][0]["speed"] = 2
    resp = operator.post("/experiments", json=spec)
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert ["body", "radio", "bandwidth_hz"] in [d["loc"] for d in detail]
    assert any(d["msg"].startswith("topology.ues.0.speed:") for d in detail)
    spec = _spec()
    spec["radio"]["tau_p"] = 999  # a cross-field check, run once every field is valid
    detail = operator.post("/experiments", json=spec).json()["detail"]
    assert ["body", "radio", "tau_p"] in [d["loc"] for d in detail]
    assert any(d["msg"].startswith("radio.tau_p: 999 must not exceed") for d in detail)
    assert operator.post("/experiments", content=b"{not json").status_code == 422


def test_unknown_ids_get_404(operator: httpx.Client) -> None:
    for path in ("/experiments/nope", "/experiments/nope/rounds", "/experiments/nope/model"):
        assert operator.get(path).status_code == 404, path
    assert operator.post("/experiments/nope/start").status_code == 404
    assert operator.post("/experiments/nope/stop").status_code == 404
    assert operator.delete("/experiments/nope").status_code == 404
    assert operator.get("/agents/nope").status_code == 404


def test_experiment_lifecycle_without_agents(operator: httpx.Client) -> None:
    created = operator.post("/experiments", json=_spec())
    assert created.status_code == 201
    exp = created.json()
    assert exp["status"] == "created"
    assert exp["rounds_total"] == 8
    assert [e["id"] for e in operator.get("/experiments").json()] == [exp["id"]]
    assert operator.get(f"/experiments/{exp['id']}/rounds").json() == []
    assert operator.get(f"/experiments/{exp['id']}/model").status_code == 404
    assert operator.get(f"/experiments/{exp['id']}/rounds/0").status_code == 404
    assert operator.delete(f"/experiments/{exp['id']}").status_code == 204
    assert operator.get(f"/experiments/{exp['id']}").status_code == 404


def test_agent_enrolment_and_signed_requests(server: Server, operator: httpx.Client) -> None:
    key = Ed25519PrivateKey.generate()
    enrol = {"agent_id": "ue0", "profile": "rpi4", "public_key": public_key_b64(key)}
    url = f"{server.url}/api/v1/agents/enrol"
    bad = httpx.post(url, json=enrol, headers={"X-Enrol-Token": "x"})
    assert bad.status_code == 401
    assert httpx.post(url, json=enrol).status_code == 401
    ok = httpx.post(url, json=enrol, headers={"X-Enrol-Token": ENROL})
    assert ok.status_code == 200
    assert ok.json()["enrolled"] is True

    path = "/api/v1/agents/ue0/task"
    signed = sign_request(key, "ue0", "GET", path)
    task = httpx.get(server.url + path, headers=signed)
    assert task.status_code == 200
    assert task.json()["stage"] == "idle"

    other = Ed25519PrivateKey.generate()
    forged = sign_request(other, "ue0", "GET", path)
    assert httpx.get(server.url + path, headers=forged).status_code == 401
    stale = sign_request(key, "ue0", "GET", path, now=1.0)
    assert httpx.get(server.url + path, headers=stale).status_code == 401
    replay_elsewhere = sign_request(key, "ue0", "GET", "/api/v1/agents/ue0/other")
    assert httpx.get(server.url + path, headers=replay_elsewhere).status_code == 401

    taken = {**enrol, "public_key": public_key_b64(other)}
    assert httpx.post(url, json=taken, headers={"X-Enrol-Token": ENROL}).status_code == 409

    agents = operator.get("/agents").json()
    assert [(a["id"], a["profile"], a["alive"]) for a in agents] == [("ue0", "rpi4", True)]

    body = b'{"status": {"freq_hz": 1.5e9}}'
    hb = "/api/v1/agents/ue0/heartbeat"
    resp = httpx.post(
        server.url + hb, content=body, headers=sign_request(key, "ue0", "POST", hb, body)
    )
    assert resp.status_code == 204
    assert operator.get("/agents/ue0").json()["status"] == {"freq_hz": 1.5e9}
    tampered = sign_request(key, "ue0", "POST", hb, body)
    assert (
        httpx.post(server.url + hb, content=b'{"status": {}}', headers=tampered).status_code == 401
    )
    sub = "/api/v1/experiments/e/rounds/0/train?attempt=1"
    late = httpx.post(
        server.url + sub, content=b"{}", headers=sign_request(key, "ue0", "POST", sub, b"{}")
    )
    assert late.status_code == 409
    assert base64.b64decode(public_key_b64(key))


def test_refuses_placeholder_secrets_outside_dev_mode(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="TESTBED_CONTROLLER_TOKEN"):
        make_settings(tmp_path, token="change-me")
    with pytest.raises(ValidationError, match="TESTBED_CONTROLLER_ENROL_TOKEN"):
        make_settings(tmp_path, enrol_token="short")
    dev = make_settings(tmp_path, token="change-me", dev_mode=True)
    assert isinstance(dev, ControllerSettings)
