"""The CSI wire format: round trip, and every kind of bad message rejected with its reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from protocol.csi import (
    CSI_VERSION,
    INT64_MAX,
    MAX_ANTENNAS,
    MAX_ID_LEN,
    MAX_PAYLOAD_BYTES,
    MAX_UES,
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


def _text(name: str, text: str) -> bytes:
    """A payload whose field ``name`` is the raw JSON ``text`` (``1e400``, ``NaN``, 5000 digits)."""
    return _payload(**{name: "@@"}).replace(b'"@@"', text.encode())


@pytest.mark.parametrize(
    ("payload", "reason", "name"),
    [
        (_payload(frame=2**63), "field", "frame"),
        (_payload(frame=10**400), "field", "frame"),
        (_payload(t_ns=2**63), "field", "t_ns"),
        (_payload(t_ns=-1), "field", "t_ns"),
        (_payload(n_ant=0), "field", "n_ant"),
        (_payload(n_ant=MAX_ANTENNAS + 1), "field", "n_ant"),
        (_payload(n_ant=10**400), "field", "n_ant"),
        (_payload(n_ant=True), "field", "n_ant"),
        (_payload(frame=True), "field", "frame"),
        (_payload(v=True), "field", "v"),
        (_payload(fc_hz=10**400), "nonfinite", "fc_hz"),  # float() of it overflows
        (_payload(noise_var=-(10**400)), "nonfinite", "noise_var"),
        (_text("fs_hz", "1e400"), "nonfinite", "fs_hz"),  # parses to inf
        (_text("fc_hz", "-Infinity"), "nonfinite", "fc_hz"),
        (_text("frame", "9" * 5000), "garbage", "JSON"),  # too many digits for Python
        (_payload(ue_ids=[]), "field", "ue_ids"),
        (_payload(ue_ids=[f"u{i}" for i in range(MAX_UES + 1)]), "field", "ue_ids"),
        (_payload(ue_ids=["ue0", "ue1", "u" * (MAX_ID_LEN + 1)]), "field", "ue_ids"),
        (_payload(ue_ids=["ue0", "ue1", "ue 2"]), "field", "ue_ids"),
        (_payload(ue_ids=["ue0", "ue1", "ue2\n"]), "field", "ue_ids"),
        (_payload(ue_ids=["ue0", "ue1", "\ud800"]), "field", "ue_ids"),
        (_payload(ap_id=""), "field", "ap_id"),
        (_payload(ap_id="a" * (MAX_ID_LEN + 1)), "field", "ap_id"),
        (_payload(ap_id="ap0/../x"), "field", "ap_id"),
        (_payload(ap_id="\u00e4p0"), "field", "ap_id"),
        (_payload(h=[[[1.0, "0"]] * 2] * 3), "field", "h"),
        (_payload(h=[[[1.0, True]] * 2] * 3), "field", "h"),
        (_payload(h=[[[1.0, 10**400]] * 2] * 3), "nonfinite", "h"),
        (_payload(snr_db=["1", "2", "3"]), "field", "snr_db"),
        (_payload(snr_db=[1.0, False, 2.0]), "field", "snr_db"),
        (_payload(snr_db=[1.0, -(10**400), 2.0]), "nonfinite", "snr_db"),
        (_payload(h=[[[1.0, 0.0], [0.0, -1e101]]] * 3), "field", "h"),
        (_payload(snr_db=[1.0, 1e101, 2.0]), "field", "snr_db"),
        (_payload(noise_var=1e-101), "field", "noise_var"),
        (_payload(noise_var=0.0), "field", "noise_var"),
        (_payload(fc_hz=1e101), "field", "fc_hz"),
        (_payload(fs_hz=-1.0), "field", "fs_hz"),
        (b"[" * 100_000 + b"]" * 100_000, "garbage", "JSON"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "garbage", "JSON"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), "oversize", "bytes"),
        ("{}", "garbage", "bytes"),
        (12345, "garbage", "bytes"),
    ],
)
def test_out_of_range_payloads_are_rejected_naming_the_field(
    payload: bytes, reason: str, name: str
) -> None:
    with pytest.raises(CSIDecodeError) as info:
        decode_csi(payload)
    assert info.value.reason == reason
    assert name in str(info.value)


def test_the_int64_limits_are_accepted() -> None:
    back = decode_csi(encode_csi(_msg(frame=INT64_MAX, t_ns=INT64_MAX)))
    assert back.frame == back.t_ns == INT64_MAX
    np.array([back.frame], dtype=np.int64)  # what the store does with it
    assert decode_csi(_payload(frame=0, t_ns=0, n_ant=2)).frame == 0


@pytest.mark.parametrize(
    ("changes", "reason", "name"),
    [
        ({"frame": 2**63}, "field", "frame"),
        ({"frame": 10**5000}, "field", "frame"),  # too long even to print in full
        ({"frame": np.uint64(2**64 - 1)}, "field", "frame"),
        ({"frame": "7"}, "field", "frame"),
        ({"t_ns": -1}, "field", "t_ns"),
        ({"fc_hz": 10**400}, "nonfinite", "fc_hz"),
        ({"fs_hz": True}, "field", "fs_hz"),
        ({"noise_var": "1"}, "field", "noise_var"),
        ({"ap_id": None}, "field", "ap_id"),
        ({"ue_ids": "ue0"}, "field", "ue_ids"),
        ({"h": [[1.0, 2.0]] * 3}, "field", "h"),
        ({"h": np.zeros((3, 2), dtype=object)}, "field", "h"),
        ({"h": np.zeros((3, MAX_ANTENNAS + 1))}, "shape", "h"),
        ({"snr_db": None}, "field", "snr_db"),
        ({"est": ["ls"]}, "field", "est"),
        ({"v": "1"}, "version", "v"),
    ],
)
def test_validate_raises_only_decode_errors_whatever_the_attributes_hold(
    changes: dict[str, object], reason: str, name: str
) -> None:
    with pytest.raises(CSIDecodeError) as info:
        _msg(**changes).validate()
    assert info.value.reason == reason
    assert name in str(info.value)
    assert len(str(info.value)) < 200


def test_numpy_integers_are_valid_frame_numbers() -> None:
    assert _msg(frame=np.int64(INT64_MAX), t_ns=np.uint32(5)).validate().frame == INT64_MAX


def _largest(n_ant: int, k: int) -> CSIMessage:
    """A message whose every id and number is at its longest text."""
    x = -1.2345678901234567e-100
    return _msg(
        ap_id="a" * MAX_ID_LEN,
        frame=INT64_MAX,
        t_ns=INT64_MAX,
        fc_hz=-x,
        ue_ids=tuple(f"{i:0{MAX_ID_LEN}d}" for i in range(k)),
        h=np.full((k, n_ant), complex(x, x)),
        noise_var=-x,
        snr_db=np.full(k, x),
    )


def test_payload_limit_fits_the_largest_message_of_a_two_antenna_ap() -> None:
    payload = encode_csi(_largest(2, MAX_UES))
    assert 0.7 * MAX_PAYLOAD_BYTES < len(payload) <= MAX_PAYLOAD_BYTES
    assert decode_csi(payload).h.shape == (MAX_UES, 2)
    assert len(encode_csi(_largest(MAX_ANTENNAS, 300))) <= MAX_PAYLOAD_BYTES
    with pytest.raises(CSIDecodeError) as info:
        encode_csi(_largest(MAX_ANTENNAS, MAX_UES))  # refused at the source
    assert info.value.reason == "oversize"


def test_payload_padded_to_exactly_the_limit_is_accepted() -> None:
    payload = encode_csi(_msg())
    assert decode_csi(payload + b" " * (MAX_PAYLOAD_BYTES - len(payload))).frame == 7
    with pytest.raises(CSIDecodeError) as info:
        decode_csi(payload + b" " * (MAX_PAYLOAD_BYTES + 1 - len(payload)))
    assert info.value.reason == "oversize"


def test_topic_is_bounded_and_frames_may_be_any_buffer() -> None:
    topic, payload = encode_csi_multipart(_msg())
    frames = [memoryview(topic), bytearray(payload)]
    assert decode_csi_multipart(frames).ap_id == "ap0"  # type: ignore[arg-type]
    with pytest.raises(CSIDecodeError) as info:
        decode_csi_multipart([b"csi." + b"a" * 1000, payload])
    assert info.value.reason == "garbage"
    with pytest.raises(CSIDecodeError) as info:
        decode_csi_multipart([topic, 10**12])  # type: ignore[list-item]
    assert info.value.reason == "garbage"


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
