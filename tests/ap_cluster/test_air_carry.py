"""The air's burst service over real ZeroMQ: a UE's transport blocks through the GNU Radio PHY
(``link.mode: iq``), AirServer on the AP side and SimAir on the controller's."""

from __future__ import annotations

import json
import socket

import numpy as np
import zmq

from ap_cluster.air import AirServer
from ap_cluster.phy.mcs import MCS_TABLE
from ap_cluster.phy.mcs import TB_BYTES as PHY_TB_BYTES
from controller.air import BurstAir, SimAir
from protocol.air import MAX_CARRY_BLOCKS, TB_BYTES, decode_carry_reply
from protocol.spec import PHY_TB_BITS, ExperimentSpec, parse_spec


def _spec() -> ExperimentSpec:
    return parse_spec(
        {
            "name": "carry",
            "seed": 2,
            "topology": {
                "aps": [{"id": "ap0", "antennas": 1}],
                "ues": [{"id": "ue0"}, {"id": "ue1"}],
            },
            "radio": {"sample_rate_hz": 2e5, "tau_c": 100, "tau_p": 4},
        }
    )


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_wire_block_is_the_phys_block() -> None:
    assert TB_BYTES == PHY_TB_BYTES
    assert PHY_TB_BITS == 8 * TB_BYTES


def test_blocks_cross_the_phy_and_come_back_as_they_decoded() -> None:
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, 6 * TB_BYTES, dtype=np.uint8).tobytes()
    # blocks 0-2 well above 16-QAM 1/2's threshold, 3-5 far below it
    snr = np.array([30.0, 30.0, 30.0, -5.0, -5.0, -5.0])
    port = _port()
    with AirServer(_spec(), f"tcp://127.0.0.1:{port}") as server:
        with SimAir(f"tcp://127.0.0.1:{port}") as air:
            assert isinstance(air, BurstAir)
            ok, got = air.carry("ue1", 2, blocks, snr, [2, 1, 0, 7])
            again = air.carry("ue1", 2, blocks, snr, [2, 1, 0, 7])
        assert server.carried == 2
    assert ok == [True, True, True, False, False, False]
    assert got[: 3 * TB_BYTES] == blocks[: 3 * TB_BYTES]
    assert got[3 * TB_BYTES :] == bytes(3 * TB_BYTES)
    assert again == (ok, got)  # the seed keys the channel: the same request, the same answer


def test_malformed_carry_requests_get_errors_and_the_server_keeps_serving() -> None:
    port = _port()
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    raw = ctx.socket(zmq.REQ)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(f"tcp://127.0.0.1:{port}")

    def head(**over: object) -> bytes:
        msg = {"v": 1, "kind": "carry", "ue_id": "ue0", "mcs": 0, "snr_db": [20.0], "seed": [1]}
        return json.dumps({**msg, **over}).encode()

    block = bytes(TB_BYTES)
    bad = [
        ([head(), block[:-1]], "blocks"),  # one byte short: refused before any work
        ([head(snr_db=[20.0, 20.0]), block], "blocks"),
        ([head(snr_db=[1.0] * (MAX_CARRY_BLOCKS + 1)), block], f"1..{MAX_CARRY_BLOCKS}"),
        ([head(ue_id="ue9"), block], "ue9"),
        ([head(mcs=len(MCS_TABLE)), block], "`mcs`"),
        ([head(snr_db=[float("nan")]).replace(b"NaN", b"1e999"), block], "snr_db"),
        ([b"not json", block], "payload"),
    ]
    try:
        with AirServer(_spec(), f"tcp://127.0.0.1:{port}") as server:
            for frames, named in bad:
                raw.send_multipart(frames)
                assert raw.poll(10_000), "no reply"
                reply, _ = decode_carry_reply(raw.recv_multipart(), 1)
                assert reply.decoded is None
                assert reply.error is not None
                assert named in reply.error, (named, reply.error)
            assert server.rejected == len(bad)
            assert server.carried == 0
            with SimAir(f"tcp://127.0.0.1:{port}") as air:
                ok, got = air.carry("ue0", 0, block, np.array([25.0]), [3])
            assert ok == [True]
            assert got == block
    finally:
        raw.close(linger=0)
