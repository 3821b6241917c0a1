"""The air wire format: the true channel gains of given UEs at given frames (DESIGN section 12).

In simulation the AP cluster serves the simulated world's true combined gain
``G_u(n) = sum_l ||h_{u,l}(n)||^2`` (dimensionless) on a ZeroMQ REP socket; the controller asks
with a REQ socket. One request, one reply, each a single-frame UTF-8 JSON object::

    request  {"v": 1, "ue_ids": ["ue0", "ue3"], "frames": [[1200, 1210], [1200]]}
    reply    {"v": 1, "gains": [[3.1e-9, 2.9e-9], [4.0e-10]], "error": null}
    error    {"v": 1, "gains": null, "error": "`ue_ids`: unknown UE `ue9`"}

``frames[i]`` lists the frames asked for UE ``ue_ids[i]`` (world frame indices, the ``frame``
of the CSI messages); ``gains[i][k]`` answers ``frames[i][k]``. Limits: 1..4096 UEs, 1..100000
frames per UE, at most 1000000 frames in all, frames in ``[0, 2^53)``; the decoders check the
payload size and these counts before validating any entry.

``link.mode: iq`` adds a second request on the same socket: *carry* these transport blocks of
one UE through the PHY (its transmitter, the channel, the APs' receiver), two ZeroMQ frames, a
JSON header and the blocks' bytes back to back (``TB_BYTES`` each, at most
``MAX_CARRY_BLOCKS``)::

    request  {"v": 1, "kind": "carry", "ue_id": "ue0", "mcs": 2, "snr_db": [14.2, 13.9],
              "seed": [7, 3, 0, 12]}                                   + 2 x 500 bytes
    reply    {"v": 1, "decoded": [true, false], "rx_s": 0.011, "error": null}
                                                                       + 2 x 500 bytes

``snr_db[k]`` is the SNR block ``k`` meets (the true SINR of its slot, after combining across
the APs); ``seed`` keys the channel's randomness (noise, phase, carrier offset, timing), so the
same request gets the same answer. A block that did not decode (its CRC failed, or its burst
was missed) comes back as zeros with ``decoded[k]`` false; ``rx_s`` is the receiver's measured
wall time. An error reply has one frame.

Kept Python 3.8 compatible: edge boards import the protocol package.
"""

from __future__ import annotations

import json
from typing import Any, Final, List, Literal, Optional, Sequence

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from typing_extensions import Annotated

__all__ = [
    "AIR_VERSION",
    "MAX_CARRY_BLOCKS",
    "MAX_FRAME",
    "MAX_FRAMES_PER_UE",
    "MAX_FRAMES_TOTAL",
    "MAX_PAYLOAD_BYTES",
    "MAX_UES",
    "TB_BYTES",
    "AirProtocolError",
    "AirReply",
    "AirRequest",
    "CarryReply",
    "CarryRequest",
    "decode_carry_reply",
    "decode_carry_request",
    "decode_reply",
    "decode_request",
    "encode_carry_reply",
    "encode_carry_request",
    "encode_reply",
    "encode_request",
]

AIR_VERSION: Final = 1
#: UEs in one request.
MAX_UES = 4096
#: Frames asked for one UE in one request.
MAX_FRAMES_PER_UE = 100_000
#: Frames in one request, all UEs together.
MAX_FRAMES_TOTAL = 1_000_000
#: Largest frame index (exclusive): integers JSON carries exactly.
MAX_FRAME = 2**53
#: Largest request or reply payload, bytes (1e6 frames or gains of ~25 characters each).
MAX_PAYLOAD_BYTES = 32 * 1024 * 1024
#: Bytes of one transport block of the IQ data plane (``ap_cluster.phy.mcs.TB_BYTES``).
TB_BYTES = 500
#: Blocks in one carry request (about 0.5 M samples at the lowest rate).
MAX_CARRY_BLOCKS = 256
#: Entries of a carry request's ``seed``.
_MAX_SEED_WORDS = 8


class AirProtocolError(ValueError):
    """An air message that cannot be used; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"`{field}`: {message}")


_Frame = Annotated[StrictInt, Field(ge=0, lt=MAX_FRAME)]
_Gain = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AirRequest(_Msg):
    """True gains of ``ue_ids[i]`` at each frame of ``frames[i]``."""

    v: Literal[1] = AIR_VERSION
    ue_ids: List[StrictStr] = Field(min_length=1, max_length=MAX_UES)
    frames: List[List[_Frame]] = Field(
        min_length=1, max_length=MAX_UES, description="One list per UE, frame indices >= 0."
    )

    @model_validator(mode="before")
    @classmethod
    def _limits_first(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _check_counts(data.get("ue_ids"), data.get("frames"))
        return data


class AirReply(_Msg):
    """Either ``gains`` (``[U][K]``, dimensionless, >= 0) or an ``error`` message."""

    v: Literal[1] = AIR_VERSION
    gains: Optional[List[List[_Gain]]] = None
    error: Optional[str] = None

    @model_validator(mode="after")
    def _one_of(self) -> AirReply:
        if (self.gains is None) == (self.error is None):
            raise ValueError("exactly one of `gains` and `error` must be set")
        return self


_SnrDb = Annotated[float, Field(ge=-50.0, le=100.0, allow_inf_nan=False)]
_SeedWord = Annotated[StrictInt, Field(ge=0, lt=2**63)]


class CarryRequest(_Msg):
    """Carry ``len(snr_db)`` blocks of ``ue_id`` at scheme ``mcs``; block ``k`` meets
    ``snr_db[k]`` (dB); ``seed`` keys the channel's randomness."""

    v: Literal[1] = AIR_VERSION
    kind: Literal["carry"] = "carry"
    ue_id: StrictStr = Field(min_length=1, max_length=64)
    mcs: StrictInt = Field(ge=0, le=63, description="The PHY's scheme index.")
    snr_db: List[_SnrDb] = Field(min_length=1, max_length=MAX_CARRY_BLOCKS)
    seed: List[_SeedWord] = Field(min_length=1, max_length=_MAX_SEED_WORDS)


class CarryReply(_Msg):
    """Either ``decoded`` (one flag per block) with the receiver's wall time ``rx_s`` (s,
    measured), or an ``error`` message."""

    v: Literal[1] = AIR_VERSION
    decoded: Optional[List[bool]] = Field(default=None, max_length=MAX_CARRY_BLOCKS)
    rx_s: Optional[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] = None
    error: Optional[str] = None

    @model_validator(mode="after")
    def _one_of(self) -> CarryReply:
        if (self.decoded is None) == (self.error is None):
            raise ValueError("exactly one of `decoded` and `error` must be set")
        return self


def _check_counts(ue_ids: Any, frames: Any) -> None:
    """The size limits, checked on the raw lists before any entry is validated."""
    if isinstance(ue_ids, list) and not 1 <= len(ue_ids) <= MAX_UES:
        raise AirProtocolError("ue_ids", f"needs 1..{MAX_UES} UEs, got {len(ue_ids)}")
    if not isinstance(frames, list):
        return
    if isinstance(ue_ids, list) and len(frames) != len(ue_ids):
        raise AirProtocolError(
            "frames", f"needs one list per UE ({len(ue_ids)}), got {len(frames)}"
        )
    total = 0
    for i, row in enumerate(frames):
        if not isinstance(row, list):
            continue  # the schema names the type error
        if not 1 <= len(row) <= MAX_FRAMES_PER_UE:
            raise AirProtocolError(
                f"frames.{i}", f"needs 1..{MAX_FRAMES_PER_UE} frames, got {len(row)}"
            )
        total += len(row)
    if total > MAX_FRAMES_TOTAL:
        raise AirProtocolError("frames", f"at most {MAX_FRAMES_TOTAL} frames in all, got {total}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise AirProtocolError("payload", f"{len(payload)} bytes exceed {MAX_PAYLOAD_BYTES}")
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise AirProtocolError("payload", "not valid UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise AirProtocolError("payload", "not a JSON object")
    if "v" not in obj:
        raise AirProtocolError("v", "missing")
    v = obj["v"]
    if isinstance(v, bool) or v != AIR_VERSION:
        raise AirProtocolError("v", f"unsupported version {v!r}")
    return obj


def _validated(model: Any, obj: Any, whole: str) -> Any:
    """``model`` validated from ``obj``; a model-level error is named ``whole``."""
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or whole
        raise AirProtocolError(loc, first["msg"]) from None


def encode_request(req: AirRequest) -> bytes:
    """The JSON payload of ``req``."""
    return req.model_dump_json().encode("utf-8")


def decode_request(payload: bytes) -> AirRequest:
    """Parse and validate a request; raise :class:`AirProtocolError` naming the field."""
    obj = _load(payload)
    _check_counts(obj.get("ue_ids"), obj.get("frames"))
    req: AirRequest = _validated(AirRequest, obj, "frames")
    return req


def encode_reply(reply: AirReply) -> bytes:
    """The JSON payload of ``reply``."""
    return reply.model_dump_json().encode("utf-8")


def decode_reply(payload: bytes) -> AirReply:
    """Parse and validate a reply; raise :class:`AirProtocolError` naming the field."""
    rep: AirReply = _validated(AirReply, _load(payload), "gains")
    return rep


def _blocks(data: bytes, count: int, field: str) -> bytes:
    if len(data) != count * TB_BYTES:
        raise AirProtocolError(
            field, f"needs {count} blocks of {TB_BYTES} bytes ({count * TB_BYTES}), got {len(data)}"
        )
    return data


def encode_carry_request(req: CarryRequest, blocks: bytes) -> list[bytes]:
    """The two frames of ``req`` carrying ``blocks`` (``len(req.snr_db)`` blocks back to back)."""
    return [req.model_dump_json().encode("utf-8"), _blocks(blocks, len(req.snr_db), "blocks")]


def decode_carry_request(frames: Sequence[bytes]) -> tuple[CarryRequest, bytes]:
    """Parse a carry request's frames; raise :class:`AirProtocolError` naming the field. The
    block count and the bytes' length are checked before the entries are validated."""
    if len(frames) != 2:
        raise AirProtocolError("payload", f"a carry request has 2 frames, got {len(frames)}")
    obj = _load(frames[0])
    snr = obj.get("snr_db")
    if isinstance(snr, list):
        if not 1 <= len(snr) <= MAX_CARRY_BLOCKS:
            raise AirProtocolError("snr_db", f"needs 1..{MAX_CARRY_BLOCKS} blocks, got {len(snr)}")
        _blocks(frames[1], len(snr), "blocks")
    req: CarryRequest = _validated(CarryRequest, obj, "snr_db")
    return req, frames[1]


def encode_carry_reply(reply: CarryReply, blocks: bytes = b"") -> list[bytes]:
    """One frame for an error, two with the decoded blocks (zeros where not decoded)."""
    head = reply.model_dump_json().encode("utf-8")
    if reply.decoded is None:
        return [head]
    return [head, _blocks(blocks, len(reply.decoded), "blocks")]


def decode_carry_reply(frames: Sequence[bytes], count: int) -> tuple[CarryReply, bytes]:
    """Parse a carry reply for ``count`` blocks; raise :class:`AirProtocolError`."""
    if not 1 <= len(frames) <= 2:
        raise AirProtocolError("payload", f"a carry reply has 1 or 2 frames, got {len(frames)}")
    rep: CarryReply = _validated(CarryReply, _load(frames[0]), "decoded")
    if rep.decoded is None:
        return rep, b""
    if len(rep.decoded) != count or len(frames) != 2:
        raise AirProtocolError("decoded", f"needs {count} flags and the blocks' frame")
    return rep, _blocks(frames[1], count, "blocks")
