"""The CSI wire format: round trip, and every kind of bad message rejected with its reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from protocol.csi import (
    CSI_VERSION,
    CSIDecodeError,
    CSIMessage,
    decode_csi,
    decode_csi_multipart,
    encode_csi,
    encode_csi_multipart,
)


def _msg(**kw: object) -> CSIMessage:
    rng = np.random.default_rng(0)
    base: dict[str, object] = {
        "ap_id": "ap0",
        "frame": 7,
        "t_ns": 1_400_000,
        "fc_hz": 3.5e9,
        "fs_hz": 1e6,
        "ue_ids": ("ue0", "ue1", "ue2"),
        "h": rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2)),
        "noise_var": 4e-13,
        "snr_db": np.array([1.0, -3.0, 12.5]),
        "est": "mmse",
    }
    base.update(kw)
    return CSIMessage(**base)  # type: ignore[arg-type]


def test_round_trip_is_exact() -> None:
    msg = _msg()
    topic, payload = encode_csi_multipart(msg)
    assert topic == b"csi.ap0"
    back = decode_csi_multipart([topic, payload])
    assert back.ue_ids == msg.ue_ids
    assert back.frame == 7
    assert back.n_ant == 2
    np.testing.assert_array_equal(back.h, msg.h)
    np.testing.assert_array_equal(back.snr_db, msg.snr_db)
    obj = json.loads(payload)
    assert obj["v"] == CSI_VERSION
    assert obj["n_ant"] == 2
    assert len(obj["h"][0][0]) == 2


def _payload(**changes: object) -> bytes:
    obj = json.loads(encode_csi(_msg()))
    obj.update(changes)
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe garbage", "garbage"),
        (b"[1, 2, 3]", "garbage"),
        (_payload(v=99), "version"),
        (_payload(h=[[[1.0, 0.0]]]), "shape"),
        (_payload(n_ant=3), "shape"),
        (_payload(snr_db=[1.0]), "shape"),
        (_payload(h="nope"), "shape"),
        (_payload(est="zf"), "field"),
        (_payload(frame="7"), "field"),
        (_payload(frame=-1), "field"),
        (_payload(noise_var=0.0), "field"),
        (_payload(ue_ids=["a", "a", "b"]), "field"),
        (b'{"v": 1}', "field"),
    ],
)
def test_bad_payloads_are_rejected_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(CSIDecodeError) as info:
        decode_csi(payload)
    assert info.value.reason == reason


def test_nan_is_rejected_as_nonfinite() -> None:
    text = encode_csi(_msg()).decode().replace('"noise_var":4e-13', '"noise_var":NaN')
    with pytest.raises(CSIDecodeError) as info:
        decode_csi(text.encode())
    assert info.value.reason == "nonfinite"
    h = _msg().h.copy()
    h[1, 0] = np.nan
    with pytest.raises(CSIDecodeError):
        encode_csi(_msg(h=h))


def test_topic_must_match_ap_and_two_frames() -> None:
    _, payload = encode_csi_multipart(_msg())
    with pytest.raises(CSIDecodeError):
        decode_csi_multipart([b"csi.ap9", payload])
    with pytest.raises(CSIDecodeError):
        decode_csi_multipart([payload])


def test_csi_module_stays_python_38_compatible() -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.skip("vermin not installed")
    root = Path(__file__).resolve().parents[2]
    cmd = [vermin, "-t=3.8-", "--no-tips", "--violations", "--eval-annotations", "protocol/csi.py"]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
