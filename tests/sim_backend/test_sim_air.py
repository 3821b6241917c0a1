"""The simulated air: true gains equal the world's channel, and their mean is sum_l N_l beta."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from protocol.spec import ExperimentSpec, parse_spec
from sim_backend import World, true_gains


def _spec(n_aps: int = 3, n_ues: int = 5, speed: float = 20.0, **radio: Any) -> ExperimentSpec:
    return parse_spec(
        {
            "name": "air",
            "seed": 11,
            "topology": {
                "area_m": 300,
                "aps": [{"id": f"ap{i}", "antennas": 1 + i % 2} for i in range(n_aps)],
                "ues": [{"id": f"ue{i}", "speed_mps": speed} for i in range(n_ues)],
            },
            "radio": {"tau_p": 4, **radio},
        }
    )


def _reference(world: World, ue: int, frame: int) -> float:
    """``sum_l ||h_{u,l}(n)||^2`` one frame at a time."""
    cfg = world.cfg
    return sum(
        float(np.sum(np.abs(world.channel(ap, frame, 1)[0, ue]) ** 2)) for ap in range(cfg.n_aps)
    )


@pytest.mark.parametrize("max_elements", [1 << 22, 7])
def test_true_gains_equal_the_channel_at_each_frame(max_elements: int) -> None:
    spec = _spec()
    ref_world = World(spec)
    rng = np.random.default_rng(0)
    ue_index = np.array([3, 0, 3, 4], dtype=np.int64)  # a UE may appear twice
    # unsorted, repeated, across fading blocks (256) and large-scale periods; far-apart ranges
    frames = np.stack(
        [
            rng.integers(0, 2000, 6),
            np.array([5, 5, 4, 6, 255, 256]),
            rng.integers(0, 2000, 6),
            np.array([0, 9000, 1, 8999, 3000, 600]),
        ]
    ).astype(np.int64)
    got = true_gains(World(spec), ue_index, frames, max_elements=max_elements)
    assert got.shape == frames.shape
    assert got.dtype == np.float64
    want = np.array(
        [
            [_reference(ref_world, int(u), int(n)) for n in row]
            for u, row in zip(ue_index, frames, strict=True)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert np.all(got > 0)
    # the gain ages: different frames of one UE give different values
    assert got[1, 0] == got[1, 1] != got[1, 2]


def test_mean_true_gain_matches_sum_of_antennas_times_beta() -> None:
    spec = _spec(speed=0.0)  # static UEs: beta constant; i.i.d. fading per frame
    world = World(spec, rho_override=0.0)
    cfg = world.cfg
    k = 20_000
    ue_index = np.arange(cfg.n_ues, dtype=np.int64)
    frames = np.tile(np.arange(k, dtype=np.int64), (cfg.n_ues, 1))
    g = true_gains(world, ue_index, frames)
    beta = world.large_scale(0)  # [U, L]
    mean = beta @ cfg.n_ant.astype(np.float64)  # sum_l N_l beta_ul
    var = (beta**2) @ cfg.n_ant.astype(np.float64)  # |h|^2 per antenna is Exp(beta)
    err = np.abs(g.mean(axis=1) - mean) / np.sqrt(var / k)
    assert np.all(err < 5.0), err
    # and a wrong model (one antenna per AP) is told apart
    assert np.any(np.abs(g.mean(axis=1) - beta.sum(axis=1)) / np.sqrt(var / k) > 5.0)


def test_true_gains_errors_name_the_parameter() -> None:
    world = World(_spec())
    ok = np.zeros((1, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="`ue_index`"):
        true_gains(world, np.array([5]), ok)
    with pytest.raises(ValueError, match="`frames`"):
        true_gains(world, np.array([0]), np.array([[-1]]))
    with pytest.raises(ValueError, match="`frames`"):
        true_gains(world, np.array([0, 1]), ok)
    with pytest.raises(ValueError, match="`frames`"):
        true_gains(world, np.array([0]), np.array([[1.5]]))
