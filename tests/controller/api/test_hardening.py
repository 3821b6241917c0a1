"""The controller against hostile input, on a real uvicorn server: each case of issue 12.

Bodies are bounded and credentials checked before a body is read; specs are bounded; nesting,
replays, NaN timestamps and slow or excess connections are refused; secrets are never echoed;
a spec that cannot start fails its experiment, not the controller.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from controller.api.deps import UNAUTHORISED_AGENT
from controller.db import ExperimentRow
from protocol.auth import public_key_b64, sign_request
from protocol.spec import load_yaml
from testbed.testing import ENROL, TOKEN, Server, make_settings

ROOT = Path(__file__).resolve().parents[3]
_MiB = 1024 * 1024


def _spec(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml((ROOT / "examples/quickstart.yaml").read_text())
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return data


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[Server]:
    """A server with short timeouts and few connections, to test the limits quickly."""
    settings = make_settings(tmp_path, header_timeout_s=1.0, body_timeout_s=1.0, max_connections=16)
    with Server(settings) as srv:
        yield srv


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / _MiB


def _chunks(total: int, size: int = _MiB) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def _enrol(server: Server, agent_id: str = "ue0") -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    body = {"agent_id": agent_id, "profile": "rpi4", "public_key": public_key_b64(key)}
    resp = httpx.post(
        f"{server.url}/api/v1/agents/enrol", json=body, headers={"X-Enrol-Token": ENROL}
    )
    assert resp.status_code == 200, resp.text
    return key


def _signed(key: Ed25519PrivateKey, agent: str, method: str, path: str, body: bytes = b"") -> Any:
    return sign_request(key, agent, method, path, body)


# -- bodies: limits before reading, credentials before bodies ---------------------------------
def test_declared_oversize_body_gets_413_before_it_is_sent(server: Server) -> None:
    """A Content-Length over the limit is refused from the headers alone."""
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/agents/enrol HTTP/1.1\r\nHost: x\r\nX-Enrol-Token: wrong\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
    assert server.app.state.service.counters["oversized_requests"] == 1


def test_streamed_bodies_are_cut_off_and_memory_stays_flat(server: Server) -> None:
    """200 MiB of chunked (undeclared) bodies to three routes: 413 or 401, and no growth."""
    key = _enrol(server)
    before = _rss_mb()
    hb = "/api/v1/agents/ue0/heartbeat"
    junk = {**_signed(key, "ue0", "POST", hb, b"{}"), "X-Agent-Signature": "A" * 88}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        enrol = client.post(
            "/api/v1/agents/enrol", content=_chunks(200 * _MiB), headers={"X-Enrol-Token": "x"}
        )
        assert enrol.status_code == 401  # the token is checked before the body is read
        beat = client.post(hb, content=_chunks(200 * _MiB), headers=junk)
        assert beat.status_code == 401
        spec = client.post(
            "/api/v1/experiments",
            content=_chunks(200 * _MiB),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert spec.status_code == 413
    assert _rss_mb() - before < 60, "the server buffered an oversized body"


def test_upload_limit_derives_from_the_experiment_model(server: Server) -> None:
    service = server.app.state.service
    with httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as op:
        eid = op.post("/experiments", json=_spec()).json()["id"]
    limit = service.body_limit("POST", f"/api/v1/experiments/{eid}/rounds/0/upload")
    # mnist_cnn: tens of thousands of parameters, so a few MiB, far below the 64 MiB ceiling.
    assert 2 * _MiB < limit < 8 * _MiB
    assert service.body_limit("POST", "/api/v1/experiments/nope/rounds/0/upload") == 64 * 1024
    assert service.body_limit("POST", "/api/v1/experiments") == _MiB


def test_slow_body_gets_408(tight: Server) -> None:
    with socket.create_connection(("127.0.0.1", tight.settings.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:80]


# -- connections ----------------------------------------------------------------------------
def test_half_headers_are_closed_after_the_header_timeout(tight: Server) -> None:
    sock = socket.create_connection(("127.0.0.1", tight.settings.port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    started = time.monotonic()
    assert sock.recv(4096) == b""  # closed by the server, without an answer
    assert time.monotonic() - started < 5
    sock.close()
    # ... and after one answered request, a half-sent second one on the same connection too.
    sock = socket.create_connection(("127.0.0.1", tight.settings.port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    assert sock.recv(4096) == b""
    sock.close()
    assert tight.app.state.service.connection_refusals["header_timeouts"] >= 2


def test_connections_beyond_the_limit_are_closed_and_service_goes_on(tight: Server) -> None:
    held = [socket.create_connection(("127.0.0.1", tight.settings.port)) for _ in range(40)]
    try:
        time.sleep(0.3)
        assert tight.app.state.service.connection_refusals["connections"] >= 20
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    assert httpx.get(f"{tight.url}/healthz", timeout=5).status_code == 200


# -- specs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"seed": 10**100}, ["body", "seed"]),
        ({"topology__area_m": float("inf")}, ["body", "topology", "area_m"]),
        ({"fl__learning_rate": float("nan")}, ["body", "fl", "learning_rate"]),
        ({"fl__round_deadline_s": float("inf")}, ["body", "fl", "round_deadline_s"]),
        ({"fl__rounds": 10**30}, ["body", "fl", "rounds"]),
        ({"radio__tau_c": 10**18}, ["body", "radio", "tau_c"]),
        ({"name": "n" * 100}, ["body", "name"]),
        ({"dataset__path": "/etc/shadow"}, ["body", "dataset", "path"]),
        ({"dataset__path": "mnist/../../../etc"}, ["body", "dataset", "path"]),
        ({"radio__tau_p": 300}, ["body", "radio", "tau_p"]),
    ],
)
def test_out_of_range_specs_get_422_naming_the_field(
    server: Server, changes: dict[str, Any], loc: list[str]
) -> None:
    body = json.dumps(_spec(**changes))  # Python writes inf and nan as Infinity and NaN
    resp = httpx.post(
        f"{server.url}/api/v1/experiments",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    locs = [d["loc"] for d in resp.json()["detail"]]
    assert loc in locs
    assert all(set(d) == {"loc", "msg", "type"} for d in resp.json()["detail"])


def test_a_ten_megabyte_name_gets_413(server: Server) -> None:
    resp = httpx.post(
        f"{server.url}/api/v1/experiments",
        json=_spec(name="n" * 10 * _MiB),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert resp.status_code == 413


def test_deep_nesting_gets_422_and_the_server_carries_on(server: Server) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        resp = httpx.post(
            f"{server.url}/api/v1/experiments",
            content=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert resp.status_code == 422
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert server.app.state.service.counters["server_errors"] == 0


def test_a_failed_start_marks_the_experiment_failed(server: Server) -> None:
    with httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as op:
        eid = op.post("/experiments", json=_spec(algorithm__policy="no-such-policy")).json()["id"]
        resp = op.post(f"/experiments/{eid}/start")
        assert resp.status_code == 409
        assert "could not start" in resp.json()["detail"]
        exp = op.get(f"/experiments/{eid}").json()
        assert exp["status"] == "failed"
        assert "could not start" in exp["error"]


def test_controller_starts_whatever_the_database_holds(tmp_path: Path) -> None:
    """A running experiment whose stored spec no longer validates (seed 1e100, as an older
    controller accepted) is marked failed at start-up; the controller serves."""
    settings = make_settings(tmp_path)
    with Server(settings) as srv:
        eid = httpx.post(
            f"{srv.url}/api/v1/experiments",
            json=_spec(),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()["id"]
        service = srv.app.state.service
        with service.db.session() as s:
            row = s.get(ExperimentRow, eid)
            row.spec_json = json.dumps(_spec(seed=10**100, topology__area_m=float("inf")))
            row.status = "running"
    with Server(make_settings(tmp_path, port=settings.port)) as srv:
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
        exp = httpx.get(
            f"{srv.url}/api/v1/experiments/{eid}", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        assert exp["status"] == "failed"
        assert "seed" in exp["error"]


# -- signatures -----------------------------------------------------------------------------
def test_replays_nan_timestamps_and_unknown_agents_are_refused_alike(server: Server) -> None:
    key = _enrol(server)
    path = "/api/v1/agents/ue0/task"
    headers = _signed(key, "ue0", "GET", path)
    assert httpx.get(server.url + path, headers=headers).status_code == 200
    replay = httpx.get(server.url + path, headers=headers)
    assert replay.status_code == 401
    nan = {**_signed(key, "ue0", "GET", path), "X-Agent-Timestamp": "nan"}
    assert httpx.get(server.url + path, headers=nan).status_code == 401
    stranger = _signed(Ed25519PrivateKey.generate(), "ue9", "GET", "/api/v1/agents/ue9/task")
    unknown = httpx.get(server.url + "/api/v1/agents/ue9/task", headers=stranger)
    forged = _signed(Ed25519PrivateKey.generate(), "ue0", "GET", path)
    bad = httpx.get(server.url + path, headers=forged)
    assert unknown.status_code == bad.status_code == replay.status_code == 401
    assert unknown.json() == bad.json() == replay.json() == {"detail": UNAUTHORISED_AGENT}


def test_a_body_must_match_its_signed_digest(server: Server) -> None:
    key = _enrol(server)
    hb = "/api/v1/agents/ue0/heartbeat"
    body = b'{"status": {"freq_hz": 1.0}}'
    ok = httpx.post(server.url + hb, content=body, headers=_signed(key, "ue0", "POST", hb, body))
    assert ok.status_code == 204
    swapped = httpx.post(
        server.url + hb, content=b'{"status": {}}', headers=_signed(key, "ue0", "POST", hb, body)
    )
    assert swapped.status_code == 401


def test_models_only_for_the_experiment_agents(server: Server) -> None:
    key = _enrol(server, "outsider")
    eid = httpx.post(
        f"{server.url}/api/v1/experiments",
        json=_spec(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()["id"]
    path = f"/api/v1/experiments/{eid}/models/0"
    resp = httpx.get(server.url + path, headers=_signed(key, "outsider", "GET", path))
    assert resp.status_code == 403


# -- secrets --------------------------------------------------------------------------------
@pytest.mark.parametrize("weak", [" " * 16, "a" * 16, "abababababababab", "change-me"])
def test_weak_secrets_are_refused(tmp_path: Path, weak: str) -> None:
    with pytest.raises(ValidationError, match="TESTBED_CONTROLLER_TOKEN"):
        make_settings(tmp_path, token=weak)


def test_refusals_never_echo_a_secret(tmp_path: Path) -> None:
    real = "Zq8-real-operator-secret-91xW"
    with pytest.raises(ValidationError) as err:
        make_settings(tmp_path, token=real, enrol_token="change-me")
    assert real not in str(err.value)
    assert "Zq8" not in str(err.value)
    with pytest.raises(ValidationError, match="must differ"):
        make_settings(tmp_path, token=real, enrol_token=real)
    assert real not in repr(make_settings(tmp_path, token=real))


def test_readiness_hides_the_database_error(server: Server) -> None:
    service = server.app.state.service

    def broken() -> Any:
        raise RuntimeError("password=hunter2 host=db.internal")

    real, service.db.session = service.db.session, broken
    try:
        resp = httpx.get(f"{server.url}/readyz")
    finally:
        service.db.session = real
    assert resp.status_code == 503
    assert resp.json() == {"status": "unavailable"}


# -- the OpenAPI document -------------------------------------------------------------------
def test_openapi_declares_bodies_errors_and_signature_headers(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    create = doc["paths"]["/api/v1/experiments"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ExperimentSpec"
    assert "ExperimentSpec" in doc["components"]["schemas"]
    assert {"401", "413", "422"} <= set(create["responses"])
    task = doc["paths"]["/api/v1/agents/{agent_id}/task"]["get"]
    schemes = {name for req in task["security"] for name in req}
    headers = {
        doc["components"]["securitySchemes"][s]["name"]
        for s in schemes
        if doc["components"]["securitySchemes"][s]["type"] == "apiKey"
    }
    assert {
        "X-Agent-Id",
        "X-Agent-Timestamp",
        "X-Agent-Nonce",
        "X-Agent-Content-SHA256",
        "X-Agent-Signature",
    } <= headers
    assert {"401", "403"} <= set(task["responses"])


def test_the_operator_can_delete_an_agent_so_it_enrols_a_new_key(server: Server) -> None:
    _enrol(server)
    op = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.delete(f"{server.url}/api/v1/agents/ue0").status_code == 401
    assert httpx.delete(f"{server.url}/api/v1/agents/ue0", headers=op).status_code == 204
    assert httpx.get(f"{server.url}/api/v1/agents/ue0", headers=op).status_code == 404
    _enrol(server)  # a new key for the same id


def test_nonces_are_bounded_per_agent_without_dropping_live_ones() -> None:
    from controller.api.nonces import NonceCache

    cache = NonceCache(window_s=60.0, per_agent=3)
    now = time.time()
    assert [cache.first_use("a", n, now) for n in "xyz"] == [True, True, True]
    assert not cache.first_use("a", "w", now)  # full of live nonces: refused, none evicted
    assert not cache.first_use("a", "x", now)
    assert cache.first_use("b", "x", now)  # another agent is unaffected


def test_a_long_poll_returns_the_task_as_soon_as_a_stage_opens(server: Server) -> None:
    """Issue 13: GET /task?wait_s=W answers when a stage gives the agent work, not after W."""
    import threading

    from controller.engine.board import StageKey
    from protocol.rounds import Task

    key = _enrol(server)
    path = "/api/v1/agents/ue0/task?wait_s=1"
    idle = httpx.get(server.url + path, headers=_signed(key, "ue0", "GET", path), timeout=10)
    assert idle.json()["stage"] == "idle"  # nothing opened: idle after the wait
    board = server.app.state.service.board
    task = Task(experiment_id="e", round=0, attempt=1, stage="train")
    opener = threading.Timer(0.5, board.open_stage, (StageKey("e", 0, 1, "train"), {"ue0": task}))
    path = "/api/v1/agents/ue0/task?wait_s=20"
    started = time.monotonic()
    opener.start()
    got = httpx.get(server.url + path, headers=_signed(key, "ue0", "GET", path), timeout=30)
    assert got.json()["stage"] == "train"
    assert time.monotonic() - started < 10  # woken by the stage, long before the 20 s wait
    too_long = "/api/v1/agents/ue0/task?wait_s=31"
    resp = httpx.get(server.url + too_long, headers=_signed(key, "ue0", "GET", too_long))
    assert resp.status_code == 422
