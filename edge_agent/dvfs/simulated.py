"""A DVFS backend that only records what it was asked (CI, laptops, simulated agents).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from edge_agent.dvfs.base import DVFSBackend, round_up_to_level

__all__ = ["SimulatedBackend"]


class SimulatedBackend(DVFSBackend):
    """Keeps a virtual frequency.

    Args:
        levels_hz: DVFS levels, Hz (e.g. a device profile's ``f_levels_hz``), any order.
        initial_hz: starting frequency, Hz; default the top level (a board at rest under
            ``ondemand`` would report it once loaded).

    Attributes:
        history: every applied frequency, Hz, in order.
    """

    name = "simulated"

    def __init__(self, levels_hz: Sequence[float], initial_hz: Optional[float] = None) -> None:
        if not levels_hz:
            raise ValueError("`levels_hz` is empty")
        if any(f <= 0 for f in levels_hz):
            raise ValueError("`levels_hz` must be positive (Hz)")
        self._levels = sorted(float(f) for f in set(levels_hz))
        self._initial = self._levels[-1] if initial_hz is None else float(initial_hz)
        self._current = self._initial
        self.history: List[float] = []

    def levels_hz(self) -> List[float]:
        return list(self._levels)

    def set_frequency(self, f_hz: float) -> float:
        applied = round_up_to_level(f_hz, self._levels)
        self._current = applied
        self.history.append(applied)
        return applied

    def current_hz(self) -> float:
        return self._current

    def restore(self) -> None:
        self._current = self._initial
