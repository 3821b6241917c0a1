"""The DVFS backend interface, its errors and the small sysfs helpers the backends share.

Frequencies are in Hz at this interface (cpufreq files hold kHz, devfreq files Hz: the
backends convert). A backend only ever rounds a requested frequency *up* to one of its levels,
so the round deadline the controller computed with ``f`` still holds.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import abc
import bisect
from pathlib import Path
from types import TracebackType
from typing import List, Optional, Sequence, Type

__all__ = [
    "DVFSBackend",
    "DVFSError",
    "DVFSMissingError",
    "DVFSPermissionError",
    "round_up_to_level",
]


class DVFSError(RuntimeError):
    """A DVFS operation that failed; the message names the file or command."""


class DVFSPermissionError(DVFSError, PermissionError):
    """A sysfs write (or command) that the kernel refused for lack of privilege."""


class DVFSMissingError(DVFSError, FileNotFoundError):
    """A sysfs file or command that does not exist on this host."""


def round_up_to_level(f_hz: float, levels: Sequence[float]) -> float:
    """The smallest of ``levels`` (ascending, Hz) at or above ``f_hz``; the top level if none.

    A relative tolerance of 1e-9 absorbs kHz/Hz conversion noise.
    """
    if not levels:
        raise ValueError("`levels` is empty")
    if f_hz <= 0:
        raise ValueError(f"`f_hz` must be positive, got {f_hz}")
    i = bisect.bisect_left(list(levels), f_hz * (1 - 1e-9))
    return float(levels[min(i, len(levels) - 1)])


def read_text(path: Path) -> str:
    """Contents of a sysfs file, stripped; errors name the file."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise DVFSMissingError(f"{path} does not exist") from None
    except PermissionError:
        raise DVFSPermissionError(f"reading {path} was refused (permission denied)") from None
    except OSError as err:
        raise DVFSError(f"reading {path} failed: {err.strerror or err}") from None


def write_text(path: Path, value: str) -> None:
    """Write ``value`` to a sysfs file; errors name the file and the value."""
    if not path.exists():
        raise DVFSMissingError(f"{path} does not exist (cannot write {value!r})")
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except PermissionError:
        raise DVFSPermissionError(
            f"writing {value!r} to {path} was refused (permission denied): run the agent as "
            "root or grant it write access to this file (the edge role of deploy/ does this)"
        ) from None
    except OSError as err:
        raise DVFSError(f"writing {value!r} to {path} failed: {err.strerror or err}") from None


def read_numbers(path: Path) -> List[int]:
    """Whitespace-separated integers of a sysfs file."""
    text = read_text(path)
    try:
        return [int(tok) for tok in text.split()]
    except ValueError:
        raise DVFSError(f"{path}: expected integers, got {text!r}") from None


class DVFSBackend(abc.ABC):
    """Sets a CPU frequency for local training and puts everything back afterwards.

    Use as a context manager: ``with backend: backend.set_frequency(f)``; leaving the block
    calls :meth:`restore`, even on an error.
    """

    #: Short name of the backend, e.g. ``cpufreq``, ``jetson``, ``simulated``.
    name: str = "dvfs"

    @abc.abstractmethod
    def levels_hz(self) -> List[float]:
        """The frequencies this backend can set, ascending, Hz."""

    @abc.abstractmethod
    def set_frequency(self, f_hz: float) -> float:
        """Run at the smallest level >= ``f_hz`` (the top level if ``f_hz`` exceeds it).

        Returns:
            The frequency applied, Hz.
        """

    @abc.abstractmethod
    def current_hz(self) -> float:
        """The frequency the CPU runs at now (as the kernel reports it), Hz."""

    @abc.abstractmethod
    def restore(self) -> None:
        """Put back the governor and bounds found before the first change; idempotent."""

    def __enter__(self) -> DVFSBackend:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.restore()
