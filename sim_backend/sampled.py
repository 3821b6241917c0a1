"""The world's channel at the frames a large study asks for, and nothing in between.

:class:`World` builds the small-scale fading frame by frame (a Gauss-Markov recursion with
``rho`` per frame), which is what the IQ path needs and what the air server serves. A study of
thousands of UEs over rounds that last minutes of modelled time cannot afford every frame:
10,000 UEs on four 2-antenna APs are 1.3 MB of fading per frame, and a round spans millions of
frames. :class:`SampledChannel` draws the same process only where it is looked at, exactly:
an AR(1) process jumps ``n`` frames as ``g[m + n] = rho^n g[m] + sqrt(1 - rho^(2n)) w`` with
``w ~ CN(0, I)``, so the values at any increasing set of frames have the joint law of the
frame-by-frame recursion (not its realisation: the draws differ from :class:`World`'s).

Two kinds of look, per round:

- :meth:`estimated_gains`: the pilots of the CSI window (frames in increasing order, across
  rounds too). These frames form one path per AP, with the large-scale fading of each frame,
  and the CSI-only estimates of :mod:`sim_backend.csi_only` (LS or MMSE, pilot contamination
  included) are drawn on it.
- :meth:`true_gains`: the frames the transport blocks of a round are sent in (after the last
  window frame). Each UE's attempts branch off the path at its last window frame and jump
  forward in time; the path itself is not moved, so the next round's window continues from the
  window before. The one correlation this drops, between a round's last transmissions and the
  next round's pilots, is ``rho^n`` for ``n`` of thousands of frames (``rho^n < 1e-6`` at
  1 m/s, 3.5 GHz, 5 kHz frames, over a second): nothing a receiver could measure.

The large-scale fading (positions, path loss, shadowing) is evaluated once per look, at the
last frame of the window, and held for the window and for the round's transmissions (a UE walks
about a metre a second, shadowing decorrelates over 9 m; :class:`World` moves the UEs every
50 ms). Frames are keyed (``seed``, AP, frame) so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from protocol.arrays import NDArrayComplex, NDArrayFloat, NDArrayInt
from sim_backend._rng import TAG_SAMPLED_LINK, TAG_SAMPLED_PATH, complex_normal, keyed_rng
from sim_backend.world import World

__all__ = ["SampledChannel"]


class SampledChannel:
    """Estimated and true combined gains of ``world``'s UEs at requested frames only.

    Args:
        world: geometry, large-scale fading, pilots and ``rho`` of every UE.
        estimator: ``"mmse"`` (the AP flowgraph's default) or ``"ls"``.
    """

    def __init__(self, world: World, *, estimator: Literal["ls", "mmse"] = "mmse") -> None:
        if estimator not in ("ls", "mmse"):
            raise ValueError(f"`estimator` must be 'ls' or 'mmse', got {estimator!r}.")
        self.world = world
        self.estimator = estimator
        self._rho = np.clip(world.rho, -1.0, 1.0)[:, None]  # [U, 1]
        self._state: list[NDArrayComplex] = []
        self._frame = -1

    @property
    def frame(self) -> int:
        """The last frame of the CSI path (-1: none yet)."""
        return self._frame

    def _advance(self, frame: int) -> None:
        """Move every AP's path to ``frame`` (>= the current one)."""
        cfg = self.world.cfg
        if frame < self._frame:
            raise ValueError(f"CSI frames must not go back: {frame} after {self._frame}.")
        if frame == self._frame:
            return
        fresh = [
            complex_normal(keyed_rng(cfg.seed, TAG_SAMPLED_PATH, ap, frame), (cfg.n_ues, int(n)))
            for ap, n in enumerate(cfg.n_ant)
        ]
        if self._frame < 0:
            self._state = fresh  # stationary start: CN(0, 1)
        else:
            a, b = _jump(self._rho, frame - self._frame)
            self._state = [a * g + b * w for g, w in zip(self._state, fresh, strict=True)]
        self._frame = frame

    def estimated_gains(self, frames: Sequence[int]) -> NDArrayFloat:
        """``[F, U]`` ``sum_l ||h^_{u,l}||^2`` per frame (the estimator's, dimensionless).

        ``frames`` must increase, and start at or after the last frame asked before.
        """
        cfg, w = self.world.cfg, self.world
        out = np.zeros((len(frames), cfg.n_ues))
        amp = np.sqrt(cfg.pilot_power_w)
        k_of = w.pilot_index
        beta = w.large_scale(int(frames[-1])) if len(frames) else None  # [U, L]: the round's
        for i, frame in enumerate(frames):
            self._advance(int(frame))
            assert beta is not None
            for ap, g in enumerate(self._state):
                h = np.sqrt(beta[:, ap])[:, None] * g  # [U, N]
                rng = keyed_rng(cfg.seed, TAG_SAMPLED_PATH, ap, int(frame), 1)
                n = h.shape[1]
                z = complex_normal(rng, (cfg.tau_p, n)) * np.sqrt(cfg.tau_p * cfg.noise_var_w)
                np.add.at(z, k_of, cfg.tau_p * amp[:, None] * h)
                zu = z[k_of]  # [U, N]: each UE's pilot bin
                if self.estimator == "ls":
                    est = zu / (amp[:, None] * cfg.tau_p)
                else:
                    pbeta = beta[:, ap] * cfg.pilot_power_w
                    load = np.bincount(k_of, weights=pbeta, minlength=cfg.tau_p)
                    coef = pbeta / (amp * (cfg.tau_p * load[k_of] + cfg.noise_var_w))
                    est = coef[:, None] * zu
                out[i] += np.sum(est.real**2 + est.imag**2, axis=1)
        return out

    def true_gains(self, ue_index: NDArrayInt, frames: NDArrayInt) -> NDArrayFloat:
        """``[U, K]`` true ``G_u(n) = sum_l ||h_{u,l}(n)||^2`` (dimensionless).

        Args:
            ue_index: ``[U]`` world UE indices.
            frames: ``[U, K]`` frames at or after :attr:`frame` (the last CSI frame).
        """
        ues = np.asarray(ue_index, dtype=np.int64)
        fr = np.asarray(frames, dtype=np.int64)
        if fr.ndim != 2 or fr.shape[0] != ues.shape[0]:
            raise ValueError(f"`frames` must be [U={ues.shape[0]}, K], got shape {fr.shape}.")
        if self._frame < 0:
            raise ValueError("no CSI frame yet: call estimated_gains first.")
        if fr.size and fr.min() < self._frame:
            raise ValueError(f"`frames` must be >= the last CSI frame {self._frame}.")
        cfg = self.world.cfg
        out = np.zeros(fr.shape)
        if fr.size == 0:
            return out
        order = np.argsort(fr, axis=1, kind="stable")
        sorted_f = np.take_along_axis(fr, order, axis=1)
        beta = self.world.large_scale(self._frame)[ues]  # [U, L]: held for the round
        rho = self._rho[ues]
        acc = np.zeros(fr.shape)
        for ap, path in enumerate(self._state):
            g = path[ues]
            last = np.full(ues.shape[0], self._frame, dtype=np.int64)
            rng = keyed_rng(cfg.seed, TAG_SAMPLED_LINK, ap, self._frame)
            for k in range(fr.shape[1]):
                a, b = _jump(rho, sorted_f[:, k] - last)
                g = a * g + b * complex_normal(rng, g.shape)
                last = sorted_f[:, k]
                acc[:, k] += beta[:, ap] * np.sum(g.real**2 + g.imag**2, axis=1)
        np.put_along_axis(out, order, acc, axis=1)
        return out


def _jump(rho: NDArrayFloat, gap: int | NDArrayInt) -> tuple[NDArrayFloat, NDArrayFloat]:
    """``(rho^n, sqrt(1 - rho^(2n)))`` for a jump of ``n`` frames, ``[U, 1]`` each."""
    n = np.asarray(gap, dtype=np.float64).reshape(-1, 1) if np.ndim(gap) else float(gap)
    a = np.power(rho, n)
    return a, np.sqrt(np.maximum(0.0, 1.0 - a * a))
