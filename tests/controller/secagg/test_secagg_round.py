"""Full rounds through the serialised messages: exact sums, dropouts, thresholds, memory."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

from controller.secagg import AggregateResult, SecAggServer, run_round
from edge_agent.secagg import SecAggClient
from protocol.secagg import (
    CLIENT_STAGES,
    IdentityKey,
    KeysBroadcast,
    Reason,
    RoundFailedError,
    RoundSetup,
    SharesForward,
    Stage,
    encode,
    quantisation_bound,
)

_KEYS: dict[str, IdentityKey] = {}


def _identities(n: int) -> dict[str, IdentityKey]:
    for i in range(n):
        _KEYS.setdefault(f"ue{i:02d}", IdentityKey.generate())
    return {f"ue{i:02d}": _KEYS[f"ue{i:02d}"] for i in range(n)}


_Parts = tuple[
    RoundSetup,
    SecAggServer,
    dict[str, SecAggClient],
    dict[str, np.ndarray],
    dict[str, np.ndarray],
]


def _round(n: int, dim: int, *, seed: int = 0, **setup_args: Any) -> _Parts:
    keys = _identities(n)
    roster = {u: k.public_bytes for u, k in keys.items()}
    setup = RoundSetup.create(
        experiment_id="exp", round_id=7, participants=list(keys), dim=dim, **setup_args
    )
    server = SecAggServer(setup, roster)
    clients = {u: SecAggClient(u, keys[u], roster) for u in keys}
    rng = np.random.default_rng(seed)
    floats = {u: rng.normal(0, 0.4, dim).astype(np.float32) for u in keys}
    encoded = {
        u: encode(x, setup.clip, setup.fraction_bits, ring_bits=setup.ring_bits, rng=rng)
        for u, x in floats.items()
    }
    return setup, server, clients, floats, encoded


def _check_exact(
    setup: RoundSetup,
    result: AggregateResult,
    floats: dict[str, np.ndarray],
    encoded: dict[str, np.ndarray],
) -> None:
    want = np.zeros(setup.dim, dtype=result.total.dtype)
    for u in result.survivors:
        want += encoded[u]
    assert np.array_equal(result.total, want)  # exact, in the ring
    plain = sum(
        np.clip(floats[u].astype(np.float64), -setup.clip, setup.clip) for u in result.survivors
    )
    bound = result.count * quantisation_bound(setup.fraction_bits)
    assert np.max(np.abs(result.sum() - plain)) < bound
    assert np.allclose(result.mean(), result.sum() / result.count)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("stage", CLIENT_STAGES, ids=lambda s: s.value)
def test_exact_sum_with_dropouts_at_each_stage(stage: Stage, rate: float) -> None:
    n = 10
    setup, server, clients, floats, encoded = _round(n, 257, seed=int(rate * 10))
    dropped = [f"ue{i:02d}" for i in range(0, n, 3)][: round(rate * n)]
    report = run_round(server, clients, encoded.__getitem__, dropouts={stage: dropped})
    assert not report.rejected
    assert not report.client_errors
    result = report.result
    expect = n - len(dropped) if stage is not Stage.UNMASK else n
    assert result.count == expect
    assert set(dropped).isdisjoint(result.survivors) or stage is Stage.UNMASK
    _check_exact(setup, result, floats, encoded)


def test_exact_sum_with_dropouts_spread_over_all_stages() -> None:
    setup, server, clients, floats, encoded = _round(15, 100, seed=3, threshold=10)
    drops = {
        Stage.ADVERTISE_KEYS: ["ue01"],
        Stage.SHARE_KEYS: ["ue04", "ue05"],
        Stage.MASKED_INPUT: ["ue07"],
        Stage.UNMASK: ["ue11"],
    }
    report = run_round(server, clients, encoded.__getitem__, dropouts=drops)
    assert report.result.count == 11
    _check_exact(setup, report.result, floats, encoded)


@pytest.mark.parametrize("stage", [Stage.SHARE_KEYS, Stage.MASKED_INPUT])
def test_secagg_plus_k_regular_graph_is_exact(stage: Stage) -> None:
    setup, server, clients, floats, encoded = _round(20, 64, seed=4, neighbours=8)
    assert setup.neighbours == 8
    report = run_round(server, clients, encoded.__getitem__, dropouts={stage: ["ue03", "ue12"]})
    assert report.result.count == 18
    _check_exact(setup, report.result, floats, encoded)
    # each client sent shares to its 8 neighbours only: less than on the complete graph
    assert max(report.uplink_bytes.values()) < 4 * 64 + 8 * 700


def test_64_bit_ring_when_32_bits_could_overflow() -> None:
    setup, server, clients, floats, encoded = _round(6, 50, clip=4.0, fraction_bits=30)
    assert setup.ring_bits == 64
    report = run_round(
        server, clients, encoded.__getitem__, dropouts={Stage.MASKED_INPUT: ["ue02"]}
    )
    _check_exact(setup, report.result, floats, encoded)


@pytest.mark.parametrize("stage", CLIENT_STAGES, ids=lambda s: s.value)
def test_below_threshold_fails_cleanly(stage: Stage) -> None:
    setup, server, clients, _, encoded = _round(10, 32)
    assert setup.threshold == 7
    with pytest.raises(RoundFailedError) as err:
        run_round(
            server, clients, encoded.__getitem__, dropouts={stage: ["ue00", "ue01", "ue02", "ue03"]}
        )
    assert err.value.reason is Reason.BELOW_THRESHOLD
    assert "threshold is 7" in str(err.value)
    assert stage.value in str(err.value)
    assert server.stage is Stage.FAILED
    with pytest.raises(RuntimeError, match="not done"):
        _ = server.result
    with pytest.raises(RuntimeError, match="over"):
        server.advance()


def test_secagg_plus_fails_cleanly_when_a_neighbourhood_loses_too_many() -> None:
    setup, server, clients, _, encoded = _round(
        10, 16, neighbours=4, threshold=6, share_threshold=4
    )
    graph = setup.graph()
    victim = "ue00"
    drops = sorted(graph[victim])[:2]  # 3 of the 5 holders of ue00's secrets remain, needs 4
    with pytest.raises(RoundFailedError) as err:
        run_round(server, clients, encoded.__getitem__, dropouts={Stage.MASKED_INPUT: drops})
    assert err.value.reason is Reason.BELOW_THRESHOLD


def test_server_memory_is_order_d_not_u_times_d() -> None:
    n, dim = 12, 200_000
    _, server, clients, _, encoded = _round(n, dim, threshold=8)
    for stage in CLIENT_STAGES[:2]:
        for u in server.expected(stage):
            body = server.outbox_bytes(stage, u)
            if stage is Stage.ADVERTISE_KEYS:
                reply = clients[u].advertise_keys(RoundSetup.from_bytes(body)).to_bytes()
            else:
                reply = clients[u].share_keys(KeysBroadcast.from_bytes(body)).to_bytes()
            server.receive(stage, reply)
        server.advance()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for u in server.expected(Stage.MASKED_INPUT):
        forward = SharesForward.from_bytes(server.outbox_bytes(Stage.MASKED_INPUT, u))
        frame = clients[u].masked_input_encoded(forward, encoded[u]).to_bytes()
        server.receive(Stage.MASKED_INPUT, frame)
        del frame
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert held < 2 * 4 * dim  # frames are not kept: O(D), not n * D
    assert server.answered(Stage.MASKED_INPUT) == sorted(clients)
