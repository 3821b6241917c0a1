"""Agent request signatures: Ed25519 over the method, path, timestamp, nonce and body digest.

After enrolment an agent signs every request with its long-term identity key; the controller
verifies with the public key it stored at enrolment. Headers:

- ``X-Agent-Id``: the agent;
- ``X-Agent-Timestamp``: Unix seconds (a finite float), within the server's skew window;
- ``X-Agent-Nonce``: 32 hex digits, fresh per request: the server accepts each nonce once;
- ``X-Agent-Content-SHA256``: the hex SHA-256 of the body;
- ``X-Agent-Signature``: base64 Ed25519 signature of the five lines
  ``METHOD``, ``path?query``, timestamp, nonce, body digest.

The digest travels in a header so that the server checks the signature (and refuses a stranger)
before it reads a byte of the body; it then reads at most the route's limit and compares the
body's digest with the signed one (:func:`check_body`).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import time
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "HEADER_DIGEST",
    "HEADER_ID",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SIGNED_HEADERS",
    "SignatureError",
    "SignedHeaders",
    "check_body",
    "load_or_create_identity",
    "public_key_b64",
    "sign_request",
    "verify_headers",
]

HEADER_ID = "X-Agent-Id"
HEADER_TIMESTAMP = "X-Agent-Timestamp"
HEADER_NONCE = "X-Agent-Nonce"
HEADER_DIGEST = "X-Agent-Content-SHA256"
HEADER_SIGNATURE = "X-Agent-Signature"
#: Every header a signed request carries, with what it holds (documented in the OpenAPI).
SIGNED_HEADERS: Dict[str, str] = {
    HEADER_ID: "The enrolled agent's id.",
    HEADER_TIMESTAMP: "Unix time of signing, s (finite; within the server's window).",
    HEADER_NONCE: "32 hex digits, never reused.",
    HEADER_DIGEST: "Hex SHA-256 of the request body.",
    HEADER_SIGNATURE: "Base64 Ed25519 signature of method, path, timestamp, nonce and digest.",
}

_NONCE = re.compile(r"^[0-9a-f]{32}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_MAX_SIGNATURE_B64 = 100  # an Ed25519 signature is 64 bytes, 88 base64 characters


class SignatureError(ValueError):
    """A request signature that does not verify; ``reason`` says why (for the server's log)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SignedHeaders(NamedTuple):
    """What a verified request's headers vouch for."""

    agent_id: str
    timestamp: float
    nonce: str
    digest: str


def _message(method: str, path: str, timestamp: str, nonce: str, digest: str) -> bytes:
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode()


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
    nonce = secrets.token_hex(16)
    digest = hashlib.sha256(body).hexdigest()
    signature = key.sign(_message(method, path, timestamp, nonce, digest))
    return {
        HEADER_ID: agent_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_DIGEST: digest,
        HEADER_SIGNATURE: base64.b64encode(signature).decode(),
    }


def verify_headers(
    public_key_b64_: str,
    headers: Dict[str, str],
    method: str,
    path: str,
    window_s: float,
    now: Optional[float] = None,
    not_before: float = 0.0,
) -> SignedHeaders:
    """Check a signed request's headers, before its body is read.

    Raises :class:`SignatureError` naming what is wrong: a missing or malformed header, a
    timestamp outside ``window_s`` of ``now`` (or NaN, or before ``not_before``: requests signed
    before the server started cannot be replayed into it), or a signature that does not verify.
    Header names are matched case-insensitively. The nonce's freshness and the body's digest
    are the caller's to check (:func:`check_body`).
    """
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        agent_id = headers[HEADER_ID.lower()]
        timestamp = headers[HEADER_TIMESTAMP.lower()]
        nonce = headers[HEADER_NONCE.lower()]
        digest = headers[HEADER_DIGEST.lower()]
        signature_b64 = headers[HEADER_SIGNATURE.lower()]
    except KeyError as err:
        raise SignatureError(f"missing header {err.args[0]}") from None
    if not _NONCE.match(nonce) or not _DIGEST.match(digest):
        raise SignatureError("malformed nonce or digest header")
    if len(signature_b64) > _MAX_SIGNATURE_B64 or len(timestamp) > 32:
        raise SignatureError("oversized timestamp or signature header")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        when = float(timestamp)
    except (ValueError, binascii.Error):
        raise SignatureError("malformed timestamp or signature header") from None
    if not math.isfinite(when):
        raise SignatureError("timestamp is not finite")
    clock = time.time() if now is None else now
    skew = abs(clock - when)
    if not skew <= window_s:
        raise SignatureError(f"timestamp is {skew:.0f} s off (window {window_s:g} s)")
    if when < not_before:
        raise SignatureError("timestamp predates the server's start")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64_))
        public.verify(signature, _message(method, path, timestamp, nonce, digest))
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify") from None
    return SignedHeaders(agent_id, when, nonce, digest)


def check_body(signed: SignedHeaders, body: bytes) -> None:
    """Raise :class:`SignatureError` unless ``body`` is the one the signature covers."""
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), signed.digest):
        raise SignatureError("body does not match the signed digest")


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
