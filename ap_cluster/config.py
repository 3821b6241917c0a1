"""The cluster file (``cluster.yaml``) that ``testbed ap serve`` runs.

It embeds the whole experiment spec (every AP process rebuilds the same simulated world from
it) and says, per AP, where its CSI is published. The launcher writes it with
:func:`cluster_config_from_spec`; the controller connects to :meth:`ClusterConfig.endpoints`
(``tcp://<host>:<port>`` strings) and subscribes to ``csi.``. In sim mode the cluster may also
serve the simulated air (``air``: the world's true channel gains, ``ap_cluster.air``) on a
ZeroMQ REP socket; the controller connects to :meth:`ClusterConfig.air_endpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.spec import ExperimentSpec, UHDBackendSpec

__all__ = [
    "APProcessConfig",
    "AirEndpoint",
    "ClusterConfig",
    "ClusterConfigError",
    "RecordTarget",
    "RestartPolicy",
    "cluster_config_from_spec",
    "load_cluster_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class APProcessConfig(_Strict):
    """One AP flowgraph process."""

    id: str = Field(description="AP id; must be one of spec.topology.aps.")
    bind: str = Field(description="ZeroMQ endpoint the AP's PUB socket binds, e.g. tcp://*:5600.")
    connect: str = Field(description="Endpoint subscribers connect to, e.g. tcp://10.0.0.5:5600.")
    host: str | None = Field(default=None, description="Host that runs it; None: this host.")


class AirEndpoint(_Strict):
    """Where the simulated air (``ap_cluster.air.AirServer``) answers; sim mode only."""

    bind: str = Field(description="ZeroMQ endpoint the REP socket binds, e.g. tcp://*:5700.")
    connect: str = Field(description="Endpoint the controller connects to, tcp://host:port.")


class RecordTarget(_Strict):
    """Where and how much each AP records (``ap_cluster.recording``)."""

    directory: str = Field(description="Folder of the SigMF recordings, one per AP.")
    max_bytes: int = Field(gt=0, description="An AP's recording stops at this size, bytes.")
    max_s: float | None = Field(default=None, gt=0, description="... or this stream time, s.")


class RestartPolicy(_Strict):
    backoff_initial_s: float = Field(default=0.5, gt=0, description="First restart delay, s.")
    backoff_max_s: float = Field(default=10.0, gt=0, description="Largest restart delay, s.")
    stable_after_s: float = Field(
        default=30.0, gt=0, description="Uptime after which the delay resets, s."
    )
    max_restarts: int | None = Field(default=None, ge=0, description="Give up after; None: never.")
    heartbeat_timeout_s: float = Field(
        default=15.0, gt=0, description="A process silent this long is killed and restarted, s."
    )


class ClusterConfig(_Strict):
    """Everything an AP process needs."""

    spec: ExperimentSpec
    aps: list[APProcessConfig] = Field(min_length=1)
    estimator: Literal["ls", "mmse"] = "mmse"
    publish_interval_s: float = Field(
        default=0.05, gt=0, description="Stream time between published CSI frames, s."
    )
    sim_pace: float = Field(
        default=1.0, ge=0, description="Sim source speed vs real time (0: as fast as possible)."
    )
    noise_window: int = Field(default=32, ge=1, description="Silent samples for noise, per frame.")
    buffer_frames: int = Field(
        default=2048, ge=0, description="Frames each GNU Radio buffer holds (0: GNU Radio default)."
    )
    heartbeat_interval_s: float = Field(default=1.0, gt=0, description="AP heartbeat period, s.")
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    air: AirEndpoint | None = Field(
        default=None, description="Serve the simulated air here (sim backend only); None: off."
    )
    record: RecordTarget | None = Field(
        default=None, description="Record every AP's IQ as SigMF; None: off."
    )
    replay: str | None = Field(
        default=None,
        description="A .sigmf-collection (or its folder): its IQ feeds the APs' estimators.",
    )

    @model_validator(mode="after")
    def _known_aps(self) -> ClusterConfig:
        known = [a.id for a in self.spec.topology.aps]
        for i, ap in enumerate(self.aps):
            if ap.id not in known:
                raise ValueError(f"aps.{i}.id: `{ap.id}` is not in spec.topology.aps {known}")
        ids = [a.id for a in self.aps]
        if len(set(ids)) != len(ids):
            raise ValueError("aps: duplicate AP ids")
        if self.air is not None and self.backend != "sim":
            raise ValueError(_AIR_NEEDS_SIM)
        return self

    @property
    def backend(self) -> str:
        return "uhd" if isinstance(self.spec.backend, UHDBackendSpec) else "sim"

    def endpoints(self) -> list[str]:
        """The endpoints the controller's CSI subscriber connects to, in AP order."""
        return [a.connect for a in self.aps]

    def air_endpoint(self) -> str | None:
        """The endpoint the controller's air client connects to; None: no simulated air."""
        return None if self.air is None else self.air.connect

    def endpoints_by_ap(self) -> dict[str, str]:
        """``{ap_id: endpoint}``."""
        return {a.id: a.connect for a in self.aps}

    def ap(self, ap_id: str) -> APProcessConfig:
        for a in self.aps:
            if a.id == ap_id:
                return a
        raise KeyError(f"unknown AP `{ap_id}`; known: {[a.id for a in self.aps]}")

    def dump_yaml(self, path: str | Path) -> Path:
        """Write the file (the spec in its YAML form, aliases included)."""
        p = Path(path)
        data = self.model_dump(mode="json", by_alias=True)
        p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return p


_AIR_NEEDS_SIM = (
    "air: the simulated air needs the sim backend; a uhd cluster has no true channel to "
    "serve (the controller uses the APs' pilot measurements instead)"
)


class ClusterConfigError(ValueError):
    """A cluster file that cannot be used; the message lists every problem with its field."""


def load_cluster_config(path: str | Path) -> ClusterConfig:
    """Read and validate ``cluster.yaml``."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ClusterConfigError(f"{p}: cannot read file: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ClusterConfigError(f"{p}: not valid YAML: {err}") from None
    try:
        return ClusterConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ClusterConfigError(f"{p}: {len(lines)} problem(s)\n" + "\n".join(lines)) from None


def cluster_config_from_spec(
    spec: ExperimentSpec,
    *,
    pub_base_port: int,
    bind_host: str = "*",
    publish_interval_s: float = 0.05,
    estimator: Literal["ls", "mmse"] = "mmse",
    sim_pace: float = 1.0,
    air_port: int | None = None,
    record_dir: Path | None = None,
    replay: Path | None = None,
) -> ClusterConfig:
    """The cluster of ``spec``: AP ``i`` publishes on port ``pub_base_port + i``.

    Subscribers connect to ``tcp://<host>:<port>`` with ``host`` the AP's ``host`` in the spec,
    else ``127.0.0.1``. With ``air_port`` (sim backend only) the serving process also answers
    air requests on ``tcp://<bind_host>:<air_port>``, reached at ``tcp://127.0.0.1:<air_port>``.
    With ``record_dir`` every AP records its IQ there within the spec's ``record`` limits;
    with ``replay`` (a collection) the recording feeds each AP's estimator.
    """
    if not 0 < pub_base_port < 65536 - len(spec.topology.aps):
        raise ValueError(f"`pub_base_port` must leave room for {len(spec.topology.aps)} ports.")
    air = None
    if air_port is not None:
        if isinstance(spec.backend, UHDBackendSpec):
            raise ValueError(f"`air_port`: {_AIR_NEEDS_SIM}")
        if not 0 < air_port < 65536:
            raise ValueError(f"`air_port` must lie in 1..65535, got {air_port}.")
        if pub_base_port <= air_port < pub_base_port + len(spec.topology.aps):
            raise ValueError(f"`air_port` {air_port} is one of the APs' CSI ports.")
        air = AirEndpoint(
            bind=f"tcp://{bind_host}:{air_port}", connect=f"tcp://127.0.0.1:{air_port}"
        )
    aps = [
        APProcessConfig(
            id=ap.id,
            bind=f"tcp://{bind_host}:{pub_base_port + i}",
            connect=f"tcp://{ap.host or '127.0.0.1'}:{pub_base_port + i}",
            host=ap.host,
        )
        for i, ap in enumerate(spec.topology.aps)
    ]
    return ClusterConfig(
        spec=spec,
        aps=aps,
        estimator=estimator,
        publish_interval_s=publish_interval_s,
        sim_pace=sim_pace,
        air=air,
        record=None
        if record_dir is None
        else RecordTarget(
            directory=str(record_dir),
            max_bytes=int(spec.record.max_mb_per_ap * 1e6),
            max_s=spec.record.max_s,
        ),
        replay=None if replay is None else str(replay),
    )
