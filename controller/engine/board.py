"""The task board: what each agent should do now, and what agents have submitted per stage.

Agents poll for their task and post stage results over HTTP; the round engine assigns tasks and
waits for results. The board is the only state the two share, guarded by one condition variable.

Agents long-poll: :meth:`TaskBoard.next_task` (awaited by the REST route) returns as soon as a
stage gives the agent a task, so a stage starts within milliseconds of its opening, not after a
polling interval.

A stage opened with a *consumer* does not keep its bodies: each one is handed to the consumer
as it arrives (which validates it and takes what it needs, e.g. adds an update to a running
sum) and only a marker is kept, so the board holds O(1) bytes per agent, not O(model). A body
the consumer refuses is answered with its reason and still counts as that agent's submission.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.rounds import Task

__all__ = ["StageConsumer", "StageKey", "SubmitResult", "TaskBoard"]

#: Takes one agent's submission as it arrives: ``(agent id, body) -> None`` when taken, else the
#: reason it is refused. Called under the board's lock, at most once per agent and stage, and
#: never after the stage closed.
StageConsumer = Callable[[str, bytes], "str | None"]


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
    consume: StageConsumer | None = None
    #: Agents whose submission the consumer refused (they are done with the stage).
    refused: set[str] = field(default_factory=set)


class SubmitResult:
    """Why a submission was taken or refused (``ok`` or a named reason)."""

    OK = "ok"
    NOT_EXPECTED = "no such stage is open for this agent"
    DUPLICATE = "already submitted for this stage"
    #: Prefix of a consumer's refusal (``"malformed submission: <why>"``).
    MALFORMED = "malformed submission"


class TaskBoard:
    """Thread-safe per-agent tasks and per-stage inboxes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tasks: dict[str, Task] = {}
        self._inboxes: dict[StageKey, _Inbox] = {}
        self.rejected: dict[str, int] = {}
        #: Long-polling agents: their event loop and the event that wakes them.
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def open_stage(
        self, key: StageKey, tasks: dict[str, Task], consume: StageConsumer | None = None
    ) -> None:
        """Give each agent in ``tasks`` its task and start collecting their submissions.

        With ``consume``, each body goes to it on arrival and the board keeps an empty marker
        in its place (:meth:`wait` returns ``b""`` for each taken submission).
        """
        with self._cond:
            self._inboxes[key] = _Inbox(expected=set(tasks), consume=consume)
            self._tasks.update(tasks)
            self._cond.notify_all()
            for agent in tasks:
                for loop, event in self._waiters.pop(agent, []):
                    loop.call_soon_threadsafe(event.set)

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

    async def next_task(self, agent_id: str, wait_s: float) -> Task:
        """The agent's task, waiting up to ``wait_s`` for one (long polling); idle if none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            event = asyncio.Event()
            with self._cond:
                task = self._tasks.get(agent_id)
                left = deadline - loop.time()
                if task is not None or left <= 0:
                    return task or Task()
                waiters = self._waiters.setdefault(agent_id, [])
                waiters.append((loop, event))
            try:
                await asyncio.wait_for(event.wait(), timeout=left)
            except TimeoutError:
                pass
            finally:
                with self._cond:
                    waiting = self._waiters.get(agent_id, [])
                    if (loop, event) in waiting:
                        waiting.remove((loop, event))
                    if not waiting:
                        self._waiters.pop(agent_id, None)

    def submit(self, key: StageKey, agent_id: str, body: bytes) -> str:
        """Store (or consume) one agent's submission; return :class:`SubmitResult` ``OK`` or a
        reason. Either way, an expected agent's first submission ends its part in the stage."""
        with self._cond:
            inbox = self._inboxes.get(key)
            if inbox is None or agent_id not in inbox.expected:
                reason, kind = SubmitResult.NOT_EXPECTED, SubmitResult.NOT_EXPECTED
            elif agent_id in inbox.received or agent_id in inbox.refused:
                reason, kind = SubmitResult.DUPLICATE, SubmitResult.DUPLICATE
            else:
                problem = inbox.consume(agent_id, body) if inbox.consume is not None else None
                if problem is None:
                    inbox.received[agent_id] = body if inbox.consume is None else b""
                else:
                    inbox.refused.add(agent_id)
                task = self._tasks.get(agent_id)
                if task is not None and task.stage == key.stage:
                    self._tasks.pop(agent_id, None)
                self._cond.notify_all()
                if problem is None:
                    return SubmitResult.OK
                reason, kind = f"{SubmitResult.MALFORMED}: {problem}", SubmitResult.MALFORMED
            self.rejected[kind] = self.rejected.get(kind, 0) + 1
            return reason

    def wait(
        self, key: StageKey, deadline_unix: float, stop: threading.Event | None = None
    ) -> dict[str, bytes]:
        """Block until every expected agent submitted, the deadline passes or ``stop`` is set;
        the taken submissions by agent (not the refused ones)."""
        with self._cond:
            while True:
                inbox = self._inboxes.get(key)
                if inbox is None:
                    return {}
                left = deadline_unix - time.time()
                done = inbox.expected <= set(inbox.received) | inbox.refused
                if done or left <= 0 or (stop is not None and stop.is_set()):
                    return dict(inbox.received)
                self._cond.wait(timeout=min(left, 0.25))
