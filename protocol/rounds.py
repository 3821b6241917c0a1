"""Round messages between the controller and the edge agents (HTTP/JSON under ``/api/v1``).

An agent long-polls ``GET /agents/{id}/task?wait_s=W`` (the answer comes as soon as a stage
gives it work, or after ``W`` seconds, at most :data:`TASK_WAIT_MAX_S`, as an idle task) and gets
a :class:`Task` naming the stage it should do;
it answers with ``POST /experiments/{eid}/rounds/{round}/{stage}``. Stages of a round, in order:

0. ``init`` (first round only): upload the seeded initial model (safetensors bytes); every
   agent builds the same one from the experiment seed, and the controller keeps the first.
1. ``train``: download the global model, apply DVFS, compute the loss of the global model on the
   local data, train, report a :class:`TrainReport` (with the first secure-aggregation message):
   measured numbers only (wall time, applied frequency, metered energy where a meter exists).
   A train task that also carries ``evaluate`` asks for the global model's score on a test
   shard too: the previous round's evaluation, done without a stage of its own.
2. ``share_keys``, ``masked_input``, ``unmask``: the secure-aggregation stages (or ``upload``, the
   plain weighted update, when secure aggregation is off). Bodies are opaque bytes.
3. ``evaluate``: evaluate the new global model on the agent's test shard; an :class:`EvalReport`
   (only after the last round, or when the next round cannot carry it).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ENROL_TOKEN_HEADER",
    "STAGES",
    "TASK_WAIT_MAX_S",
    "EnrolRequest",
    "EnrolResponse",
    "EvalReport",
    "EvalTask",
    "FedMarlTask",
    "Heartbeat",
    "PrepareTask",
    "Stage",
    "Task",
    "TrainReport",
    "TrainTask",
]

Stage = Literal[
    "idle", "init", "train", "share_keys", "masked_input", "unmask", "upload", "evaluate"
]
#: The longest a task request may wait for a task, s.
TASK_WAIT_MAX_S = 30.0
#: The header that carries the enrolment token (checked before the body is read).
ENROL_TOKEN_HEADER = "X-Enrol-Token"
STAGES = ("init", "train", "share_keys", "masked_input", "unmask", "upload", "evaluate")


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolRequest(_Msg):
    """An agent's identity; the enrolment token travels in the ``X-Enrol-Token`` header."""

    agent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    profile: str = Field(min_length=1, max_length=64)
    public_key: str = Field(min_length=40, max_length=64, description="Ed25519, base64 raw.")


class EnrolResponse(_Msg):
    agent_id: str
    enrolled: bool
    message: str = ""


class Heartbeat(_Msg):
    status: Dict[str, Any] = Field(default_factory=dict)


class TrainTask(_Msg):
    """What one agent does in the ``train`` stage."""

    ue_id: str
    client_index: int = Field(ge=0, description="This agent's index in the data partition.")
    n_clients: int = Field(ge=1)
    model_version: int
    model_name: str
    dataset: Dict[str, Any] = Field(description="protocol.spec.DatasetSpec as JSON.")
    seed: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    momentum: float
    fedprox_mu: float = 0.0
    freq_hz: float = Field(gt=0, description="CPU frequency the agent sets by DVFS, Hz.")
    power_w: float = Field(ge=0, description="Uplink transmit power, W.")
    bandwidth_hz: float = Field(ge=0, description="Uplink bandwidth, Hz.")
    comm_latency_s: float = Field(ge=0, description="Predicted upload time, s.")
    secure_aggregation: bool
    secagg: Dict[str, Any] = Field(default_factory=dict, description="Round parameters.")
    profile: Optional[str] = Field(
        default=None,
        description="The UE's device profile name the controller expects (rpi4, jetson-nano "
        "or custom); None: whatever the agent plays.",
    )


class EvalReport(_Msg):
    """A model scored (``mode: fedmarl``: a federated network played greedily, ``correct`` and
    ``total`` the agent's completed and arrived tasks, ``test_loss`` minus its mean reward per
    slot, ``train_loss`` its task failure rate; all modelled by the environment)."""

    correct: int = Field(ge=0)
    total: int = Field(ge=0)
    test_loss: float
    train_loss: float = Field(description="Loss of the new global model on the local data.")
    fedmarl: Optional[Dict[str, float]] = Field(
        default=None,
        description="mode fedmarl: the agent's own episode metrics (fedmarl.env's names).",
    )


class TrainReport(_Msg):
    """What one agent measured in the ``train`` stage.

    Only measured numbers: the controller models energy itself (DESIGN section 12: airtime with
    retries, the applied frequency, the UE's profile), so modelled and measured never mix.
    """

    loss: float = Field(description="Loss of the global model on the local data.")
    loss_after: float
    samples: int = Field(ge=1)
    train_s: float = Field(ge=0, description="Measured wall-clock training time, s.")
    freq_applied_hz: float = Field(
        ge=0, description="CPU frequency the DVFS backend actually applied, Hz."
    )
    measured_energy_j: Optional[float] = Field(
        default=None,
        ge=0,
        description="Energy of local training measured by the board's meter (e.g. INA3221), J; "
        "None where the board has no meter.",
    )
    meter: str = Field(default="none", description="The meter that measured it: ina3221 or none.")
    secagg_advertise: Optional[str] = Field(
        default=None, description="First secure-aggregation message, base64."
    )
    evaluation: Optional[EvalReport] = Field(
        default=None,
        description="With a task that carries `evaluate`: the global model this round trained "
        "from, scored on that test shard before training (`train_loss` is `loss`).",
    )


class EvalTask(_Msg):
    """Score a model on test shard ``shard_index`` of ``n_shards`` and on the local data."""

    model_version: int
    shard_index: int = Field(ge=0)
    n_shards: int = Field(ge=1)
    client_index: int = Field(ge=0, description="This agent's index in the data partition.")
    n_clients: int = Field(ge=1)
    dataset: Dict[str, Any] = Field(description="protocol.spec.DatasetSpec as JSON.")


class PrepareTask(_Msg):
    """The local data an agent will train on in this experiment, to load during ``init`` (a
    one-off cost that would otherwise fall into the first round)."""

    client_index: int = Field(ge=0, description="This agent's index in the data partition.")
    n_clients: int = Field(ge=1)
    dataset: Dict[str, Any] = Field(description="protocol.spec.DatasetSpec as JSON.")
    seed: int


class FedMarlTask(_Msg):
    """The Fed-MARL environment an agent plays in ``mode: fedmarl`` (every stage carries it)."""

    config: Dict[str, Any] = Field(description="protocol.spec.FedMarlSpec as JSON.")
    agent_index: int = Field(ge=0, description="This agent's place among the environment's.")
    n_agents: int = Field(ge=2)
    profiles: List[str] = Field(description="Every agent's device profile, in agent order.")


class Task(_Msg):
    """The stage an agent should do now; ``stage == "idle"`` means poll again later."""

    experiment_id: str = ""
    round: int = -1
    attempt: int = 0
    stage: Stage = "idle"
    deadline_unix: float = 0.0
    train: Optional[TrainTask] = None
    evaluate: Optional[EvalTask] = None
    prepare: Optional[PrepareTask] = None
    fedmarl: Optional[FedMarlTask] = None
    secagg: Optional[str] = Field(default=None, description="Stage input, base64 bytes.")
    weight: Optional[float] = Field(
        default=None, description="FAL/FedAvg weight q_u of the update."
    )
    model_name: str = ""
    seed: int = 0
    poll_s: float = Field(default=0.5, gt=0, description="When to poll again, s.")
    #: Ids of the clients in this round, for the record.
    clients: List[str] = Field(default_factory=list)
