"""Prometheus metrics of the controller (``GET /metrics``, the text exposition format).

One registry per service (never the process-global one: tests build many apps). Names follow
Prometheus' conventions: the ``testbed_`` prefix, base units in the name (``_seconds``),
``_total`` for counters; labels have a few values each (HTTP method, route template and
status class, stage, link outcome, AP id, experiment status), never a UE or an agent.

- HTTP: ``testbed_http_requests_total{method,route,code}`` and
  ``testbed_http_request_duration_seconds{method,route}`` (to the response's headers; the
  event stream's open time is not a request's duration);
- rounds, from the event stream (:mod:`controller.events`): ``testbed_rounds_total{updated}``,
  ``testbed_round_wall_seconds``, ``testbed_stage_duration_seconds{stage}``,
  ``testbed_secagg_stage_duration_seconds{stage}``, ``testbed_model_link_updates_total{outcome}``,
  ``testbed_model_link_dropouts_total``, ``testbed_crash_dropouts_total`` (modelled by the link
  layer: the dropouts; measured: the durations), ``testbed_events_total{kind}``;
- database: ``testbed_db_commit_duration_seconds``;
- read at each scrape: ``testbed_csi_messages_total{result}`` (the ingest counters of every
  attached experiment's subscriber), ``testbed_csi_age_seconds{ap}``,
  ``testbed_csi_stale{ap}``, ``testbed_agents_alive``, ``testbed_experiments{status}``,
  ``testbed_requests_refused_total{reason}``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import compile_path

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsMiddleware"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_ROUND_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_SECAGG = {"share_keys", "masked_input", "unmask"}


class Metrics:
    """The controller's metrics; ``on_event`` listens to the event log."""

    def __init__(self) -> None:
        disable_created_metrics()  # no `_created` series beside the counters
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "testbed_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            ("method", "route", "code"),
            registry=r,
        )
        self.http_duration = Histogram(
            "testbed_http_request_duration_seconds",
            "Time from a request's arrival to its response's headers, s (measured).",
            ("method", "route"),
            registry=r,
        )
        self.rounds = Counter(
            "testbed_rounds",
            "Rounds committed, by whether they updated the model.",
            ("updated",),
            registry=r,
        )
        self.round_wall = Histogram(
            "testbed_round_wall_seconds",
            "Wall time of committed rounds, s (measured).",
            buckets=_ROUND_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "testbed_stage_duration_seconds",
            "Time a round stage stayed open, s (measured).",
            ("stage",),
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.secagg_stage = Histogram(
            "testbed_secagg_stage_duration_seconds",
            "Time a secure-aggregation stage stayed open, s (measured).",
            ("stage",),
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.link_updates = Counter(
            "testbed_model_link_updates",
            "Updates by link outcome (arrived, late, failed; modelled by the link layer).",
            ("outcome",),
            registry=r,
        )
        self.link_dropouts = Counter(
            "testbed_model_link_dropouts", "Updates the radio lost (modelled).", registry=r
        )
        self.crash_dropouts = Counter(
            "testbed_crash_dropouts",
            "Clients that crashed or missed a stage deadline (measured).",
            registry=r,
        )
        self.events = Counter("testbed_events", "Events published, by kind.", ("kind",), registry=r)
        self.db_commit = Histogram(
            "testbed_db_commit_duration_seconds",
            "Time to commit a database transaction, s (measured).",
            buckets=_DB_BUCKETS,
            registry=r,
        )

    def on_event(self, experiment_id: str, kind: str, data: dict[str, Any]) -> None:
        """An event of :class:`controller.events.EventLog`, as published."""
        self.events.labels(kind).inc()
        if kind == "stage_closed":
            took = float(data.get("duration_s") or 0.0)
            stage = str(data.get("stage"))
            self.stage.labels(stage).observe(took)
            if stage in _SECAGG:
                self.secagg_stage.labels(stage).observe(took)
        elif kind == "link":
            for outcome in data.get("status", []):
                self.link_updates.labels(str(outcome)).inc()
        elif kind == "round_committed":
            self.rounds.labels("true" if data.get("updated") else "false").inc()
            self.round_wall.observe(float(data.get("wall_s") or 0.0))
            self.link_dropouts.inc(int(data.get("link_dropouts") or 0))
            self.crash_dropouts.inc(int(data.get("crash_dropouts") or 0))

    def read_at_scrape(self, read: Callable[[], Iterable[Metric]]) -> None:
        """Add metrics computed at each scrape by ``read``."""
        self.registry.register(_Scraped(read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Scraped(Collector):
    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return self._read()

    def describe(self) -> Iterable[Metric]:
        return []


def service_metrics(service: Any) -> Iterable[Metric]:
    """What the service knows at a scrape: CSI ingest and staleness, agents, experiments,
    refused requests."""
    from sqlalchemy import func, select

    from controller.db import ExperimentRow

    messages = CounterMetricFamily(
        "testbed_csi_messages", "CSI messages ingested, by result.", labels=("result",)
    )
    age = GaugeMetricFamily(
        "testbed_csi_age_seconds", "Age of each AP's newest CSI, s (measured).", labels=("ap",)
    )
    stale = GaugeMetricFamily("testbed_csi_stale", "1 where an AP's CSI is stale.", labels=("ap",))
    totals: dict[str, float] = {}
    for exp in service.csi_status().get("experiments", {}).values():
        for key, value in exp.get("counters", {}).items():
            if isinstance(value, int | float):
                totals[key] = totals.get(key, 0.0) + float(value)
        for ap, s in exp.get("aps", {}).items():
            if s.get("age_s") is not None:
                age.add_metric([ap], float(s["age_s"]))
            stale.add_metric([ap], 1.0 if s.get("stale") else 0.0)
    for key, value in sorted(totals.items()):
        messages.add_metric([key], value)
    alive = GaugeMetricFamily("testbed_agents_alive", "Agents with a recent heartbeat.")
    now = time.time()
    alive.add_metric(
        [], float(sum(1 for a in service.agents.all() if service.agents.alive(a.id, now)))
    )
    experiments = GaugeMetricFamily(
        "testbed_experiments", "Experiments by status.", labels=("status",)
    )
    with service.db.session() as s:
        stmt = select(ExperimentRow.status, func.count()).group_by(ExperimentRow.status)
        for status, count in s.execute(stmt):
            experiments.add_metric([str(status)], float(count))
    refused = CounterMetricFamily(
        "testbed_requests_refused", "Requests refused or failed, by reason.", labels=("reason",)
    )
    for reason, count in sorted(service.counters.items()):
        refused.add_metric([reason], float(count))
    return [messages, age, stale, alive, experiments, refused]


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (pure ASGI: the event
    stream's body is never buffered)."""

    def __init__(self, app: Any, metrics: Metrics, templates: Callable[[], Iterable[str]]) -> None:
        self.app, self.metrics = app, metrics
        self._templates = templates
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        code = ["5xx"]

        async def watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                code[0] = f"{int(message['status']) // 100}xx"
                route = self._route(scope)
                self.metrics.http_duration.labels(scope["method"], route).observe(
                    time.perf_counter() - start
                )
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.http_requests.labels(scope["method"], self._route(scope), code[0]).inc()

    def _route(self, scope: dict[str, Any]) -> str:
        """The path template that matches the request (``unmatched`` for none: never a raw
        path), from the templates the app documents (compiled on first use)."""
        if self._compiled is None:
            self._compiled = [(compile_path(t)[0], t) for t in self._templates()]
        path = scope.get("path", "")
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        return "unmatched"
