"""Long-term identity of an agent: an Ed25519 key pair enrolled with the controller.

Every message a client sends is signed with it, and every client checks the signatures on the
keys the server relays against the roster it enrolled with, so keys cannot be substituted.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protocol.secagg.errors import MessageRejectedError, Reason

__all__ = ["SIGNATURE_BYTES", "IdentityKey", "verify_signature"]

#: Bytes of an Ed25519 signature.
SIGNATURE_BYTES = 64
_PUBLIC_BYTES = 32


class IdentityKey:
    """An Ed25519 private key with the raw public key other parties enrol."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_bytes = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> IdentityKey:
        """A fresh identity."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> IdentityKey:
        """Load the raw 32-byte private key (as stored on the board)."""
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """Raw 32-byte private key, for storing on the board (keep it secret)."""
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, data: bytes) -> bytes:
        """64-byte Ed25519 signature of ``data``."""
        return self._private.sign(data)


def verify_signature(public: bytes, signature: bytes, data: bytes, *, client_id: str) -> None:
    """Check ``signature`` on ``data`` under the raw Ed25519 key ``public``.

    Raises:
        MessageRejectedError: ``bad_signature`` naming ``client_id`` when it does not verify.
    """
    if len(public) != _PUBLIC_BYTES or len(signature) != SIGNATURE_BYTES:
        raise MessageRejectedError(
            Reason.BAD_SIGNATURE,
            "identity key or signature has the wrong size.",
            client_id=client_id,
        )
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except InvalidSignature:
        raise MessageRejectedError(
            Reason.BAD_SIGNATURE,
            "signature does not verify under the enrolled key.",
            client_id=client_id,
        ) from None
