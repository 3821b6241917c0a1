"""Key agreement and derivation: X25519, then HKDF-SHA256 bound to (experiment, round, pair).

Every symmetric key of a round comes out of :func:`derive_key`, whose HKDF ``info`` names the
protocol version, the purpose, the experiment, the round and the two clients, so a key agreed for
one round, one purpose or one pair is useless for any other.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from enum import Enum
from typing import Tuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.secagg._canonical import canonical
from protocol.secagg.errors import Reason, SecAggError

__all__ = [
    "KEY_BYTES",
    "PROTOCOL_LABEL",
    "Purpose",
    "agree",
    "derive_key",
    "generate_x25519",
    "private_from_bytes",
    "private_to_bytes",
    "public_to_bytes",
]

#: Bytes of an X25519 key (private or public) and of every derived symmetric key.
KEY_BYTES = 32
#: Names this protocol and its version in every derivation and signature.
PROTOCOL_LABEL = "cfmimo-secagg-v1"


class Purpose(str, Enum):
    """What a derived key is for."""

    SHARE_ENCRYPTION = "share-encryption"
    """AES-256-GCM key for the shares ``sender`` sends ``recipient`` (one direction)."""
    PAIR_MASK = "pair-mask"
    """AES-256-CTR key of the pairwise mask of two clients (symmetric in the pair)."""
    SELF_MASK = "self-mask"
    """AES-256-CTR key of a client's own mask, from its seed ``b_u``."""


def generate_x25519() -> Tuple[X25519PrivateKey, bytes]:
    """A fresh X25519 key pair: (private key, raw 32-byte public key)."""
    private = X25519PrivateKey.generate()
    return private, public_to_bytes(private)


def public_to_bytes(private: X25519PrivateKey) -> bytes:
    """Raw 32-byte public key of ``private``."""
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def private_to_bytes(private: X25519PrivateKey) -> bytes:
    """Raw 32-byte private key (what a client Shamir-shares)."""
    return private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def private_from_bytes(raw: bytes) -> X25519PrivateKey:
    """X25519 private key from its raw 32 bytes."""
    if len(raw) != KEY_BYTES:
        raise SecAggError(Reason.BAD_LENGTH, f"`raw` must be {KEY_BYTES} bytes, got {len(raw)}.")
    return X25519PrivateKey.from_private_bytes(raw)


def agree(private: X25519PrivateKey, peer_public: bytes) -> bytes:
    """X25519 shared secret with the raw public key ``peer_public``.

    Raises:
        SecAggError: ``bad_public_key`` when the key has the wrong size or is a low-order point.
    """
    if len(peer_public) != KEY_BYTES:
        raise SecAggError(
            Reason.BAD_PUBLIC_KEY,
            f"`peer_public` must be {KEY_BYTES} bytes, got {len(peer_public)}.",
        )
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise SecAggError(Reason.BAD_PUBLIC_KEY, "`peer_public` is a low-order point.") from None


def derive_key(
    secret: bytes,
    *,
    purpose: Purpose,
    experiment_id: str,
    round_id: int,
    first: str,
    second: str,
) -> bytes:
    """HKDF-SHA256 of ``secret`` to a 32-byte key bound to purpose, round and the client pair.

    ``first`` and ``second`` are client ids in the order the purpose needs: the caller sorts them
    for symmetric keys (``PAIR_MASK``) and passes (sender, recipient) for directed ones.
    """
    info = canonical(PROTOCOL_LABEL, Purpose(purpose).value, experiment_id, round_id, first, second)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(secret)
