"""HARQ with the update's bytes through a PHY (``link.mode: iq``): ``transmit_bytes``.

The PHY here is a function of (user, slot, block) standing in for the air's burst service at
the round core's boundary; the real one (GNU Radio over ZeroMQ) is tested in
``tests/ap_cluster/test_air_carry.py`` and end to end in ``tests/integration``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from controller.link import measured_table
from controller.link.bler import bler
from controller.link.harq import (
    ARRIVED,
    FAILED,
    LATE,
    LinkConfig,
    LinkPlan,
    attempt_times,
    plan_links,
    transmit,
    transmit_bytes,
)

N0, BW, P = 4e-21, 1e6, 0.2
TB = 500


def _setup(
    sinr_db: list[float], payload_bytes: int, deadline_s: float = 10.0, max_retx: int = 3
) -> tuple[LinkConfig, LinkPlan, dict[str, Any], np.ndarray]:
    cfg = LinkConfig(table=measured_table(), backoff_db=1.0, tbs_bits=8 * TB, max_retx=max_retx)
    u = len(sinr_db)
    gain = 10 ** (np.array(sinr_db) / 10) * N0 * BW / P
    kw: dict[str, Any] = {
        "power_w": np.full(u, P),
        "bandwidth_hz": np.full(u, BW),
        "noise_psd_w_per_hz": N0,
    }
    plan = plan_links(cfg, gain=gain, update_bits=8.0 * payload_bytes, **kw)
    compute = np.linspace(0.1, 0.3, u)
    times = attempt_times(plan, compute_s=compute, deadline_s=deadline_s)
    kw |= {"compute_s": compute, "deadline_s": deadline_s}
    rng = np.random.default_rng(4)
    # the true channel wanders around the planned one, attempt by attempt
    true = np.where(np.isnan(times), np.nan, gain[:, None] * rng.uniform(0.5, 1.5, times.shape))
    return cfg, plan, kw, true


def _payloads(u: int, n_bytes: int) -> list[bytes | None]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, n_bytes, dtype=np.uint8).tobytes() for _ in range(u)]


class _Phy:
    """Decodes block ``k`` of user ``u`` in slot ``a`` unless ``(u, a)`` is in ``lose``; counts
    the calls and the slots it was asked for."""

    def __init__(self, lose: frozenset[tuple[int, int]] = frozenset(), flip: bool = False) -> None:
        self.lose, self.flip, self.calls = lose, flip, 0

    def __call__(
        self, u: int, m: int, a: int, blocks: bytes, snr_db: np.ndarray
    ) -> tuple[list[bool], bytes]:
        self.calls += 1
        k = len(blocks) // TB
        assert snr_db.shape == (k,)
        ok = [(u, a + i) not in self.lose for i in range(k)]
        out = bytearray(blocks)
        if self.flip:
            out[0] ^= 0xFF  # what comes out of the receiver is what counts
        for i, good in enumerate(ok):
            if not good:
                out[i * TB : (i + 1) * TB] = bytes(TB)
        return ok, bytes(out)


def test_every_block_decodes_and_the_bytes_arrive_whole() -> None:
    n_bytes = 7 * TB + 123  # 8 blocks, the last padded
    cfg, plan, kw, true = _setup([25.0, 12.0], n_bytes)
    sent = _payloads(2, n_bytes)
    out, got = transmit_bytes(cfg, plan, true_gain=true, payloads=sent, carrier=_Phy(), **kw)
    assert out.status.tolist() == [ARRIVED, ARRIVED]
    assert out.transmissions.tolist() == [8, 8]
    assert out.retries.tolist() == [0, 0]
    assert got == sent


def test_a_failed_block_is_sent_again_in_the_next_slot() -> None:
    n_bytes = 6 * TB
    cfg, plan, kw, true = _setup([25.0], n_bytes)
    phy = _Phy(lose=frozenset({(0, 2), (0, 5), (0, 6)}))  # block 2 once, then block 4 twice
    out, got = transmit_bytes(
        cfg, plan, true_gain=true, payloads=_payloads(1, n_bytes), carrier=phy, **kw
    )
    assert out.status.tolist() == [ARRIVED]
    assert out.transmissions.tolist() == [9]
    assert out.retries.tolist() == [3]
    assert out.blocks_delivered.tolist() == [6]
    np.testing.assert_allclose(out.airtime_s, 9 * plan.block_airtime_s)
    assert got[0] is not None


def test_a_block_failing_every_try_loses_the_update() -> None:
    cfg, plan, kw, true = _setup([25.0], 4 * TB, max_retx=2)
    phy = _Phy(lose=frozenset({(0, 1), (0, 2), (0, 3)}))  # block 1: three tries, all lost
    out, got = transmit_bytes(
        cfg, plan, true_gain=true, payloads=_payloads(1, 4 * TB), carrier=phy, **kw
    )
    assert out.status.tolist() == [FAILED]
    assert out.transmissions.tolist() == [4]
    assert got == [None]


def test_no_slot_at_or_after_the_deadline_is_used() -> None:
    cfg, plan, kw, true = _setup([12.0], 40 * TB)
    deadline = float(kw["compute_s"][0] + 10.5 * plan.block_airtime_s[0])
    kw["deadline_s"] = deadline
    out, got = transmit_bytes(
        cfg, plan, true_gain=true, payloads=_payloads(1, 40 * TB), carrier=_Phy(), **kw
    )
    assert out.status.tolist() == [LATE]
    assert out.transmissions.tolist() == [11]
    assert got == [None]


def test_the_receivers_bytes_are_what_arrives() -> None:
    cfg, plan, kw, true = _setup([25.0], 2 * TB)
    sent = _payloads(1, 2 * TB)
    _, got = transmit_bytes(cfg, plan, true_gain=true, payloads=sent, carrier=_Phy(flip=True), **kw)
    assert got[0] is not None
    assert got[0][0] == sent[0][0] ^ 0xFF  # type: ignore[index]


@pytest.mark.parametrize("window", [1, 3, 64])
def test_sending_a_window_at_a_time_is_the_sequential_process(window: int) -> None:
    """With the decision of :func:`transmit` (uniform against the BLER of the slot's SINR)
    as the PHY, the outcome is transmit's, whatever the window."""
    n_bytes = 30 * TB
    cfg, plan, kw, true = _setup([9.0, 12.5, 17.0, 21.0], n_bytes)
    unif = np.random.default_rng(9).random(true.shape)
    reference = transmit(cfg, plan, true_gain=np.nan_to_num(true), uniforms=unif, **kw)

    def phy(u: int, m: int, a: int, blocks: bytes, snr_db: np.ndarray) -> tuple[list[bool], bytes]:
        ok = unif[u, a : a + snr_db.size] >= bler(cfg.table, np.full(snr_db.size, m), snr_db)
        return ok.tolist(), blocks

    out, got = transmit_bytes(
        cfg, plan, true_gain=true, payloads=_payloads(4, n_bytes), carrier=phy, window=window, **kw
    )
    assert reference.retries.sum() > 0  # the case is not trivial
    for name in ("status", "transmissions", "retries", "blocks_delivered"):
        np.testing.assert_array_equal(getattr(out, name), getattr(reference, name), err_msg=name)
    np.testing.assert_allclose(out.airtime_s, reference.airtime_s)
    assert [g is not None for g in got] == reference.arrived.tolist()


def test_refusals_name_the_problem() -> None:
    cfg, plan, kw, true = _setup([25.0], 2 * TB)
    with pytest.raises(ValueError, match=r"payloads\[0\]"):
        transmit_bytes(
            cfg, plan, true_gain=true, payloads=_payloads(1, 3 * TB), carrier=_Phy(), **kw
        )
    with pytest.raises(ValueError, match="one entry per user"):
        transmit_bytes(cfg, plan, true_gain=true, payloads=[], carrier=_Phy(), **kw)
    chase = LinkConfig(table=cfg.table, tbs_bits=8 * TB, chase_combining=True)
    with pytest.raises(ValueError, match="chase_combining"):
        transmit_bytes(chase, plan, true_gain=true, payloads=_payloads(1, TB), carrier=_Phy(), **kw)
