"""Wire messages of a secure-aggregation round, with their bytes codecs.

Server to client (what ``server.outbox(stage, client_id)`` returns):

==================  =====================  ==========================================
stage               message                content
==================  =====================  ==========================================
advertise_keys      :class:`RoundSetup`     participants, thresholds, graph, encoding
share_keys          :class:`KeysBroadcast`  the signed key adverts of the neighbours
masked_input        :class:`SharesForward`  the encrypted shares addressed to the client
unmask              :class:`UnmaskRequest`  who sent a masked input (the survivors)
==================  =====================  ==========================================

Client to server: :class:`AdvertiseKeys`, :class:`ShareKeys`, :class:`MaskedInput`,
:class:`UnmaskShares`, each signed with the client's Ed25519 identity key over a canonical
encoding of its kind, experiment, round, sender and content.

Every message is JSON (bytes fields in base64) except :class:`MaskedInput`, a binary frame
(``b"SAMI"``, a 4-byte big-endian header length, the JSON header, then the vector as raw
little-endian integers) that fits an ``application/octet-stream`` body. ``from_bytes`` refuses
anything malformed with :class:`~protocol.secagg.errors.MessageRejectedError` (``malformed``).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import struct
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Type, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from typing_extensions import Annotated, Literal

from protocol.secagg._canonical import canonical
from protocol.secagg.errors import MessageRejectedError, Reason
from protocol.secagg.graph import is_complete, neighbour_graph
from protocol.secagg.identity import SIGNATURE_BYTES, IdentityKey, verify_signature
from protocol.secagg.keys import KEY_BYTES, PROTOCOL_LABEL
from protocol.secagg.quantization import check_ring, choose_ring_bits, ring_dtype
from protocol.secagg.shamir import SHARE_BYTES

__all__ = [
    "AdvertiseKeys",
    "EncryptedShare",
    "ForwardedShare",
    "KeysBroadcast",
    "MaskedInput",
    "MaskedInputHeader",
    "RevealedShare",
    "RoundSetup",
    "ShareKeys",
    "SharesForward",
    "UnmaskRequest",
    "UnmaskShares",
]

_MAX_LIST = 1 << 16
_FRAME_MAGIC = b"SAMI"
_MAX_HEADER = 1 << 16


def _b64_in(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ValueError("must be base64") from None
    return value


def _b64_out(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_B64_IN = BeforeValidator(_b64_in)
_B64_OUT = PlainSerializer(_b64_out, return_type=str, when_used="json")
KeyBytes = Annotated[bytes, _B64_IN, _B64_OUT, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
SignatureBytes = Annotated[
    bytes, _B64_IN, _B64_OUT, Field(min_length=SIGNATURE_BYTES, max_length=SIGNATURE_BYTES)
]
DigestBytes = Annotated[bytes, _B64_IN, _B64_OUT, Field(min_length=32, max_length=32)]
ShareBytes = Annotated[
    bytes, _B64_IN, _B64_OUT, Field(min_length=SHARE_BYTES, max_length=SHARE_BYTES)
]
CiphertextBytes = Annotated[bytes, _B64_IN, _B64_OUT, Field(min_length=1, max_length=1024)]
ClientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ExperimentId = Annotated[str, Field(min_length=1, max_length=128)]
RoundId = Annotated[int, Field(ge=0)]

M = TypeVar("M", bound="_Message")
S = TypeVar("S", bound="_Signed")


class _Message(BaseModel):
    """A JSON message: forbids unknown fields, immutable, bytes in base64."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: ExperimentId
    round_id: RoundId

    def to_bytes(self) -> bytes:
        """UTF-8 JSON."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls: Type[M], data: bytes) -> M:
        """Parse ``data``; raises MessageRejectedError (``malformed``) naming the bad field."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "message"
            raise MessageRejectedError(
                Reason.MALFORMED, f"{cls.__name__}.{where}: {first['msg']}"
            ) from None


class _Signed(_Message):
    """A client message signed with the sender's Ed25519 identity key."""

    kind: str
    client_id: ClientId
    signature: SignatureBytes

    def _content(self) -> List[Any]:
        raise NotImplementedError

    def signing_bytes(self) -> bytes:
        """What the signature covers: protocol, kind, experiment, round, sender and content."""
        head: List[Any] = [
            PROTOCOL_LABEL,
            self.kind,
            self.experiment_id,
            self.round_id,
            self.client_id,
        ]
        return canonical(*head, *self._content())

    @classmethod
    def signed(cls: Type[S], identity: IdentityKey, **fields: Any) -> S:
        """Build the message from ``fields`` and sign it with ``identity``."""
        unsigned = cls(signature=bytes(SIGNATURE_BYTES), **fields)
        return unsigned.model_copy(update={"signature": identity.sign(unsigned.signing_bytes())})

    def verify(self, public: bytes) -> None:
        """Raise MessageRejectedError (``bad_signature``) unless signed by the key ``public``."""
        verify_signature(public, self.signature, self.signing_bytes(), client_id=self.client_id)


# -- stage 0: advertise keys ----------------------------------------------------------------


class RoundSetup(_Message):
    """Parameters of one round, sent to every participant before it advertises its keys.

    Build it with :meth:`create`, which fills in the defaults and sizes the ring.
    """

    kind: Literal["round_setup"] = "round_setup"
    participants: List[ClientId] = Field(
        min_length=2, max_length=_MAX_LIST, description="Selected clients, sorted, distinct."
    )
    threshold: int = Field(ge=2, description="Fewest clients that must reach each stage.")
    neighbours: Optional[int] = Field(
        default=None, ge=2, description="k of the k-regular graph (SecAgg+); None: complete."
    )
    share_threshold: int = Field(ge=2, description="Shamir threshold of each client's secrets.")
    dim: int = Field(ge=1, le=1 << 31, description="Vector length D.")
    clip: float = Field(gt=0, allow_inf_nan=False, description="Clipping bound per coordinate.")
    fraction_bits: int = Field(ge=0, le=52, description="Fixed-point fraction bits.")
    ring_bits: Literal[32, 64] = Field(description="k of the ring Z_{2^k}.")

    @model_validator(mode="after")
    def _consistent(self) -> RoundSetup:
        ids, n = self.participants, len(self.participants)
        if list(ids) != sorted(set(ids)):
            raise ValueError("`participants` must be sorted and distinct.")
        if self.threshold > n:
            raise ValueError(f"`threshold` ({self.threshold}) exceeds the {n} participants.")
        if self.neighbours is None:
            if self.share_threshold != self.threshold:
                raise ValueError("`share_threshold` must equal `threshold` on the complete graph.")
        else:
            if is_complete(n, self.neighbours):
                raise ValueError(f"`neighbours` must be below {n - 1}, or None (complete graph).")
            if self.neighbours % 2 and n % 2:
                raise ValueError("`neighbours` must be even when the participants are odd.")
            if self.share_threshold > self.neighbours + 1:
                raise ValueError("`share_threshold` exceeds `neighbours` + 1 (the holders).")
        return self

    @classmethod
    def create(
        cls,
        *,
        experiment_id: str,
        round_id: int,
        participants: Sequence[str],
        dim: int,
        threshold: Optional[int] = None,
        neighbours: Optional[int] = None,
        share_threshold: Optional[int] = None,
        clip: float = 1.0,
        fraction_bits: int = 16,
        ring_bits: Optional[int] = None,
    ) -> RoundSetup:
        """A checked set-up with defaults.

        ``threshold`` defaults to ceil(2n/3); ``neighbours`` >= n - 1 means the complete graph;
        on a k-regular graph ``share_threshold`` defaults to a majority of the k + 1 holders
        (the least clients accept), which tolerates just under half of them dropping out;
        ``ring_bits`` to
        the smallest ring in which n inputs cannot overflow (refused with ``modulus_too_small``
        when none or the given one is too small).
        """
        ids = sorted(participants)
        n = len(ids)
        t = threshold if threshold is not None else max(2, math.ceil(2 * n / 3))
        k = None if is_complete(n, neighbours) else neighbours
        if share_threshold is not None:
            st = share_threshold
        elif k is None:
            st = t
        else:
            st = (k + 1) // 2 + 1
        bits = ring_bits if ring_bits is not None else choose_ring_bits(n, clip, fraction_bits)
        check_ring(bits, n, clip, fraction_bits)
        return cls(
            experiment_id=experiment_id,
            round_id=round_id,
            participants=ids,
            threshold=t,
            neighbours=k,
            share_threshold=st,
            dim=dim,
            clip=clip,
            fraction_bits=fraction_bits,
            ring_bits=bits,
        )

    @property
    def complete(self) -> bool:
        """Whether every pair of participants masks (SecAgg rather than SecAgg+)."""
        return self.neighbours is None

    def graph(self) -> Dict[str, FrozenSet[str]]:
        """Neighbours of each participant (see :func:`protocol.secagg.graph.neighbour_graph`)."""
        return neighbour_graph(
            self.participants,
            self.neighbours,
            experiment_id=self.experiment_id,
            round_id=self.round_id,
        )

    def x_of(self, client_id: str) -> int:
        """Shamir coordinate of ``client_id``: 1 + its index among the participants."""
        return self.participants.index(client_id) + 1


class AdvertiseKeys(_Signed):
    """A client's two X25519 public keys for this round, signed with its identity key."""

    kind: Literal["advertise_keys"] = "advertise_keys"
    enc_public: KeyBytes = Field(description="Key agreement for share encryption.")
    mask_public: KeyBytes = Field(description="Key agreement for pairwise masks.")

    def _content(self) -> List[Any]:
        return [self.enc_public, self.mask_public]


# -- stage 1: share keys --------------------------------------------------------------------


class KeysBroadcast(_Message):
    """The key adverts of the recipient's neighbours that reached the server."""

    kind: Literal["keys_broadcast"] = "keys_broadcast"
    recipient: ClientId
    advertisements: List[AdvertiseKeys] = Field(max_length=_MAX_LIST)


class EncryptedShare(BaseModel):
    """Shares of the sender's seed and masking key for one recipient, AES-GCM encrypted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient: ClientId
    ciphertext: CiphertextBytes


class ShareKeys(_Signed):
    """A client's encrypted shares for each live neighbour, and a commitment to its seed."""

    kind: Literal["share_keys"] = "share_keys"
    seed_commitment: DigestBytes = Field(description="SHA-256 binding of the seed b_u.")
    shares: List[EncryptedShare] = Field(max_length=_MAX_LIST)

    def _content(self) -> List[Any]:
        parts: List[Any] = [self.seed_commitment, len(self.shares)]
        for share in self.shares:
            parts += [share.recipient, share.ciphertext]
        return parts


# -- stage 2: masked input ------------------------------------------------------------------


class ForwardedShare(BaseModel):
    """One encrypted share relayed by the server, with its sender."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: ClientId
    ciphertext: CiphertextBytes


class SharesForward(_Message):
    """The encrypted shares addressed to the recipient, from the clients that shared keys."""

    kind: Literal["shares_forward"] = "shares_forward"
    recipient: ClientId
    shares: List[ForwardedShare] = Field(max_length=_MAX_LIST)


class MaskedInputHeader(_Signed):
    """Header of a masked input; the signature covers the SHA-256 of the vector bytes."""

    kind: Literal["masked_input"] = "masked_input"
    ring_bits: Literal[32, 64]
    dim: int = Field(ge=1, le=1 << 31)
    payload_sha256: DigestBytes

    def _content(self) -> List[Any]:
        return [self.ring_bits, self.dim, self.payload_sha256]


class MaskedInput:
    """A masked input: the signed header and the vector as raw little-endian bytes.

    ``payload``: ``dim * ring_bits / 8`` bytes, the ``[dim]`` uint32/uint64 vector ``y_u``.
    """

    def __init__(self, header: MaskedInputHeader, payload: bytes) -> None:
        self.header = header
        self.payload = payload

    @classmethod
    def signed(
        cls,
        identity: IdentityKey,
        *,
        experiment_id: str,
        round_id: int,
        client_id: str,
        vector: npt.NDArray[np.unsignedinteger],
    ) -> MaskedInput:
        """Frame and sign ``vector`` (``[D]`` uint32 or uint64)."""
        bits = vector.dtype.itemsize * 8
        payload = vector.astype(ring_dtype(bits).newbyteorder("<"), copy=False).tobytes()
        header = MaskedInputHeader.signed(
            identity,
            experiment_id=experiment_id,
            round_id=round_id,
            client_id=client_id,
            ring_bits=bits,
            dim=vector.size,
            payload_sha256=hashlib.sha256(payload).digest(),
        )
        return cls(header, payload)

    @property
    def client_id(self) -> str:
        return self.header.client_id

    def vector(self) -> npt.NDArray[np.unsignedinteger]:
        """``[dim]`` read-only uint32/uint64 view of the payload."""
        return np.frombuffer(
            self.payload, dtype=ring_dtype(self.header.ring_bits).newbyteorder("<")
        )

    def verify(self, public: bytes) -> None:
        """Raise MessageRejectedError (``bad_signature``) unless header and vector are signed."""
        if hashlib.sha256(self.payload).digest() != self.header.payload_sha256:
            raise MessageRejectedError(
                Reason.BAD_SIGNATURE,
                "vector does not match its signed digest.",
                client_id=self.client_id,
            )
        self.header.verify(public)

    def to_bytes(self) -> bytes:
        """``b"SAMI" || len(header) (4 bytes, big-endian) || header JSON || payload``."""
        header = self.header.to_bytes()
        return b"".join([_FRAME_MAGIC, struct.pack(">I", len(header)), header, self.payload])

    @classmethod
    def from_bytes(cls, data: bytes) -> MaskedInput:
        """Parse a frame; raises MessageRejectedError (``malformed`` or ``bad_length``)."""
        view = memoryview(data)
        if len(view) < 8 or bytes(view[:4]) != _FRAME_MAGIC:
            raise MessageRejectedError(Reason.MALFORMED, "not a masked-input frame (bad magic).")
        (size,) = struct.unpack(">I", view[4:8])
        if size > _MAX_HEADER or len(view) < 8 + size:
            raise MessageRejectedError(
                Reason.MALFORMED, "masked-input header length is out of range."
            )
        header = MaskedInputHeader.from_bytes(bytes(view[8 : 8 + size]))
        payload = view[8 + size :]
        if len(payload) != header.dim * header.ring_bits // 8:
            raise MessageRejectedError(
                Reason.BAD_LENGTH,
                f"vector has {len(payload)} bytes; header says dim {header.dim} of "
                f"{header.ring_bits} bits.",
                client_id=header.client_id,
            )
        return cls(header, payload)  # type: ignore[arg-type]


# -- stage 3: unmask ------------------------------------------------------------------------


class UnmaskRequest(_Message):
    """The clients whose masked inputs the server holds (the survivors, sorted)."""

    kind: Literal["unmask_request"] = "unmask_request"
    recipient: ClientId
    survivors: List[ClientId] = Field(max_length=_MAX_LIST)


class RevealedShare(BaseModel):
    """A share the sender holds of ``owner``'s seed or masking key (66-byte field element)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: ClientId
    value: ShareBytes


class UnmaskShares(_Signed):
    """Seed shares of surviving neighbours and masking-key shares of dropped ones."""

    kind: Literal["unmask_shares"] = "unmask_shares"
    seed_shares: List[RevealedShare] = Field(max_length=_MAX_LIST)
    mask_key_shares: List[RevealedShare] = Field(max_length=_MAX_LIST)

    def _content(self) -> List[Any]:
        parts: List[Any] = [len(self.seed_shares)]
        for share in self.seed_shares:
            parts += [share.owner, share.value]
        parts.append(len(self.mask_key_shares))
        for share in self.mask_key_shares:
            parts += [share.owner, share.value]
        return parts
