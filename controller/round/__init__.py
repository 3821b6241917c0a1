"""The round core (DESIGN section 8): the steps of one FL round, pure and typed.

Drivers (``controller.engine``: agents over REST; the in-process simulator) call
:func:`select`, :func:`plan`, :func:`link_request`, :func:`resolve_link`, :func:`weights`,
:func:`apply_update`, :func:`evaluation_metrics` and :func:`record` and do only the I/O
between them; with ``link.mode: iq``, :func:`transmitters` and :func:`carry_updates` take the
place of :func:`resolve_link`.
"""

from controller.round.evaluation import evaluation_metrics, fedmarl_metrics
from controller.round.reward import round_reward
from controller.round.steps import (
    LINK_FEATURES,
    PhyLink,
    apply_update,
    build_instance,
    carry_updates,
    link_config,
    link_features,
    link_request,
    model_round_latency,
    plan,
    record,
    resolve_link,
    samples_guess,
    select,
    transmitters,
    weights,
)
from controller.round.types import (
    LINK_STATUS,
    Carry,
    ClientReport,
    LinkRequest,
    LinkResult,
    RoundPlan,
    RoundRecord,
)

__all__ = [
    "LINK_FEATURES",
    "LINK_STATUS",
    "Carry",
    "ClientReport",
    "LinkRequest",
    "LinkResult",
    "PhyLink",
    "RoundPlan",
    "RoundRecord",
    "apply_update",
    "build_instance",
    "carry_updates",
    "evaluation_metrics",
    "fedmarl_metrics",
    "link_config",
    "link_features",
    "link_request",
    "model_round_latency",
    "plan",
    "record",
    "resolve_link",
    "round_reward",
    "samples_guess",
    "select",
    "transmitters",
    "weights",
]
