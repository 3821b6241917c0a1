"""What one run of a reproduction scored: the paper's metrics, from its committed rounds.

Measured: ``accuracy`` (the global model on the test set; CIFAR-10's holds 1000 images, so one
point of accuracy is about its standard error) and ``fairness_var`` (the variance of the
clients' losses, computed from real training). Modelled (system model and link layer, DESIGN
sections 5 and 12), named ``model_*``: round latency and energy, link dropouts, and the uplink
efficiencies, which we define (the paper names them without a formula) as

- spectral efficiency ``SE_t = sum_{u arrived} (S / a_u) / B``, bit/s/Hz: each delivered
  update's bits over its airtime ``a_u`` (HARQ retries included), summed over the users and
  divided by the band ``B``; the run's SE is the mean over rounds;
- energy efficiency ``EE = sum_t sum_{u arrived} S / sum_t sum_u P_u a_u``, bit/J: the bits
  delivered over the uplink transmit energy of every update sent, delivered or not.

``S`` is the update's size, 32 bits per model parameter.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.spec import ExperimentSpec

__all__ = ["RunMeasures", "accuracy_curve", "finite_mean", "measure", "update_bits"]

_BITS_PER_PARAMETER = 32


@dataclass(frozen=True)
class RunMeasures:
    """One run's metrics (NaN where the run gave none).

    Attributes:
        accuracy: test accuracy of the last committed model (measured).
        fairness_var: mean over rounds of the loss variance across clients (measured).
        model_latency_s: mean modelled round latency, s.
        model_energy_j: mean modelled energy per round (all clients, compute and uplink), J.
        model_dropout_rate: updates the radio lost over updates planned.
        rounds_to_target: rounds until the test accuracy first reached the target.
        model_se_bit_s_hz: mean uplink spectral efficiency, bit/s/Hz.
        model_ee_bit_j: uplink energy efficiency, bit/J.
    """

    accuracy: float
    fairness_var: float
    model_latency_s: float
    model_energy_j: float
    model_dropout_rate: float
    rounds_to_target: float
    model_se_bit_s_hz: float
    model_ee_bit_j: float


def update_bits(spec: ExperimentSpec) -> float:
    """``S``: the bits of one model update of ``spec``'s model."""
    return _model_bits(spec.model.name)


@functools.cache
def _model_bits(model: str) -> float:
    from edge_agent.models import build_model, num_parameters

    return float(_BITS_PER_PARAMETER * num_parameters(build_model(model)))


def finite_mean(values: Sequence[float | None]) -> float:
    """The mean of the finite values (None and NaN left out); NaN if there is none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(kept) / len(kept) if kept else math.nan


def accuracy_curve(rounds: Sequence[dict[str, Any]]) -> list[float]:
    """``[R]`` the test accuracy after each round (NaN where none was measured)."""
    return [math.nan if r.get("accuracy") is None else float(r["accuracy"]) for r in rounds]


def _efficiency(
    rounds: Sequence[dict[str, Any]], bits: float, band_hz: float
) -> tuple[float, float]:
    se_rounds: list[float] = []
    delivered = spent = 0.0
    for r in rounds:
        link = (r.get("details") or {}).get("link") or {}
        airtime, energy = link.get("model_airtime_s"), link.get("model_comm_energy_j")
        if airtime is None or energy is None:
            continue
        arrived = [s == "arrived" for s in link["status"]]
        rate = sum(bits / a for a, ok in zip(airtime, arrived, strict=True) if ok and a > 0)
        se_rounds.append(rate / band_hz)
        delivered += bits * sum(arrived)
        spent += float(sum(energy))
    ee = delivered / spent if spent > 0 else math.nan
    return finite_mean(se_rounds), ee


def measure(spec: ExperimentSpec, rounds: Sequence[dict[str, Any]], target: float) -> RunMeasures:
    """The metrics of one run of ``spec`` (its committed ``rounds``) with ``target`` accuracy."""
    curve = accuracy_curve(rounds)
    reached = next((i + 1 for i, a in enumerate(curve) if a >= target), None)
    planned = sum(len((r.get("allocation") or {}).get("ue_ids", ())) for r in rounds)
    lost = sum(int(r["link_dropouts"]) for r in rounds)
    se, ee = _efficiency(rounds, update_bits(spec), spec.radio.bandwidth_hz)
    last = next((a for a in reversed(curve) if math.isfinite(a)), math.nan)
    return RunMeasures(
        accuracy=last,
        fairness_var=finite_mean([r.get("fairness_var") for r in rounds]),
        model_latency_s=finite_mean([r["model_latency_s"] for r in rounds]),
        model_energy_j=finite_mean([r["model_energy_j"] for r in rounds]),
        model_dropout_rate=lost / planned if planned else math.nan,
        rounds_to_target=math.nan if reached is None else float(reached),
        model_se_bit_s_hz=se,
        model_ee_bit_j=ee,
    )
