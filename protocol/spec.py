"""Experiment specification: the YAML file a lab writes to describe one experiment.

Every model forbids unknown fields, so a typo is an error that names the field. Checks that
span several fields run once the whole spec has parsed; each starts with the path of the field
it concerns, e.g. ``radio.tau_p: 30 must not exceed radio.tau_c (20)``. Every number is bounded
to what the code that uses it can carry (finite, in the range of its type); ids and names are
short and safe as file names; ``dataset.path`` stays inside the data directory.

Units are SI throughout (m, Hz, W, s); the only dB values are noise figure and SNR override.
Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import Annotated

from protocol.numbers import Float, Int
from protocol.profiles import BUILTIN_PROFILES, DeviceProfile

__all__ = [
    "ALGORITHMS",
    "DATASET_TRAIN_SIZES",
    "PHY_TB_BITS",
    "APSpec",
    "AlgorithmSpec",
    "BackendSpec",
    "DatasetSpec",
    "EngineSpec",
    "ExperimentSpec",
    "FLSpec",
    "FedMarlSpec",
    "LinkSpec",
    "ModelSpec",
    "RadioSpec",
    "RecordSpec",
    "SecureAggregationSpec",
    "SpecError",
    "TopologySpec",
    "UESpec",
    "WeightsSpec",
    "format_validation_errors",
    "load_spec",
    "load_yaml",
    "parse_spec",
]

#: Training-set sizes of the datasets in ../shared/data (samples).
#: ``wifi``: the wireless-trace task (edge_agent.data.wifi) on the CRAWDAD rutgers/noise traces.
DATASET_TRAIN_SIZES: Dict[str, int] = {"mnist": 60000, "cifar10": 50000, "wifi": 12428}
_DATASET_CLASSES: Dict[str, int] = {"mnist": 10, "cifar10": 10, "wifi": 4}
_MODEL_DATASET: Dict[str, str] = {"mnist_cnn": "mnist", "cifar_cnn": "cifar10", "wifi_mlp": "wifi"}

#: The proposed algorithm and the baselines of DESIGN section 10.
ALGORITHMS = ("proposed", "rrs", "cpa", "fedavg", "fedprox", "drl_ra", "jcc")

#: Two-channel and one-channel sample-rate limits of a USRP B210, Hz.
_B210_FS_MAX_1CH = 61.44e6
_B210_FS_MAX_2CH = 30.72e6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


#: Ids of APs and UEs: short, and safe in file names, URLs and ZeroMQ topics.
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
#: Largest seed: numpy's legacy generators take seeds below 2**32.
SEED_MAX = 2**32 - 1


Position = Tuple[Float, Float]


class APSpec(_Strict):
    """One access point: a USRP B210 (or its simulation)."""

    id: Id
    antennas: Int = Field(default=2, ge=1, le=64, description="Receive antennas (B210: 1 or 2).")
    position_m: Optional[Position] = Field(
        default=None, description="(x, y) in metres; random (seeded) when absent."
    )
    device_args: str = Field(
        default="", max_length=256, description="UHD device args, e.g. `serial=3215ABC`."
    )
    host: Optional[str] = Field(
        default=None, max_length=253, description="Host that runs this AP's flowgraph."
    )


class UESpec(_Strict):
    """One user equipment: an edge board running an agent."""

    id: Id
    profile: str = Field(
        default="rpi4", max_length=64, description="Device profile: rpi4, jetson-nano or custom."
    )
    position_m: Optional[Position] = None
    speed_mps: Float = Field(default=1.0, ge=0, le=100, description="Random-waypoint speed, m/s.")
    host: Optional[str] = Field(
        default=None, max_length=253, description="Board address (lab hardware)."
    )


class TopologySpec(_Strict):
    area_m: Float = Field(default=1000.0, gt=0, le=1e6, description="Side of the square area, m.")
    wrap_around: StrictBool = True
    ap_height_m: Float = Field(
        default=10.0, ge=0, le=1e4, description="AP height above the UEs, m."
    )
    aps: List[APSpec] = Field(min_length=1, max_length=256)
    ues: List[UESpec] = Field(min_length=1, max_length=100_000)


class RadioSpec(_Strict):
    carrier_hz: Float = Field(default=3.5e9, gt=0, le=1e11)
    bandwidth_hz: Float = Field(default=20e6, gt=0, le=1e9)
    sample_rate_hz: Float = Field(
        default=1e6, gt=0, le=1e9, description="AP receive sample rate, Hz."
    )
    tau_p: Int = Field(default=8, ge=1, le=4096, description="Pilot length, samples.")
    tau_c: Int = Field(
        default=200, ge=1, le=1_000_000, description="Coherence block (frame) length, samples."
    )
    noise_figure_db: Float = Field(default=7.0, ge=0, le=50)
    pilot_power_w: Float = Field(default=0.1, gt=0, le=100)
    snr_override_db: Optional[Float] = Field(
        default=None, ge=-50, le=100, description="Force every UE's pilot SNR (sweeps)."
    )


class SimBackendSpec(_Strict):
    kind: Literal["sim"] = "sim"
    cfo_hz: Float = Field(
        default=0.0, ge=-1e7, le=1e7, description="Carrier frequency offset of each UE, Hz."
    )
    timing_offset_samples: Int = Field(default=0, ge=0, le=1_000_000)


ClockSource = Literal["internal", "external", "gpsdo"]


class UHDBackendSpec(_Strict):
    kind: Literal["uhd"]
    clock_source: ClockSource = "internal"
    time_source: ClockSource = "internal"
    rx_gain_db: Float = Field(default=40.0, ge=0, le=76)
    start_delay_s: Float = Field(default=1.0, gt=0, le=60, description="Timed start after PPS, s.")


def _kind_or(default: str) -> Callable[[Any], str]:
    """A union's discriminator: the ``kind`` field, ``default`` where it is left out (so a
    schema-valid document without it means the default)."""

    def kind(value: Any) -> str:
        found = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
        return default if found is None else str(found)

    return kind


BackendSpec = Annotated[
    Union[Annotated[SimBackendSpec, Tag("sim")], Annotated[UHDBackendSpec, Tag("uhd")]],
    Discriminator(_kind_or("sim")),
]


class IIDPartition(_Strict):
    kind: Literal["iid"] = "iid"


class DirichletPartition(_Strict):
    kind: Literal["dirichlet"]
    alpha: Float = Field(
        ge=1e-3, le=1e6, description="Dirichlet concentration; small is more skewed."
    )


class LabelSkewPartition(_Strict):
    kind: Literal["label_skew"]
    classes_per_client: Int = Field(ge=1, le=1000)


Partition = Annotated[
    Union[
        Annotated[IIDPartition, Tag("iid")],
        Annotated[DirichletPartition, Tag("dirichlet")],
        Annotated[LabelSkewPartition, Tag("label_skew")],
    ],
    Discriminator(_kind_or("iid")),
]


class DatasetSpec(_Strict):
    name: Literal["mnist", "cifar10", "wifi"] = "mnist"
    path: Optional[Path] = Field(
        default=None,
        description="Sub-folder of the data directory holding the dataset (relative, no `..`); "
        "default: the data directory itself (../shared/data, or TESTBED_DATA_DIR).",
    )
    partition: Partition = Field(default_factory=IIDPartition)
    samples_per_client: Optional[Int] = Field(
        default=None, ge=1, le=1_000_000, description="Cap on each client's local samples."
    )
    min_samples_per_client: Int = Field(default=10, ge=1, le=1_000_000)

    @field_validator("path")
    @classmethod
    def _inside_data_dir(cls, path: Optional[Path]) -> Optional[Path]:
        if path is None:
            return None
        text = str(path)
        if len(text) > 255 or "\x00" in text:
            raise ValueError("must be at most 255 characters, without NUL")
        if path.is_absolute() or path.anchor or ".." in path.parts:
            raise ValueError(f"`{text[:64]}` must be relative to the data directory, without `..`")
        return path


class ModelSpec(_Strict):
    name: Literal["mnist_cnn", "cifar_cnn", "wifi_mlp"] = "mnist_cnn"


class FLSpec(_Strict):
    rounds: Int = Field(default=20, ge=1, le=100_000)
    local_epochs: Int = Field(default=1, ge=1, le=1000)
    batch_size: Int = Field(default=32, ge=1, le=65536)
    learning_rate: Float = Field(default=0.05, gt=0, le=100)
    momentum: Float = Field(default=0.0, ge=0, lt=1)
    clients_per_round: Optional[Int] = Field(
        default=None, ge=1, le=100_000, description="Default: all UEs."
    )
    round_deadline_s: Float = Field(
        default=120.0,
        ge=0.1,
        le=86_400,
        description="Wall-clock deadline of each stage, s (crash dropouts).",
    )


class AblationSpec(_Strict):
    no_cra: StrictBool = False
    no_csm: StrictBool = False
    no_fal: StrictBool = False
    no_drl: StrictBool = False


class AlgorithmSpec(_Strict):
    name: Literal["proposed", "rrs", "cpa", "fedavg", "fedprox", "drl_ra", "jcc"] = "proposed"
    fedprox_mu: Float = Field(default=0.01, ge=0, le=1000)
    bandwidth: Literal["softmax", "exact"] = "softmax"
    power: Literal["drl", "max", "convex"] = "drl"
    ablation: AblationSpec = Field(default_factory=AblationSpec)
    policy: Optional[str] = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Power-policy file (or name in TESTBED_POLICY_DIR) to start from, e.g. one "
        "from `testbed train power-policy`; none: an untrained policy that learns online.",
    )


class WeightsSpec(_Strict):
    alpha: Float = Field(default=1.0, ge=0, le=1e6, description="Accuracy weight.")
    beta: Float = Field(default=0.1, ge=0, le=1e6, description="Energy weight, 1/J.")
    gamma: Float = Field(default=1.0, ge=0, le=1e6, description="Latency weight, 1/s.")
    lambda_: Float = Field(
        default=0.1, ge=0, le=1e6, alias="lambda", description="FAL fairness weight."
    )


class SecureAggregationSpec(_Strict):
    enabled: StrictBool = True
    threshold: Optional[Int] = Field(
        default=None,
        ge=2,
        le=100_000,
        description="Survivors needed to unmask; default ceil(2/3 n).",
    )
    neighbours: Optional[Int] = Field(
        default=None,
        ge=2,
        le=100_000,
        description="k of a k-regular graph (SecAgg+); none: complete.",
    )
    clip: Float = Field(default=1.0, gt=0, le=1e6, description="Clipping bound of each coordinate.")
    fraction_bits: Int = Field(default=16, ge=1, le=40)


#: MCS tables of the link layer (3GPP TS 38.214 Tables 5.1.3.1-1 and 5.1.3.1-2).
MCS_TABLES = ("nr-64qam", "nr-256qam")


#: Bits of one transport block of the IQ data plane (``protocol.air.TB_BYTES`` bytes).
PHY_TB_BITS = 4000


class LinkSpec(_Strict):
    """The link layer (DESIGN section 12): which planned updates the radio really carries.

    ``mode: abstract`` decides each transport block from a BLER curve; ``mode: iq`` sends the
    update's bytes through the GNU Radio PHY (the simulated air's burst service), so what the
    controller aggregates is what decoded. ``iq`` implies ``bler: measured`` (the PHY's six
    schemes), ``tbs_bits: 4000`` (its transport block) and no Chase combining (the receiver
    does not keep soft bits across tries); each may be left out, and setting another value is
    an error.
    """

    enabled: StrictBool = Field(
        default=True, description="Off: every reported update arrives (no MCS, no HARQ)."
    )
    mode: Literal["abstract", "iq"] = Field(
        default="abstract",
        description="abstract: BLER curves decide each block; iq: the bytes cross the PHY.",
    )
    bler: Literal["nr", "measured"] = Field(
        default="nr",
        description=(
            "nr: the NR LDPC curves of `mcs_table`; measured: the PHY's schemes with the BLER "
            "that `testbed bench phy` measured (`bler_table`)."
        ),
    )
    bler_table: Optional[str] = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="bler measured: a `testbed bench phy --out` file; none: the packaged one.",
    )
    mcs_table: Literal["nr-64qam", "nr-256qam"] = Field(
        default="nr-64qam", description="5G NR PUSCH MCS table (TS 38.214 5.1.3.1-1 or -2)."
    )
    backoff_db: Float = Field(
        default=3.0, ge=0, le=30, description="Margin below the planned SINR for the MCS, dB."
    )
    tbs_bits: Int = Field(
        default=8448, ge=64, le=1_000_000, description="Transport block size, bit."
    )
    harq_max_retx: Int = Field(default=3, ge=0, le=16, description="HARQ retransmissions.")
    chase_combining: StrictBool = Field(
        default=True, description="Retries of a block add their SINRs (HARQ Chase combining)."
    )
    deadline_s: Optional[Float] = Field(
        default=None,
        gt=0,
        le=1e6,
        description="Modelled round deadline, s; none: deadline_factor x the planned latency.",
    )
    deadline_factor: Float = Field(
        default=1.5,
        ge=1.0,
        le=100.0,
        description="Deadline derived from the plan: this x the planned round latency.",
    )

    @model_validator(mode="before")
    @classmethod
    def _iq_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") == "iq":
            data = {"bler": "measured", "tbs_bits": PHY_TB_BITS, "chase_combining": False, **data}
        return data


class RecordSpec(_Strict):
    """SigMF recordings of what every AP's flowgraph received (``testbed run --record``)."""

    enabled: StrictBool = Field(default=False, description="Record every AP's IQ.")
    max_mb_per_ap: Float = Field(
        default=512.0, gt=0, le=1e6, description="Stop an AP's recording at this size, MB."
    )
    max_s: Optional[Float] = Field(
        default=None, gt=0, le=1e6, description="Stop each recording after this stream time, s."
    )


class EngineSpec(_Strict):
    """Which driver runs the round core (DESIGN section 8).

    ``processes`` is the networked testbed: a controller, an AP cluster and one agent process
    per UE (real radios or the simulated backend). ``sim`` is the in-process simulator:
    virtual clients trained in batches, in this process or on Ray actors, for sweeps and
    thousands of UEs. ``engine: sim`` is short for ``engine: {kind: sim}``.
    """

    kind: Literal["processes", "sim"] = "processes"
    backend: Literal["local", "ray"] = Field(
        default="local", description="sim: one process, or client shards on Ray actors."
    )
    ray_address: Optional[str] = Field(
        default=None,
        max_length=256,
        description="sim with ray: a cluster (`auto`, `ray://host:10001`); none: start one.",
    )
    workers: Optional[Int] = Field(
        default=None, ge=1, le=4096, description="sim with ray: shard actors; default one per CPU."
    )
    channel: Literal["auto", "exact", "sampled"] = Field(
        default="auto",
        description=(
            "sim: `exact` builds the fading of every frame (the air server's world, bit for "
            "bit); `sampled` draws it only at the frames a round looks at (large studies); "
            "`auto`: exact up to 256 UEs."
        ),
    )
    secagg_max_clients: Int = Field(
        default=64,
        ge=0,
        le=100_000,
        description="sim: rounds with more clients aggregate in the clear (said in the summary).",
    )
    chunk: Int = Field(
        default=8, ge=1, le=65536, description="sim: clients trained together in one pass."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data


class FedMarlSpec(_Strict):
    """``mode: fedmarl`` (seed paper 1, DESIGN section 9): the agents learn their own edge
    policies and the rounds federate those instead of a model.

    Every UE's agent runs a DRQN (:mod:`fedmarl.drqn`, its defaults) on the Fed-MARL
    environment (:mod:`fedmarl.env`, its defaults, one environment agent per UE in topology
    order). A round is the FL round of DESIGN section 8 with the agents' networks as the
    model: CRA and CSM plan the upload of each network's change, the link decides which
    arrive, secure aggregation sums them, and every agent starts the next round from the
    federated network. ``accuracy`` is then the evaluation's task success rate (modelled by
    the environment).
    """

    subbands: Int = Field(default=4, ge=1, le=64, description="Edge uplink sub-bands K.")
    slots: Int = Field(default=200, ge=10, le=100_000, description="Slots per episode.")
    episodes_per_round: Int = Field(
        default=2, ge=1, le=1000, description="R: local episodes between two federations."
    )
    eval_episodes: Int = Field(
        default=1, ge=1, le=100, description="Greedy episodes per evaluation."
    )
    learning_rate: Float = Field(default=1e-3, gt=0, le=1.0, description="The DRQN's Adam.")

    @property
    def transitions_per_round(self) -> int:
        """Transitions an agent learns from in a round (every episode runs all its slots)."""
        return self.episodes_per_round * self.slots


def _default_backend() -> SimBackendSpec:
    return SimBackendSpec()


class ExperimentSpec(_Strict):
    """The whole experiment file."""

    name: str = Field(
        min_length=1,
        max_length=48,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Short and file-name safe: the experiment id is `NAME-xxxxxxxx`.",
    )
    seed: Int = Field(default=0, ge=0, le=SEED_MAX)
    topology: TopologySpec
    radio: RadioSpec = Field(default_factory=RadioSpec)
    backend: BackendSpec = Field(default_factory=_default_backend)
    device_profiles: Dict[str, DeviceProfile] = Field(
        default_factory=dict,
        max_length=64,
        description="Custom profiles by name, beside the built-in ones.",
    )
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    fl: FLSpec = Field(default_factory=FLSpec)
    algorithm: AlgorithmSpec = Field(default_factory=AlgorithmSpec)
    weights: WeightsSpec = Field(default_factory=WeightsSpec)
    link: LinkSpec = Field(default_factory=LinkSpec)
    record: RecordSpec = Field(default_factory=RecordSpec)
    secure_aggregation: SecureAggregationSpec = Field(default_factory=SecureAggregationSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    mode: Literal["fl", "fedmarl"] = Field(
        default="fl",
        description="fl: federate the model; fedmarl: federate the agents' DRQN edge policies.",
    )
    fedmarl: FedMarlSpec = Field(default_factory=FedMarlSpec)

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentSpec:
        problems = _cross_field_problems(self)
        if problems:
            raise ValueError(_PROBLEM_SEPARATOR.join(problems))
        return self

    @property
    def n_ues(self) -> int:
        return len(self.topology.ues)

    @property
    def clients_per_round(self) -> int:
        return self.fl.clients_per_round or self.n_ues

    @property
    def secagg_threshold(self) -> int:
        t = self.secure_aggregation.threshold
        return t if t is not None else max(2, math.ceil(2 * self.clients_per_round / 3))

    def profile(self, ue: UESpec) -> DeviceProfile:
        """The device profile of ``ue`` (custom profiles shadow built-in ones)."""
        return {**BUILTIN_PROFILES, **self.device_profiles}[ue.profile]


def _duplicates(ids: List[str]) -> List[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def _link_problems(link: LinkSpec) -> List[str]:
    """What does not fit together in the ``link:`` section."""
    out: List[str] = []
    if link.bler == "measured" and link.mcs_table != "nr-64qam":
        out.append(
            f"link.mcs_table: `{link.mcs_table}` is an NR table, but `bler: measured` uses the "
            "PHY's own schemes"
        )
    if link.bler_table is not None and link.bler != "measured":
        out.append("link.bler_table: is read only with `link.bler: measured`")
    if link.mode != "iq":
        return out
    if not link.enabled:
        out.append("link.mode: iq sends the bytes through the PHY; `link.enabled` must be true")
    if link.bler != "measured":
        out.append("link.bler: mode iq plans with the PHY's schemes; use `measured`")
    if link.tbs_bits != PHY_TB_BITS:
        out.append(
            f"link.tbs_bits: mode iq's PHY carries {PHY_TB_BITS}-bit blocks, got {link.tbs_bits}"
        )
    if link.chase_combining:
        out.append("link.chase_combining: mode iq's receiver does not combine tries")
    return out


def _cross_field_problems(spec: ExperimentSpec) -> List[str]:
    """Every cross-field problem of ``spec``, each starting with the field path it concerns."""
    out: List[str] = []
    topo, radio, ds = spec.topology, spec.radio, spec.dataset
    for where, items in (("topology.aps", topo.aps), ("topology.ues", topo.ues)):
        dup = _duplicates([x.id for x in items])
        if dup:
            out.append(f"{where}: duplicate ids {dup}")
    placed = (
        ("aps", [a.position_m for a in topo.aps]),
        ("ues", [u.position_m for u in topo.ues]),
    )
    for kind, positions in placed:
        for i, pos in enumerate(positions):
            if pos is not None and not all(0 <= c <= topo.area_m for c in pos):
                out.append(f"topology.{kind}.{i}.position_m: {pos} lies outside the area")
    if radio.tau_p > radio.tau_c:
        out.append(f"radio.tau_p: {radio.tau_p} must not exceed radio.tau_c ({radio.tau_c})")
    known = {**BUILTIN_PROFILES, **spec.device_profiles}
    for i, ue in enumerate(topo.ues):
        if ue.profile not in known:
            out.append(
                f"topology.ues.{i}.profile: unknown profile `{ue.profile}`; known {sorted(known)}"
            )
    if isinstance(spec.backend, UHDBackendSpec):
        for i, ap in enumerate(topo.aps):
            if ap.antennas > 2:
                out.append(f"topology.aps.{i}.antennas: a B210 has at most 2 ({ap.antennas})")
            fs_max = _B210_FS_MAX_2CH if ap.antennas == 2 else _B210_FS_MAX_1CH
            if radio.sample_rate_hz > fs_max:
                out.append(
                    f"radio.sample_rate_hz: {radio.sample_rate_hz:g} exceeds the B210 limit "
                    f"{fs_max:g} with {ap.antennas} channel(s) (topology.aps.{i})"
                )
    expected = _MODEL_DATASET[spec.model.name]
    if expected != ds.name:
        out.append(
            f"model.name: `{spec.model.name}` is for {expected}, not dataset.name `{ds.name}`"
        )
    size, n = DATASET_TRAIN_SIZES[ds.name], spec.n_ues
    per_client = ds.samples_per_client or ds.min_samples_per_client
    if n * per_client > size:
        out.append(
            f"topology.ues: {n} UEs x {per_client} samples each exceed the {size} training "
            f"samples of dataset.name `{ds.name}`"
        )
    part = ds.partition
    if isinstance(part, LabelSkewPartition) and part.classes_per_client > _DATASET_CLASSES[ds.name]:
        out.append(
            f"dataset.partition.classes_per_client: {part.classes_per_client} exceeds the "
            f"{_DATASET_CLASSES[ds.name]} classes of {ds.name}"
        )
    out.extend(_link_problems(spec.link))
    if spec.record.enabled and spec.engine.kind == "sim":
        out.append(
            "record.enabled: the in-process simulator makes no IQ to record; recordings come "
            "from the networked engine's AP flowgraphs (engine.kind: processes)"
        )
    if spec.link.mode == "iq":
        if spec.engine.kind == "sim":
            out.append(
                "link.mode: iq sends every update's bytes through the PHY; it runs in the "
                "networked engine (engine.kind: processes), not the in-process simulator"
            )
        if not isinstance(spec.backend, SimBackendSpec):
            out.append(
                "link.mode: iq needs backend.kind sim (its burst service is the simulated "
                "air; the UE B210 transmitter is not built)"
            )
    if spec.mode == "fedmarl":
        if spec.engine.kind == "sim" and spec.engine.backend != "local":
            out.append(
                "engine.backend: mode fedmarl's agents learn in the simulator's own process "
                f"(local), not on `{spec.engine.backend}`"
            )
        if n < 2:
            out.append(f"topology.ues: mode fedmarl needs at least 2 agents, got {n}")
        for i, ue in enumerate(topo.ues):
            if ue.profile not in BUILTIN_PROFILES:
                out.append(
                    f"topology.ues.{i}.profile: mode fedmarl's environment knows the built-in "
                    f"boards {sorted(BUILTIN_PROFILES)}, not `{ue.profile}`"
                )
    if spec.fl.clients_per_round is not None and spec.fl.clients_per_round > n:
        out.append(f"fl.clients_per_round: {spec.fl.clients_per_round} exceeds the {n} UEs")
    sa = spec.secure_aggregation
    if sa.enabled:
        m = spec.clients_per_round
        if sa.threshold is not None and sa.threshold > m:
            out.append(
                f"secure_aggregation.threshold: {sa.threshold} exceeds {m} clients per round"
            )
        elif sa.threshold is not None and sa.neighbours is None and 2 * sa.threshold <= m:
            # on the complete graph the agents refuse a round whose shares a minority rebuilds
            out.append(
                f"secure_aggregation.threshold: {sa.threshold} must exceed half of the {m} "
                "clients per round (the agents refuse a smaller one)"
            )
        if sa.neighbours is not None and sa.neighbours >= m:
            out.append(
                f"secure_aggregation.neighbours: {sa.neighbours} must be below the {m} clients "
                "per round (leave it out for the complete graph)"
            )
    return out


class SpecError(ValueError):
    """An experiment file that cannot be used; ``problems`` holds one line per error.

    ``details`` holds the same problems in the shape of FastAPI's validation errors:
    ``{"loc": [...field path], "msg": ..., "type": ...}``.
    """

    def __init__(
        self, source: str, problems: List[str], details: Optional[List[Dict[str, Any]]] = None
    ) -> None:
        self.source = source
        self.problems = problems
        self.details = details if details is not None else [_detail(p) for p in problems]
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


_VALUE_ERROR = "Value error, "
#: Joins the cross-field problems in one ValueError; no message contains a newline.
_PROBLEM_SEPARATOR = "\n"


def _loc(path: str) -> List[Union[str, int]]:
    return [int(p) if p.isdigit() else p for p in path.split(".") if p]


def _detail(problem: str, kind: str = "value_error") -> Dict[str, Any]:
    """``{"loc", "msg", "type"}`` of one ``field.path: message`` line."""
    path, sep, _ = problem.partition(": ")
    loc = _loc(path) if sep and " " not in path else []
    return {"loc": loc, "msg": problem, "type": kind}


def _validation_details(err: ValidationError) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for e in err.errors(include_input=False, include_url=False):
        msg = e["msg"]
        if msg.startswith(_VALUE_ERROR):
            msg = msg[len(_VALUE_ERROR) :]
        loc = [p for p in e["loc"] if isinstance(p, (str, int))]
        if loc:
            path = ".".join(str(p) for p in loc)
            out.append({"loc": loc, "msg": f"{path}: {msg}", "type": e["type"]})
        else:
            out.extend(_detail(line, e["type"]) for line in msg.split(_PROBLEM_SEPARATOR))
    return out


def format_validation_errors(err: ValidationError) -> List[str]:
    """One ``field.path: message`` line per error; cross-field messages split per problem.

    Never quotes the input (a spec may hold long or hostile values)."""
    return [d["msg"] for d in _validation_details(err)]


def parse_spec(data: object, source: str = "<spec>") -> ExperimentSpec:
    """Validate a parsed YAML/JSON document; raise :class:`SpecError` listing every problem."""
    if not isinstance(data, dict):
        raise SpecError(source, [f"top level: expected a mapping, got {type(data).__name__}"])
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as err:
        details = _validation_details(err)
        raise SpecError(source, [d["msg"] for d in details], details) from None


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with YAML 1.2 floats: ``3.5e9`` is a number (YAML 1.1, which
    PyYAML follows, wants ``3.5e+9`` and would read ``3.5e9`` as a string)."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse a spec's YAML text (YAML 1.2 floats; see :class:`_SpecLoader`)."""
    return yaml.load(text, Loader=_SpecLoader)


def load_spec(path: Union[str, Path]) -> ExperimentSpec:
    """Read and validate the experiment file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(str(p), [f"cannot read file: {err.strerror}"]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as err:
        raise SpecError(str(p), [f"not valid YAML: {err}"]) from None
    return parse_spec(data, source=str(p))
