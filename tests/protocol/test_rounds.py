"""Round messages: a train report carries only measured numbers; a train task may name the
UE's device profile."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from protocol.rounds import TrainReport, TrainTask

_REPORT: dict[str, Any] = {
    "loss": 2.3,
    "loss_after": 1.9,
    "samples": 600,
    "train_s": 4.2,
    "freq_applied_hz": 1.1e9,
}


def _task(**extra: Any) -> dict[str, Any]:
    return {
        "ue_id": "ue0",
        "client_index": 0,
        "n_clients": 4,
        "model_version": 0,
        "model_name": "mnist_cnn",
        "dataset": {"name": "mnist"},
        "seed": 0,
        "local_epochs": 1,
        "batch_size": 32,
        "learning_rate": 0.05,
        "momentum": 0.0,
        "freq_hz": 1.05e9,
        "power_w": 0.1,
        "bandwidth_hz": 1e6,
        "comm_latency_s": 0.5,
        "secure_aggregation": False,
        **extra,
    }


def test_report_without_a_meter_says_so() -> None:
    report = TrainReport.model_validate(_REPORT)
    assert report.measured_energy_j is None
    assert report.meter == "none"


def test_report_with_measured_energy_round_trips() -> None:
    report = TrainReport(**_REPORT, measured_energy_j=12.5, meter="ina3221")
    again = TrainReport.model_validate_json(report.model_dump_json())
    assert (again.measured_energy_j, again.meter) == (12.5, "ina3221")


def test_report_refuses_modelled_or_negative_energy() -> None:
    with pytest.raises(ValidationError, match="energy_j"):
        TrainReport.model_validate({**_REPORT, "energy_j": 1.0})  # the old modelled field
    with pytest.raises(ValidationError, match="measured_energy_j"):
        TrainReport.model_validate({**_REPORT, "measured_energy_j": -1.0})
    with pytest.raises(ValidationError, match="freq_applied_hz"):
        TrainReport.model_validate({**_REPORT, "freq_applied_hz": -1.0})


def test_task_profile_is_optional() -> None:
    assert TrainTask.model_validate(_task()).profile is None
    assert TrainTask.model_validate(_task(profile="jetson-nano")).profile == "jetson-nano"
