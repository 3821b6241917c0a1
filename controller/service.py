"""The controller's parts wired together: database, model store, task board, agents, CSI, engines.

One :class:`ControllerService` per process, built from :class:`ControllerSettings` and handed to
the FastAPI app (no module-level state). It starts and stops round engines and, at start-up,
resumes the experiments that were running when the process last stopped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from controller.air import AirChannel
from controller.algorithms import Algorithm
from controller.db import AgentRow, Database, ExperimentRow
from controller.engine.board import TaskBoard
from controller.engine.liveness import AgentDirectory, AgentInfo
from controller.engine.round_engine import RoundEngine
from controller.models_store import ModelStore
from controller.settings import ControllerSettings
from protocol.spec import ExperimentSpec, parse_spec

__all__ = ["ControllerService"]

log = logging.getLogger(__name__)

#: How long a round waits for the simulated air's answer, s.
_AIR_TIMEOUT_S = 60.0


class ControllerService:
    """Everything the REST routes act on."""

    def __init__(self, settings: ControllerSettings) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.db = Database(settings.database_url)
        self.store = ModelStore(settings.data_dir / "models")
        self.board = TaskBoard()
        self.agents = AgentDirectory(timeout_s=settings.heartbeat_timeout_s)
        self.engines: dict[str, RoundEngine] = {}
        self.csi = _make_csi(settings)
        self.counters: dict[str, int] = {"malformed_requests": 0, "bad_signatures": 0}
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
            self.start_experiment(experiment_id)

    def shutdown(self) -> None:
        for engine in list(self.engines.values()):
            engine.stop()
        if self.csi is not None:
            self.csi.stop()
        self.db.dispose()

    # -- experiments --------------------------------------------------------------------------
    def spec_of(self, row: ExperimentRow) -> ExperimentSpec:
        return parse_spec(row.spec, source=f"experiment {row.id}")

    def start_experiment(self, experiment_id: str) -> None:
        engine = self.engines.get(experiment_id)
        if engine is not None and engine.running:
            return
        with self.db.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is None:
                raise KeyError(experiment_id)
            spec = self.spec_of(row)
            resume_from = row.policy_path
            row.status, row.error = "running", None
        algorithm, policy_source = _make_algorithm(spec, resume_from)
        if self.csi is not None:
            self.csi.attach(spec)
        engine = RoundEngine(
            experiment_id=experiment_id,
            spec=spec,
            db=self.db,
            store=self.store,
            board=self.board,
            agents=self.agents,
            csi=self.gains,
            aggregation=_aggregation_factory(spec),
            algorithm=algorithm,
            air=self._air(),
            policy_dir=self.settings.data_dir / "policies",
            policy_source=policy_source,
        )
        self.engines[experiment_id] = engine
        engine.start()

    def _air(self) -> AirChannel | None:
        """The true channel for the link layer: the simulated air, else the APs' measurements.

        None without any radio (no CSI endpoints): the link layer is then skipped, and each
        round's details say so.
        """
        from controller.air import SimAir

        if self.settings.air_endpoint:
            # The air's first answer may compute minutes of fading to catch up: be patient.
            return SimAir(self.settings.air_endpoint, timeout_s=_AIR_TIMEOUT_S)
        return self.csi.measured_air() if self.csi is not None else None

    def stop_experiment(self, experiment_id: str, status: str = "stopped") -> None:
        engine = self.engines.pop(experiment_id, None)
        if engine is not None:
            engine.stop()
        with self.db.session() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is not None and row.status == "running":
                row.status = status

    # -- CSI ----------------------------------------------------------------------------------
    def gains(self, ue_ids: list[str]) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Combined gains ``G_u`` of ``ue_ids`` from the latest CSI (``None`` without CSI)."""
        if self.csi is None:
            return None, {"source": "none"}
        return self.csi.gains(ue_ids)

    def csi_status(self) -> dict[str, Any]:
        if self.csi is None:
            return {"enabled": False, "aps": {}}
        return {"enabled": True, **self.csi.status()}


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
