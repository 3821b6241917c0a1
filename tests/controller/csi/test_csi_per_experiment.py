"""Two running experiments each have their own CSI subscription (real ZeroMQ): starting the
second does not replace the first's, and each sees its own APs' messages."""

from __future__ import annotations

import time

import numpy as np
import zmq

from controller.csi_source import CSIGainSource
from protocol.csi import CSIMessage, encode_csi_multipart
from protocol.spec import ExperimentSpec, parse_spec


def _spec(name: str, ap: str, ue: str) -> ExperimentSpec:
    return parse_spec(
        {
            "name": name,
            "topology": {"area_m": 100.0, "aps": [{"id": ap}], "ues": [{"id": ue}, {"id": "x"}]},
        }
    )


def _msg(ap: str, ue: str, frame: int) -> CSIMessage:
    return CSIMessage(
        ap_id=ap,
        frame=frame,
        t_ns=frame * 200_000,
        fc_hz=3.5e9,
        fs_hz=1e6,
        ue_ids=(ue, "x"),
        h=np.ones((2, 2), dtype=np.complex128),
        noise_var=1e-13,
        snr_db=np.zeros(2),
        est="ls",
    )


def test_two_experiments_keep_their_own_subscriptions() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    source = CSIGainSource([f"tcp://127.0.0.1:{port}"], stale_s=5.0)
    try:
        a = source.attach("exp-a", _spec("a", "apA", "ueA"))
        b = source.attach("exp-b", _spec("b", "apB", "ueB"))
        deadline, frame = time.monotonic() + 10, 0
        while time.monotonic() < deadline:
            frame += 1
            for ap, ue in (("apA", "ueA"), ("apB", "ueB")):
                pub.send_multipart(encode_csi_multipart(_msg(ap, ue, frame)))
            status = source.status()["experiments"]
            # Each experiment's subscriber reads at its own pace: wait until exp-a has also
            # seen (and refused) an apB message, not only its own apA.
            if status["exp-a"]["counters"]["unknown_ap"] > 0 and all(
                s["aps"][ap]["frame"] > 0
                for s, ap in ((status["exp-a"], "apA"), (status["exp-b"], "apB"))
            ):
                break
            time.sleep(0.05)
        status = source.status()["experiments"]
        assert set(status) == {"exp-a", "exp-b"}
        assert status["exp-a"]["aps"]["apA"]["frame"] > 0
        assert status["exp-b"]["aps"]["apB"]["frame"] > 0
        # Each store refuses the other experiment's AP as unknown: they are separate.
        assert status["exp-a"]["counters"]["unknown_ap"] > 0
        gains_a, info_a = a.gains(["ueA"])
        gains_b, _ = b.gains(["ueB"])
        assert gains_a is not None
        assert gains_b is not None
        assert np.isfinite(gains_a).all()
        assert np.isfinite(gains_b).all()
        assert info_a["source"] == "csi"
        source.detach("exp-a")
        assert set(source.status()["experiments"]) == {"exp-b"}
    finally:
        source.stop()
        pub.close(linger=0)
