"""IQ samples that one AP's antennas receive, frame by frame, with the ground truth.

Frame ``n`` of AP ``l`` occupies stream samples ``d + n tau_c .. d + (n+1) tau_c - 1`` (``d`` the
timing offset). Its first ``tau_p`` samples carry every UE's pilot through the channel, the
rest is silence (uplink data does not travel over this radio path); noise is everywhere::

    y_l[n_ant, t] = sum_u sqrt(p_u) h_{u,l,n_ant}[n] phi_{k(u)}[t] e^{j 2 pi cfo (s + t) / fs}
                    + w,   w ~ CN(0, sigma^2)

with ``s`` the stream index of the frame start (the CFO phase runs continuously). Samples are
in sqrt(W), so ``|y|^2`` is power in W.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.arrays import NDArrayComplex
from sim_backend._rng import TAG_NOISE, TAG_NOISE_PREFIX, complex_normal, keyed_rng
from sim_backend.pilots import pilot_matrix
from sim_backend.world import World

__all__ = ["FrameBlock", "IQGenerator"]


@dataclass(frozen=True)
class FrameBlock:
    """Frames ``first .. first + n_frames - 1`` of one AP.

    Attributes:
        first: index of the first frame.
        samples: ``[N, n_frames * tau_c]`` complex64, per antenna, sqrt(W).
        h: ``[n_frames, U, N]`` complex128, true channels.
        beta: ``[n_frames, U]`` float64, true large-scale fading.
    """

    first: int
    samples: npt.NDArray[np.complex64]
    h: NDArrayComplex
    beta: npt.NDArray[np.float64]

    @property
    def n_frames(self) -> int:
        return int(self.h.shape[0])


class IQGenerator:
    """Generates AP ``ap``'s received frames in fixed blocks of ``block_frames``.

    Noise comes from the keyed stream ``(seed, noise, ap, block)``, so a block is the same
    whichever process generates it.
    """

    def __init__(self, world: World, ap: int, *, block_frames: int = 64) -> None:
        cfg = world.cfg
        if not 0 <= ap < cfg.n_aps:
            raise ValueError(f"`ap` must be in [0, {cfg.n_aps}), got {ap}.")
        self.world, self.ap, self.block_frames = world, ap, block_frames
        self.n_ant = int(cfg.n_ant[ap])
        self._phi = pilot_matrix(cfg.tau_p)[world.pilot_index]  # [U, tau_p]
        self._amp = np.sqrt(cfg.pilot_power_w)  # [U]

    def prefix(self) -> npt.NDArray[np.complex64]:
        """``[N, d]`` complex64: the noise before frame 0 (timing offset ``d``)."""
        cfg = self.world.cfg
        rng = keyed_rng(cfg.seed, TAG_NOISE_PREFIX, self.ap)
        w: npt.NDArray[np.complex64] = complex_normal(
            rng, (self.n_ant, cfg.timing_offset_samples), np.complex64
        )
        w *= np.float32(np.sqrt(cfg.noise_var_w))
        return w

    def block(self, b: int) -> FrameBlock:
        """Block ``b``: frames ``b * block_frames ..``."""
        cfg, nf = self.world.cfg, self.block_frames
        first = b * nf
        h = self.world.channel(self.ap, first, nf)  # [F, U, N]
        beta = self.world.beta_frames(self.ap, first, nf)
        phi = np.broadcast_to(self._phi, (nf, *self._phi.shape))
        if cfg.cfo_hz != 0.0:
            start = cfg.timing_offset_samples + (first + np.arange(nf)) * cfg.tau_c
            t = start[:, None] + np.arange(cfg.tau_p)[None, :]
            phi = phi * np.exp(2j * np.pi * cfg.cfo_hz * t / cfg.fs_hz)[:, None, :]
        pilots = np.einsum("fun,fut->fnt", h * self._amp[None, :, None], phi)  # [F, N, tau_p]
        rng = keyed_rng(cfg.seed, TAG_NOISE, self.ap, b)
        y = complex_normal(rng, (nf, self.n_ant, cfg.tau_c), np.complex64)
        y *= np.float32(np.sqrt(cfg.noise_var_w))
        y[:, :, : cfg.tau_p] += pilots  # complex128 pilots rounded into the complex64 stream
        samples = np.ascontiguousarray(y.transpose(1, 0, 2).reshape(self.n_ant, nf * cfg.tau_c))
        return FrameBlock(first=first, samples=samples, h=h, beta=beta)

    def frames(self, n_frames: int) -> FrameBlock:
        """The first ``n_frames`` frames in one block (prefix not included)."""
        blocks = [self.block(b) for b in range(-(-n_frames // self.block_frames))]
        cat = FrameBlock(
            first=0,
            samples=np.concatenate([b.samples for b in blocks], axis=1),
            h=np.concatenate([b.h for b in blocks]),
            beta=np.concatenate([b.beta for b in blocks]),
        )
        tau_c = self.world.cfg.tau_c
        return FrameBlock(
            first=0,
            samples=cat.samples[:, : n_frames * tau_c],
            h=cat.h[:n_frames],
            beta=cat.beta[:n_frames],
        )
