"""The receiver's pilot phase tracker and soft demapper: one frame at a time, in NumPy.

The preamble's channel estimate equalises every symbol of a burst, but the carrier offset left
by the Schmidl-Cox estimate (noisy at low SNR) turns each symbol a little further: over the 84
symbols of a QPSK block it grows by radians. Each symbol's four pilots measure its common
phase; a line through them (the slope from consecutive symbols' pilot correlations, the
intercept from all of them) is removed from every data subcarrier. Each data symbol is then
demapped to max-log soft bits (:func:`soft_bits`; GNU Radio 3.10.5's ``calc_soft_dec`` gets
the inner bits of 64-QAM wrong, a quarter of them even without noise). The block works on
whole frames (messages) with vectorised NumPy, so its Python runs at the frame rate; the
per-sample work stays in GNU Radio's C++ blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pmt
from gnuradio import gr

__all__ = ["PilotTracker", "common_phase", "soft_bits"]


def common_phase(
    pilots: npt.NDArray[np.complex64], reference: npt.NDArray[np.complex128]
) -> npt.NDArray[np.float64]:
    """``[S]`` the common phase of each of S symbols (radians), a line fitted to their pilots.

    Args:
        pilots: ``[S, P]`` the equalised pilot subcarriers of each symbol.
        reference: ``[S, P]`` the pilot symbols sent.
    """
    c = np.sum(pilots * np.conj(reference), axis=1)  # [S] each symbol's pilot correlation
    n = c.size
    if n == 0:
        return np.zeros(0)
    k = np.arange(n)
    slope = float(np.angle(np.sum(c[1:] * np.conj(c[:-1])))) if n > 1 else 0.0
    intercept = float(np.angle(np.sum(c * np.exp(-1j * slope * k))))
    return intercept + slope * k


def _axes(points: npt.NDArray[np.complex128]) -> tuple[np.ndarray, np.ndarray] | None:
    """The I and Q levels ``([2^k], [2^k])`` of a separable square constellation (point ``v``
    at ``I[v >> k] + j Q[v & (2^k - 1)]``), or None for any other."""
    b = int(np.log2(points.size))
    if b % 2 or points.size != 1 << b:
        return None
    k = b // 2
    v = np.arange(points.size)
    i_lv = np.real(points[(v >> k) << k])  # I level of each upper half, at Q index 0
    q_lv = np.imag(points[v & ((1 << k) - 1)])
    if not np.allclose(points, i_lv + 1j * q_lv):
        return None
    return np.real(points[np.arange(1 << k) << k]), np.imag(points[: 1 << k])


def _axis_bits(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``[N, k]`` max-log soft bits of one axis (``(min d^2 | 0) - (min d^2 | 1)``)."""
    m = levels.size
    k = int(np.log2(m))
    d = (x[:, None] - levels[None, :]) ** 2  # [N, m]
    bit = (np.arange(m)[:, None] >> np.arange(k - 1, -1, -1)[None, :]) & 1  # [m, k]
    d1 = np.min(np.where(bit[None, :, :] == 1, d[:, :, None], np.inf), axis=1)
    d0 = np.min(np.where(bit[None, :, :] == 0, d[:, :, None], np.inf), axis=1)
    return np.asarray(d0 - d1)


def soft_bits(
    symbols: npt.NDArray[np.complex64], points: npt.NDArray[np.complex128]
) -> npt.NDArray[np.float32]:
    """``[N * b]`` max-log soft bits of N symbols on a constellation of ``2^b`` points (bit
    order: each symbol's bits most significant first), positive for a 1, in units of the
    points' minimum squared distance: ``(min d^2 over points with the bit 0 - min over those
    with it 1) / d_min^2``, so a noise-free symbol next to a decision boundary gives +-1.
    (The max-log LLR times the noise variance: the Viterbi decoder needs no more.)

    A separable square constellation (the PHY's Gray QAM) is demapped per axis, which is
    exact (the other axis' distance cancels in the difference) and needs ``2 sqrt(M)``
    distances per symbol instead of ``M``."""
    m = points.size
    b = int(np.log2(m))
    gaps = np.abs(points[:, None] - points[None, :]) ** 2
    d_min = float(np.min(gaps[gaps > 0]))
    axes = _axes(points)
    if axes is not None:
        bits = np.concatenate(
            [_axis_bits(np.real(symbols), axes[0]), _axis_bits(np.imag(symbols), axes[1])], axis=1
        )
        return (bits / d_min).astype(np.float32).reshape(-1)
    d = np.abs(symbols[:, None] - points[None, :]) ** 2  # [N, M]
    bit = (np.arange(m)[:, None] >> np.arange(b - 1, -1, -1)[None, :]) & 1  # [M, b]
    d1 = np.min(np.where(bit[None, :, :] == 1, d[:, :, None], np.inf), axis=1)  # [N, b]
    d0 = np.min(np.where(bit[None, :, :] == 0, d[:, :, None], np.inf), axis=1)
    return ((d0 - d1) / d_min).astype(np.float32).reshape(-1)


class PilotTracker(gr.basic_block):
    """Frames in (``in``: PDUs of ``[S * fft_len]`` equalised, shifted spectra, the payload of
    one burst), soft bits out (``out``: float PDUs of :func:`soft_bits` of the ``packet_len``
    data subcarriers in order, common phase removed; the rest of the metadata passes
    through).

    Args:
        fft_len: FFT size.
        occupied_carriers: the data subcarriers (``((c0, c1, ...),)``, negative below DC).
        pilot_carriers: the pilot subcarriers (``((p0, ...),)``).
        pilot_symbols: pilot values per symbol (``((s0, ...), ...)``, cycled; symbol 0 of the
            pattern is the header's, so a payload's symbol k uses entry ``k + 1``).
        len_tag_key: the metadata key of the payload's length in symbols.
        points: the payload's constellation points (``[2^b]``, index = the symbol's bits).
    """

    def __init__(
        self,
        fft_len: int,
        occupied_carriers: Sequence[Sequence[int]],
        pilot_carriers: Sequence[Sequence[int]],
        pilot_symbols: Sequence[Sequence[complex]],
        len_tag_key: str,
        points: Sequence[complex],
    ) -> None:
        gr.basic_block.__init__(self, "pilot_tracker", None, None)
        half = fft_len // 2
        self._fft = fft_len
        self._data = np.array([(c % fft_len + half) % fft_len for c in occupied_carriers[0]])
        self._pilots = np.array([(c % fft_len + half) % fft_len for c in pilot_carriers[0]])
        self._symbols = np.array(pilot_symbols, dtype=np.complex128)
        self._len_key = pmt.intern(len_tag_key)
        self._points = np.asarray(points, dtype=np.complex128)
        self.frames = 0
        self.rejected = 0
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    def _handle(self, msg: pmt.pmt_t) -> None:
        try:
            meta, vec = pmt.car(msg), pmt.cdr(msg)
            x = np.asarray(pmt.c32vector_elements(vec), dtype=np.complex64)
            if x.size % self._fft:
                raise ValueError(f"a frame of {x.size} samples is not whole {self._fft}-spectra")
            x = x.reshape(-1, self._fft)
            n = x.shape[0]
            ref = self._symbols[(1 + np.arange(n)) % len(self._symbols)]
            phase = common_phase(x[:, self._pilots], ref)
            data = (x[:, self._data] * np.exp(-1j * phase)[:, None]).reshape(-1)
            want = pmt.to_python(pmt.dict_ref(meta, self._len_key, pmt.PMT_NIL))
            if want is None or not 0 < int(want) <= data.size:
                raise ValueError(f"`{self._len_key}` {want} does not fit a {n}-symbol frame")
            out = soft_bits(data[: int(want)], self._points)
            meta = pmt.dict_delete(meta, self._len_key)  # the PDU's own length is the new one
        except (ValueError, RuntimeError) as err:  # a malformed frame is dropped, never fatal
            self.rejected += 1
            gr.log.warn(f"pilot_tracker: frame dropped: {err}")
            return
        self.frames += 1
        self.message_port_pub(pmt.intern("out"), pmt.cons(meta, pmt.init_f32vector(out.size, out)))
