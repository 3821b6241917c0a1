"""NVIDIA Jetson: nvpmodel power modes, the CPU through cpufreq, and the GPU through devfreq.

L4T layout this module knows:

- ``nvpmodel -q`` prints ``NV Power Mode: <NAME>`` then the mode id; ``nvpmodel -m <id>``
  switches (Jetson Nano: 0 = MAXN/10 W, 1 = 5 W; modes are defined in ``/etc/nvpmodel.conf``
  and set the CPU/GPU caps and online cores). It needs root.
- CPU frequencies: the ordinary cpufreq policies (:mod:`edge_agent.dvfs.cpufreq`), whose
  ``scaling_min/max_freq`` the active nvpmodel mode bounds.
- GPU: a devfreq device whose files hold Hz (``available_frequencies``, ``min_freq``,
  ``max_freq``, ``cur_freq``): ``/sys/devices/gpu.0/devfreq/57000000.gpu`` (Nano, L4T 32),
  ``/sys/devices/57000000.gpu/devfreq/57000000.gpu`` (Nano, other releases),
  ``/sys/devices/17000000.gp10b|gv11b|ga10b/devfreq/...`` (TX2, Xavier, Orin on L4T 35) and
  ``/sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu`` (Orin, L4T 36).
  The GPU is pinned by writing both bounds.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from edge_agent.dvfs.base import (
    DVFSError,
    DVFSMissingError,
    DVFSPermissionError,
    read_numbers,
    read_text,
    round_up_to_level,
    write_text,
)
from edge_agent.dvfs.cpufreq import CpufreqBackend

__all__ = [
    "GPU_DEVFREQ_GLOBS",
    "Devfreq",
    "JetsonBackend",
    "Nvpmodel",
    "find_gpu_devfreq",
    "find_nvpmodel",
]

#: Where the Jetson GPU's devfreq folder may be, relative to the sysfs root, most likely first.
GPU_DEVFREQ_GLOBS = (
    "sys/devices/gpu.0/devfreq/*",
    "sys/devices/57000000.gpu/devfreq/*",
    "sys/devices/17000000.*/devfreq/*",
    "sys/devices/platform/bus@0/17000000.gpu/devfreq/*",
    "sys/devices/platform/17000000.gpu/devfreq/*",
)

_NVPMODEL_DEFAULTS = ("/usr/sbin/nvpmodel", "/usr/bin/nvpmodel")


def find_gpu_devfreq(sysfs_root: Union[str, Path] = "/") -> Optional[Path]:
    """The Jetson GPU's devfreq folder under ``sysfs_root``, or None."""
    root = Path(sysfs_root)
    for pattern in GPU_DEVFREQ_GLOBS:
        for path in sorted(root.glob(pattern)):
            if (path / "available_frequencies").is_file():
                return path
    return None


def find_nvpmodel(path: Optional[str] = None) -> Optional[str]:
    """The ``nvpmodel`` command: ``path`` if it exists (as a file or on ``$PATH``), else
    ``nvpmodel`` on ``$PATH`` or in ``/usr/sbin``; None if absent."""
    if path is not None:
        return path if Path(path).is_file() or shutil.which(path) else None
    found = shutil.which("nvpmodel")
    if found:
        return found
    return next((p for p in _NVPMODEL_DEFAULTS if Path(p).is_file()), None)


class Devfreq:
    """One devfreq device (files in Hz), pinned through its ``min_freq``/``max_freq``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: Optional[Tuple[int, int]] = None

    def _read1(self, name: str) -> int:
        values = read_numbers(self.path / name)
        if len(values) != 1:
            raise DVFSError(f"{self.path / name}: expected one number, got {values}")
        return values[0]

    def levels_hz(self) -> List[float]:
        return [float(v) for v in sorted(set(read_numbers(self.path / "available_frequencies")))]

    def current_hz(self) -> float:
        return float(self._read1("cur_freq"))

    def _set_bounds(self, lo: int, hi: int) -> None:
        if hi >= self._read1("min_freq"):
            write_text(self.path / "max_freq", str(hi))
            write_text(self.path / "min_freq", str(lo))
        else:
            write_text(self.path / "min_freq", str(lo))
            write_text(self.path / "max_freq", str(hi))

    def set_frequency(self, f_hz: float) -> float:
        """Pin to the smallest level >= ``f_hz``; returns it, Hz."""
        if self._saved is None:
            self._saved = (self._read1("min_freq"), self._read1("max_freq"))
        level = int(round_up_to_level(f_hz, self.levels_hz()))
        self._set_bounds(level, level)
        return float(level)

    def restore(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            self._set_bounds(*saved)

    def describe(self) -> Dict[str, object]:
        out: Dict[str, object] = {"path": str(self.path)}
        for key, name in (("cur_hz", "cur_freq"), ("min_hz", "min_freq"), ("max_hz", "max_freq")):
            try:
                out[key] = float(self._read1(name))
            except DVFSError:
                out[key] = None
        try:
            out["available_frequencies_hz"] = self.levels_hz()
        except DVFSError:
            out["available_frequencies_hz"] = None
        try:
            out["governor"] = read_text(self.path / "governor")
        except DVFSError:
            out["governor"] = None
        return out


_MODE_NAME = re.compile(r"NV Power Mode:\s*(\S+)")


class Nvpmodel:
    """The ``nvpmodel`` command (path configurable, e.g. a stub script in tests)."""

    def __init__(self, path: str, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def _run(self, *args: str) -> str:
        cmd = [self.path, *args]
        try:
            proc = subprocess.run(
                cmd,
                input="NO\n",  # decline the reboot prompt some mode switches print
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise DVFSMissingError(f"nvpmodel command {self.path} not found") from None
        except PermissionError:
            raise DVFSPermissionError(f"nvpmodel command {self.path} is not executable") from None
        except subprocess.TimeoutExpired:
            raise DVFSError(f"`{' '.join(cmd)}` did not finish in {self.timeout_s} s") from None
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).strip()
            cls = (
                DVFSPermissionError
                if re.search(r"root|permission|denied", text, re.I)
                else DVFSError
            )
            raise cls(f"`{' '.join(cmd)}` failed ({proc.returncode}): {text}")
        return proc.stdout

    def query(self) -> Tuple[Optional[str], int]:
        """The active mode as (name, id), e.g. ``("MAXN", 0)``."""
        out = self._run("-q")
        m = _MODE_NAME.search(out)
        ids = [ln.strip() for ln in out.splitlines() if ln.strip().isdigit()]
        if not ids:
            raise DVFSError(f"`{self.path} -q` printed no mode id: {out.strip()!r}")
        return (m.group(1) if m else None), int(ids[-1])

    def set_mode(self, mode_id: int) -> None:
        self._run("-m", str(int(mode_id)))


class JetsonBackend(CpufreqBackend):
    """CPU DVFS through cpufreq (as :class:`CpufreqBackend`) plus nvpmodel modes and GPU
    devfreq; :meth:`restore` puts back the CPU governor and bounds, the GPU bounds and the
    original nvpmodel mode.

    Args:
        sysfs_root: prefix of ``/sys``.
        nvpmodel_path: the ``nvpmodel`` command; default found on ``$PATH``/``/usr/sbin``;
            without one, :meth:`set_power_mode` raises.
        modes: power-mode ids by name (a profile's ``nvpmodel_modes``, e.g. ``{"10W": 0}``).
        gpu_devfreq: the GPU devfreq folder; default found under ``sysfs_root``.
        mode: cpufreq mode, as for :class:`CpufreqBackend`.
    """

    name = "jetson"

    def __init__(
        self,
        sysfs_root: Union[str, Path] = "/",
        *,
        nvpmodel_path: Optional[str] = None,
        modes: Optional[Dict[str, int]] = None,
        gpu_devfreq: Optional[Union[str, Path]] = None,
        mode: str = "auto",
    ) -> None:
        super().__init__(sysfs_root, mode=mode)
        found = find_nvpmodel(nvpmodel_path) or nvpmodel_path  # a given path: errors name it
        self.nvpmodel = Nvpmodel(found) if found else None
        self.modes = dict(modes or {})
        gpu = Path(gpu_devfreq) if gpu_devfreq is not None else find_gpu_devfreq(sysfs_root)
        self.gpu = Devfreq(gpu) if gpu is not None else None
        self._saved_mode: Optional[int] = None

    def _require_nvpmodel(self) -> Nvpmodel:
        if self.nvpmodel is None:
            raise DVFSMissingError(
                "nvpmodel command not found on $PATH or in /usr/sbin; pass `nvpmodel_path`"
            )
        return self.nvpmodel

    def power_mode(self) -> Tuple[Optional[str], int]:
        """The active nvpmodel mode as (name, id)."""
        return self._require_nvpmodel().query()

    def set_power_mode(self, mode: Union[str, int]) -> int:
        """Switch nvpmodel to ``mode`` (a name of ``modes`` or an id); returns the id."""
        if isinstance(mode, str):
            if mode not in self.modes:
                raise ValueError(f"`mode` {mode!r} is not one of {sorted(self.modes)}")
            mode_id = self.modes[mode]
        else:
            mode_id = int(mode)
        nv = self._require_nvpmodel()
        current = nv.query()[1]
        if self._saved_mode is None:
            self._saved_mode = current
        if current != mode_id:
            nv.set_mode(mode_id)
        return mode_id

    def _require_gpu(self) -> Devfreq:
        if self.gpu is None:
            raise DVFSMissingError(
                "no Jetson GPU devfreq folder found (looked at "
                + ", ".join(GPU_DEVFREQ_GLOBS)
                + "); pass `gpu_devfreq`"
            )
        return self.gpu

    def gpu_levels_hz(self) -> List[float]:
        return self._require_gpu().levels_hz()

    def set_gpu_frequency(self, f_hz: float) -> float:
        """Pin the GPU to the smallest devfreq level >= ``f_hz``; returns it, Hz."""
        return self._require_gpu().set_frequency(f_hz)

    def restore(self) -> None:
        """CPU and GPU bounds first, then the nvpmodel mode (which sets its own caps)."""
        errors: List[str] = []
        if self.gpu is not None:
            try:
                self.gpu.restore()
            except DVFSError as err:
                errors.append(str(err))
        try:
            super().restore()
        except DVFSError as err:
            errors.append(str(err))
        if self._saved_mode is not None and self.nvpmodel is not None:
            saved, self._saved_mode = self._saved_mode, None
            try:
                if self.nvpmodel.query()[1] != saved:
                    self.nvpmodel.set_mode(saved)
            except DVFSError as err:
                errors.append(str(err))
        if errors:
            raise DVFSError("restoring Jetson DVFS failed: " + "; ".join(errors))
