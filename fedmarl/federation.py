"""Federating the agents' DRQNs through the real secure aggregation.

Every R episodes the agents' online networks are averaged: each agent masks the change of its
network since the last federated one (``theta_u - theta``), the server learns only their sum
through the same SecAgg+ protocol, stages and dropout handling as the FL models
(:func:`simulator.secure.secure_sum`: the networked engine's server and the agents' own
sessions, in process), and every agent starts from ``theta + sum / n`` over the agents whose
masked input arrived. Replay buffers, exploration and target networks stay local. Plain
averaging (no masks) gives the same mean up to the protocol's fixed-point rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.spec import ExperimentSpec, SecureAggregationSpec
from simulator.secure import SecureCost, secure_sum

__all__ = ["Federation"]


@dataclass
class Federation:
    """The federated state of N agents' networks.

    Attributes:
        agents: the agents' names (their identities in the protocol).
        secure: run the protocol (else plain averaging).
        secagg: the protocol's parameters (threshold, neighbours, clip, fraction bits); the
            clip bounds each coordinate of a network's change between two federations.
        seed: seeds the agents' stochastic rounding (:func:`simulator.secure.secure_sum`), so
            that a seeded run repeats exactly.
    """

    agents: Sequence[str]
    secure: bool = True
    seed: int = 0
    secagg: SecureAggregationSpec = field(
        default_factory=lambda: SecureAggregationSpec(clip=4.0, fraction_bits=16)
    )
    rounds: int = 0
    costs: list[SecureCost] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.agents) < 2:
            raise ValueError(f"`agents` must name at least 2 agents, got {len(self.agents)}")
        self._keys = {a: Ed25519PrivateKey.generate() for a in self.agents}
        self._spec = ExperimentSpec.model_validate(
            {
                "name": "fedmarl",
                "topology": {
                    "aps": [{"id": "ap0"}],
                    "ues": [{"id": a} for a in self.agents],
                },
                "secure_aggregation": self.secagg.model_dump(),
            }
        )

    def average(
        self,
        vectors: npt.NDArray[np.float32],
        reference: npt.NDArray[np.float32],
        arrived: Sequence[str] | None = None,
    ) -> tuple[npt.NDArray[np.float32], list[str]]:
        """The federated network and the agents it averages.

        Args:
            vectors: ``[N, P]`` every agent's online network (rows in :attr:`agents` order).
            reference: ``[P]`` the last federated network (the first: any common start).
            arrived: the agents whose masked input reaches the server (default all); the
                others dropped mid-round, after the key stages.

        Raises:
            controller.engine.aggregation.AggregationError: the protocol failed (fewer
                survivors than its threshold).
        """
        names = list(self.agents)
        if vectors.shape[0] != len(names):
            raise ValueError(f"`vectors` must have {len(names)} rows, got {vectors.shape[0]}")
        came = names if arrived is None else [a for a in names if a in set(arrived)]
        if not came:
            raise ValueError("`arrived` names no agent")
        deltas = {a: (vectors[i] - reference).astype(np.float32) for i, a in enumerate(names)}
        weight = 1.0 / len(came)
        self.rounds += 1
        if not self.secure:
            total = sum(
                (weight * deltas[a].astype(np.float64) for a in came), np.zeros(len(reference))
            )
            return (reference + total).astype(np.float32), came
        total, contributors, cost = secure_sum(
            self._spec,
            "fedmarl",
            self.rounds,
            names,
            dict.fromkeys(came, weight),
            {a: deltas[a] for a in came},
            self._keys,
            seed=self.seed,
        )
        self.costs.append(cost)
        return (reference + total).astype(np.float32), sorted(contributors, key=names.index)
