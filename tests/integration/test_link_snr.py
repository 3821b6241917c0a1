"""The radio decides the round, across real processes: the AP cluster (GNU Radio on the sim
source, serving the simulated air), the controller under uvicorn and four agents, with secure
aggregation on.

The same seeded experiment at a high and at a low pilot SNR (``radio.snr_override_db``): the
first loses no update on the link, the second loses some, so fewer updates reach its model and it
ends with another one. In both, every committed model is the previous one plus exactly the
weighted mean of the updates that arrived, recomputed here from the agents' own deterministic
training code: what the radio lost is what the model misses.

How much the low run loses depends on the fading at the moment each update is sent (wall clock
of the sim world), so the test does not claim it ends less accurate: with non-IID shards, losing
two updates of twelve can leave a model as good or better (CI saw 0.7878 against 0.7774 after
losing two; a run here that lost more ended at 0.3120).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protocol import tensorfile
from protocol.spec import ExperimentSpec, parse_spec
from tests.integration.conftest import check_sums, run_networked

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
ROUNDS = 3
HIGH_SNR_DB, LOW_SNR_DB = 25.0, -6.0

pytestmark = pytest.mark.slow


def _spec(snr_db: float) -> ExperimentSpec:
    return parse_spec(
        {
            "name": f"snr{snr_db:g}",
            "seed": 11,
            "topology": {
                "area_m": 400,
                "aps": [{"id": "ap0", "antennas": 2}],
                "ues": [{"id": f"ue{i}", "profile": "rpi4"} for i in range(4)],
            },
            "radio": {
                "tau_p": 4,
                "tau_c": 100,
                "sample_rate_hz": 2e5,
                "snr_override_db": snr_db,
            },
            "dataset": {"name": "mnist", "samples_per_client": 400},
            "fl": {"rounds": ROUNDS, "learning_rate": 0.05, "round_deadline_s": 40},
            "algorithm": {"name": "fedavg"},
            "link": {"deadline_s": 4.0},
            "secure_aggregation": {"enabled": True, "threshold": 3},
        }
    )


def _contributions(rounds: list[dict[str, Any]]) -> int:
    """Updates that went into committed models, summed over the rounds."""
    return sum(len(r["details"]["contributors"]) for r in rounds if r["updated"])


def _final_model(workdir: Path, eid: str) -> np.ndarray:
    """The last committed global model of an experiment, flattened."""
    models = workdir / "controller" / "models" / eid
    last = max(models.glob("v*.safetensors"), key=lambda p: int(p.stem[1:]))
    tensors, order, _ = tensorfile.decode(last.read_bytes())
    return tensorfile.flatten(tensors, order)


@pytest.mark.skipif(not DATA.exists(), reason=f"MNIST not found at {DATA}")
def test_low_snr_loses_updates_and_accuracy_and_the_sums_stay_exact(tmp_path: Path) -> None:
    high_spec, low_spec = _spec(HIGH_SNR_DB), _spec(LOW_SNR_DB)
    high_id, high = run_networked(high_spec, tmp_path / "high")
    low_id, low = run_networked(low_spec, tmp_path / "low")

    assert sum(r["link_dropouts"] for r in high) == 0
    assert sum(r["link_dropouts"] for r in low) > 0
    assert _contributions(low) < _contributions(high)
    assert not np.array_equal(
        _final_model(tmp_path / "low", low_id), _final_model(tmp_path / "high", high_id)
    )
    assert np.mean([r["mean_mcs_index"] or 0 for r in low]) < np.mean(
        [r["mean_mcs_index"] for r in high]
    )
    check_sums(high_spec, tmp_path / "high", high_id, high)
    check_sums(low_spec, tmp_path / "low", low_id, low)
