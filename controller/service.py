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

from controller.db import AgentRow, Database, ExperimentRow
from controller.engine.board import TaskBoard
from controller.engine.liveness import AgentDirectory, AgentInfo
from controller.engine.round_engine import RoundEngine
from controller.models_store import ModelStore
from controller.settings import ControllerSettings
from protocol.spec import ExperimentSpec, parse_spec

__all__ = ["ControllerService"]

log = logging.getLogger(__name__)


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
            row.status, row.error = "running", None
        from controller.allocation import make_algorithm

        if self.csi is not None:
            self.csi.attach(spec)
        strategy = make_algorithm(spec.algorithm, spec.weights, seed=spec.seed)
        engine = RoundEngine(
            experiment_id=experiment_id,
            spec=spec,
            db=self.db,
            store=self.store,
            board=self.board,
            agents=self.agents,
            csi=self.gains,
            aggregation=_aggregation_factory(spec),
            strategy=strategy,
        )
        self.engines[experiment_id] = engine
        engine.start()

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


def _make_csi(settings: ControllerSettings) -> Any:
    if not settings.csi_endpoints:
        return None
    from controller.csi_source import CSIGainSource

    return CSIGainSource(settings.csi_endpoints, stale_s=settings.csi_stale_s)


def _aggregation_factory(spec: ExperimentSpec) -> Any:
    from controller.engine.aggregation import plain_aggregation
    from controller.engine.secure import secure_aggregation

    return secure_aggregation if spec.secure_aggregation.enabled else plain_aggregation
