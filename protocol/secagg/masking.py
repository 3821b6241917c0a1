"""The keys a round derives, in one place so that client and server derive them alike.

A client ``u`` masks its encoded input ``x_u`` as (mod 2^k)::

    y_u = x_u + PRG(self_key(b_u))
              + sum_{v in N(u), u < v} PRG(s_uv)
              - sum_{v in N(u), u > v} PRG(s_uv)

over its neighbours ``v`` that shared keys, with ``s_uv = pair_mask_key(...)`` the same for both
ends of the pair. Client ids compare as strings.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.secagg._canonical import canonical
from protocol.secagg.keys import PROTOCOL_LABEL, Purpose, agree, derive_key

__all__ = ["pair_mask_key", "pair_sign", "seed_commitment", "self_mask_key", "share_key"]


def pair_mask_key(
    private: X25519PrivateKey,
    peer_public: bytes,
    *,
    experiment_id: str,
    round_id: int,
    me: str,
    peer: str,
) -> bytes:
    """AES key of the pairwise mask of ``me`` and ``peer`` (symmetric in the pair)."""
    first, second = sorted((me, peer))
    return derive_key(
        agree(private, peer_public),
        purpose=Purpose.PAIR_MASK,
        experiment_id=experiment_id,
        round_id=round_id,
        first=first,
        second=second,
    )


def pair_sign(me: str, peer: str) -> int:
    """+1 when ``me`` adds the pairwise mask with ``peer``, -1 when it subtracts it."""
    if me == peer:
        raise ValueError("`me` and `peer` must differ.")
    return 1 if me < peer else -1


def share_key(
    private: X25519PrivateKey,
    peer_public: bytes,
    *,
    experiment_id: str,
    round_id: int,
    sender: str,
    recipient: str,
) -> bytes:
    """AES-GCM key for the shares ``sender`` sends ``recipient`` (one direction)."""
    return derive_key(
        agree(private, peer_public),
        purpose=Purpose.SHARE_ENCRYPTION,
        experiment_id=experiment_id,
        round_id=round_id,
        first=sender,
        second=recipient,
    )


def self_mask_key(seed: bytes, *, experiment_id: str, round_id: int, owner: str) -> bytes:
    """AES key of ``owner``'s own mask, from its 32-byte seed ``b_u``."""
    return derive_key(
        seed,
        purpose=Purpose.SELF_MASK,
        experiment_id=experiment_id,
        round_id=round_id,
        first=owner,
        second=owner,
    )


def seed_commitment(seed: bytes, *, experiment_id: str, round_id: int, owner: str) -> bytes:
    """SHA-256 commitment to ``owner``'s seed, which the server checks a reconstruction against."""
    return hashlib.sha256(
        canonical(PROTOCOL_LABEL, "seed-commitment", experiment_id, round_id, owner, seed)
    ).digest()
