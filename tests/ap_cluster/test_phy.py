"""The burst PHY (issue 18): its flowgraphs compile, every scheme carries bytes exactly, and
no damaged block ever passes as clean.

The transmitter and receiver are the hier blocks ``grcc`` generates from
``flowgraphs/phy_tx.grc`` and ``phy_rx.grc``; the channel between them is
:func:`sim_backend.burst_channel.air` (gaps, a random phase per burst, carrier offset, noise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ap_cluster.phy.mcs import MCS_TABLE, TB_BYTES
from ap_cluster.phy.modem import Modem
from ap_cluster.phy.tracker import common_phase, soft_bits
from flowgraphs import compile_flowgraph
from flowgraphs.phy_layout import gray_qam_points
from sim_backend.burst_channel import air


def _blocks(rng: np.random.Generator, n: int) -> list[bytes]:
    return [rng.integers(0, 256, TB_BYTES, dtype=np.uint8).tobytes() for _ in range(n)]


def _send(
    modem: Modem, blocks: list[bytes], snr_db: float, rng: np.random.Generator, cfo: float = 2e-3
) -> dict[int, bytes]:
    bursts = modem.modulate(blocks)
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, bursts.count))
    iq, _ = air([bursts.burst(k) for k in range(bursts.count)], snr_db, rng, gain=phases, cfo=cfo)
    return modem.demodulate(iq).blocks


@pytest.mark.parametrize("name", ["phy_tx", "phy_rx"])
def test_grcc_compiles_the_phy_flowgraphs(name: str, tmp_path: Path) -> None:
    out = compile_flowgraph(name, tmp_path)
    assert f"class {name}(gr.hier_block2)" in out.read_text()


@pytest.mark.parametrize("mcs", MCS_TABLE, ids=lambda m: f"{m.modulation}-{m.code_rate}")
def test_every_scheme_carries_the_bytes_exactly_at_high_snr(mcs: object) -> None:
    rng = np.random.default_rng(7)
    blocks = _blocks(rng, 6)
    got = _send(Modem(mcs.index), blocks, 32.0, rng)  # type: ignore[attr-defined]
    assert got == dict(enumerate(blocks))


def test_a_damaged_block_is_dropped_and_never_passes_as_clean() -> None:
    rng = np.random.default_rng(3)
    modem = Modem(0)
    blocks = _blocks(rng, 8)
    bursts = modem.modulate(blocks)
    parts = [bursts.burst(k).copy() for k in range(bursts.count)]
    # block 5: a stretch of its payload replaced by noise (the preamble and header intact)
    hit = parts[5]
    hit[600:1400] = (rng.standard_normal(800) + 1j * rng.standard_normal(800)).astype(np.complex64)
    iq, _ = air(parts, 30.0, rng)
    got = modem.demodulate(iq).blocks
    assert 5 not in got
    assert got == {k: b for k, b in enumerate(blocks) if k != 5}
    # near the threshold many blocks fail; every one that is delivered is exact
    noisy = _send(modem, _blocks(np.random.default_rng(4), 40), 6.5, rng)
    sent = dict(enumerate(_blocks(np.random.default_rng(4), 40)))
    assert 0 < len(noisy) < 40
    assert all(sent[k] == v for k, v in noisy.items())


def test_a_block_below_its_threshold_fails() -> None:
    rng = np.random.default_rng(5)
    assert _send(Modem(5), _blocks(rng, 6), 10.0, rng) == {}  # 64-QAM 3/4 needs about 20 dB
    assert len(_send(Modem(0), _blocks(rng, 6), 10.0, rng)) == 6  # QPSK 1/2 carries them


def test_modem_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="`mcs` must be an index below 6"):
        Modem(6)
    with pytest.raises(ValueError, match=f"are not {TB_BYTES} bytes long"):
        Modem(0).modulate([b"short"])
    with pytest.raises(ValueError, match="`blocks` must hold 1 to 4096"):
        Modem(0).modulate([])


def test_common_phase_recovers_a_phase_ramp() -> None:
    rng = np.random.default_rng(1)
    ref = rng.choice([-1.0, 1.0], size=(40, 4)).astype(np.complex128)
    true = 0.4 + 0.09 * np.arange(40)
    noise = 0.05 * (rng.standard_normal((40, 4)) + 1j * rng.standard_normal((40, 4)))
    pilots = (ref * np.exp(1j * true)[:, None] + noise).astype(np.complex64)
    np.testing.assert_allclose(
        np.angle(np.exp(1j * (common_phase(pilots, ref) - true))), 0, atol=0.02
    )


@pytest.mark.parametrize("bps", [2, 4, 6])
def test_soft_bits_of_clean_symbols_are_their_bits(bps: int) -> None:
    points = gray_qam_points(bps)
    values = np.arange(points.size)
    soft = soft_bits(points.astype(np.complex64), points).reshape(-1, bps)
    bits = (values[:, None] >> np.arange(bps - 1, -1, -1)) & 1
    assert np.array_equal(soft > 0, bits == 1)
    assert np.abs(soft).min() == pytest.approx(1.0)  # next to a boundary: one d_min^2
    assert np.mean(np.abs(points) ** 2) == pytest.approx(1.0)


def test_the_air_sets_each_bursts_snr_and_place() -> None:
    rng = np.random.default_rng(2)
    bursts = [np.ones(20_000, dtype=np.complex64), 2 * np.ones(10_000, dtype=np.complex64)]
    iq, starts = air(bursts, [10.0, 0.0], rng, gap=(50, 51))
    assert starts.tolist() == [50, 20_100]
    first = iq[starts[0] : starts[0] + 20_000] - 1.0
    second = iq[starts[1] : starts[1] + 10_000] - 2.0
    assert np.var(first) == pytest.approx(0.1, rel=0.05)  # |1|^2 / 10
    assert np.var(second) == pytest.approx(4.0, rel=0.05)  # |2|^2 / 1
    with pytest.raises(ValueError, match="`gap` must be"):
        air(bursts, 0.0, rng, gap=(5, 5))


def test_bench_phy_measures_a_bler_curve_per_scheme() -> None:
    from testbed.phy_bench import run_phy_bench, snr_at_bler

    out = run_phy_bench(snr_db=[2.0, 30.0], blocks=3, progress=False)
    assert [r["index"] for r in out["mcs"]] == [m.index for m in MCS_TABLE]
    for row in out["mcs"]:
        assert [p["snr_db"] for p in row["points"]] == [2.0, 30.0]
        assert row["points"][0]["bler"] == 1.0  # 2 dB carries none of them
        assert row["points"][1]["bler"] == 0.0
        assert row["model_snr_at_bler10_db"] > 0
    assert out["rx_samples_per_s"] > 0
    assert out["abstract_gap_db"] is not None
    assert out["nr_gap_db"] is not None
    assert out["model_table"].startswith("measured: testbed bench phy")
    assert snr_at_bler([0, 10, 20], [1.0, 0.5, 0.0]) == pytest.approx(18.0)  # 10 + 0.4 / 0.05
    assert snr_at_bler([0, 10], [1.0, 0.5]) is None
