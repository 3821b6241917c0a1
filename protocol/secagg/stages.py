"""The stages of a secure-aggregation round, in order.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CLIENT_STAGES", "Stage"]


class Stage(str, Enum):
    """Where a round is. The four protocol stages, then a final state."""

    ADVERTISE_KEYS = "advertise_keys"
    """Clients send two X25519 public keys signed with their identity key."""
    SHARE_KEYS = "share_keys"
    """Clients send encrypted Shamir shares of their seed and masking key to their neighbours."""
    MASKED_INPUT = "masked_input"
    """Clients send their masked, encoded input; the server adds them as they arrive."""
    UNMASK = "unmask"
    """Survivors reveal seed shares of survivors and masking-key shares of dropped clients."""
    DONE = "done"
    FAILED = "failed"


#: The stages in which clients send a message, in protocol order.
CLIENT_STAGES = (Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT, Stage.UNMASK)
