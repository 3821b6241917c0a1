"""``mode: fedmarl``'s virtual agents: one DRQN learner per UE, in this process.

The networked agents' own code (:class:`edge_agent.marl.MarlPlayer`) plays every UE: each
learns in its replica of the Fed-MARL world from the round's federated network, so a UE's
learning does not depend on which driver runs it. Unlike a model update, a learner's round
cannot be skipped when the radio loses its upload: its replay, target network and exploration
move on whether or not the change arrives, as an agent's do. So :meth:`MarlBackend.score`
(the clients' reports) is where every selected agent learns, and the aggregation's calls
return the changes it kept; the report's loss is the mean TD loss of the round's updates, as
an agent reports it.

Evaluation plays the candidate network greedily with every agent: every agent's replica is
then the same joint episode, so one run reports for all the evaluating agents
(:meth:`edge_agent.marl.MarlPlayer.evaluate_places`). All its figures are modelled by the
environment; ``seconds`` are measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.marl import MarlPlayer, initial_network
from protocol import tensorfile
from protocol.spec import ExperimentSpec
from simulator.training import SGDConfig

__all__ = ["MarlBackend"]


class MarlBackend:
    """Every UE's DRQN learner (topology order), answering the driver's backend calls.

    Args:
        spec: a ``mode: fedmarl`` experiment.

    Attributes:
        initial: ``[P]`` float32, the common initial network (the agents' ``init`` stage).
        seconds: measured learning time of each agent's last round, s, by topology index.
    """

    name = "local"
    workers = 1

    def __init__(self, spec: ExperimentSpec) -> None:
        if spec.mode != "fedmarl":
            raise ValueError(f"`spec.mode` must be 'fedmarl', got {spec.mode!r}")
        import torch

        torch.set_num_threads(1)  # as the agents: one thread, the same reduction order
        ues = spec.topology.ues
        config = spec.fedmarl.model_dump(mode="json")
        profiles = [ue.profile for ue in ues]
        self._players = [
            MarlPlayer(config, i, len(ues), profiles, spec.seed) for i in range(len(ues))
        ]
        tensors, order = initial_network(config, len(ues), profiles, spec.seed)
        self.initial: npt.NDArray[np.float32] = tensorfile.flatten(tensors, order)
        self._transitions = spec.fedmarl.transitions_per_round
        self._deltas: dict[int, npt.NDArray[np.float32]] = {}
        self.seconds: dict[int, float] = {}
        self._round = 0

    def samples(self) -> dict[int, int]:
        """Transitions each agent learns from per round (its report's ``samples``)."""
        return dict.fromkeys(range(len(self._players)), self._transitions)

    def begin_round(self, index: int) -> None:
        """The round the next :meth:`score` learns in (it seeds the agents' worlds)."""
        self._round = index
        self._deltas = {}

    def publish(self, global_flat: npt.NDArray[np.float32]) -> Any:
        return np.ascontiguousarray(global_flat, dtype=np.float32)

    def score(self, model: Any, members: Sequence[int]) -> dict[int, float]:
        """Every member learns from ``model`` for the round; its mean TD loss."""
        out: dict[int, float] = {}
        for m in members:
            result = self._players[m].train(model, self._round)
            self._deltas[m] = result.delta
            self.seconds[m] = result.seconds
            out[m] = result.loss
        return out

    def _kept(self, members: Sequence[int]) -> list[npt.NDArray[np.float32]]:
        missing = [m for m in members if m not in self._deltas]
        if missing:
            raise RuntimeError(f"agents {missing} did not learn this round (score them first)")
        return [self._deltas[m] for m in members]

    def train_sum(
        self, model: Any, members: Sequence[int], weights: Sequence[float], cfg: SGDConfig
    ) -> npt.NDArray[np.float64]:
        """``sum_u q_u delta_u`` (float64 ``[P]``) of the changes the members learnt, each
        ``q_u delta_u`` rounded to float32 as an agent's upload is."""
        total = np.zeros(self.initial.size, dtype=np.float64)
        for q, delta in zip(weights, self._kept(members), strict=True):
            total += (np.float32(q) * delta).astype(np.float64)
        return total

    def train_each(
        self, model: Any, members: Sequence[int], cfg: SGDConfig
    ) -> dict[int, npt.NDArray[np.float32]]:
        """Every member's change (float32 ``[P]``)."""
        return dict(zip(members, self._kept(members), strict=True))

    def evaluate(
        self, vector: npt.NDArray[np.float32], version: int, members: Sequence[int]
    ) -> dict[int, dict[str, float]]:
        """Each member's evaluation of ``vector`` (model ``version`` seeds the episodes), as
        its agent reports it."""
        if not members:
            return {}
        got = self._players[members[0]].evaluate_places(vector, version, members)
        return dict(zip(members, got, strict=True))

    def close(self) -> None:
        """Nothing runs in the background."""
