"""Agent request signatures: Ed25519 over the method, path, timestamp and body digest.

After enrolment an agent signs every request with its long-term identity key; the controller
verifies with the public key it stored at enrolment. Headers: ``X-Agent-Id``,
``X-Agent-Timestamp`` (Unix seconds, float) and ``X-Agent-Signature`` (base64).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Dict, Optional, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SignatureError",
    "load_or_create_identity",
    "public_key_b64",
    "sign_request",
    "verify_request",
]

HEADER_ID = "X-Agent-Id"
HEADER_TIMESTAMP = "X-Agent-Timestamp"
HEADER_SIGNATURE = "X-Agent-Signature"


class SignatureError(ValueError):
    """A request signature that does not verify; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _message(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, digest)).encode()


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key of ``key``, base64."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign_request(
    key: Ed25519PrivateKey,
    agent_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    now: Optional[float] = None,
) -> Dict[str, str]:
    """Headers that authenticate one request (``path`` without scheme and host)."""
    timestamp = "%.3f" % (time.time() if now is None else now)
    signature = key.sign(_message(method, path, timestamp, body))
    return {
        HEADER_ID: agent_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: base64.b64encode(signature).decode(),
    }


def verify_request(
    public_key_b64_: str,
    headers: Dict[str, str],
    method: str,
    path: str,
    body: bytes,
    window_s: float,
    now: Optional[float] = None,
) -> None:
    """Check a signed request; raise :class:`SignatureError` naming what is wrong.

    Header names are matched case-insensitively.
    """
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = headers[HEADER_TIMESTAMP.lower()]
        signature = base64.b64decode(headers[HEADER_SIGNATURE.lower()], validate=True)
        when = float(timestamp)
    except KeyError as err:
        raise SignatureError(f"missing header {err.args[0]}") from None
    except ValueError:
        raise SignatureError("malformed timestamp or signature header") from None
    skew = abs((time.time() if now is None else now) - when)
    if skew > window_s:
        raise SignatureError(f"timestamp is {skew:.0f} s off (window {window_s:g} s)")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64_))
        public.verify(signature, _message(method, path, timestamp, body))
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify") from None


def load_or_create_identity(path: Union[str, Path]) -> Ed25519PrivateKey:
    """The agent's identity key from a PEM file, created (mode 0600) when absent."""
    p = Path(path)
    if p.exists():
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{p}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    p.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    p.touch(mode=0o600)
    p.write_bytes(pem)
    return key
