"""One agent's secure-aggregation round, driven by the bytes the round tasks carry.

The ``train`` task brings the round set-up and the participants' identity keys. Keys are
pinned on first use (``roster.json`` in the agent's state folder): a later round that presents
another key for a known peer is refused, so a controller cannot swap a peer's key once this
agent has seen it. (A first-seen key must be trusted; labs that want more provision the roster
file with Ansible before the first round.)

Kept Python 3.8 compatible: it runs on JetPack.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.secagg import SecAggClient
from protocol.secagg import IdentityKey, KeysBroadcast, RoundSetup, SharesForward, UnmaskRequest

__all__ = ["KeyPinningError", "SecAggSession", "pin_roster"]


class KeyPinningError(ValueError):
    """A peer's identity key differs from the one pinned for it."""


def pin_roster(path: Path, offered: Dict[str, str]) -> Dict[str, bytes]:
    """Merge ``offered`` (id -> base64 key) into the pinned roster at ``path``; return it raw."""
    pinned: Dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = sorted(u for u, k in offered.items() if u in pinned and pinned[u] != k)
    if changed:
        raise KeyPinningError(f"identity keys changed for {changed}: refusing the round")
    merged = {**pinned, **offered}
    if merged != pinned:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=1, sort_keys=True))
    return {u: base64.b64decode(merged[u]) for u in offered}


class SecAggSession:
    """The client side of one round: advertise, share keys, masked input, unmask."""

    def __init__(
        self,
        client_id: str,
        key: Ed25519PrivateKey,
        setup_b64: str,
        roster_path: Optional[Path],
        rng: Optional[np.random.Generator] = None,
    ) -> None:
        """``roster_path``: where the pinned roster lives; None trusts the roster as offered
        (the in-process simulator, whose server and clients are one program). ``rng``: the
        stochastic rounding's randomness (None: OS-seeded, as an agent's; the simulator
        seeds it so that its runs repeat)."""
        payload = json.loads(base64.b64decode(setup_b64))
        self.setup = RoundSetup.from_bytes(base64.b64decode(payload["setup"]))
        offered: Dict[str, str] = payload["roster"]
        if roster_path is None:
            roster = {u: base64.b64decode(k) for u, k in offered.items()}
        else:
            roster = pin_roster(roster_path, offered)
        self.client = SecAggClient(client_id, IdentityKey(key), roster, rng=rng)

    def advertise(self) -> bytes:
        return self.client.advertise_keys(self.setup).to_bytes()

    def handle(self, stage: str, payload: bytes, delta: np.ndarray, weight: float) -> bytes:
        """The answer to the server's message ``payload`` in ``stage``."""
        if stage == "share_keys":
            return self.client.share_keys(KeysBroadcast.from_bytes(payload)).to_bytes()
        if stage == "masked_input":
            forward = SharesForward.from_bytes(payload)
            return self.client.masked_input(forward, weight * delta).to_bytes()
        if stage == "unmask":
            return self.client.unmask(UnmaskRequest.from_bytes(payload)).to_bytes()
        raise ValueError(f"unknown secure-aggregation stage `{stage}`")
