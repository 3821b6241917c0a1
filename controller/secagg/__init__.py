"""Secure-aggregation server (DESIGN section 7): the stage-by-stage state machine and a driver."""

from __future__ import annotations

from controller.secagg.driver import ClientEndpoint, RoundReport, ServerEndpoint, run_round
from controller.secagg.server import AggregateResult, SecAggServer, ServerMessage

__all__ = [
    "AggregateResult",
    "ClientEndpoint",
    "RoundReport",
    "SecAggServer",
    "ServerEndpoint",
    "ServerMessage",
    "run_round",
]
