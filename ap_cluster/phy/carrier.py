"""Carrying one UE's transport blocks through the simulated air (``link.mode: iq``).

The UE's transmitter (``flowgraphs/phy_tx.grc``), the burst channel
(:func:`sim_backend.burst_channel.air`: a silent gap of random length before each burst, a
random phase per burst, the UE oscillator's carrier offset, white noise at each block's SNR) and
the APs' receiver (``flowgraphs/phy_rx.grc``). The SNR given per block is the true SINR of its
slot after maximum-ratio combining over every AP antenna, ``P G_u(t) / (N0 B)`` with
``G_u = sum_l ||h_{u,l}||^2``: with flat fading per antenna and the combining weights known, the
combined signal is one stream at that SNR, so the receiver runs once per burst rather than once
per antenna.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ap_cluster.phy.mcs import MCS_TABLE, TB_BYTES
from ap_cluster.phy.modem import Modem

__all__ = ["BurstCarrier", "Carried"]


class Carried:
    """What came out: ``blocks[k]`` the decoded bytes of block ``k`` or None, and the
    receiver's wall time ``rx_s`` (s, measured)."""

    def __init__(self, blocks: list[bytes | None], rx_s: float) -> None:
        self.blocks, self.rx_s = blocks, rx_s

    @property
    def decoded(self) -> list[bool]:
        return [b is not None for b in self.blocks]


class BurstCarrier:
    """The PHY between a UE and the AP cluster, one modem per scheme (built on first use).

    Args:
        max_cfo: the UE oscillator's carrier offset is drawn uniformly in ``+-max_cfo`` cycles
            per sample per request (2e-3: 2 ppm at 1 GHz and 1 MS/s, the calibration's value).
    """

    def __init__(self, *, max_cfo: float = 2e-3) -> None:
        if not (np.isfinite(max_cfo) and 0 <= max_cfo < 0.01):
            raise ValueError(f"`max_cfo` must lie in [0, 0.01) cycles/sample, got {max_cfo!r}")
        self.max_cfo = max_cfo
        self._modems: dict[int, Modem] = {}

    def carry(
        self, blocks: Sequence[bytes], mcs: int, snr_db: npt.ArrayLike, seed: Sequence[int]
    ) -> Carried:
        """Send ``blocks`` (each ``TB_BYTES``) at scheme ``mcs``; block ``k`` meets
        ``snr_db[k]`` (dB). ``seed`` keys the channel's randomness."""
        from sim_backend.burst_channel import air

        if not 0 <= mcs < len(MCS_TABLE):
            raise ValueError(f"`mcs` must lie in 0..{len(MCS_TABLE) - 1}, got {mcs}")
        snr = np.asarray(snr_db, dtype=np.float64)
        if snr.shape != (len(blocks),) or not np.all(np.isfinite(snr)):
            raise ValueError(f"`snr_db` must be {len(blocks)} finite values, got {snr.shape}")
        modem = self._modems.get(mcs)
        if modem is None:
            modem = self._modems[mcs] = Modem(mcs)
        bursts = modem.modulate(list(blocks))
        rng = np.random.default_rng(list(seed))
        phases = np.exp(2j * np.pi * rng.random(len(blocks)))
        cfo = float(rng.uniform(-self.max_cfo, self.max_cfo))
        parts = [bursts.burst(k) for k in range(bursts.count)]
        iq, _ = air(parts, snr, rng, gain=phases, cfo=cfo)
        got = modem.demodulate(iq)
        out = [got.blocks.get(k) for k in range(len(blocks))]
        clean = [b if b is not None and len(b) == TB_BYTES else None for b in out]
        return Carried(clean, got.seconds)
