"""The simulated air: the true channel of any UE at any frame, for the link layer (DESIGN 12).

The controller plans from estimated CSI; each transport block of an update then sees the
channel as it is when the block is sent. In simulation that is the world's own channel::

    G_u(n) = sum_l ||h_{u,l}(n)||^2        (over every AP l of the world, dimensionless)

the quantity ``controller.csi.gain.combined_gain`` estimates from the APs' CSI (in the
simulator ``noise_var`` is the thermal noise power, so that estimate is ``sum_l ||h^_{u,l}||^2``).

The channel is computed per AP over contiguous frame ranges (``World.channel``), never per UE
or per frame: the requested frames are sorted, split where two neighbours are more than
``_MAX_GAP`` frames apart and where a range would hold more than ``max_elements`` channel
entries (memory stays bounded however far apart the frames are), and each range is indexed
for every (UE, frame) pair that falls in it.
"""

from __future__ import annotations

import numpy as np

from protocol.arrays import NDArrayFloat, NDArrayInt
from sim_backend.world import World

__all__ = ["true_gains"]

#: Frames between two requested ones that are cheaper to compute than to skip.
_MAX_GAP = 64
#: Complex entries ``frames x U x N`` of one channel range (64 MiB of complex128).
_MAX_ELEMENTS = 1 << 22


def true_gains(
    world: World, ue_index: NDArrayInt, frames: NDArrayInt, *, max_elements: int = _MAX_ELEMENTS
) -> NDArrayFloat:
    """True combined gains ``G_u(n) = sum_l ||h_{u,l}(n)||^2`` over all APs of ``world``.

    Args:
        world: the simulated world.
        ue_index: ``[U]`` int, world UE indices (``world.cfg.ue_ids`` order; repeats allowed).
        frames: ``[U, K]`` int, frame indices (>= 0) asked for each UE, in any order.
        max_elements: cap on the complex entries (frames x UEs x antennas) of one channel
            range held in memory at once.

    Returns:
        ``[U, K]`` float64, dimensionless: ``out[i, k] = G_{ue_index[i]}(frames[i, k])``.
    """
    ues = np.asarray(ue_index)
    fr = np.asarray(frames)
    _check(world, ues, fr, max_elements)
    out = np.zeros(fr.shape, dtype=np.float64)
    if fr.size == 0:
        return out
    flat_u = np.repeat(ues.astype(np.int64), fr.shape[1])
    flat_f = fr.astype(np.int64).ravel()
    order = np.argsort(flat_f, kind="stable")
    sorted_f, sorted_u = flat_f[order], flat_u[order]
    cfg = world.cfg
    max_len = max(1, max_elements // (cfg.n_ues * int(cfg.n_ant.max())))
    acc = np.zeros(flat_f.size, dtype=np.float64)
    for first, last in _ranges(np.unique(sorted_f), max_len):
        lo = int(np.searchsorted(sorted_f, first, side="left"))
        hi = int(np.searchsorted(sorted_f, last, side="right"))
        rows = sorted_f[lo:hi] - first
        for ap in range(cfg.n_aps):
            h = world.channel(ap, int(first), int(last - first + 1))  # [F, U_all, N_ap]
            power = np.sum(h.real**2 + h.imag**2, axis=2)  # [F, U_all]
            acc[lo:hi] += power[rows, sorted_u[lo:hi]]
    out.ravel()[order] = acc
    return out


def _check(world: World, ues: NDArrayInt, fr: NDArrayInt, max_elements: int) -> None:
    if ues.ndim != 1 or not np.issubdtype(ues.dtype, np.integer):
        raise ValueError(f"`ue_index` must be a 1-D int array, got {ues.dtype} {ues.shape}.")
    if fr.ndim != 2 or fr.shape[0] != ues.shape[0]:
        raise ValueError(f"`frames` must be [U={ues.shape[0]}, K], got shape {fr.shape}.")
    if fr.size and not np.issubdtype(fr.dtype, np.integer):
        raise ValueError(f"`frames` must be integers, got {fr.dtype}.")
    n_ues = world.cfg.n_ues
    if ues.size and (ues.min() < 0 or ues.max() >= n_ues):
        raise ValueError(f"`ue_index` must lie in [0, {n_ues}), got {ues.min()}..{ues.max()}.")
    if fr.size and fr.min() < 0:
        raise ValueError(f"`frames` must be >= 0, got {fr.min()}.")
    if max_elements < 1:
        raise ValueError(f"`max_elements` must be >= 1, got {max_elements}.")


def _ranges(unique: NDArrayInt, max_len: int) -> list[tuple[int, int]]:
    """Contiguous ``(first, last)`` frame ranges covering sorted ``unique`` frames.

    A range breaks where two frames are more than ``_MAX_GAP`` apart and spans at most
    ``max_len`` frames.
    """
    brk = np.flatnonzero(np.diff(unique) > _MAX_GAP) + 1
    seg = np.zeros(unique.size, dtype=np.int64)
    seg[brk] = 1
    seg = np.cumsum(seg)
    seg_start = unique[np.concatenate([[0], brk])]
    piece = (unique - seg_start[seg]) // max_len
    new = np.ones(unique.size, dtype=bool)
    new[1:] = (np.diff(seg) != 0) | (np.diff(piece) != 0)
    firsts = np.flatnonzero(new)
    lasts = np.concatenate([firsts[1:] - 1, [unique.size - 1]])
    return [(int(unique[a]), int(unique[b])) for a, b in zip(firsts, lasts, strict=True)]
