"""Nonces of signed agent requests: each one is accepted once.

A request's nonce is remembered until its timestamp leaves the signature window, after which the
timestamp check refuses it anyway; so memory is bounded by the request rate times the window,
and by ``capacity`` whatever the rate (the oldest entries go first; a request whose nonce was
evicted is still refused once its timestamp is outside the window).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["NonceCache"]


class NonceCache:
    """Nonces seen within the last ``window_s`` seconds (``capacity`` at most)."""

    def __init__(self, window_s: float, capacity: int = 200_000) -> None:
        self._window_s = window_s
        self._capacity = capacity
        self._expiry: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def first_use(self, agent_id: str, nonce: str, timestamp: float) -> bool:
        """True the first time ``(agent_id, nonce)`` is seen; records it. False on a replay."""
        now = time.time()
        key = (agent_id, nonce)
        with self._lock:
            self._prune(now)
            if key in self._expiry:
                return False
            # Remembered until the timestamp falls out of the window on either side of it.
            self._expiry[key] = max(now, timestamp) + self._window_s
            return True

    def _prune(self, now: float) -> None:
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now and len(self._expiry) < self._capacity:
                break
            del self._expiry[key]
