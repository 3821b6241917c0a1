"""Watching a run live, against real processes: the AP cluster (GNU Radio on the sim source),
the controller under uvicorn and three agents running short experiments.

- the event stream: ids in order, each round's facts in the order they happen, and a client
  resuming with ``Last-Event-ID`` across a controller restart gets exactly what it missed;
- the dashboard in Debian's chromium (Playwright): no request leaves 127.0.0.1, each committed
  round is on the page within 2 s of its commit, a dropped connection and a reload miss no
  round, the stop and start buttons work; screenshots go to ``test-artifacts/``;
- ``/metrics`` parses with the Prometheus client's parser and follows its naming conventions,
  and every query of the Grafana dashboard names a metric the controller exports.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from protocol.spec import ExperimentSpec, parse_spec
from testbed.launcher import (
    ControllerAPI,
    Processes,
    controller_env,
    free_port,
    processes,
    start_agent,
    start_ap_cluster,
    start_controller,
    wait_ready,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
GRAFANA = REPO / "deploy" / "roles" / "controller" / "files" / "grafana-dashboard.json"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.slow


def _spec(name: str, rounds: int) -> ExperimentSpec:
    return parse_spec(
        {
            "name": name,
            "seed": 2,
            "topology": {
                "area_m": 300,
                "aps": [{"id": "ap0", "antennas": 2}, {"id": "ap1", "antennas": 2}],
                "ues": [{"id": f"ue{i}", "profile": "rpi4"} for i in range(3)],
            },
            "radio": {"tau_p": 4, "tau_c": 100, "sample_rate_hz": 2e5, "snr_override_db": 20},
            "dataset": {"name": "mnist", "samples_per_client": 300},
            "fl": {"rounds": rounds, "round_deadline_s": 30},
            "algorithm": {"name": "fedavg"},
            "secure_aggregation": {"enabled": True, "threshold": 2},
        }
    )


class Lab:
    """A controller, its AP cluster and three agents, restartable."""

    def __init__(self, procs: Processes, workdir: Path) -> None:
        self.procs, self.workdir = procs, workdir
        self.token, enrol = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        spec = _spec("live", 2)
        csi, air = start_ap_cluster(spec, workdir, procs)
        self.env = controller_env(workdir, port, csi, self.token, enrol, air)
        start_controller(procs, self.env)
        wait_ready(self.url, procs, "controller")
        for ue in spec.topology.ues:
            start_agent(procs, ue, self.url, enrol, workdir)
        self.api = ControllerAPI(self.url, self.token)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def restart_controller(self) -> None:
        self.procs.kill("controller")
        start_controller(self.procs, self.env)
        wait_ready(self.url, self.procs, "controller")

    def wait(self, predicate: Any, timeout_s: float, what: str) -> Any:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                value = predicate()
            except httpx.TransportError:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.procs.tail('controller', 40)}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("live")
    with processes(workdir / "logs") as procs:
        yield Lab(procs, workdir)


def _read_events(
    lab: Lab, eid: str, until: Any, last_id: int = 0, timeout_s: float = 120.0
) -> list[tuple[int, str, dict[str, Any]]]:
    """Events of ``eid`` after ``last_id`` until ``until(events)`` holds (SSE over httpx)."""
    got: list[tuple[int, str, dict[str, Any]]] = []
    headers = {**lab.headers, "Last-Event-ID": str(last_id)} if last_id else lab.headers
    url = f"{lab.url}/api/v1/experiments/{eid}/events"
    deadline = time.time() + timeout_s
    with httpx.stream("GET", url, headers=headers, timeout=timeout_s) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in answer.iter_lines():
            if time.time() > deadline:
                raise AssertionError(f"events so far: {[k for _, k, _ in got]}")
            if line.startswith("id: "):
                block["id"] = line[4:]
            elif line.startswith("event: "):
                block["event"] = line[7:]
            elif line.startswith("data: "):
                block["data"] = line[6:]
            elif not line and "id" in block:
                got.append((int(block["id"]), block["event"], json.loads(block["data"])))
                block = {}
                if until(got):
                    return got
    raise AssertionError("the stream ended")


def _committed(events: list[tuple[int, str, dict[str, Any]]]) -> list[int]:
    return [d["round"] for _, k, d in events if k == "round_committed"]


def test_event_stream_is_ordered_and_resumes_across_a_restart(lab: Lab) -> None:
    eid = lab.api.create(_spec("events", 4))
    lab.api.start(eid)
    first = _read_events(lab, eid, lambda ev: len(_committed(ev)) >= 2)
    ids = [i for i, _, _ in first]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert first[0][1] == "experiment_status"
    assert first[0][2]["status"] == "running"
    for r in (0, 1):  # each round's facts in the order they happen
        at = {k: i for i, k, d in first if d.get("round") == r and k != "stage_closed"}
        assert at["round_opened"] < at["plan"] < at["link"] < at["round_committed"]
        stages = [d["stage"] for _, k, d in first if k == "stage_opened" and d["round"] == r]
        assert stages[0] == "train"
        assert "masked_input" in stages
    kinds = {k for _, k, _ in first}
    assert {"agent_up", "csi", "stage_closed"} <= kinds
    csi = next(d for _, k, d in first if k == "csi")
    assert set(csi["aps"]) == {"ap0", "ap1"}
    assert all("age_s" in ap and "stale" in ap for ap in csi["aps"].values())

    lab.restart_controller()
    last = ids[-1]
    rest = _read_events(
        lab,
        eid,
        lambda ev: any(k == "experiment_status" and d["status"] == "completed" for _, k, d in ev),
        last_id=last,
        timeout_s=240,
    )
    assert rest[0][0] > last
    everything = _read_events(
        lab, eid, lambda ev: any(i == rest[-1][0] for i, _, _ in ev), timeout_s=30
    )
    assert [i for i, _, _ in everything] == ids + [i for i, _, _ in rest]  # none lost, none twice
    assert sorted(set(_committed(everything))) == [0, 1, 2, 3]
    # The events restate the committed rounds exactly.
    committed = {d["round"]: d for _, k, d in everything if k == "round_committed"}
    for row in lab.api.rounds(eid):
        assert committed[row["index"]]["accuracy"] == pytest.approx(row["accuracy"])
        assert committed[row["index"]]["model_latency_s"] == pytest.approx(row["model_latency_s"])
    answer = httpx.get(
        f"{lab.url}/api/v1/experiments/{eid}/events",
        headers={**lab.headers, "Last-Event-ID": "soon"},
    )
    assert answer.status_code == 422
    assert "Last-Event-ID" in answer.text
    assert httpx.get(f"{lab.url}/api/v1/experiments/{eid}/events").status_code == 401


def test_dashboard_shows_every_round_live(lab: Lab) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    rounds = 12
    eid = lab.api.create(_spec("dashboard", rounds))
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{lab.url}/dashboard")
        page.fill("#token", "wrong-token-wrong-token")
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error:has-text('refused')")
        page.fill("#token", lab.token)
        page.click("button[type=submit]")
        row = page.locator(f"tr[data-experiment='{eid}']")
        row.wait_for()
        row.locator("[data-action=watch]").click()
        row.locator("[data-action=start]").click()
        count = page.locator("#rounds-count")

        def shown() -> int:
            return int(count.text_content() or 0)

        def committed() -> int:
            return int(lab.api.experiment(eid)["rounds_completed"])

        def shows_within(k: int, seconds: float) -> None:
            """The page counts ``k`` rounds within ``seconds`` (polled from here: the page's
            Content-Security-Policy forbids the eval that wait_for_function would need)."""
            deadline = time.time() + seconds
            while shown() < k:
                assert time.time() < deadline, f"the page shows {shown()} rounds, not {k}"
                time.sleep(0.05)

        lags: list[float] = []
        for k in range(1, rounds + 1):
            lab.wait(lambda k=k: committed() >= k, 120, f"round {k - 1} to commit")
            seen_at = time.time()
            shows_within(k, 2.0)
            lags.append(time.time() - seen_at)
            if k == 2:  # the connection drops for 3 s; the stream resumes where it was
                context.set_offline(True)
                time.sleep(3)
                context.set_offline(False)
            if k == 3:
                page.screenshot(path=str(ARTIFACTS / "dashboard-running.png"), full_page=True)
                page.reload()  # the token survives in the session; the history replays
                shows_within(k, 2.0)
            if k == 4:  # eight rounds to go (a round lasts about a second here)
                row.locator("[data-action=stop]").click()
                lab.wait(lambda: lab.api.experiment(eid)["status"] == "stopped", 30, "stop")
                row.locator("[data-action=start]").click()
                lab.wait(lambda: lab.api.experiment(eid)["status"] == "running", 30, "start")
        lab.wait(lambda: lab.api.experiment(eid)["status"] == "completed", 120, "completion")
        shows_within(rounds, 2.0)
        assert shown() == rounds
        accuracy_points = page.locator("#chart-accuracy circle").count()
        assert accuracy_points == rounds
        cells = page.locator("#heat-link rect[data-round]")
        assert cells.count() >= rounds * 3
        assert page.locator("#heat-bandwidth rect[data-round]").count() >= rounds * 3
        assert page.locator("#aps tbody tr").count() == 2
        assert page.locator("#agents tbody tr").count() >= 3
        assert page.locator("#stages tbody tr").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    hosts = {urlparse(u).hostname for u in requests if not u.startswith("data:")}
    assert hosts == {"127.0.0.1"}, hosts
    assert max(lags) < 2.0


def test_metrics_follow_the_conventions_and_grafana_queries_exist(lab: Lab) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(f"{lab.url}/metrics")
    assert answer.status_code == 200
    families = list(text_string_to_metric_families(answer.text))
    names = {f.name for f in families}
    for family in families:
        assert re.fullmatch(r"testbed_[a-z0-9_]+", family.name), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            assert not set(sample.labels) & {"ue", "ue_id", "agent", "agent_id", "client"}
    # Rounds ran before this test (module order): their metrics are there.
    expected = {
        "testbed_http_requests",
        "testbed_http_request_duration_seconds",
        "testbed_rounds",
        "testbed_round_wall_seconds",
        "testbed_stage_duration_seconds",
        "testbed_secagg_stage_duration_seconds",
        "testbed_model_link_updates",
        "testbed_model_link_dropouts",
        "testbed_crash_dropouts",
        "testbed_csi_messages",
        "testbed_csi_age_seconds",
        "testbed_db_commit_duration_seconds",
        "testbed_agents_alive",
        "testbed_experiments",
    }
    assert expected <= names, expected - names
    rounds = next(f for f in families if f.name == "testbed_rounds")
    assert sum(s.value for s in rounds.samples) >= 4
    secagg = next(f for f in families if f.name == "testbed_secagg_stage_duration_seconds")
    assert {s.labels["stage"] for s in secagg.samples} >= {"share_keys", "masked_input"}

    exported = set()
    for family in families:
        exported |= {s.name for s in family.samples}
    dashboard = json.loads(GRAFANA.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 8
    for query in queries:
        used = set(re.findall(r"\btestbed_[a-z0-9_]+", query))
        assert used, query
        assert used <= exported, (query, used - exported)
