"""Geometry: wrap-around distances and random-waypoint mobility.

Positions are ``(x, y)`` in metres inside the square ``[0, area]^2``; APs sit ``ap_height_m``
above the UEs. With wrap-around the square is a torus for AP-UE distances, so UEs near an edge
see APs across it and no UE is at a border disadvantage.
"""

from __future__ import annotations

import numpy as np

from protocol.arrays import NDArrayFloat
from sim_backend._rng import TAG_WAYPOINTS, keyed_rng

__all__ = ["RandomWaypoint", "distances_3d"]


def distances_3d(
    ue_xy: NDArrayFloat, ap_xy: NDArrayFloat, *, area_m: float, height_m: float, wrap: bool
) -> NDArrayFloat:
    """3-D UE-AP distances.

    Args:
        ue_xy: ``[..., U, 2]`` UE positions, m.
        ap_xy: ``[L, 2]`` AP positions, m.
    Returns:
        ``[..., U, L]`` distances, m (at least ``height_m``).
    """
    d = np.abs(ue_xy[..., :, None, :] - ap_xy[None, :, :])
    if wrap:
        d = np.minimum(d, area_m - d)
    return np.sqrt(np.sum(d * d, axis=-1) + height_m * height_m)


class RandomWaypoint:
    """Random-waypoint mobility without pauses, a pure function of time.

    UE ``u`` starts at its given position (or a uniform one), walks in a straight line at
    ``speed[u]`` to a uniform waypoint, then to the next, forever. Waypoints come from the
    keyed stream ``(seed, waypoints, u)`` in chunks of fixed size, so ``positions(t)`` is the
    same in every process for every ``t``, queried in any order.
    """

    _CHUNK = 32

    def __init__(
        self, *, seed: int, start_m: NDArrayFloat, speed_mps: NDArrayFloat, area_m: float
    ) -> None:
        self._seed = seed
        self._area = area_m
        self._speed = np.asarray(speed_mps, dtype=np.float64)
        self._rngs = [keyed_rng(seed, TAG_WAYPOINTS, u) for u in range(len(self._speed))]
        self._points: list[NDArrayFloat] = []
        self._cumlen: list[NDArrayFloat] = []
        for u, rng in enumerate(self._rngs):
            first = rng.uniform(0.0, area_m, 2)
            if np.all(np.isfinite(start_m[u])):
                first = np.asarray(start_m[u], dtype=np.float64)
            self._points.append(first[None, :])
            self._cumlen.append(np.zeros(1))

    def _extend(self, u: int, travelled: float) -> None:
        while self._cumlen[u][-1] <= travelled:
            new = self._rngs[u].uniform(0.0, self._area, (self._CHUNK, 2))
            pts = np.vstack([self._points[u], new])
            seg = np.linalg.norm(np.diff(pts[-self._CHUNK - 1 :], axis=0), axis=1)
            self._points[u] = pts
            self._cumlen[u] = np.concatenate(
                [self._cumlen[u], self._cumlen[u][-1] + np.cumsum(seg)]
            )

    def positions(self, t_s: float) -> NDArrayFloat:
        """``[U, 2]`` positions at time ``t_s`` (s, >= 0), m."""
        out = np.empty((len(self._speed), 2))
        for u, v in enumerate(self._speed):
            s = float(v) * t_s
            if s <= 0.0:
                out[u] = self._points[u][0]
                continue
            self._extend(u, s)
            cl = self._cumlen[u]
            i = int(np.searchsorted(cl, s, side="right")) - 1
            seg = cl[i + 1] - cl[i]
            frac = (s - cl[i]) / seg if seg > 0 else 0.0
            p = self._points[u]
            out[u] = p[i] + frac * (p[i + 1] - p[i])
        return out
