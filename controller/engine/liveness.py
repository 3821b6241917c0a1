"""Which agents are alive, and which agent plays which UE of an experiment.

Liveness comes from heartbeats and polls (kept in memory: they arrive every second or so);
enrolment itself is persisted in the database. An agent whose id is a UE id of the experiment
plays that UE; other agents fill the remaining UEs with the same profile (an agent with profile
``sim`` fits any UE), in enrolment order.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AgentDirectory", "AgentInfo"]


@dataclass
class AgentInfo:
    id: str
    profile: str
    public_key: str
    enrolled_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    status: dict[str, Any] = field(default_factory=dict)


class AgentDirectory:
    """Thread-safe registry of enrolled agents and their last sign of life."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._agents: dict[str, AgentInfo] = {}

    def add(self, info: AgentInfo) -> None:
        with self._lock:
            self._agents[info.id] = info

    def remove(self, agent_id: str) -> None:
        with self._lock:
            self._agents.pop(agent_id, None)

    def get(self, agent_id: str) -> AgentInfo | None:
        with self._lock:
            return self._agents.get(agent_id)

    def public_key_raw(self, agent_id: str) -> bytes:
        """The raw 32-byte Ed25519 identity key ``agent_id`` enrolled with."""
        with self._lock:
            return base64.b64decode(self._agents[agent_id].public_key)

    def all(self) -> list[AgentInfo]:
        with self._lock:
            return sorted(self._agents.values(), key=lambda a: (a.enrolled_at, a.id))

    def touch(self, agent_id: str, status: dict[str, Any] | None = None) -> None:
        with self._lock:
            info = self._agents.get(agent_id)
            if info is not None:
                info.last_seen = time.time()
                if status is not None:
                    info.status = status

    def alive(self, agent_id: str, now: float | None = None) -> bool:
        with self._lock:
            info = self._agents.get(agent_id)
            t = time.time() if now is None else now
            return info is not None and t - info.last_seen <= self._timeout_s

    def assignment(
        self, ue_ids: list[str], ue_profiles: dict[str, str] | None = None
    ) -> dict[str, str]:
        """UE id -> agent id for every UE that a live agent can play."""
        now = time.time()
        live = [a for a in self.all() if now - a.last_seen <= self._timeout_s]
        out: dict[str, str] = {}
        taken: set[str] = set()
        for agent in live:
            if agent.id in ue_ids:
                out[agent.id] = agent.id
                taken.add(agent.id)
        for ue in ue_ids:
            if ue in out:
                continue
            want = (ue_profiles or {}).get(ue)
            for agent in live:
                if agent.id in taken or agent.id in ue_ids:
                    continue
                if want is None or agent.profile in (want, "sim"):
                    out[ue] = agent.id
                    taken.add(agent.id)
                    break
        return out
