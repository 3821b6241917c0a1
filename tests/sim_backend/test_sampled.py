"""The sampled channel: the world's statistics at the frames a round looks at, reproducibly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from protocol.spec import ExperimentSpec, parse_spec
from sim_backend import World
from sim_backend.sampled import SampledChannel


def _spec(n_ues: int = 4, **radio: Any) -> ExperimentSpec:
    return parse_spec(
        {
            "name": "sampled",
            "seed": 5,
            "topology": {
                "area_m": 300,
                "aps": [{"id": f"ap{i}", "antennas": 2} for i in range(3)],
                "ues": [{"id": f"ue{i}"} for i in range(n_ues)],
            },
            "radio": {"tau_p": 4, **radio},
        }
    )


def test_same_looks_give_the_same_channel() -> None:
    world = World(_spec())
    a, b = SampledChannel(world), SampledChannel(world)
    frames = np.array([[400, 900, 5000]] * 4)
    for ch in (a, b):
        ch.estimated_gains([100, 200, 300])
    np.testing.assert_array_equal(
        a.true_gains(np.arange(4), frames), b.true_gains(np.arange(4), frames)
    )
    np.testing.assert_array_equal(a.estimated_gains([350]), b.estimated_gains([350]))


def test_looks_must_move_forward() -> None:
    ch = SampledChannel(World(_spec()))
    with pytest.raises(ValueError, match="no CSI frame"):
        ch.true_gains(np.arange(4), np.zeros((4, 1), dtype=np.int64))
    ch.estimated_gains([100, 200])
    with pytest.raises(ValueError, match="must not go back"):
        ch.estimated_gains([150])
    with pytest.raises(ValueError, match=">= the last CSI frame"):
        ch.true_gains(np.arange(4), np.full((4, 1), 199))
    with pytest.raises(ValueError, match="`estimator`"):
        SampledChannel(ch.world, estimator="zf")  # type: ignore[arg-type]


def test_true_gains_have_the_worlds_mean() -> None:
    """E[G_u] = sum_l N_l beta_{u,l}: draws far apart are independent CN(0, 1) fading."""
    world = World(_spec(n_ues=8))
    ch = SampledChannel(world)
    ch.estimated_gains([0])
    frames = np.tile(np.arange(1, 4001) * 10_000, (8, 1))  # 2 s apart: independent fading
    g = ch.true_gains(np.arange(8), frames)
    expected = 2.0 * world.large_scale(0).sum(axis=1)
    np.testing.assert_allclose(g.mean(axis=1) / expected, 1.0, atol=0.08)


def test_nearby_frames_are_correlated_as_the_ar1_process() -> None:
    """A one-frame jump barely changes a slow UE's gain; a 2 s jump decorrelates it."""
    world = World(_spec(n_ues=4), rho_override=0.999)
    ch = SampledChannel(world)
    ch.estimated_gains([0])
    near = ch.true_gains(np.arange(4), np.array([[1, 2]] * 4))
    far = ch.true_gains(np.arange(4), np.array([[1, 10_000]] * 4))
    assert np.all(np.abs(near[:, 1] / near[:, 0] - 1) < 0.1)
    assert np.any(np.abs(far[:, 1] / far[:, 0] - 1) > 0.1)


def test_estimates_at_high_snr_follow_the_true_channel() -> None:
    """One UE per pilot and a strong link: the MMSE estimate's gain is the true one."""
    world = World(_spec(n_ues=4, snr_override_db=40))
    ch = SampledChannel(world)
    est = ch.estimated_gains([50])[0]
    truth = ch.true_gains(np.arange(4), np.full((4, 1), 50))[:, 0]  # a jump of 0 frames
    np.testing.assert_allclose(est, truth, rtol=0.02)
    assert SampledChannel(world, estimator="ls").estimated_gains([50]).shape == (1, 4)
