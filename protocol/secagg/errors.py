"""Errors of the secure-aggregation protocol, each with a named reason.

Every refusal, on either side, is a :class:`SecAggError` whose ``reason`` is one of the
:class:`Reason` values, so the round engine can log, count and answer with a stable code
(e.g. HTTP 409 ``{"reason": "duplicate"}``) without parsing messages.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional, Tuple, Type

__all__ = ["MessageRejectedError", "Reason", "RoundFailedError", "SecAggError"]


class Reason(str, Enum):
    """Why a message was refused or a round failed."""

    MALFORMED = "malformed"
    """The bytes do not parse as the expected message, or a field is out of range."""
    WRONG_EXPERIMENT = "wrong_experiment"
    WRONG_ROUND = "wrong_round"
    WRONG_STAGE = "wrong_stage"
    """A message for a stage other than the current one (too early)."""
    LATE = "late"
    """A message for a stage the server has already closed."""
    DUPLICATE = "duplicate"
    """A second message from the same client in one stage, or a replayed round set-up."""
    UNKNOWN_CLIENT = "unknown_client"
    NOT_IN_ROUND = "not_in_round"
    """A client that is not a participant, or that dropped out at an earlier stage."""
    WRONG_RECIPIENT = "wrong_recipient"
    BAD_SIGNATURE = "bad_signature"
    BAD_PUBLIC_KEY = "bad_public_key"
    BAD_LENGTH = "bad_length"
    """A vector of the wrong dimension or ring, or a key or share of the wrong size."""
    BAD_RECIPIENTS = "bad_recipients"
    """Encrypted shares not addressed to exactly the sender's live neighbours."""
    BAD_SHARES = "bad_shares"
    """Revealed shares for the wrong owners (e.g. a seed share of a dropped client)."""
    DECRYPTION_FAILED = "decryption_failed"
    OUT_OF_RANGE = "out_of_range"
    """An encoded input whose values exceed the clipping bound the modulus was sized for."""
    INCONSISTENT = "inconsistent"
    """A server message that contradicts what the client saw earlier in the round."""
    THRESHOLD_TOO_LOW = "threshold_too_low"
    MODULUS_TOO_SMALL = "modulus_too_small"
    BELOW_THRESHOLD = "below_threshold"
    RECONSTRUCTION_FAILED = "reconstruction_failed"


class SecAggError(Exception):
    """A secure-aggregation failure with a named ``reason``.

    Args:
        reason: why, one of :class:`Reason`.
        detail: a sentence for people, naming the field or client involved.
        client_id: the client the message came from or is about, where there is one.
        stage: the protocol stage, where known (a :class:`protocol.secagg.Stage` value).
    """

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        client_id: Optional[str] = None,
        stage: Optional[str] = None,
    ) -> None:
        self.reason = Reason(reason)
        self.detail = detail
        self.client_id = client_id
        self.stage = stage
        where = "".join(
            [f" [stage {stage}]" if stage else "", f" [client {client_id}]" if client_id else ""]
        )
        super().__init__(f"{self.reason.value}: {detail}{where}")

    def __reduce__(self) -> Tuple[Any, ...]:
        # Keyword-only arguments: rebuild explicitly so the error crosses process boundaries.
        return (_rebuild, (type(self), self.reason.value, self.detail, self.client_id, self.stage))


class MessageRejectedError(SecAggError):
    """One message was refused; the round goes on and the receiver's state is unchanged."""


class RoundFailedError(SecAggError):
    """The round cannot complete (e.g. fewer survivors than the threshold)."""


def _rebuild(
    cls: Type[SecAggError],
    reason: str,
    detail: str,
    client_id: Optional[str],
    stage: Optional[str],
) -> SecAggError:
    return cls(Reason(reason), detail, client_id=client_id, stage=stage)
