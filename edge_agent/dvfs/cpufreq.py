"""Linux cpufreq through sysfs: the ``userspace`` governor, or min/max bounds.

Every policy under ``<root>/sys/devices/system/cpu/cpufreq/policy*`` is driven. With the
``userspace`` governor available the backend switches to it and writes ``scaling_setspeed``;
otherwise it pins ``scaling_min_freq`` and ``scaling_max_freq`` to the level (writing them in
an order the kernel accepts whichever way the frequency moves). The governor and bounds found
before the first change are put back by :meth:`CpufreqBackend.restore` (and on leaving the
``with`` block). cpufreq files hold kHz; this module's interface is in Hz.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TypeVar, Union

from edge_agent.dvfs.base import (
    DVFSBackend,
    DVFSError,
    DVFSMissingError,
    read_numbers,
    read_text,
    round_up_to_level,
    write_text,
)

__all__ = ["CPUFREQ_DIR", "CpufreqBackend", "CpufreqPolicy", "find_policies"]

#: Where cpufreq policies live, relative to the sysfs root.
CPUFREQ_DIR = "sys/devices/system/cpu/cpufreq"

_KHZ = 1000.0
_T = TypeVar("_T")


def find_policies(sysfs_root: Union[str, Path] = "/") -> List[Path]:
    """The policy folders under ``<sysfs_root>/sys/devices/system/cpu/cpufreq``, by number."""
    base = Path(sysfs_root) / CPUFREQ_DIR
    found = [p for p in base.glob("policy*") if re.fullmatch(r"policy\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[len("policy") :]))


@dataclass
class _Saved:
    governor: str
    min_khz: int
    max_khz: int


class CpufreqPolicy:
    """One cpufreq policy folder (a group of CPUs that share a clock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: Optional[_Saved] = None

    def _file(self, name: str) -> Path:
        return self.path / name

    def read_khz(self, name: str) -> int:
        values = read_numbers(self._file(name))
        if len(values) != 1:
            raise DVFSError(f"{self._file(name)}: expected one number, got {values}")
        return values[0]

    def levels_khz(self) -> List[int]:
        """``scaling_available_frequencies``; else the range ``cpuinfo_min..max_freq``."""
        table = self._file("scaling_available_frequencies")
        if table.exists():
            levels = sorted(set(read_numbers(table)))
            if levels:
                return levels
        return [self.read_khz("cpuinfo_min_freq"), self.read_khz("cpuinfo_max_freq")]

    @property
    def continuous(self) -> bool:
        """No frequency table: any kHz value in the range is accepted (e.g. intel_pstate)."""
        return not self._file("scaling_available_frequencies").exists()

    def governors(self) -> List[str]:
        path = self._file("scaling_available_governors")
        return read_text(path).split() if path.exists() else []

    def governor(self) -> str:
        return read_text(self._file("scaling_governor"))

    def has_userspace(self) -> bool:
        return "userspace" in self.governors() and self._file("scaling_setspeed").exists()

    def writable(self) -> bool:
        names = ("scaling_governor", "scaling_max_freq", "scaling_min_freq")
        return all(os.access(self._file(n), os.W_OK) for n in names)

    def save(self) -> None:
        if self.saved is None:
            self.saved = _Saved(
                self.governor(),
                self.read_khz("scaling_min_freq"),
                self.read_khz("scaling_max_freq"),
            )

    def target_khz(self, f_hz: float) -> int:
        """The kHz value to write for ``f_hz``: rounded up to a level, kept within the saved
        bounds (nvpmodel and administrators set those)."""
        if self.saved is None:
            raise DVFSError(f"{self.path}: save() must precede target_khz()")
        lo, hi = self.saved.min_khz, self.saved.max_khz
        levels = self.levels_khz()
        if self.continuous:
            khz = math.ceil(f_hz / _KHZ - 1e-6)
            return min(max(khz, levels[0], lo), levels[-1], hi)
        allowed = [lv for lv in levels if lo <= lv <= hi] or levels
        return int(round_up_to_level(f_hz / _KHZ, allowed))

    def set_bounds(self, lo_khz: int, hi_khz: int) -> None:
        """Write min and max in the order the kernel accepts from the present bounds."""
        if hi_khz >= self.read_khz("scaling_min_freq"):
            write_text(self._file("scaling_max_freq"), str(hi_khz))
            write_text(self._file("scaling_min_freq"), str(lo_khz))
        else:
            write_text(self._file("scaling_min_freq"), str(lo_khz))
            write_text(self._file("scaling_max_freq"), str(hi_khz))

    def set_userspace(self, khz: int) -> None:
        if self.governor() != "userspace":
            write_text(self._file("scaling_governor"), "userspace")
        write_text(self._file("scaling_setspeed"), str(khz))

    def restore(self) -> None:
        saved, self.saved = self.saved, None
        if saved is None:
            return
        if self.governor() != saved.governor:
            write_text(self._file("scaling_governor"), saved.governor)
        if (self.read_khz("scaling_min_freq"), self.read_khz("scaling_max_freq")) != (
            saved.min_khz,
            saved.max_khz,
        ):
            self.set_bounds(saved.min_khz, saved.max_khz)

    def describe(self) -> Dict[str, object]:
        """JSON-serialisable summary (Hz), tolerant of unreadable files."""

        def safe(fn: Callable[[], _T]) -> Optional[_T]:
            try:
                return fn()
            except DVFSError:
                return None

        def hz(name: str) -> Optional[float]:
            v = safe(lambda: self.read_khz(name))
            return None if v is None else v * _KHZ

        levels = safe(self.levels_khz)
        cpus = safe(lambda: read_text(self._file("affected_cpus")))
        return {
            "name": self.path.name,
            "path": str(self.path),
            "cpus": cpus.split() if cpus else None,
            "driver": safe(lambda: read_text(self._file("scaling_driver"))),
            "governor": safe(self.governor),
            "available_governors": safe(self.governors),
            "available_frequencies_hz": None if levels is None else [k * _KHZ for k in levels],
            "continuous": self.continuous,
            "cur_hz": hz("scaling_cur_freq"),
            "min_hz": hz("scaling_min_freq"),
            "max_hz": hz("scaling_max_freq"),
            "cpuinfo_min_hz": hz("cpuinfo_min_freq"),
            "cpuinfo_max_hz": hz("cpuinfo_max_freq"),
            "userspace": safe(self.has_userspace),
            "writable": self.writable(),
        }


class CpufreqBackend(DVFSBackend):
    """Drives every cpufreq policy of the host.

    Args:
        sysfs_root: prefix of ``/sys`` (``/`` on a board; a temporary tree in tests).
        mode: ``auto`` (``userspace`` where available, else bounds), ``userspace`` or
            ``bounds``.
        policies: names of the policies to drive (e.g. ``["policy0"]``); default all.

    The levels are those of the first policy; each other policy gets its own smallest level
    at or above the request. Nothing is written before the first :meth:`set_frequency`.

    Raises:
        DVFSMissingError: no policy folder (the message names where it looked).
    """

    name = "cpufreq"

    def __init__(
        self,
        sysfs_root: Union[str, Path] = "/",
        *,
        mode: str = "auto",
        policies: Optional[Sequence[str]] = None,
    ) -> None:
        if mode not in ("auto", "userspace", "bounds"):
            raise ValueError(f"`mode` must be 'auto', 'userspace' or 'bounds', got {mode!r}")
        paths = find_policies(sysfs_root)
        if policies is not None:
            paths = [p for p in paths if p.name in set(policies)]
        if not paths:
            raise DVFSMissingError(
                f"no cpufreq policy under {Path(sysfs_root) / CPUFREQ_DIR}"
                + (f" matching {list(policies)}" if policies is not None else "")
            )
        self.policies = [CpufreqPolicy(p) for p in paths]
        self.mode = mode
        if mode == "userspace":
            for pol in self.policies:
                if not pol.has_userspace():
                    raise DVFSMissingError(
                        f"{pol.path}: no `userspace` governor in scaling_available_governors "
                        "or no scaling_setspeed"
                    )

    def _uses_userspace(self, pol: CpufreqPolicy) -> bool:
        return self.mode == "userspace" or (self.mode == "auto" and pol.has_userspace())

    def levels_hz(self) -> List[float]:
        return [k * _KHZ for k in self.policies[0].levels_khz()]

    def set_frequency(self, f_hz: float) -> float:
        if f_hz <= 0:
            raise ValueError(f"`f_hz` must be positive, got {f_hz}")
        applied: List[int] = []
        for pol in self.policies:
            pol.save()
            khz = pol.target_khz(f_hz)
            if self._uses_userspace(pol):
                pol.set_userspace(khz)
            else:
                pol.set_bounds(khz, khz)
            applied.append(khz)
        return applied[0] * _KHZ

    def current_hz(self) -> float:
        pol = self.policies[0]
        for name in ("scaling_cur_freq", "cpuinfo_cur_freq"):
            if (pol.path / name).exists():
                return pol.read_khz(name) * _KHZ
        raise DVFSMissingError(f"{pol.path}: neither scaling_cur_freq nor cpuinfo_cur_freq")

    def restore(self) -> None:
        errors: List[str] = []
        for pol in self.policies:
            try:
                pol.restore()
            except DVFSError as err:
                errors.append(str(err))
        if errors:
            raise DVFSError("restoring cpufreq failed: " + "; ".join(errors))

    def writable(self) -> bool:
        """Whether this process may write every policy's governor and bounds."""
        return all(p.writable() for p in self.policies)
