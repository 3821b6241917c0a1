"""The controller's CSI subscriber over real ZeroMQ: bad messages are counted, never fatal."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from controller.csi import CSIStore, CSISubscriber, combined_gain, snr_per_watt, thermal_noise_w
from protocol.csi import CSIMessage, encode_csi, encode_csi_multipart

UES = ("ue0", "ue1", "ue2")


def _msg(ap: str = "ap0", frame: int = 1, n_ant: int = 2, scale: float = 1.0) -> CSIMessage:
    h = scale * (np.arange(3 * n_ant).reshape(3, n_ant) + 1j)
    return CSIMessage(
        ap_id=ap,
        frame=frame,
        t_ns=frame * 200_000,
        fc_hz=3.5e9,
        fs_hz=1e6,
        ue_ids=UES,
        h=h.astype(np.complex128),
        noise_var=2.0,
        snr_db=np.zeros(3),
        est="mmse",
    )


def _wait(cond: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def test_malformed_csi_over_zeromq_is_counted_and_never_fatal() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    store = CSIStore(ap_ids=["ap0", "ap1"], ue_ids=UES, n_ant={"ap0": 2, "ap1": 2}, max_age_s=30)
    sub = CSISubscriber([f"tcp://127.0.0.1:{port}"], store).start()
    try:
        for warm in range(1, 200):  # until the subscription has reached the publisher
            pub.send_multipart(encode_csi_multipart(_msg("ap0", frame=warm)))
            if store.counters.accepted:
                break
            time.sleep(0.02)
        time.sleep(0.2)
        pub.send_multipart(encode_csi_multipart(_msg("ap0", frame=warm + 3)))
        _wait(lambda: store.latest("ap0").frame == warm + 3)  # type: ignore[union-attr]
        c0 = store.counters
        base = c0.received
        bad_version = {"v": 2}
        obj = json.loads(encode_csi(_msg("ap0", frame=warm + 9)))
        bad: list[list[bytes]] = [
            [b"csi.ap0", b"\x00\x01 not json"],  # garbage bytes
            [b"csi.ap0", json.dumps({**obj, "h": [[[1, 0]]]}).encode()],  # wrong shape
            [b"csi.ap0", json.dumps({**obj, **bad_version}).encode()],  # bad version
            [b"csi.ap0", json.dumps(obj).replace('"noise_var": 2.0', '"noise_var": NaN').encode()],
            [b"csi.ap0", json.dumps({**obj, "snr_db": [1, 2]}).encode()],  # wrong shape
            encode_csi_multipart(_msg("ap7", frame=9)),  # unknown AP
            encode_csi_multipart(_msg("ap1", frame=9, n_ant=1)),  # not the AP's antennas
            [b"csi.ap0"],  # one frame only
            [b"csi.ap0", b"{}", b"extra"],  # three frames
            encode_csi_multipart(_msg("ap0", frame=warm + 3)),  # frame did not increase
            encode_csi_multipart(_msg("ap0", frame=warm + 1)),  # frame went back
            encode_csi_multipart(_msg("ap1", frame=2, scale=2.0)),  # good
            encode_csi_multipart(_msg("ap0", frame=warm + 4)),  # good
        ]
        for frames in bad:
            pub.send_multipart(frames)
        _wait(lambda: store.counters.received >= base + len(bad))
        c = store.counters
        assert c.received == base + len(bad)
        assert c.received == c.accepted + c.malformed + c.unknown_ap + c.stale
        delta = (
            c.accepted - c0.accepted,
            c.malformed - c0.malformed,
            c.unknown_ap - c0.unknown_ap,
            c.stale - c0.stale,
        )
        assert delta == (2, 8, 1, 2)
        assert c.by_reason["garbage"] == 3
        assert c.by_reason["version"] == 1
        assert c.by_reason["nonfinite"] == 1
        assert c.by_reason["shape"] == 3
        assert sub.running
        assert sub.loop_errors == 0
        snap = store.snapshot()
        assert snap.h.shape == (2, 2, 3)  # AP x antenna x UE
        assert list(snap.frame) == [warm + 4, 2]
        np.testing.assert_array_equal(snap.h[1, :, 2], 2.0 * (np.array([4, 5]) + 1j))
        assert not snap.stale.any()
        assert snap.valid.all()
    finally:
        sub.stop()
        pub.close(linger=0)
    assert not sub.running


def test_staleness_per_ap_and_restart_of_frame_numbers() -> None:
    now = [100.0]
    store = CSIStore(ap_ids=["ap0", "ap1"], ue_ids=UES, max_age_s=1.0, clock=lambda: now[0])
    assert store.ingest(_msg("ap0", frame=10))
    now[0] += 0.5
    assert not store.ingest(_msg("ap0", frame=2))  # fresh AP: going back is stale
    assert store.staleness() == {"ap0": pytest.approx(0.5), "ap1": float("inf")}
    now[0] += 1.0
    snap = store.snapshot()
    assert snap.stale.tolist() == [True, True]
    assert not snap.valid.any()
    assert store.ingest(_msg("ap0", frame=1))  # silent > max_age: the AP restarted
    assert store.counters.resets == 1
    assert store.snapshot().stale.tolist() == [False, True]


def test_combined_gain_is_sum_of_channel_powers_in_the_sim() -> None:
    store = CSIStore(ap_ids=["ap0", "ap1"], ue_ids=UES)
    m0, m1 = _msg("ap0", 1), _msg("ap1", 1, scale=3.0)
    store.ingest(m0)
    store.ingest(m1)
    snap = store.snapshot()
    # noise_var of both messages is 2.0; with noise_power_w = 2.0, G_u = sum_l ||h_ul||^2.
    expect = np.sum(np.abs(m0.h) ** 2, axis=1) + np.sum(np.abs(m1.h) ** 2, axis=1)
    np.testing.assert_allclose(combined_gain(snap, noise_power_w=2.0), expect)
    np.testing.assert_allclose(snr_per_watt(snap), expect / 2.0)
    assert thermal_noise_w(20e6) == pytest.approx(10 ** ((-174 + 73.0103 + 7 - 30) / 10), rel=1e-4)


def test_controller_csi_does_not_import_the_radio_side() -> None:
    code = (
        "import sys, controller.csi; bad = [m for m in ('ap_cluster', 'sim_backend', 'gnuradio')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
