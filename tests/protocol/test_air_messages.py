"""The air wire format: round trips, limits checked first, every bad field named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from protocol.air import (
    MAX_FRAMES_PER_UE,
    MAX_FRAMES_TOTAL,
    MAX_PAYLOAD_BYTES,
    MAX_UES,
    AirProtocolError,
    AirReply,
    AirRequest,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)


def _raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_round_trips_are_exact() -> None:
    req = AirRequest(ue_ids=["ue0", "ue3"], frames=[[1200, 7, 1200], [0]])
    assert decode_request(encode_request(req)) == req
    gains = [[3.123456789012345e-9, 0.0, 1e-300], [2.5]]
    rep = decode_reply(encode_reply(AirReply(gains=gains)))
    assert rep.gains == gains
    assert rep.error is None
    err = decode_reply(encode_reply(AirReply(error="`ue_ids`: unknown UE `x`")))
    assert err.gains is None
    assert err.error == "`ue_ids`: unknown UE `x`"


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"ue_ids": ["a"], "frames": [[1]]}, "v"),  # no version
        ({"v": 2, "ue_ids": ["a"], "frames": [[1]]}, "v"),
        ({"v": True, "ue_ids": ["a"], "frames": [[1]]}, "v"),
        ({"v": 1, "frames": [[1]]}, "ue_ids"),
        ({"v": 1, "ue_ids": [], "frames": []}, "ue_ids"),
        ({"v": 1, "ue_ids": [3], "frames": [[1]]}, "ue_ids.0"),
        ({"v": 1, "ue_ids": "ue0", "frames": [[1]]}, "ue_ids"),
        ({"v": 1, "ue_ids": ["a"]}, "frames"),
        ({"v": 1, "ue_ids": ["a", "b"], "frames": [[1]]}, "frames"),  # one list per UE
        ({"v": 1, "ue_ids": ["a"], "frames": [[]]}, "frames.0"),
        ({"v": 1, "ue_ids": ["a"], "frames": [5]}, "frames.0"),
        ({"v": 1, "ue_ids": ["a", "b"], "frames": [[1], [2, -1]]}, "frames.1.1"),
        ({"v": 1, "ue_ids": ["a"], "frames": [[1.5]]}, "frames.0.0"),
        ({"v": 1, "ue_ids": ["a"], "frames": [[True]]}, "frames.0.0"),
        ({"v": 1, "ue_ids": ["a"], "frames": [["7"]]}, "frames.0.0"),
        ({"v": 1, "ue_ids": ["a"], "frames": [[2**53]]}, "frames.0.0"),
        ({"v": 1, "ue_ids": ["a"], "frames": [[1]], "extra": 0}, "extra"),
    ],
)
def test_malformed_request_names_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(AirProtocolError) as info:
        decode_request(_raw(obj))
    assert info.value.field == field
    assert f"`{field}`" in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe", b"not json", b"[1, 2]", b'{"v": 1, "ue_ids": ["a"], "frames": [[NaN]]}'],
)
def test_garbage_is_a_payload_error(payload: bytes) -> None:
    with pytest.raises(AirProtocolError) as info:
        decode_request(payload)
    assert info.value.field == "payload"


def test_limits_are_checked_on_the_counts_before_the_entries() -> None:
    # Entries that would each fail validation: the count is named, not the first entry.
    too_many_ues = {"v": 1, "ue_ids": [0] * (MAX_UES + 1), "frames": [[0]] * (MAX_UES + 1)}
    with pytest.raises(AirProtocolError, match=f"1..{MAX_UES} UEs") as info:
        decode_request(_raw(too_many_ues))
    assert info.value.field == "ue_ids"
    long_row = {"v": 1, "ue_ids": ["a"], "frames": [[-1] * (MAX_FRAMES_PER_UE + 1)]}
    with pytest.raises(AirProtocolError, match=f"1..{MAX_FRAMES_PER_UE} frames") as info:
        decode_request(_raw(long_row))
    assert info.value.field == "frames.0"
    n = MAX_FRAMES_TOTAL // MAX_FRAMES_PER_UE + 1
    total = {"v": 1, "ue_ids": ["a"] * n, "frames": [[-1] * MAX_FRAMES_PER_UE] * n}
    with pytest.raises(AirProtocolError, match=f"at most {MAX_FRAMES_TOTAL}") as info:
        decode_request(_raw(total))
    assert info.value.field == "frames"
    with pytest.raises(AirProtocolError, match="bytes exceed") as info:
        decode_request(b" " * (MAX_PAYLOAD_BYTES + 1))
    assert info.value.field == "payload"
    # the largest request allowed passes
    ok = {"v": 1, "ue_ids": ["a"] * (n - 1), "frames": [[0] * MAX_FRAMES_PER_UE] * (n - 1)}
    assert sum(len(r) for r in decode_request(_raw(ok)).frames) == MAX_FRAMES_TOTAL


def test_models_enforce_the_limits_when_built_in_python() -> None:
    with pytest.raises(ValidationError, match="frames"):
        AirRequest(ue_ids=["a"], frames=[[0] * (MAX_FRAMES_PER_UE + 1)])
    with pytest.raises(ValidationError, match="frames"):
        AirRequest(ue_ids=["a", "b"], frames=[[0]])
    with pytest.raises(ValidationError):
        AirReply(gains=[[float("nan")]])
    with pytest.raises(ValidationError, match="exactly one"):
        AirReply()


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"v": 1}, "gains"),  # neither
        ({"v": 1, "gains": [[1.0]], "error": "x"}, "gains"),  # both
        ({"v": 1, "gains": [[-1.0]]}, "gains.0.0"),
        ({"v": 1, "gains": [["a"]]}, "gains.0.0"),
        ({"v": 1, "gains": [[float("inf")]]}, "gains.0.0"),  # sent as 1e400
        ({"v": 1, "error": 3}, "error"),
        ({"v": 3, "error": "x"}, "v"),
    ],
)
def test_malformed_reply_names_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(AirProtocolError) as info:
        decode_reply(_raw(obj).replace(b"Infinity", b"1e400"))
    assert info.value.field == field
