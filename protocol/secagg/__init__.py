"""Secure aggregation (DESIGN section 7): primitives and wire messages shared by both ends.

Practical secure aggregation (Bonawitz et al., CCS 2017) with an optional sparse neighbour graph
(SecAgg+, Bell et al., CCS 2020). The server side is :mod:`controller.secagg`, the client side
:mod:`edge_agent.secagg`; they meet only through the messages in :mod:`.messages`.

Kept Python 3.8 compatible: edge boards import this package.
"""

from __future__ import annotations

from protocol.secagg.errors import MessageRejectedError, Reason, RoundFailedError, SecAggError
from protocol.secagg.graph import is_complete, neighbour_graph
from protocol.secagg.identity import IdentityKey, verify_signature
from protocol.secagg.keys import Purpose, agree, derive_key, generate_x25519
from protocol.secagg.messages import (
    AdvertiseKeys,
    EncryptedShare,
    ForwardedShare,
    KeysBroadcast,
    MaskedInput,
    MaskedInputHeader,
    RevealedShare,
    RoundSetup,
    ShareKeys,
    SharesForward,
    UnmaskRequest,
    UnmaskShares,
)
from protocol.secagg.prg import apply_masks, prg
from protocol.secagg.quantization import (
    check_encoded,
    check_ring,
    choose_ring_bits,
    decode_mean,
    decode_sum,
    encode,
    max_level,
    quantisation_bound,
    ring_dtype,
)
from protocol.secagg.stages import CLIENT_STAGES, Stage

__all__ = [
    "CLIENT_STAGES",
    "AdvertiseKeys",
    "EncryptedShare",
    "ForwardedShare",
    "IdentityKey",
    "KeysBroadcast",
    "MaskedInput",
    "MaskedInputHeader",
    "MessageRejectedError",
    "Purpose",
    "Reason",
    "RevealedShare",
    "RoundFailedError",
    "RoundSetup",
    "SecAggError",
    "ShareKeys",
    "SharesForward",
    "Stage",
    "UnmaskRequest",
    "UnmaskShares",
    "agree",
    "apply_masks",
    "check_encoded",
    "check_ring",
    "choose_ring_bits",
    "decode_mean",
    "decode_sum",
    "derive_key",
    "encode",
    "generate_x25519",
    "is_complete",
    "max_level",
    "neighbour_graph",
    "prg",
    "quantisation_bound",
    "ring_dtype",
    "verify_signature",
]
