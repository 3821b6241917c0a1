"""What `testbed reproduce s2` runs: the scales, and one experiment spec per cell.

Seed paper 2 reports its results in Figures 6-11 and Tables 5-6 (DESIGN section 10). Each of
them is a set of *cells*: one experiment (an :class:`~protocol.spec.ExperimentSpec`) for one
method, one setting and one seed. Every method of a study gets the same topology, data,
partition, seeds, rounds and local training; only ``algorithm`` (and the study's setting)
changes. The paper publishes no topology or training budget, so the scales below are ours:

- ``smoke``: the whole report in a few minutes on a 2-core laptop (CI runs it); too few rounds
  and samples to learn much, it checks that every study runs end to end;
- ``medium``: about half an hour on 2 cores: enough rounds to see the methods part, too few
  seeds for a 1% test;
- ``full``: the budget the report is meant to be read at (many hours on 2 cores, about one per
  study on a 32-core server with the simulator's Ray backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.spec import ALGORITHMS, ExperimentSpec

__all__ = [
    "ABLATIONS",
    "METHODS",
    "SCALES",
    "TASKS",
    "Cell",
    "Scale",
    "cells",
    "study_spec",
]

#: The methods of Figure 6 in the paper's order, the proposed one last.
METHODS: tuple[str, ...] = ("rrs", "cpa", "fedavg", "fedprox", "drl_ra", "jcc", "proposed")
assert set(METHODS) == set(ALGORITHMS)
#: Table 6: each variant of the proposed method with one module removed.
ABLATIONS: tuple[str, ...] = ("no_cra", "no_csm", "no_fal", "no_drl")
#: Figure 9's tasks: (name, dataset, model, partition).
TASKS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("cifar10", "cifar10", "cifar_cnn", {"kind": "dirichlet", "alpha": 0.5}),
    ("mnist", "mnist", "mnist_cnn", {"kind": "label_skew", "classes_per_client": 2}),
    ("wifi", "wifi", "wifi_mlp", {"kind": "dirichlet", "alpha": 0.5}),
)

Study = Literal["comparison", "ablation", "snr", "alpha", "multitask"]


class Scale(BaseModel):
    """The budget of one reproduction (every study uses it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="smoke, medium or full.")
    ues: int = Field(ge=3, le=10_000, description="UEs of the topology (Figure 8 shows 20).")
    aps: int = Field(ge=1, le=256, description="Access points, 2 antennas each.")
    rounds: int = Field(ge=1, le=10_000, description="FL rounds of every run.")
    samples_per_client: int = Field(ge=1, le=100_000)
    seeds: int = Field(ge=2, le=100, description="Seeds of the comparison and the ablations.")
    sweep_seeds: int = Field(ge=1, le=100, description="Seeds of the SNR and alpha sweeps.")
    snrs_db: tuple[float, ...] = Field(min_length=1, description="Figure 10's pilot SNRs, dB.")
    alphas: tuple[float, ...] = Field(min_length=1, description="Figure 11's Dirichlet alphas.")
    target_accuracy: float = Field(gt=0, le=1, description="Rounds to this test accuracy.")
    secure: bool = Field(description="Secure aggregation on (the sum is the same either way).")
    bandwidth_ues: int = Field(ge=1, description="Figure 8: UEs shown.")
    bandwidth_rounds: int = Field(ge=1, description="Figure 8: rounds shown.")


SCALES: dict[str, Scale] = {
    "smoke": Scale(
        name="smoke",
        ues=10,
        aps=4,
        rounds=2,
        samples_per_client=16,
        seeds=3,
        sweep_seeds=1,
        snrs_db=(0.0, 15.0, 30.0),
        alphas=(0.1, 0.3, 0.5, 1.0),
        target_accuracy=0.15,
        secure=False,
        bandwidth_ues=10,
        bandwidth_rounds=2,
    ),
    "medium": Scale(
        name="medium",
        ues=10,
        aps=4,
        rounds=8,
        samples_per_client=64,
        seeds=3,
        sweep_seeds=1,
        snrs_db=(0.0, 10.0, 20.0, 30.0),
        alphas=(0.1, 0.3, 0.5, 1.0),
        target_accuracy=0.2,
        secure=False,
        bandwidth_ues=10,
        bandwidth_rounds=8,
    ),
    "full": Scale(
        name="full",
        ues=20,
        aps=8,
        rounds=100,
        samples_per_client=500,
        seeds=5,
        sweep_seeds=2,
        snrs_db=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0),
        alphas=(0.1, 0.3, 0.5, 1.0),
        target_accuracy=0.6,
        secure=True,
        bandwidth_ues=20,
        bandwidth_rounds=30,
    ),
}


@dataclass(frozen=True)
class Cell:
    """One run of a study.

    Attributes:
        study: which figure or table it feeds.
        method: the algorithm (``ablation``: the variant, ``full`` or one of :data:`ABLATIONS`).
        setting: the study's setting (``snr``: dB, ``alpha``: the concentration, ``multitask``:
            the task); None for the others.
        seed: the experiment's seed.
        spec: what is run.
    """

    study: Study
    method: str
    setting: float | str | None
    seed: int
    spec: ExperimentSpec

    @property
    def key(self) -> str:
        """A file-name-safe name, unique within a reproduction."""
        setting = "" if self.setting is None else f"-{self.setting}"
        return f"{self.study}-{self.method}{setting}-s{self.seed}"


def study_spec(
    scale: Scale,
    *,
    name: str,
    method: str,
    seed: int,
    dataset: str = "cifar10",
    model: str = "cifar_cnn",
    partition: dict[str, Any] | None = None,
    ablation: str | None = None,
    snr_db: float | None = None,
    ue_prefix: str = "ue",
    ues: int | None = None,
    bandwidth_share: float = 1.0,
    engine: str = "sim",
) -> ExperimentSpec:
    """The experiment of one cell: the scale's topology and training, ``method`` and the
    study's change. ``bandwidth_share`` scales ``radio.bandwidth_hz`` (Figure 9's tasks share
    the band)."""
    n = scale.ues if ues is None else ues
    radio: dict[str, Any] = {"bandwidth_hz": 20e6 * bandwidth_share}
    if snr_db is not None:
        radio["snr_override_db"] = snr_db
    algorithm: dict[str, Any] = {"name": method}
    if ablation is not None:
        algorithm["ablation"] = {ablation: True}
    return ExperimentSpec.model_validate(
        {
            "name": name,
            "seed": seed,
            "topology": {
                "area_m": 500,
                "aps": [{"id": f"ap{i}", "antennas": 2} for i in range(scale.aps)],
                "ues": [
                    {"id": f"{ue_prefix}{i}", "profile": "rpi4" if i % 2 == 0 else "jetson-nano"}
                    for i in range(n)
                ],
            },
            "radio": radio,
            "dataset": {
                "name": dataset,
                "partition": partition or {"kind": "dirichlet", "alpha": 0.5},
                "samples_per_client": scale.samples_per_client,
            },
            "model": {"name": model},
            "fl": {
                "rounds": scale.rounds,
                "local_epochs": 1,
                "batch_size": 32,
                "learning_rate": 0.05,
                "momentum": 0.5,
            },
            "algorithm": algorithm,
            "secure_aggregation": {"enabled": scale.secure},
            "engine": {"kind": engine},
        }
    )


def _task_sizes(total: int) -> list[int]:
    """Figure 9: the UEs split as evenly as possible over the three tasks (at least one each)."""
    k = len(TASKS)
    return [total // k + (1 if i < total % k else 0) for i in range(k)]


def cells(scale: Scale, *, engine: str = "sim") -> Iterator[Cell]:
    """Every run of the reproduction, study by study (the comparison first: the ablation's
    full method, Figure 8 and the alpha = 0.5 curve of Figure 11 reuse its runs)."""
    seeds = range(scale.seeds)
    for method in METHODS:
        for seed in seeds:
            spec = study_spec(
                scale, name=f"s2-cmp-{method}", method=method, seed=seed, engine=engine
            )
            yield Cell("comparison", method, None, seed, spec)
    for variant in ABLATIONS:
        for seed in seeds:
            spec = study_spec(
                scale,
                name=f"s2-abl-{variant}",
                method="proposed",
                seed=seed,
                ablation=variant,
                engine=engine,
            )
            yield Cell("ablation", variant, None, seed, spec)
    sweep = range(scale.sweep_seeds)
    for snr in scale.snrs_db:
        for method in METHODS:
            for seed in sweep:
                spec = study_spec(
                    scale,
                    name=f"s2-snr{snr:g}-{method}",
                    method=method,
                    seed=seed,
                    snr_db=snr,
                    engine=engine,
                )
                yield Cell("snr", method, snr, seed, spec)
    for alpha in scale.alphas:
        if alpha == 0.5:  # the comparison's runs
            continue
        for method in METHODS:
            for seed in sweep:
                spec = study_spec(
                    scale,
                    name=f"s2-alpha{alpha:g}-{method}",
                    method=method,
                    seed=seed,
                    partition={"kind": "dirichlet", "alpha": alpha},
                    engine=engine,
                )
                yield Cell("alpha", method, alpha, seed, spec)
    sizes = _task_sizes(scale.ues)
    for method in METHODS:
        for (task, dataset, model, partition), n in zip(TASKS, sizes, strict=True):
            spec = study_spec(
                scale,
                name=f"s2-mt-{task}-{method}",
                method=method,
                seed=0,
                dataset=dataset,
                model=model,
                partition=partition,
                ue_prefix=f"{task}-ue",
                ues=n,
                bandwidth_share=n / scale.ues,
                engine=engine,
            )
            yield Cell("multitask", method, task, 0, spec)
