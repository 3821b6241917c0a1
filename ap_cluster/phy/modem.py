"""Runs the PHY's compiled flowgraphs: transport blocks to bursts of IQ and back.

:class:`Modem` compiles ``flowgraphs/phy_tx.grc`` and ``phy_rx.grc`` with ``grcc`` once per
process (into ``flowgraphs/generated/``) and runs the generated hier blocks between a vector
source and a vector sink: one run modulates (or receives) a whole batch of blocks, so the
per-sample work is GNU Radio's. A batch holds at most :data:`MAX_BLOCKS` blocks (the header's
12-bit block number tells them apart).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from ap_cluster.phy.mcs import MCS_TABLE, TB_BYTES, Mcs

__all__ = ["MAX_BLOCKS", "Bursts", "Modem", "Received"]

#: Blocks per batch (the header numbers them modulo 4096).
MAX_BLOCKS = 4096
_LEN_KEY = "packet_len"
_COMPILED: dict[str, ModuleType] = {}
_COMPILE_LOCK = threading.Lock()


def _generated(name: str) -> ModuleType:
    """The module ``grcc`` generates from ``flowgraphs/<name>.grc`` (compiled once)."""
    with _COMPILE_LOCK:
        if name not in _COMPILED:
            from gnuradio import gr

            # the blocks log every buffer size and every bad header at info, on stdout
            gr.logging().set_default_level(gr.log_levels.warn)
            from flowgraphs import compile_flowgraph

            path = compile_flowgraph(name)
            spec = importlib.util.spec_from_file_location(f"flowgraphs.generated.{name}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load the generated {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _COMPILED[name] = module
        return _COMPILED[name]


@dataclass(frozen=True)
class Bursts:
    """Modulated blocks: ``iq`` ``[S]`` complex64, the bursts back to back, and ``starts``
    ``[n + 1]`` the sample where each burst begins (the last entry: the end)."""

    iq: npt.NDArray[np.complex64]
    starts: npt.NDArray[np.int64]

    def burst(self, k: int) -> npt.NDArray[np.complex64]:
        """Burst ``k``'s samples."""
        return self.iq[self.starts[k] : self.starts[k + 1]]

    @property
    def count(self) -> int:
        return int(self.starts.size - 1)


@dataclass(frozen=True)
class Received:
    """What the receiver decoded: ``blocks`` by block number (CRC-clean payloads only), the
    bursts it detected (headers that passed their CRC-8), the samples it read and its wall
    time, s (measured)."""

    blocks: dict[int, bytes]
    headers: int
    samples: int
    seconds: float


class Modem:
    """The PHY at one modulation and coding scheme.

    Args:
        mcs: the scheme (an entry of :data:`~ap_cluster.phy.mcs.MCS_TABLE`, or its index).
        threshold: the receiver's Schmidl-Cox detection threshold (0 to 1).
    """

    def __init__(self, mcs: Mcs | int, *, threshold: float = 0.6) -> None:
        if isinstance(mcs, int):
            if not 0 <= mcs < len(MCS_TABLE):
                raise ValueError(f"`mcs` must be an index below {len(MCS_TABLE)}, got {mcs}")
            mcs = MCS_TABLE[mcs]
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"`threshold` must lie in (0, 1), got {threshold}")
        self.mcs, self.threshold = mcs, threshold

    def modulate(self, blocks: Sequence[bytes]) -> Bursts:
        """One burst per block (each exactly :data:`~ap_cluster.phy.mcs.TB_BYTES` bytes),
        numbered 0, 1, ... in order."""
        from gnuradio import blocks as gr_blocks
        from gnuradio import gr

        if not 0 < len(blocks) <= MAX_BLOCKS:
            raise ValueError(f"`blocks` must hold 1 to {MAX_BLOCKS} blocks, got {len(blocks)}")
        bad = [i for i, b in enumerate(blocks) if len(b) != TB_BYTES]
        if bad:
            raise ValueError(f"`blocks` {bad[:5]} are not {TB_BYTES} bytes long")
        data = np.frombuffer(b"".join(blocks), dtype=np.uint8)
        tags = [_length_tag(i * TB_BYTES, TB_BYTES) for i in range(len(blocks))]
        top = gr.top_block()
        source = gr_blocks.vector_source_b(data.tolist(), False, 1, tags)
        tx = _generated("phy_tx").phy_tx(
            bps=self.mcs.bits_per_symbol, len_key=_LEN_KEY, puncpat=self.mcs.puncpat
        )
        sink = gr_blocks.vector_sink_c()
        top.connect(source, tx, sink)
        top.run()
        iq = np.asarray(sink.data(), dtype=np.complex64)
        starts = sorted(int(t.offset) for t in sink.tags() if _key(t) == _LEN_KEY)
        if len(starts) != len(blocks):
            raise RuntimeError(f"the transmitter made {len(starts)} bursts of {len(blocks)}")
        return Bursts(iq=iq, starts=np.array([*starts, iq.size], dtype=np.int64))

    def demodulate(self, iq: npt.NDArray[np.complex64]) -> Received:
        """Every block the receiver finds in ``iq`` ``[S]`` and decodes cleanly."""
        import pmt
        from gnuradio import blocks as gr_blocks
        from gnuradio import gr

        samples = np.ascontiguousarray(iq, dtype=np.complex64)
        if samples.ndim != 1:
            raise ValueError(f"`iq` must be one-dimensional, got shape {samples.shape}")
        top = gr.top_block()
        source = gr_blocks.vector_source_c(samples.tolist(), False)
        rx = _generated("phy_rx").phy_rx(
            bps=self.mcs.bits_per_symbol,
            len_key=_LEN_KEY,
            puncpat=self.mcs.puncpat,
            threshold=self.threshold,
        )
        sink = gr_blocks.vector_sink_b()
        top.connect(source, rx, sink)
        started = time.perf_counter()
        top.run()
        seconds = time.perf_counter() - started
        out = bytes(sink.data())
        found: dict[int, bytes] = {}
        for t in sink.tags():
            if _key(t) == "packet_num":
                start = int(t.offset)
                found[int(pmt.to_long(t.value))] = out[start : start + TB_BYTES]
        headers = len(found)
        clean = {k: v for k, v in found.items() if len(v) == TB_BYTES}
        return Received(blocks=clean, headers=headers, samples=samples.size, seconds=seconds)


def _key(tag: Any) -> str:
    import pmt

    return str(pmt.symbol_to_string(tag.key))


def _length_tag(offset: int, length: int) -> Any:
    import pmt
    from gnuradio import gr

    return gr.tag_utils.python_to_tag(
        (offset, pmt.intern(_LEN_KEY), pmt.from_long(length), pmt.intern("modem"))
    )
