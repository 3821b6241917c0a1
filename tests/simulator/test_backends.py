"""The Ray backend gives the local backend's aggregate (same seed, plain aggregation)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import simulate
from tests.simulator.conftest import small_spec

pytestmark = pytest.mark.slow


def test_local_and_ray_give_the_same_model() -> None:
    spec = small_spec(rounds=2)
    local = simulate(spec, experiment_id="local", backend="local")
    ray = simulate(spec, experiment_id="ray", backend="ray", workers=2)
    assert (local.backend, ray.backend, ray.workers) == ("local", "ray", 2)
    for a, b in zip(local.rounds, ray.rounds, strict=True):
        assert a["allocation"] == b["allocation"]
        assert a["details"]["link"] == b["details"]["link"]
        assert a["details"]["contributors"] == b["details"]["contributors"]
    scale = float(np.abs(local.model).max())
    # float32 rounding: each shard sums its own clients before the shards are added
    np.testing.assert_allclose(ray.model, local.model, rtol=0, atol=1e-6 * scale)
    assert not np.array_equal(
        local.model, simulate(small_spec(rounds=2, seed=12), experiment_id="other").model
    )  # the comparison can fail
