"""`testbed bench fedmarl`: every edge policy at several agent counts (one JSON object).

For each agent count the environment (:class:`fedmarl.env.FedEdgeEnv`, default config) is
the same for every method; the learners train for ``episodes`` episodes (fedmarl federating
every ``federate_every`` through secure aggregation), the heuristics just run; each method is
then evaluated greedily on the same held-out seeds. The metrics are modelled by the
environment; ``s_per_episode`` is measured (wall clock of a training episode, learning and
federation included), as is the federation's traffic per agent and round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["run_fedmarl_bench"]


def _parameters(policy: Any) -> int | None:
    """Parameters of one agent's network (None for a heuristic)."""
    net = getattr(policy, "net", None)
    return int(net.online_vectors().shape[1]) if net is not None else None


def run_fedmarl_bench(
    agents: Sequence[int],
    *,
    episodes: int = 20,
    slots: int = 200,
    federate_every: int = 2,
    secure: bool = True,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    eval_episodes: int = 3,
    returns: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """The bench's JSON object: ``rows`` (one per method and agent count) and its settings;
    with ``returns`` each row also holds its training curve (``returns``: one per episode)."""
    import torch
    from tqdm import tqdm

    from fedmarl.env import EnvConfig, FedEdgeEnv
    from fedmarl.policies import METHODS, make_policy
    from fedmarl.run import train_and_evaluate

    chosen = list(methods or METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError(f"`methods`: unknown {unknown}; known: {list(METHODS)}")
    if not agents or min(agents) < 2:
        raise ValueError(f"`agents` must be counts of at least 2, got {list(agents)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small nets: one thread is fastest
    rows = []
    try:
        with tqdm(total=len(agents) * len(chosen), desc="fedmarl", disable=not progress) as bar:
            for n in agents:
                env = FedEdgeEnv(EnvConfig(agents=n, slots=slots))
                for method in chosen:
                    policy = make_policy(
                        method, env, seed=seed, federate_every=federate_every, secure=secure
                    )
                    result = train_and_evaluate(
                        env,
                        policy,
                        episodes=episodes if policy.learns else 1,
                        eval_episodes=eval_episodes,
                        seed=seed,
                    )
                    row: dict[str, Any] = {"method": method, "agents": n, **result.metrics}
                    row["s_per_episode"] = result.s_per_episode
                    row["final_return"] = result.returns[-1] if result.returns else None
                    if returns:
                        row["returns"] = result.returns
                        row["parameters"] = _parameters(policy)
                    fed = getattr(policy, "federation", None)
                    if fed is not None and fed.costs:
                        cost = fed.costs[-1]
                        row["federation_bytes_per_agent"] = (
                            cost.uplink_bytes + cost.downlink_bytes
                        ) / n
                        row["federation_s"] = cost.measured_s
                    rows.append(row)
                    bar.update(1)
    finally:
        torch.set_num_threads(threads)
    return {
        # Where each row's numbers come from (the environment's model, or the wall clock).
        "modelled": [
            "success_rate",
            "bits_per_joule",
            "mean_latency_slots",
            "jain",
            "reliability",
            "final_return",
        ],
        "measured": ["s_per_episode", "federation_bytes_per_agent", "federation_s"],
        "agents": list(agents),
        "episodes": episodes,
        "slots": slots,
        "federate_every": federate_every,
        "secure": secure,
        "rows": rows,
    }
