"""GNU Radio source that streams one simulated AP's received samples, like a USRP.

It has one complex output per AP antenna (as ``uhd.usrp_source`` with that many channels) and
puts on output 0 the tags a USRP source puts at the start (``rx_time``, ``rx_rate``,
``rx_freq``), plus a ``frame`` tag (uint64 frame index) at every frame start on every output:
those tags are the only way a flowgraph can tell it from hardware.

Keep a reference to the block for as long as the flowgraph runs (a Python block that is only
referenced by the flowgraph is garbage-collected and crashes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pmt
from gnuradio import gr

from sim_backend.iq import FrameBlock, IQGenerator
from sim_backend.world import World

__all__ = ["FRAME_TAG", "SimSource"]

#: Stream-tag key marking a frame start; the value is the frame index (uint64).
FRAME_TAG = "frame"


class SimSource(gr.sync_block):
    """Streams AP ``ap`` of ``world``.

    Args:
        world: the simulated world (built from the experiment spec).
        ap: AP index in the spec.
        max_frames: stop (end of stream) after this many frames; ``None`` streams forever.
        pace: 1.0 streams at the sample rate, 0.5 at half of it, 0 as fast as possible.
        block_frames: frames generated per block.
        chunk_s: paced: stream time produced per work call, s (at least one frame). Longer
            chunks cost less CPU (fewer, larger calls) and delay samples by up to that much:
            the AP cluster uses its CSI publish interval.
        on_block: called with every generated :class:`FrameBlock` (ground truth for tests).
    """

    def __init__(
        self,
        world: World,
        ap: int,
        *,
        max_frames: int | None = None,
        pace: float = 0.0,
        block_frames: int = 64,
        chunk_s: float = 0.05,
        on_block: Callable[[FrameBlock], None] | None = None,
    ) -> None:
        if chunk_s <= 0:
            raise ValueError(f"`chunk_s` must be positive, got {chunk_s}")
        self._gen = IQGenerator(world, ap, block_frames=block_frames)
        n_ant = self._gen.n_ant
        gr.sync_block.__init__(
            self, name="cfmimo_sim_source", in_sig=None, out_sig=[np.complex64] * n_ant
        )
        cfg = world.cfg
        self._tau_c, self._fs, self._fc = cfg.tau_c, cfg.fs_hz, cfg.fc_hz
        self._offset = cfg.timing_offset_samples
        self._limit = None if max_frames is None else self._offset + max_frames * cfg.tau_c
        self._pace = pace
        self._chunk = max(cfg.tau_c, int(cfg.fs_hz * pace * chunk_s))
        self._on_block = on_block
        self._buf = self._gen.prefix()
        self._next_block = 0
        self._t0: float | None = None
        self._key = pmt.intern(FRAME_TAG)
        self._src = pmt.intern(self.name())

    def _refill(self, need: int) -> None:
        parts = [self._buf]
        have = self._buf.shape[1]
        while have < need:
            blk = self._gen.block(self._next_block)
            self._next_block += 1
            if self._on_block is not None:
                self._on_block(blk)
            parts.append(blk.samples)
            have += blk.samples.shape[1]
        self._buf = np.concatenate(parts, axis=1)

    def _start_tags(self) -> None:
        secs, frac = divmod(0.0, 1.0)
        rx_time = pmt.make_tuple(pmt.from_uint64(int(secs)), pmt.from_double(frac))
        for key, val in (
            ("rx_time", rx_time),
            ("rx_rate", pmt.from_double(self._fs)),
            ("rx_freq", pmt.from_double(self._fc)),
        ):
            self.add_item_tag(0, 0, pmt.intern(key), val, self._src)

    def work(self, input_items: list[np.ndarray], output_items: list[np.ndarray]) -> int:
        start = self.nitems_written(0)
        n = len(output_items[0])
        if self._limit is not None:
            n = min(n, self._limit - start)
            if n <= 0:
                return -1  # WORK_DONE
        if self._pace > 0:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            ahead = start / (self._fs * self._pace) - (now - self._t0)
            if ahead > 0:
                time.sleep(min(ahead, 0.1 + self._chunk / (self._fs * self._pace)))
            n = min(n, self._chunk)
        if start == 0:
            self._start_tags()
        self._refill(n)
        for out, row in zip(output_items, self._buf, strict=False):
            out[:n] = row[:n]
        self._buf = self._buf[:, n:]
        first = -(-(start - self._offset) // self._tau_c) if start > self._offset else 0
        for frame in range(first, (start + n - 1 - self._offset) // self._tau_c + 1):
            pos = self._offset + frame * self._tau_c
            if start <= pos < start + n:
                for ch in range(len(output_items)):
                    self.add_item_tag(ch, pos, self._key, pmt.from_uint64(frame), self._src)
        return n
