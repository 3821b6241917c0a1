"""The controller's parts wired together: database, model store, task board, agents, CSI, engines.

One :class:`ControllerService` per process, built from :class:`ControllerSettings` and handed to
the FastAPI app (no module-level state). It starts and stops round engines and, at start-up,
resumes the experiments that were running when the process last stopped. An experiment that
cannot start (at once, or on resuming after a restart) is marked ``failed`` with the reason; the
service itself always starts, whatever the database holds.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections import Counter
from typing import Any

import numpy as np

from controller import round as core
from controller.air import AirChannel, BurstAir
from controller.algorithms import Algorithm
from controller.api.nonces import NonceCache
from controller.db import AgentRow, Database, ExperimentRow
from controller.engine.board import TaskBoard
from controller.engine.liveness import AgentDirectory, AgentInfo
from controller.engine.round_engine import RoundEngine
from controller.events import EventLog
from controller.metrics import Metrics, service_metrics
from controller.models_store import ModelStore
from controller.settings import ControllerSettings
from protocol.spec import ExperimentSpec, parse_spec

__all__ = ["ControllerService", "ExperimentStartError"]

log = logging.getLogger(__name__)

#: How long a round waits for the simulated air's answer, s.
_AIR_TIMEOUT_S = 60.0
#: A stage upload's bound per model parameter, B: float64 updates and 64-bit masked vectors
#: take 8; twice that leaves room for their framing.
_UPLOAD_BYTES_PER_PARAMETER = 16
#: ... plus per client of the round (secure-aggregation shares and keys), and a floor, B.
_UPLOAD_BYTES_PER_CLIENT = 16 * 1024
_UPLOAD_FLOOR_BYTES = 1024 * 1024
_UPLOAD_PATH = re.compile(r"^/api/v1/experiments/([^/]+)/rounds/[^/]+/[^/]+$")
_MAX_ERROR_CHARS = 2000


class ExperimentStartError(RuntimeError):
    """An experiment could not start; it is marked failed with this reason."""


class ControllerService:
    """Everything the REST routes act on."""

    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.db = Database(settings.database_url)
        self.events = EventLog(self.db)
        self.metrics = Metrics()
        self.events.listen(self.metrics.on_event)
        self.db.on_commit = self.metrics.db_commit.observe
        self.metrics.read_at_scrape(functools.partial(service_metrics, self))
        #: Set when the service shuts down (the event streams end).
        self.stopping = threading.Event()
        self.store = ModelStore(settings.data_dir / "models")
        self.board = TaskBoard()
        self.agents = AgentDirectory(timeout_s=settings.heartbeat_timeout_s)
        self.engines: dict[str, RoundEngine] = {}
        self.csi = _make_csi(settings)
        self.nonces = NonceCache(window_s=settings.signature_window_s)
        #: Refusals and failures, by kind (GET /api/v1/status).
        self.counters: Counter[str] = Counter(
            malformed_requests=0,
            bad_signatures=0,
            bad_enrolments=0,
            oversized_requests=0,
            slow_requests=0,
            server_errors=0,
            failed_starts=0,
        )
        #: The server's refused connections (set by controller.server.uvicorn_config).
        self.connection_refusals: dict[str, int] = {}
        self._upload_limits: dict[str, int] = {}
        with self.db.session() as s:
            for row in s.query(AgentRow).all():
                info = AgentInfo(row.id, row.profile, row.public_key, last_seen=0.0)
                info.enrolled_at = row.enrolled_at.timestamp()
                self.agents.add(info)

    # -- lifecycle ----------------------------------------------------------------------------
    def startup(self) -> None:
        if self.csi is not None:
            self.csi.start()
        if not self.settings.autostart:
            return
        with self.db.session() as s:
            running = [r.id for r in s.query(ExperimentRow).filter_by(status="running")]
        for experiment_id in running:
            log.info("resuming experiment %s", experiment_id)
            try:
                self.start_experiment(experiment_id)
            except ExperimentStartError as err:
                log.error("experiment %s could not resume: %s", experiment_id, err)

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Stop every engine within ``timeout_s`` together: a round in progress is abandoned
        (it was not committed, so it runs again after a restart)."""
        self.stopping.set()
        engines = list(self.engines.values())
        for engine in engines:
            engine.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for engine in engines:
            engine.stop(timeout_s=max(0.0, deadline - time.monotonic()))
        if self.csi is not None:
            self.csi.stop()
        self.db.dispose()

    # -- experiments --------------------------------------------------------------------------
    def start_experiment(self, experiment_id: str) -> None:
        """Start (or resume) an experiment's round engine.

        Raises:
            KeyError: no such experiment.
            ExperimentStartError: it could not start; it is now ``failed`` with the reason.
        """
        engine = self.engines.get(experiment_id)
        if engine is not None and engine.running:
            return
        with self.db.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is None:
                raise KeyError(experiment_id)
            spec_json, resume_from = row.spec, row.policy_path
        try:
            spec = parse_spec(spec_json, source=f"experiment {experiment_id}")
            engine = self._engine(experiment_id, spec, resume_from)
            engine.start()
        except Exception as err:  # whatever it was, the experiment records it and stays stopped
            self.counters["failed_starts"] += 1
            log.exception("experiment %s failed to start", experiment_id)
            if self.csi is not None:
                self.csi.detach(experiment_id)
            reason = f"could not start: {type(err).__name__}: {err}"[:_MAX_ERROR_CHARS]
            self._set_status(experiment_id, "failed", reason)
            raise ExperimentStartError(reason) from err
        self.engines[experiment_id] = engine

    def _engine(
        self, experiment_id: str, spec: ExperimentSpec, resume_from: str | None
    ) -> RoundEngine:
        self._set_status(experiment_id, "running", None)
        algorithm, policy_source = _make_algorithm(spec, resume_from)
        gains: Any = _no_csi
        air: AirChannel | None = None
        csi_status = None
        if self.csi is not None:
            csi = self.csi.attach(experiment_id, spec)
            gains, air = csi.gains, csi.measured_air()
            ue_ids = [ue.id for ue in spec.topology.ues]
            csi_status = functools.partial(csi.status, ue_ids)
        if self.settings.air_endpoint:
            from controller.air import SimAir

            # The air's first answer may compute minutes of fading to catch up: be patient.
            air = SimAir(self.settings.air_endpoint, timeout_s=_AIR_TIMEOUT_S)
        # Without any radio (no CSI endpoints) air stays None: the link layer is skipped, and
        # each round's details say so.
        if spec.link.enabled and spec.link.mode == "iq":
            if not isinstance(air, BurstAir):
                raise ValueError(
                    "link.mode: iq sends the updates through the simulated air's PHY, and this "
                    "controller has no air endpoint (TESTBED_CONTROLLER_AIR_ENDPOINT)"
                )
            core.link_config(spec.link)  # the measured table is read (and checked) now
        return RoundEngine(
            experiment_id=experiment_id,
            spec=spec,
            db=self.db,
            store=self.store,
            board=self.board,
            agents=self.agents,
            csi=gains,
            aggregation=_aggregation_factory(spec),
            algorithm=algorithm,
            air=air,
            policy_dir=self.settings.data_dir / "policies",
            policy_source=policy_source,
            events=self.events,
            csi_status=csi_status,
        )

    def _set_status(self, experiment_id: str, status: str, error: str | None) -> None:
        with self.db.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is not None:
                row.status, row.error = status, error
                event = {"status": status, "error": error}
                self.events.publish(experiment_id, "experiment_status", event, s)

    def stop_experiment(self, experiment_id: str, status: str = "stopped") -> None:
        engine = self.engines.pop(experiment_id, None)
        if engine is not None:
            engine.stop()
        if self.csi is not None:
            self.csi.detach(experiment_id)
        self._upload_limits.pop(experiment_id, None)
        with self.db.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is not None and row.status == "running":
                row.status = status
                event = {"status": status, "error": None}
                self.events.publish(experiment_id, "experiment_status", event, s)

    # -- limits -------------------------------------------------------------------------------
    def body_limit(self, method: str, path: str) -> int:
        """The largest body a request to ``path`` may carry, B (see controller.api.limits)."""
        s = self.settings
        if method == "POST" and path.rstrip("/") == "/api/v1/experiments":
            return s.max_spec_bytes
        match = _UPLOAD_PATH.match(path) if method == "POST" else None
        if match is None:
            return s.max_small_body_bytes
        return min(s.max_upload_bytes, self._upload_limit(match.group(1)))

    def is_upload(self, method: str, path: str) -> bool:
        """Whether a request to ``path`` is a stage upload (model-sized; see body_limit)."""
        return method == "POST" and _UPLOAD_PATH.match(path) is not None

    def _upload_limit(self, experiment_id: str) -> int:
        """A stage upload's bound for this experiment, from its model's parameter count."""
        limit = self._upload_limits.get(experiment_id)
        if limit is not None:
            return limit
        with self.db.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            spec_json = row.spec if row is not None else None
        if spec_json is None:  # no such experiment: the board refuses it; keep it small
            return self.settings.max_small_body_bytes
        try:
            spec = parse_spec(spec_json, source=f"experiment {experiment_id}")
        except ValueError:
            return self.settings.max_small_body_bytes
        limit = (
            _UPLOAD_BYTES_PER_PARAMETER * _model_parameters(spec.model.name)
            + _UPLOAD_BYTES_PER_CLIENT * spec.clients_per_round
            + _UPLOAD_FLOOR_BYTES
        )
        self._upload_limits[experiment_id] = limit
        return limit

    # -- CSI ----------------------------------------------------------------------------------
    def csi_status(self) -> dict[str, Any]:
        if self.csi is None:
            return {"enabled": False, "experiments": {}}
        return {"enabled": True, **self.csi.status()}


def _no_csi(ue_ids: list[str]) -> tuple[np.ndarray | None, dict[str, Any]]:
    """No radio attached: no gains."""
    return None, {"source": "none"}


def _model_parameters(name: str) -> int:
    """Parameters of the model ``name`` (built once per name)."""
    if name not in _PARAMETERS:
        from edge_agent.models import build_model, num_parameters

        _PARAMETERS[name] = num_parameters(build_model(name))
    return _PARAMETERS[name]


_PARAMETERS: dict[str, int] = {}


def _make_algorithm(spec: ExperimentSpec, resume_from: str | None) -> tuple[Algorithm, str]:
    """The experiment's algorithm, its power policy from the last commit, else from
    ``algorithm.policy``, else fresh; and where the policy came from (recorded per round)."""
    from controller.algorithms import make_algorithm
    from controller.policy import policy_path

    start = spec.algorithm.policy
    algorithm = make_algorithm(
        spec.algorithm,
        spec.weights,
        seed=spec.seed,
        policy_path=policy_path(start) if start is not None else None,
    )
    source = "fresh" if start is None else f"spec:{start}"
    if algorithm.policy is None:
        source = "none"
    elif resume_from is not None:
        log.info("resuming the power policy from %s", resume_from)
        algorithm.resume_policy(resume_from)
        source = f"resumed:{resume_from}"
    return algorithm, source


def _make_csi(settings: ControllerSettings) -> Any:
    if not settings.csi_endpoints:
        return None
    from controller.csi_source import CSIGainSource

    return CSIGainSource(settings.csi_endpoints, stale_s=settings.csi_stale_s)


def _aggregation_factory(spec: ExperimentSpec) -> Any:
    from controller.engine.aggregation import plain_aggregation
    from controller.engine.secure import secure_aggregation

    return secure_aggregation if spec.secure_aggregation.enabled else plain_aggregation
