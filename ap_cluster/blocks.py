"""GNU Radio blocks of the AP receive chain.

:class:`PilotEstimator` is a hier block with one complex input per antenna. Per antenna, in
GNU Radio's C++ blocks::

    [skiphead d] -> keep_m_in_n(tau_p of tau_c) -> stream_to_vector(tau_p) -> fft_vcc(tau_p)
                 -> keep_m_in_n(W of tau_c, after the pilot) -> complex_to_mag_squared
                    -> integrate_ff(W)

The forward FFT of the pilot segment is the bank of matched filters of the DFT pilots; the
integrator gives the energy of a silent window of W samples. Both leave at the frame rate and
feed :class:`CsiPackager`, the only Python block, which turns each frame's vectors into LS/MMSE
estimates (numpy, vectorised over the frames of a work call) and publishes CSI messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from gnuradio import blocks, fft, gr

from ap_cluster.estimation import (
    estimate_pbeta,
    ls_coefficients,
    mmse_coefficients,
    snr_db,
)
from protocol.arrays import NDArrayFloat
from protocol.csi import ESTIMATORS, CSIMessage

__all__ = ["CsiPackager", "PilotEstimator", "PriorFn"]

#: ``prior(frame) -> (pbeta [K], sigma2)``: long-term statistics for the MMSE estimator.
PriorFn = Callable[[int], tuple[NDArrayFloat, float]]


class CsiPackager(gr.sync_block):
    """Frame-rate sink: matched-filter vectors in, CSI messages out.

    Inputs: ``n_ant`` vectors of ``tau_p`` complex (pilot matched-filter outputs), then
    ``n_ant`` floats (energy of the ``noise_window`` silent samples), one item per frame.

    Args:
        ap_id, ue_ids: identities in the CSI messages; ``ue_ids`` is ``[K]``.
        pilot_index: ``[K]`` pilot of each UE; ``pilot_power_w``: ``[K]`` W.
        n_ant, tau_p, tau_c, noise_window: frame geometry (samples).
        fs_hz, fc_hz: sample rate and carrier, Hz.
        est: estimator whose result is published: ``"ls"`` or ``"mmse"``.
        publish_every: publish frames whose index is a multiple of this.
        on_csi: called with each message (e.g. ``CsiPublisher.publish``).
        prior: MMSE statistics per frame; ``None`` estimates them from the received power
            (exponential average over ``stats_frames`` frames).
        record: keep every frame's LS and MMSE estimates (tests, benchmarks).
        t0_ns: stream time of frame 0, ns.
    """

    def __init__(
        self,
        *,
        ap_id: str,
        ue_ids: Sequence[str],
        pilot_index: Sequence[int],
        pilot_power_w: Sequence[float],
        n_ant: int,
        tau_p: int,
        tau_c: int,
        noise_window: int,
        fs_hz: float,
        fc_hz: float,
        est: str = "mmse",
        publish_every: int = 1,
        on_csi: Callable[[CSIMessage], None] | None = None,
        prior: PriorFn | None = None,
        record: bool = False,
        t0_ns: int = 0,
        stats_frames: int = 256,
    ) -> None:
        if est not in ESTIMATORS:
            raise ValueError(f"`est` must be one of {ESTIMATORS}, got {est!r}.")
        if publish_every < 1:
            raise ValueError("`publish_every` must be >= 1.")
        gr.sync_block.__init__(
            self,
            name="cfmimo_csi_packager",
            in_sig=[(np.complex64, tau_p)] * n_ant + [np.float32] * n_ant,
            out_sig=None,
        )
        self.ap_id, self.ue_ids = ap_id, tuple(ue_ids)
        self._k = np.asarray(pilot_index, dtype=np.int64)
        self._p = np.asarray(pilot_power_w, dtype=np.float64)
        if self._k.shape != (len(self.ue_ids),) or self._p.shape != self._k.shape:
            raise ValueError("`pilot_index` and `pilot_power_w` need one entry per UE id.")
        self._n_ant, self._tau_p, self._tau_c, self._w = n_ant, tau_p, tau_c, noise_window
        self._fs, self._fc, self._est = fs_hz, fc_hz, est
        self._every, self._on_csi, self._prior = publish_every, on_csi, prior
        self._t0_ns, self._alpha = t0_ns, 1.0 / max(1, stats_frames)
        self._ls_coef = ls_coefficients(self._p, tau_p)
        self.noise_var = float("nan")
        self._bin_power = np.zeros(tau_p)
        self.frames = 0
        self.published = 0
        self.error: BaseException | None = None
        self.record = record
        self.rec_ls: list[npt.NDArray[np.complex64]] = []
        self.rec_mmse: list[npt.NDArray[np.complex64]] = []

    # -- statistics ----------------------------------------------------------------------------
    def _update_stats(
        self, z: npt.NDArray[np.complex64], energy: NDArrayFloat
    ) -> tuple[NDArrayFloat, NDArrayFloat]:
        """The running noise variance ``[F]`` and pilot-bin power ``[F, tau_p]`` as of each
        frame of the batch: ``s_n = (1 - a) s_{n-1} + a x_n`` frame by frame (``s_0 = x_0``),
        so the statistics of a frame do not depend on how the stream was cut into work calls
        (a live run and the replay of its recording publish the same bits)."""
        from scipy.signal import lfilter

        noise = np.mean(energy, axis=1) / self._w  # [F]
        power = np.mean(np.abs(z) ** 2, axis=1)  # [F, tau_p]
        a = self._alpha
        if self.frames == 0:
            self.noise_var, self._bin_power = float(noise[0]), power[0].astype(np.float64)
        zi_n = np.array([(1.0 - a) * self.noise_var])
        zi_p = ((1.0 - a) * self._bin_power)[None, :]
        noise_f, _ = lfilter([a], [1.0, -(1.0 - a)], noise, zi=zi_n)
        power_f, _ = lfilter([a], [1.0, -(1.0 - a)], power, axis=0, zi=zi_p)
        self.noise_var, self._bin_power = float(noise_f[-1]), power_f[-1]
        return np.asarray(noise_f), np.asarray(power_f)

    def statistics(self, frame: int) -> tuple[NDArrayFloat, float]:
        """``(pbeta [K], sigma2)`` the MMSE estimator uses at ``frame`` (the running statistics
        as of the last frame taken, without a prior)."""
        if self._prior is not None:
            return self._prior(frame)
        return estimate_pbeta(self._bin_power, self._k, self.noise_var, self._tau_p), self.noise_var

    def _frame_statistics(
        self, first: int, noise: NDArrayFloat, power: NDArrayFloat
    ) -> tuple[NDArrayFloat, NDArrayFloat]:
        """``(pbeta [F, K], sigma2 [F])`` of each frame of a batch starting at ``first``."""
        if self._prior is None:
            return estimate_pbeta(power, self._k, noise, self._tau_p), noise
        stats = [self._prior(first + j) for j in range(noise.size)]
        pbeta = np.array([s[0] for s in stats], dtype=np.float64)
        return pbeta, np.array([s[1] for s in stats], dtype=np.float64)

    # -- work ----------------------------------------------------------------------------------
    def work(self, input_items: list[np.ndarray], output_items: list[np.ndarray]) -> int:
        try:
            return self._work(input_items)
        except Exception as err:  # end the stream; the runner reports it and exits non-zero
            self.error = err
            return -1

    def _work(self, input_items: list[np.ndarray]) -> int:
        f = len(input_items[0])
        n = self._n_ant
        z = np.stack(input_items[:n], axis=1)  # [F, N, tau_p]
        energy = np.stack(input_items[n:], axis=1).astype(np.float64)  # [F, N]
        first = self.nitems_read(0)
        noise, power = self._update_stats(z, energy)
        pbeta, sigma2 = self._frame_statistics(first, noise, power)  # [F, K], [F]
        mmse_coef = mmse_coefficients(pbeta, self._k, sigma2, self._p, self._tau_p)  # [F, K]
        zu = z[:, :, self._k].transpose(0, 2, 1)  # [F, K, N]
        if self.record:
            self.rec_ls.append((zu * self._ls_coef[None, :, None]).astype(np.complex64))
            self.rec_mmse.append((zu * mmse_coef[:, :, None]).astype(np.complex64))
        if self._on_csi is not None:
            start = -(-first // self._every) * self._every
            for frame in range(start, first + f, self._every):
                j = frame - first
                coef = mmse_coef[j] if self._est == "mmse" else self._ls_coef
                snr = snr_db(pbeta[j], sigma2[j])
                self._on_csi(self._message(frame, zu[j] * coef[:, None], snr, float(noise[j])))
                self.published += 1
        self.frames += f
        return f

    def _message(
        self, frame: int, h: npt.NDArray[np.complex64], snr: NDArrayFloat, noise_var: float
    ) -> CSIMessage:
        t_ns = self._t0_ns + round(frame * self._tau_c / self._fs * 1e9)
        return CSIMessage(
            ap_id=self.ap_id,
            frame=frame,
            t_ns=t_ns,
            fc_hz=self._fc,
            fs_hz=self._fs,
            ue_ids=self.ue_ids,
            h=h.astype(np.complex128),
            noise_var=noise_var,
            snr_db=snr,
            est=self._est,
        )

    # -- results -------------------------------------------------------------------------------
    def recorded(self) -> tuple[npt.NDArray[np.complex64], npt.NDArray[np.complex64]]:
        """``(ls, mmse)``: ``[F, K, N]`` complex64 estimates of every frame so far."""
        if not self.rec_ls:
            empty = np.zeros((0, len(self.ue_ids), self._n_ant), dtype=np.complex64)
            return empty, empty
        return np.concatenate(self.rec_ls), np.concatenate(self.rec_mmse)


class PilotEstimator(gr.hier_block2):
    """Hier block: ``n_ant`` complex streams in; CSI out through ``packager``'s callback.

    Args:
        frame_offset: samples before frame 0 in the input streams (skipped).
        noise_window: silent samples after the pilot used for the noise estimate (at most
            ``tau_c - tau_p``); averaged over frames, a few tens per frame suffice.
        buffer_frames: if > 0, the internal blocks' output buffers hold at least this many
            frames (fewer, larger work calls: the chain's throughput rises by about half).
        **packager_kw: the :class:`CsiPackager` arguments other than the frame geometry.
    """

    def __init__(
        self,
        *,
        n_ant: int,
        tau_p: int,
        tau_c: int,
        frame_offset: int = 0,
        noise_window: int = 32,
        buffer_frames: int = 0,
        **packager_kw: object,
    ) -> None:
        gr.hier_block2.__init__(
            self,
            "cfmimo_pilot_estimator",
            gr.io_signature(n_ant, n_ant, gr.sizeof_gr_complex),
            gr.io_signature(0, 0, 0),
        )
        if tau_c <= tau_p:
            raise ValueError(
                f"tau_c ({tau_c}) must exceed tau_p ({tau_p}): the silent rest of the frame "
                "measures the noise."
            )
        w = max(1, min(noise_window, tau_c - tau_p))
        self.packager = CsiPackager(
            n_ant=n_ant,
            tau_p=tau_p,
            tau_c=tau_c,
            noise_window=w,
            **packager_kw,  # type: ignore[arg-type]
        )
        self._blocks: list[gr.basic_block] = []  # keep every block referenced
        size = gr.sizeof_gr_complex
        for ch in range(n_ant):
            head: tuple[object, int] = (self, ch)
            if frame_offset > 0:
                skip = blocks.skiphead(size, frame_offset)
                self.connect((self, ch), skip)
                self._blocks.append(skip)
                head = (skip, 0)
            pilot = blocks.keep_m_in_n(size, tau_p, tau_c, 0)
            to_vec = blocks.stream_to_vector(size, tau_p)
            mf = fft.fft_vcc(tau_p, True, [], False, 1)
            silent = blocks.keep_m_in_n(size, w, tau_c, tau_p)
            mag2 = blocks.complex_to_mag_squared(1)
            energy = blocks.integrate_ff(w, 1)
            self.connect(head, pilot, to_vec, mf, (self.packager, ch))
            self.connect(head, silent, mag2, energy, (self.packager, n_ant + ch))
            self._blocks += [pilot, to_vec, mf, silent, mag2, energy]
            if buffer_frames > 0:  # output items per frame of each block
                for blk, per_frame in (
                    (pilot, tau_p),
                    (to_vec, 1),
                    (mf, 1),
                    (silent, w),
                    (mag2, w),
                    (energy, 1),
                ):
                    blk.set_min_output_buffer(buffer_frames * per_frame)
