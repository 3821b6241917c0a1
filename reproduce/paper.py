"""Seed paper 2's published numbers (../shared/seeds/002_6b54a7e4c3458036.txt, section 4),
shown beside ours in the report. None where the paper gives no number."""

from __future__ import annotations

__all__ = [
    "ABLATION",
    "ALPHA_TEXT",
    "COMPARISON",
    "EFFICIENCY",
    "MULTITASK_ROUND_150",
    "PAPER_LABELS",
    "ROUNDS_TO_90",
    "SNR_TEXT",
    "TTEST",
    "label",
]

#: Figure 6 and section 4.3 (CIFAR-10, Dirichlet alpha 0.5): accuracy, latency s, energy J
#: per round, fairness variance.
COMPARISON: dict[str, dict[str, float | None]] = {
    "rrs": {"accuracy": 0.779, "latency_s": 3.28, "energy_j": None, "fairness_var": None},
    "cpa": {"accuracy": 0.813, "latency_s": 2.63, "energy_j": None, "fairness_var": None},
    "fedavg": {"accuracy": 0.798, "latency_s": None, "energy_j": None, "fairness_var": None},
    "fedprox": {"accuracy": 0.831, "latency_s": None, "energy_j": None, "fairness_var": None},
    "drl_ra": {"accuracy": 0.852, "latency_s": None, "energy_j": None, "fairness_var": None},
    "jcc": {"accuracy": 0.870, "latency_s": None, "energy_j": None, "fairness_var": None},
    "proposed": {"accuracy": 0.905, "latency_s": 1.92, "energy_j": 1.21, "fairness_var": 0.142},
}
#: Figure 7: rounds to 90% accuracy.
ROUNDS_TO_90: dict[str, float | None] = {"proposed": 115, "fedavg": 170, "jcc": 150}
#: Table 5: proposed against the strongest baseline (JCC in the paper), t per metric; p < 0.01.
TTEST: dict[str, float] = {"accuracy": 4.87, "model_latency_s": 4.01, "model_energy_j": 3.78}
#: Table 6: accuracy, latency s, energy J.
ABLATION: dict[str, dict[str, float]] = {
    "no_cra": {"accuracy": 0.849, "latency_s": 2.42, "energy_j": 1.52},
    "no_csm": {"accuracy": 0.856, "latency_s": 2.37, "energy_j": 1.49},
    "no_fal": {"accuracy": 0.864, "latency_s": 2.18, "energy_j": 1.43},
    "no_drl": {"accuracy": 0.872, "latency_s": 2.06, "energy_j": 1.38},
    "full": {"accuracy": 0.905, "latency_s": 1.92, "energy_j": 1.21},
}
#: Section 4.3: the proposed method's uplink SE (bit/s/Hz) and EE (bit/J).
EFFICIENCY: dict[str, float] = {"se_bit_s_hz": 18.6, "ee_bit_j": 7.5e6}
#: Figure 9 (text): the proposed method's accuracy by round 150.
MULTITASK_ROUND_150: dict[str, float] = {"cifar10": 0.88, "mnist": 0.96, "wifi": 0.85}
#: Figures 10 and 11 (text only: the paper gives no table).
SNR_TEXT = (
    "at about 10 dB FedAvg and FedProx fall below 80% while the proposed method stays above "
    "85%; at 20-30 dB the proposed method leads the strongest baseline by 3-5 points"
)
ALPHA_TEXT = (
    "at alpha = 0.1 the baselines stall near 80% and the proposed method reaches about 86% "
    "(5-7 points ahead); the gap narrows as alpha grows to 1.0"
)
#: How the paper names the methods.
PAPER_LABELS: dict[str, str] = {
    "rrs": "RRS",
    "cpa": "CPA",
    "fedavg": "FedAvg",
    "fedprox": "FedProx",
    "drl_ra": "DRL-RA",
    "jcc": "JCC",
    "proposed": "Proposed",
    "full": "Full",
    "no_cra": "w/o CRA",
    "no_csm": "w/o CSM",
    "no_fal": "w/o FAL",
    "no_drl": "w/o DRL",
}


def label(method: str) -> str:
    """How the paper names ``method`` (an algorithm or an ablation variant)."""
    return PAPER_LABELS.get(method, method)
