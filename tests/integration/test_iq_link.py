"""The update's bytes cross the air (``link.mode: iq``), across real processes: the AP cluster
(GNU Radio on the sim source, its air serving the true channel and the burst PHY), the
controller under uvicorn and four agents, secure aggregation on.

Every masked update is cut into 500-byte transport blocks that go through the compiled
``phy_tx.grc``, the simulated channel at the true SINR of each block's slot and the compiled
``phy_rx.grc``; a block whose CRC fails is sent again. The same seeded experiment at a high and
at a low pilot SNR: the low one plans lower schemes and, with the channel as it is when each
block leaves, fails more blocks and retransmits more (here 18 retries against 3, which the
PHY's tail of about 0.5% at 30-40 dB explains; 64-QAM 3/4 at 40 dB against mostly QPSK 1/2 at
0 dB). In both, every committed model
is the previous one plus exactly the weighted mean of the updates that decoded, recomputed here
from the agents' own training code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protocol.spec import ExperimentSpec, parse_spec
from tests.integration.conftest import check_sums, run_networked

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "wifi_rutgers_noise"
HIGH_SNR_DB, LOW_SNR_DB = 40.0, 0.0

pytestmark = pytest.mark.slow


def _spec(snr_db: float) -> ExperimentSpec:
    return parse_spec(
        {
            "name": f"iq{snr_db:g}",
            "seed": 3,
            "topology": {
                "area_m": 300,
                "aps": [{"id": "ap0", "antennas": 2}],
                "ues": [{"id": f"ue{i}", "profile": "rpi4", "speed_mps": 3.0} for i in range(4)],
            },
            "radio": {"tau_p": 4, "tau_c": 100, "sample_rate_hz": 2e5, "snr_override_db": snr_db},
            "dataset": {"name": "wifi", "samples_per_client": 400},
            "model": {"name": "wifi_mlp"},
            "fl": {"rounds": 2, "learning_rate": 0.05, "round_deadline_s": 60},
            "algorithm": {"name": "fedavg"},
            "link": {"mode": "iq", "backoff_db": 1.0},
            "secure_aggregation": {"enabled": True, "threshold": 3},
        }
    )


def _retries(rounds: list[dict[str, Any]]) -> int:
    return sum(sum(r["details"]["link"]["retries"]) for r in rounds)


@pytest.mark.skipif(not DATA.exists(), reason=f"the Wi-Fi trace not found at {DATA}")
def test_bytes_cross_the_phy_and_a_weaker_channel_retransmits_more(tmp_path: Path) -> None:
    high_spec, low_spec = _spec(HIGH_SNR_DB), _spec(LOW_SNR_DB)
    high_id, high = run_networked(high_spec, tmp_path / "high")
    low_id, low = run_networked(low_spec, tmp_path / "low")
    for rounds in (high, low):
        assert all(r["details"]["measured_phy_s"] > 0 for r in rounds)  # the PHY really ran
    # the weak channel may lose a round's updates (CI saw one); the strong one loses none
    assert all(r["updated"] for r in high)
    assert _retries(low) > _retries(high)
    assert max(r["mean_mcs_index"] for r in low) < min(r["mean_mcs_index"] for r in high)
    check_sums(high_spec, tmp_path / "high", high_id, high)
    check_sums(low_spec, tmp_path / "low", low_id, low)
