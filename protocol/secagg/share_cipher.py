"""Encryption of the Shamir shares one client sends another: AES-256-GCM.

The key is derived (HKDF, see :mod:`protocol.secagg.keys`) from the X25519 agreement of the
sender's and the recipient's encryption keys, for this direction, experiment and round. The
ciphertext is ``nonce (12 bytes) || AES-GCM(plaintext) || tag (16 bytes)``, with the
experiment, round, sender and recipient as associated data, and the plaintext names the pair
again, so a ciphertext moved to another pair, round or experiment fails to decrypt.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.secagg._canonical import canonical
from protocol.secagg.errors import MessageRejectedError, Reason
from protocol.secagg.keys import PROTOCOL_LABEL
from protocol.secagg.shamir import SHARE_BYTES

__all__ = ["SharePair", "decrypt_shares", "encrypt_shares"]

_NONCE_BYTES = 12
_TAG_BYTES = 16


class SharePair(NamedTuple):
    """The two shares one owner gives one holder (66-byte field elements)."""

    seed: bytes
    """Share of the owner's self-mask seed ``b_u``."""
    mask_key: bytes
    """Share of the owner's X25519 masking private key."""


def _plaintext(sender: str, recipient: str, shares: SharePair) -> bytes:
    return canonical(sender, recipient, shares.seed, shares.mask_key)


def _aad(experiment_id: str, round_id: int, sender: str, recipient: str) -> bytes:
    return canonical(PROTOCOL_LABEL, "shares", experiment_id, round_id, sender, recipient)


def encrypt_shares(
    key: bytes, shares: SharePair, *, experiment_id: str, round_id: int, sender: str, recipient: str
) -> bytes:
    """``nonce || AES-256-GCM(key, shares)`` bound to the round and the (sender, recipient) pair."""
    nonce = os.urandom(_NONCE_BYTES)
    data = _plaintext(sender, recipient, shares)
    return nonce + AESGCM(key).encrypt(
        nonce, data, _aad(experiment_id, round_id, sender, recipient)
    )


def decrypt_shares(
    key: bytes, ciphertext: bytes, *, experiment_id: str, round_id: int, sender: str, recipient: str
) -> SharePair:
    """The shares in ``ciphertext``.

    Raises:
        MessageRejectedError: ``decryption_failed`` naming ``sender`` when the ciphertext was
            altered, made for another pair or round, or holds something other than two shares.
    """
    fail = MessageRejectedError(
        Reason.DECRYPTION_FAILED,
        "encrypted shares do not open for this pair and round.",
        client_id=sender,
    )
    if len(ciphertext) < _NONCE_BYTES + _TAG_BYTES:
        raise fail
    try:
        data = AESGCM(key).decrypt(
            ciphertext[:_NONCE_BYTES],
            ciphertext[_NONCE_BYTES:],
            _aad(experiment_id, round_id, sender, recipient),
        )
    except InvalidTag:
        raise fail from None
    expected_head = canonical(sender, recipient)
    tail = data[len(expected_head) :]
    if not data.startswith(expected_head) or len(tail) != 2 * (8 + SHARE_BYTES):
        raise fail
    seed_len = struct.unpack(">Q", tail[:8])[0]
    key_len = struct.unpack(">Q", tail[8 + SHARE_BYTES : 16 + SHARE_BYTES])[0]
    if seed_len != SHARE_BYTES or key_len != SHARE_BYTES:
        raise fail
    return SharePair(seed=tail[8 : 8 + SHARE_BYTES], mask_key=tail[16 + SHARE_BYTES :])
