"""Nonces of signed agent requests: each one is accepted once.

A request's nonce is remembered until its timestamp leaves the signature window, after which the
timestamp check refuses it anyway; so memory is bounded by the request rate times the window.
Each agent has its own bounded set (``per_agent``): an agent whose set is full of nonces still
inside the window has its further requests refused (as replays) until entries expire, so no
entry is ever dropped while it could still be replayed, and one agent cannot crowd out another.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["NonceCache"]


class NonceCache:
    """Per agent, the nonces of the last ``window_s`` seconds (``per_agent`` at most)."""

    def __init__(self, window_s: float, per_agent: int = 20_000) -> None:
        self._window_s = window_s
        self._per_agent = per_agent
        self._seen: dict[str, OrderedDict[str, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._seen.values())

    def first_use(self, agent_id: str, nonce: str, timestamp: float) -> bool:
        """True the first time ``nonce`` is seen for ``agent_id``, and records it; False on a
        replay, or when the agent's set is full of nonces still inside the window."""
        now = time.time()
        with self._lock:
            seen = self._seen.setdefault(agent_id, OrderedDict())
            _expire(seen, now)
            if nonce in seen or len(seen) >= self._per_agent:
                return False
            # Remembered until the timestamp falls out of the window on either side of it.
            seen[nonce] = max(now, timestamp) + self._window_s
            return True


def _expire(seen: OrderedDict[str, float], now: float) -> None:
    """Drop the expired nonces at the front (insertion order is nearly expiry order)."""
    while seen:
        nonce, expiry = next(iter(seen.items()))
        if expiry > now:
            break
        del seen[nonce]
