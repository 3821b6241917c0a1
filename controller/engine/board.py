"""The task board: what each agent should do now, and what agents have submitted per stage.

Agents poll for their task and post stage results over HTTP; the round engine assigns tasks and
waits for results. The board is the only state the two share, guarded by one condition variable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.rounds import Task

__all__ = ["StageKey", "SubmitResult", "TaskBoard"]


@dataclass(frozen=True)
class StageKey:
    experiment_id: str
    round: int
    attempt: int
    stage: str


@dataclass
class _Inbox:
    expected: set[str]
    received: dict[str, bytes] = field(default_factory=dict)


class SubmitResult:
    """Why a submission was taken or refused (``ok`` or a named reason)."""

    OK = "ok"
    NOT_EXPECTED = "no such stage is open for this agent"
    DUPLICATE = "already submitted for this stage"


class TaskBoard:
    """Thread-safe per-agent tasks and per-stage inboxes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tasks: dict[str, Task] = {}
        self._inboxes: dict[StageKey, _Inbox] = {}
        self.rejected: dict[str, int] = {}

    def open_stage(self, key: StageKey, tasks: dict[str, Task]) -> None:
        """Give each agent in ``tasks`` its task and start collecting their submissions."""
        with self._cond:
            self._inboxes[key] = _Inbox(expected=set(tasks))
            self._tasks.update(tasks)
            self._cond.notify_all()

    def close_stage(self, key: StageKey) -> None:
        """Stop accepting submissions for ``key`` and idle its agents."""
        with self._cond:
            inbox = self._inboxes.pop(key, None)
            for agent in inbox.expected if inbox else ():
                task = self._tasks.get(agent)
                if task is not None and (task.round, task.stage) == (key.round, key.stage):
                    self._tasks.pop(agent, None)

    def idle(self, agents: Iterable[str]) -> None:
        with self._cond:
            for agent in agents:
                self._tasks.pop(agent, None)

    def task_for(self, agent_id: str) -> Task:
        with self._cond:
            return self._tasks.get(agent_id) or Task()

    def submit(self, key: StageKey, agent_id: str, body: bytes) -> str:
        """Store one agent's submission; return :class:`SubmitResult` ``OK`` or a reason."""
        with self._cond:
            inbox = self._inboxes.get(key)
            if inbox is None or agent_id not in inbox.expected:
                reason = SubmitResult.NOT_EXPECTED
            elif agent_id in inbox.received:
                reason = SubmitResult.DUPLICATE
            else:
                inbox.received[agent_id] = body
                task = self._tasks.get(agent_id)
                if task is not None and task.stage == key.stage:
                    self._tasks.pop(agent_id, None)
                self._cond.notify_all()
                return SubmitResult.OK
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            return reason

    def wait(
        self, key: StageKey, deadline_unix: float, stop: threading.Event | None = None
    ) -> dict[str, bytes]:
        """Block until every expected agent submitted, the deadline passes or ``stop`` is set."""
        with self._cond:
            while True:
                inbox = self._inboxes.get(key)
                if inbox is None:
                    return {}
                left = deadline_unix - time.time()
                done = inbox.expected <= set(inbox.received)
                if done or left <= 0 or (stop is not None and stop.is_set()):
                    return dict(inbox.received)
                self._cond.wait(timeout=min(left, 0.25))
