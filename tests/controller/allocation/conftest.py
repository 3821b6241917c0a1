"""Shared helpers of the allocation tests: seeded random instances as hypothesis strategies.

The suite imports test modules with ``--import-mode=importlib``, so helpers are handed out by
session fixtures (``instance_strategy``, ``draw_power``) and drawn inside tests via ``st.data()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from controller.allocation.instance import AllocationInstance, ObjectiveWeights
from controller.allocation.scenario import random_instance


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    torch.set_num_threads(1)


@st.composite
def instances(
    draw: st.DrawFn,
    *,
    beta: float | None = None,
    levels: str = "mixed",
    max_users: int = 10,
) -> AllocationInstance:
    """A random instance: seed, size, gains range and weights drawn by hypothesis."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, max_users))
    b = draw(st.sampled_from([0.0, 0.05, 0.5, 2.0])) if beta is None else beta
    gamma = draw(st.sampled_from([1.0, 0.2]))
    low = draw(st.floats(-135.0, -95.0))
    rng = np.random.default_rng(seed)
    return random_instance(
        rng,
        n,
        weights=ObjectiveWeights(beta=b, gamma=gamma),
        gain_db=(low, low + draw(st.floats(0.0, 30.0))),
        levels=levels,
    )


def power_draw(data: st.DataObject, inst: AllocationInstance) -> np.ndarray:
    """Fixed powers in ``[0.05, 1] P_max``."""
    frac = data.draw(st.lists(st.floats(0.05, 1.0), min_size=inst.n_users, max_size=inst.n_users))
    return inst.p_max_w * np.array(frac)


@pytest.fixture(scope="session")
def instance_strategy() -> Any:
    """``instances(beta=..., levels=..., max_users=...)`` -> a hypothesis strategy."""
    return instances


@pytest.fixture(scope="session")
def draw_power() -> Any:
    """``draw_power(data, inst)`` -> fixed powers ``[U]`` W in ``[0.05, 1] P_max``."""
    return power_draw
