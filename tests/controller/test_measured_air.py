"""MeasuredAir: the APs' pilot measurements at the frames nearest those asked for."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from controller.air import AirChannel, MeasuredAir, SimAir
from controller.csi import CSIStore
from protocol.csi import CSIMessage, encode_csi_multipart

UES = ("ue0", "ue1", "ue2")


def _msg(ap: str, frame: int, scale: float, ue_ids: tuple[str, ...] = UES) -> CSIMessage:
    """``h[k] = scale * (k + 1) * [1, 1j]``: ``||h_k||^2 = 2 (scale (k + 1))^2``."""
    k = np.arange(1, len(ue_ids) + 1, dtype=np.float64)[:, None]
    return CSIMessage(
        ap_id=ap,
        frame=frame,
        t_ns=frame * 200_000,
        fc_hz=3.5e9,
        fs_hz=1e6,
        ue_ids=ue_ids,
        h=(scale * k * np.array([[1.0, 1j]])).astype(np.complex128),
        noise_var=4.0 if ap == "ap0" else 2.0,
        snr_db=np.zeros(len(ue_ids)),
        est="ls",
    )


def _power(ap: str, scale: float, k: int) -> float:
    """``||h_k||^2 / noise_var`` of ``_msg(ap, ., scale)``."""
    return 2.0 * (scale * (k + 1)) ** 2 / (4.0 if ap == "ap0" else 2.0)


def _store() -> CSIStore:
    store = CSIStore(ap_ids=["ap0", "ap1", "ap2"], ue_ids=UES, max_age_s=60.0)
    for frame, scale in [(100, 1.0), (200, 2.0), (300, 3.0)]:
        assert store.ingest_multipart(encode_csi_multipart(_msg("ap0", frame, scale)))
    # ap1 reports only ue2 and ue0, in that order
    for frame, scale in [(150, 10.0), (250, 20.0)]:
        msg = _msg("ap1", frame, scale, ue_ids=("ue2", "ue0"))
        assert store.ingest_multipart(encode_csi_multipart(msg))
    return store  # ap2: never a message


def test_measured_air_takes_each_aps_nearest_frame() -> None:
    air = MeasuredAir(_store(), noise_power_w=0.5)
    frames = np.array([[0, 149, 151, 200, 250, 251, 10_000], [120, 120, 120, 120, 120, 120, 120]])
    got = air.true_gains(["ue0", "ue1"], frames)
    # ap0 nearest: 0->100, 149->100, 151->200, 200->200, 250->200 (tie: earlier), 251->300
    ap0 = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0]
    # ap1 nearest: <=200 -> 150, >200 -> 250; ue0 is its row 1
    ap1 = [10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0]
    want0 = [_power("ap0", a, 0) + _power("ap1", b, 1) for a, b in zip(ap0, ap1, strict=True)]
    np.testing.assert_allclose(got[0], 0.5 * np.array(want0))
    # ue1: ap1 never reports it; frame 120 -> ap0's frame 100
    np.testing.assert_allclose(got[1], 0.5 * _power("ap0", 1.0, 1))
    assert got.shape == frames.shape


def test_history_is_bounded_and_restarts_with_the_ap() -> None:
    now = [0.0]
    store = CSIStore(ap_ids=["ap0"], ue_ids=UES, max_age_s=1.0, history=2, clock=lambda: now[0])
    for frame in (10, 20, 30):
        assert store.ingest(_msg("ap0", frame, 1.0))
    assert [m.frame for m in store.history("ap0")] == [20, 30]
    assert store.history("ap9") == []
    air = MeasuredAir(store, noise_power_w=1.0)
    assert air.true_gains(["ue0"], np.array([[10]]))[0, 0] == pytest.approx(_power("ap0", 1, 0))
    now[0] += 5.0  # silent past max_age_s: the AP restarted, frames count from 0 again
    assert store.ingest(_msg("ap0", 3, 7.0))
    assert [m.frame for m in store.history("ap0")] == [3]
    got = air.true_gains(["ue0"], np.array([[30]]))
    assert got[0, 0] == pytest.approx(_power("ap0", 7.0, 0))  # not the old run's frame 30
    assert store.histories() == {"ap0": store.history("ap0")}
    # rejected messages never enter the history
    assert not store.ingest(_msg("ap0", 2, 1.0))
    assert [m.frame for m in store.history("ap0")] == [3]
    with pytest.raises(ValueError, match="`history`"):
        CSIStore(ap_ids=None, history=0)


def test_no_measurement_is_zero_and_bad_input_is_named() -> None:
    empty = MeasuredAir(CSIStore(ap_ids=["ap0"], ue_ids=UES), noise_power_w=1.0)
    np.testing.assert_array_equal(empty.true_gains(["ue0"], np.array([[5, 6]])), [[0.0, 0.0]])
    air: AirChannel = MeasuredAir(_store(), noise_power_w=1.0)  # satisfies the protocol
    with pytest.raises(ValueError, match="`frames`"):
        air.true_gains(["ue0", "ue1"], np.array([[1, 2]]))
    with pytest.raises(ValueError, match="`frames`"):
        air.true_gains(["ue0"], np.array([[-1]]))
    with pytest.raises(ValueError, match="`noise_power_w`"):
        MeasuredAir(_store(), noise_power_w=0.0)
    sim: AirChannel = SimAir("tcp://127.0.0.1:9", timeout_s=0.1)
    assert isinstance(sim, SimAir)
    sim.close()


def test_controller_air_does_not_import_the_radio_side() -> None:
    code = (
        "import sys, controller.air; bad = [m for m in ('ap_cluster', 'sim_backend', 'gnuradio')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
