"""The interface the round engine calls, whatever the algorithm (Flower-style strategy)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from controller.aggregation import AggregationRule, FedAvg
from controller.allocation.instance import Allocation, AllocationInstance
from controller.policy.policy import PowerPolicy
from protocol.arrays import NDArrayFloat

__all__ = ["Algorithm"]


class Algorithm(ABC):
    """One FL algorithm's per-round decisions: who trains, with what resources, how to weight.

    The round engine calls, every round ``t``:

    1. :meth:`select_clients` -> the ids that train this round;
    2. :meth:`allocate` on the instance of those clients (and their last link outcome) ->
       an :class:`Allocation`;
    3. :meth:`aggregation_weights` from their reported losses and data sizes -> ``q``;
    4. :meth:`observe` with the round's reward ``R_t`` (online DRL update; no-op otherwise).

    ``fedprox_mu`` is the proximal weight to send with the round task (0 unless FedProx);
    ``policy`` is the learning power policy where the algorithm has one (saved with every
    round and resumed after a restart by the driver).
    """

    #: Algorithm name as in the experiment spec (``algorithm.name``).
    name: str = ""

    def __init__(self, aggregation: AggregationRule | None = None, *, seed: int = 0) -> None:
        self.aggregation = aggregation or FedAvg()
        self.seed = seed
        self.policy: PowerPolicy | None = None

    @property
    def fedprox_mu(self) -> float:
        """FedProx ``mu`` of the local objective (0: plain local SGD)."""
        return self.aggregation.proximal_mu

    def select_clients(
        self, round_idx: int, user_ids: Sequence[str], k: int, rng: np.random.Generator
    ) -> list[str]:
        """The ``k`` clients of round ``round_idx`` (default: all, or ``k`` drawn uniformly).

        Args:
            round_idx: 0-based round number.
            user_ids: every available client, in a stable order.
            k: clients wanted, >= 1 (all when ``k >= len(user_ids)``).
            rng: the experiment's seeded generator.
        Returns:
            The chosen ids, in the order of ``user_ids``.
        """
        n = len(user_ids)
        if k < 1:
            raise ValueError(f"`k` must be >= 1, got {k}.")
        if n == 0:
            raise ValueError("`user_ids` must not be empty.")
        if k >= n:
            return list(user_ids)
        chosen = np.sort(rng.choice(n, size=k, replace=False))
        return [user_ids[int(i)] for i in chosen]

    @abstractmethod
    def allocate(
        self, instance: AllocationInstance, *, link_state: NDArrayFloat | None = None
    ) -> Allocation:
        """Bandwidth, power and frequency of every user of ``instance`` this round.

        ``link_state``: ``[U, 3]`` each user's last link outcome (see
        ``controller.round.link_features``; zeros for none), for policies that learn from it.
        """

    def aggregation_weights(self, losses: npt.ArrayLike, data_sizes: npt.ArrayLike) -> NDArrayFloat:
        """``[U]`` weights (sum 1) of the clients' updates from their losses and data sizes."""
        return self.aggregation.weights(losses, data_sizes)

    def observe(self, reward: float) -> float | None:
        """The reward ``R_t`` of the last allocation; the policy learns from it.

        Returns the reward the policy learnt from, or None for algorithms without a policy.
        """
        if self.policy is None or self.policy.pending is None:
            return None
        self.policy.observe(reward)
        return reward

    def save_policy(self, path: str | Path) -> Path | None:
        """Write the learned policy, if the algorithm has one; returns the path or None."""
        return self.policy.save(path) if self.policy is not None else None

    def resume_policy(self, path: str | Path) -> None:
        """Continue from the policy saved at ``path`` (weights, optimiser, exploration state)."""
        if self.policy is None:
            raise ValueError(f"`policy`: algorithm {self.name} has no power policy to resume")
        self.policy = PowerPolicy.load(path)
