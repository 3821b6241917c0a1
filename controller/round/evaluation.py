"""A round's model scored: the clients' evaluation reports pooled into the round's metrics.

Both drivers pool the same reports the same way: accuracy and loss over the test shards (in
``mode: fedmarl`` the agents' completed over arrived tasks, and minus their mean reward per
slot, modelled by the environment), and the variance of the clients' local losses (FAL's
fairness; in ``mode: fedmarl`` of the agents' task failure rates).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from protocol.rounds import EvalReport

__all__ = ["evaluation_metrics", "fedmarl_metrics"]


def evaluation_metrics(
    evals: Mapping[str, EvalReport],
) -> tuple[float | None, float | None, float | None]:
    """Accuracy and loss over the test shards, and the variance of the clients' local losses
    (all None without a test sample)."""
    total = sum(e.total for e in evals.values())
    if not total:
        return None, None, None
    accuracy = sum(e.correct for e in evals.values()) / total
    loss = sum(e.test_loss * e.total for e in evals.values()) / total
    train_losses = [e.train_loss for e in evals.values()]
    return accuracy, loss, float(np.var(train_losses)) if train_losses else None


def fedmarl_metrics(evals: Mapping[str, EvalReport]) -> dict[str, float]:
    """``mode: fedmarl``: the evaluation over the agents (modelled by the environment): the
    pooled ``success_rate``, Jain's index of the agents' success rates (``jain``), and the
    agents' mean of every other metric they report. Empty for FL evaluations."""
    reports = [e.fedmarl for e in evals.values() if e.fedmarl is not None]
    if not reports:
        return {}
    arrived = sum(e.total for e in evals.values() if e.fedmarl is not None)
    done = sum(e.correct for e in evals.values() if e.fedmarl is not None)
    rates = np.array([r.get("success_rate", 0.0) for r in reports])
    square = float((rates**2).sum())
    out = {
        key: float(np.mean([r[key] for r in reports if key in r]))
        for key in sorted({k for r in reports for k in r})
    }
    out.update(
        success_rate=done / arrived if arrived else 1.0,
        jain=float(rates.sum() ** 2 / (len(rates) * square)) if square > 0 else 0.0,
        agents=float(len(reports)),
    )
    return out
