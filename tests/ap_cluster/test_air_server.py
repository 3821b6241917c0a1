"""The simulated air over real ZeroMQ: AirServer (AP side) and SimAir (controller side)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from ap_cluster import cluster_config_from_spec, load_cluster_config
from ap_cluster.air import AirServer, AirServerError
from controller.air import AirUnavailableError, SimAir
from protocol.air import MAX_FRAMES_PER_UE, decode_reply
from protocol.spec import ExperimentSpec, parse_spec
from sim_backend import World, true_gains

ROOT = Path(__file__).resolve().parents[2]


def _spec(backend: str = "sim") -> ExperimentSpec:
    return parse_spec(
        {
            "name": "air",
            "seed": 5,
            "topology": {
                "aps": [{"id": "ap0", "antennas": 2}, {"id": "ap1", "antennas": 1}],
                "ues": [{"id": f"ue{u}", "speed_mps": 3.0} for u in range(4)],
            },
            "radio": {"sample_rate_hz": 2e5, "tau_c": 100, "tau_p": 4},
            "backend": {"kind": backend},
        }
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_gains_over_the_wire_equal_true_gains_in_this_process() -> None:
    spec = _spec()
    port = _free_port()
    frames = np.array([[10, 500, 11, 10], [0, 0, 3000, 299], [7, 8, 9, 2000]], dtype=np.int64)
    with (
        AirServer(spec, f"tcp://127.0.0.1:{port}") as server,
        SimAir(f"tcp://127.0.0.1:{port}", timeout_s=10) as air,
    ):
        got = air.true_gains(["ue3", "ue0", "ue3"], frames)
        again = air.true_gains(["ue1"], frames[:1])
    want = true_gains(World(spec), np.array([3, 0, 3]), frames)
    np.testing.assert_array_equal(got, want)  # JSON floats round-trip exactly
    np.testing.assert_array_equal(again, true_gains(World(spec), np.array([1]), frames[:1]))
    assert got.shape == (3, 4)
    assert server.served == 2
    assert server.rejected == 0
    assert not server.running


def test_an_idle_server_builds_the_fading_ahead_and_answers_the_same_gains() -> None:
    spec = _spec()
    port = _free_port()
    frames = np.array([[20_000, 20_100, 19_990, 25_000]], dtype=np.int64)
    with (
        AirServer(spec, f"tcp://127.0.0.1:{port}", poll_ms=5) as server,
        SimAir(f"tcp://127.0.0.1:{port}", timeout_s=10) as air,
    ):
        assert server.caught_up == 0
        server.advance_to(20_000)
        server.advance_to(300)  # the horizon never moves back
        assert _until(lambda: server.caught_up == 20_000, 10), server.caught_up
        got = air.true_gains(["ue2"], frames)
        # requests reached 5,000 frames past the APs: the server builds that far ahead
        assert server.ahead == 5_000
        server.advance_to(21_000)
        assert _until(lambda: server.caught_up == 26_000, 10), server.caught_up
        later = np.array([[25_990, 21_500, 26_000]], dtype=np.int64)
        got_later = air.true_gains(["ue1"], later)
    np.testing.assert_array_equal(got, true_gains(World(spec), np.array([2]), frames))
    np.testing.assert_array_equal(got_later, true_gains(World(spec), np.array([1]), later))


def _ask(sock: zmq.Socket[bytes], frames: list[bytes]) -> str:
    sock.send_multipart(frames)
    assert sock.poll(10_000), "no reply"
    rep = decode_reply(sock.recv())
    assert rep.gains is None
    assert rep.error is not None
    return rep.error


def test_malformed_requests_get_error_replies_and_the_server_keeps_serving() -> None:
    spec = _spec()
    port = _free_port()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    raw = ctx.socket(zmq.REQ)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(f"tcp://127.0.0.1:{port}")
    too_long = {"v": 1, "ue_ids": ["ue0"], "frames": [[0] * (MAX_FRAMES_PER_UE + 1)]}
    bad = [
        ([b"\x00\x01 garbage"], "payload"),
        ([b"{}", b"second", b"third"], "1 message frame"),
        ([json.dumps({"v": 9, "ue_ids": ["ue0"], "frames": [[1]]}).encode()], "`v`"),
        ([json.dumps({"v": 1, "ue_ids": ["ue0"], "frames": [[-3]]}).encode()], "frames.0.0"),
        ([json.dumps({"v": 1, "ue_ids": ["ue0", "ue1"], "frames": [[1]]}).encode()], "frames"),
        ([json.dumps(too_long).encode()], f"1..{MAX_FRAMES_PER_UE} frames"),
        ([json.dumps({"v": 1, "ue_ids": ["ue0", "ue9"], "frames": [[1], [2]]}).encode()], "ue9"),
    ]
    try:
        with AirServer(spec, f"tcp://127.0.0.1:{port}") as server:
            for frames, named in bad:
                assert named in _ask(raw, frames)
            assert server.rejected == len(bad)
            assert server.served == 0
            assert server.running
            with SimAir(f"tcp://127.0.0.1:{port}") as air:
                g = air.true_gains(["ue2"], np.array([[4, 5]]))
            np.testing.assert_array_equal(
                g, true_gains(World(spec), np.array([2]), np.array([[4, 5]]))
            )
            assert server.served == 1
    finally:
        raw.close(linger=0)


def test_unknown_ue_raises_air_unavailable_naming_it() -> None:
    port = _free_port()
    with (
        AirServer(World(_spec()), f"tcp://127.0.0.1:{port}") as server,
        SimAir(f"tcp://127.0.0.1:{port}") as air,
    ):
        with pytest.raises(AirUnavailableError, match="unknown UE `ue7`"):
            air.true_gains(["ue0", "ue7"], np.array([[1], [1]]))
        assert air.true_gains(["ue0"], np.array([[1]])).shape == (1, 1)  # socket still usable
        with pytest.raises(ValueError, match="`frames`"):
            air.true_gains(["ue0"], np.array([[-1]]))  # refused before sending
    assert server.rejected == 1
    assert server.served == 1


def test_absent_server_times_out_then_the_next_call_works_once_it_is_up() -> None:
    port = _free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    air = SimAir(endpoint, timeout_s=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(AirUnavailableError, match=f"{endpoint}.*0.5 s"):
            air.true_gains(["ue0"], np.array([[1]]))
        assert time.monotonic() - t0 >= 0.45
        spec = _spec()
        with AirServer(spec, endpoint) as server:
            air.timeout_s = 10.0
            got = air.true_gains(["ue1"], np.array([[2, 3]]))
            assert server.served == 1  # the lost request was dropped, not replayed
        np.testing.assert_array_equal(
            got, true_gains(World(spec), np.array([1]), np.array([[2, 3]]))
        )
        air.close()
        with pytest.raises(AirUnavailableError, match="closed"):
            air.true_gains(["ue1"], np.array([[2]]))
    finally:
        air.close()


def test_a_taken_endpoint_is_a_clear_error() -> None:
    port = _free_port()
    with (
        AirServer(_spec(), f"tcp://127.0.0.1:{port}"),
        pytest.raises(AirServerError, match=f"air: cannot bind tcp://127.0.0.1:{port}"),
    ):
        AirServer(_spec(), f"tcp://127.0.0.1:{port}").start()


def test_cluster_config_air_endpoint(tmp_path: Path) -> None:
    cfg = cluster_config_from_spec(_spec(), pub_base_port=5600, air_port=5700)
    assert cfg.air is not None
    assert cfg.air.bind == "tcp://*:5700"
    assert cfg.air_endpoint() == "tcp://127.0.0.1:5700"
    assert load_cluster_config(cfg.dump_yaml(tmp_path / "c.yaml")) == cfg
    assert cluster_config_from_spec(_spec(), pub_base_port=5600).air_endpoint() is None
    with pytest.raises(ValueError, match=r"`air_port`.*sim backend"):
        cluster_config_from_spec(_spec("uhd"), pub_base_port=5600, air_port=5700)
    with pytest.raises(ValueError, match=r"`air_port`.*CSI ports"):
        cluster_config_from_spec(_spec(), pub_base_port=5600, air_port=5601)
    uhd = cluster_config_from_spec(_spec("uhd"), pub_base_port=5600).model_dump(mode="json")
    uhd["air"] = {"bind": "tcp://*:5700", "connect": "tcp://127.0.0.1:5700"}
    (tmp_path / "u.yaml").write_text(json.dumps(uhd))
    with pytest.raises(ValueError, match="air: the simulated air needs the sim backend"):
        load_cluster_config(tmp_path / "u.yaml")


def _serve(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "testbed", "ap", "serve", "--cluster", str(path), *extra]


def test_ap_serve_runs_the_air_server_until_it_exits(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "serve-air",
            "topology": {"aps": [{"id": "ap0", "antennas": 1}], "ues": [{"id": "ue0"}]},
            "radio": {"sample_rate_hz": 1e5, "tau_c": 100, "tau_p": 4},
        }
    )
    air_port = _free_port()
    cfg = cluster_config_from_spec(spec, pub_base_port=_free_port(), air_port=air_port)
    cfg = cfg.model_copy(update={"heartbeat_interval_s": 0.2})
    path = cfg.dump_yaml(tmp_path / "cluster.yaml")
    health = tmp_path / "health.json"
    log = (tmp_path / "serve.out").open("w")
    cmd = _serve(path, "--health-file", str(health), "--report-every", "0.2")
    serve = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    endpoint = cfg.air_endpoint()
    assert endpoint is not None
    try:
        with SimAir(endpoint, timeout_s=30) as air:
            got = air.true_gains(["ue0"], np.array([[100, 5000]]))
        np.testing.assert_array_equal(
            got, true_gains(World(spec), np.array([0]), np.array([[100, 5000]]))
        )

        def _air() -> dict[str, Any]:
            try:
                return dict(json.loads(health.read_text())["air"])
            except (OSError, ValueError, KeyError):
                return {}

        assert _until(lambda: _air().get("served") == 1, 30), _air()
        # the APs' heartbeats reach the air, which builds the fading up to their frame
        assert _until(lambda: _air().get("caught_up", 0) > 0, 30), _air()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        log.close()
    out = (tmp_path / "serve.out").read_text()
    assert serve.returncode == 0, out
    assert f"air: tcp://*:{air_port}" in out
    assert "Traceback" not in out
    # the port is free again: the server stopped with the process
    with AirServer(spec, f"tcp://127.0.0.1:{air_port}"):
        pass
    # a taken air port: a clear error, no AP process started
    with AirServer(spec, f"tcp://*:{air_port}"):
        cmd = _serve(path, "--duration", "10")
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "air: cannot bind" in res.stderr
    assert "Traceback" not in res.stderr
    assert "started pid" not in res.stderr
