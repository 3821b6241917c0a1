"""`testbed bench phy`: BLER against SNR of every scheme through the real PHY (measured).

For each modulation and coding scheme of :data:`ap_cluster.phy.mcs.MCS_TABLE` and each SNR of
the grid, ``blocks`` random transport blocks go through the compiled transmitter, the burst
channel (:func:`sim_backend.burst_channel.air`: AWGN, a random phase per burst, a carrier
offset of ``cfo`` cycles per sample, random gaps) and the compiled receiver; the block error
rate is the share that did not come out bit-exact. The SNR is per sample over the burst's
64-bin band (52 bins carry energy), as the link layer's SINR is over the allocated band.

The JSON object holds, per scheme, its points (``bler`` measured) and
``measured_snr_at_bler10_db`` (linear interpolation in dB; None when the grid never reaches
10%); beside it the abstract link's SINR at 10% for that scheme with ``link.bler: measured``
(``model_snr_at_bler10_db``, modelled: the packaged table, or ``table``), and that of the 5G NR
entry of the nearest spectral efficiency (``nr_entry``, ``nr_snr_at_bler10_db``, modelled).
``abstract_gap_db`` is the largest distance between the measured and the abstract link's 10%
points, ``nr_gap_db`` the same against the NR curves. ``rx_samples_per_s`` is the receiver's
wall-clock throughput here, ``rx_samples_per_cpu_s`` per second of CPU time (per core), and
``rx_realtime_x`` the wall throughput over ``sample_rate_hz``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["run_phy_bench", "snr_at_bler"]


def snr_at_bler(snr_db: npt.ArrayLike, bler: npt.ArrayLike, target: float = 0.1) -> float | None:
    """The SNR where a falling BLER curve first crosses ``target`` (linear in dB), or None."""
    s, b = np.asarray(snr_db, dtype=float), np.asarray(bler, dtype=float)
    below = np.flatnonzero(b <= target)
    if below.size == 0:
        return None
    k = int(below[0])
    if k == 0:
        return float(s[0])
    s0, s1, b0, b1 = s[k - 1], s[k], b[k - 1], b[k]
    return float(s0 + (b0 - target) * (s1 - s0) / (b0 - b1)) if b0 != b1 else float(s1)


def _nr(efficiency: float) -> tuple[str, float]:
    """The NR table's nearest entry (by spectral efficiency): its name, SINR at 10%."""
    from controller.link import get_table

    table = get_table("nr-64qam")
    k = int(np.argmin(np.abs(table.spectral_efficiency - efficiency)))
    name = f"{table.name} I_MCS {int(table.index[k])} ({float(table.spectral_efficiency[k]):.2f})"
    return name, float(table.sinr_threshold_db[k])


def _gap(rows: list[dict[str, Any]], key: str) -> float | None:
    gaps = [
        abs(r["measured_snr_at_bler10_db"] - r[key])
        for r in rows
        if r["measured_snr_at_bler10_db"] is not None and r[key] is not None
    ]
    return round(max(gaps), 2) if gaps else None


def run_phy_bench(
    *,
    snr_db: list[float],
    blocks: int = 40,
    cfo: float = 2e-3,
    seed: int = 0,
    sample_rate_hz: float = 1e6,
    progress: bool = True,
    table: str | None = None,
) -> dict[str, Any]:
    """The benchmark's JSON object (see the module docstring); ``table``: the measured table
    to compare with (default the packaged one)."""
    from tqdm import tqdm

    from ap_cluster.phy.mcs import MCS_TABLE, TB_BYTES
    from ap_cluster.phy.modem import Modem
    from controller.link import measured_table
    from sim_backend.burst_channel import air

    if not 1 <= blocks <= 4096:
        raise ValueError(f"`blocks` must lie in 1..4096, got {blocks}")
    if not snr_db:
        raise ValueError("`snr_db` names no SNR")
    model = measured_table(table)
    model_at = dict(zip(model.index.tolist(), model.sinr_threshold_db.tolist(), strict=True))
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    samples, wall, cpu = 0, 0.0, 0.0
    grid = sorted(float(s) for s in snr_db)
    with tqdm(total=len(MCS_TABLE) * len(grid), desc="phy", disable=not progress) as bar:
        for mcs in MCS_TABLE:
            modem = Modem(mcs)
            sent = [rng.integers(0, 256, TB_BYTES, dtype=np.uint8).tobytes() for _ in range(blocks)]
            bursts = modem.modulate(sent)
            points = []
            for snr in grid:
                phases = np.exp(1j * rng.uniform(0, 2 * np.pi, blocks))
                parts = [bursts.burst(k) for k in range(blocks)]
                iq, _ = air(parts, snr, rng, gain=phases, cfo=cfo)
                c0 = time.process_time()
                got = modem.demodulate(iq)
                cpu += time.process_time() - c0
                samples, wall = samples + got.samples, wall + got.seconds
                ok = sum(1 for k, b in got.blocks.items() if k < blocks and b == sent[k])
                points.append({"snr_db": snr, "bler": round(1.0 - ok / blocks, 4)})
                bar.update(1)
            measured = snr_at_bler([p["snr_db"] for p in points], [p["bler"] for p in points])
            entry, nr = _nr(mcs.bits_per_subcarrier)
            abstract = model_at.get(mcs.index)
            rows.append(
                {
                    "index": mcs.index,
                    "modulation": mcs.modulation,
                    "code_rate": str(mcs.code_rate),
                    "bits_per_subcarrier": mcs.bits_per_subcarrier,
                    "points": points,
                    "measured_snr_at_bler10_db": None if measured is None else round(measured, 2),
                    "model_snr_at_bler10_db": None if abstract is None else round(abstract, 2),
                    "nr_entry": entry,
                    "nr_snr_at_bler10_db": nr,
                }
            )
    per_s = samples / wall if wall > 0 else None
    return {
        "blocks_per_point": blocks,
        "tb_bytes": TB_BYTES,
        "cfo_cycles_per_sample": cfo,
        "channel": "awgn, random phase per burst, carrier offset",
        "mcs": rows,
        "model_table": model.source,
        "abstract_gap_db": _gap(rows, "model_snr_at_bler10_db"),
        "nr_gap_db": _gap(rows, "nr_snr_at_bler10_db"),
        "rx_samples_per_s": None if per_s is None else round(per_s, 1),
        "rx_samples_per_cpu_s": round(samples / cpu, 1) if cpu > 0 else None,
        "sample_rate_hz": sample_rate_hz,
        "rx_realtime_x": None if per_s is None else round(per_s / sample_rate_hz, 3),
    }
