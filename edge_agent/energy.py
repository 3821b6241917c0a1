"""Energy of local training: the INA3221 power monitor of a Jetson, or the system model.

The model is DESIGN section 5's: computing ``D`` samples at ``c`` cycles each at frequency
``f`` costs ``kappa c D f^2`` joules, and transmitting at power ``P`` for ``T`` seconds costs
``P T`` joules. Where an INA3221 is present, :class:`Ina3221Meter` measures the compute part
instead, integrating the power of the chosen rails over the training interval in a background
sampling thread (trapezoidal rule).

INA3221 sysfs layouts (paths relative to a configurable root):

- L4T 32 (Jetson Nano, TX1/TX2, Xavier on JetPack 4): IIO driver ``ina3221x``,
  ``sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<k>/`` with ``rail_name_<i>``,
  ``in_power<i>_input`` (mW), ``in_voltage<i>_input`` (mV), ``in_current<i>_input`` (mA),
  ``i`` = 0..2 (Nano: POM_5V_IN, POM_5V_GPU, POM_5V_CPU);
- L4T 34+ (Orin, JetPack 5/6): hwmon driver ``ina3221``,
  ``sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<k>/`` with ``in<i>_label``,
  ``in<i>_input`` (bus voltage, mV) and ``curr<i>_input`` (mA), ``i`` = 1..3.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from protocol.profiles import BUILTIN_PROFILES, DeviceProfile, resolve_profile

__all__ = [
    "EnergyMeter",
    "EnergyReading",
    "Ina3221Meter",
    "ModelEnergyMeter",
    "PowerChannel",
    "comm_energy_j",
    "compute_energy_j",
    "compute_seconds",
    "describe_power_monitors",
    "detect_meter",
    "find_ina3221_channels",
]

_log = logging.getLogger(__name__)

_IIO_GLOBS = (
    "sys/bus/i2c/drivers/ina3221x/*/iio:device*",
    "sys/bus/i2c/drivers/ina3221x/*/iio_device",
)
_HWMON_GLOBS = ("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*",)
#: Labels of a board's total input rail, preferred when no rail is named.
_TOTAL_RAILS = ("POM_5V_IN", "VDD_IN", "5V_IN", "VIN", "VIN_SYS_5V0")


def compute_energy_j(kappa: float, cycles_per_sample: float, samples: int, f_hz: float) -> float:
    """``kappa c D f^2``: energy of computing ``samples`` samples at ``f_hz``, J.

    Args:
        kappa: effective switched capacitance, J/(cycle Hz^2).
        cycles_per_sample: CPU cycles per sample (cycles).
        samples: samples processed, ``D`` (local epochs x local dataset size).
        f_hz: CPU frequency, Hz.
    """
    return float(kappa * cycles_per_sample * samples * f_hz**2)


def compute_seconds(cycles_per_sample: float, samples: int, f_hz: float) -> float:
    """``c D / f``: the model's computation latency, s."""
    return float(cycles_per_sample * samples / f_hz)


def comm_energy_j(tx_power_w: float, seconds: float) -> float:
    """``P T``: energy of transmitting at ``tx_power_w`` W for ``seconds`` s, J."""
    return float(tx_power_w * seconds)


@dataclass(frozen=True)
class EnergyReading:
    """Energy of one measured interval.

    Attributes:
        energy_j: energy, J (measured above ``baseline_w`` for the INA3221; the model's
            ``kappa c D f^2`` otherwise).
        seconds: wall time of the interval, s.
        mean_power_w: ``energy_j / seconds``, W (0 for an empty interval).
        source: ``ina3221`` or ``model``.
        power_samples: power readings taken (0 for the model).
    """

    energy_j: float
    seconds: float
    mean_power_w: float
    source: str
    power_samples: int = 0


class EnergyMeter(abc.ABC):
    """``start()`` before training, ``stop(samples=D, f_hz=f)`` after it."""

    source: str = "meter"

    @abc.abstractmethod
    def start(self) -> None:
        """Begin an interval."""

    @abc.abstractmethod
    def stop(self, *, samples: int, f_hz: float) -> EnergyReading:
        """End the interval begun by :meth:`start`; ``samples`` and ``f_hz`` feed the model
        (a measuring meter ignores them)."""


class ModelEnergyMeter(EnergyMeter):
    """The system model ``kappa c D f^2`` (DESIGN section 5), with a device profile's
    ``kappa`` and ``cycles_per_sample``."""

    source = "model"

    def __init__(self, kappa: float, cycles_per_sample: float) -> None:
        if kappa <= 0 or cycles_per_sample <= 0:
            raise ValueError("`kappa` and `cycles_per_sample` must be positive")
        self.kappa = kappa
        self.cycles_per_sample = cycles_per_sample
        self._t0: Optional[float] = None

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> ModelEnergyMeter:
        return cls(profile.kappa, profile.cycles_per_sample)

    def start(self) -> None:
        self._t0 = time.monotonic()

    def stop(self, *, samples: int, f_hz: float) -> EnergyReading:
        if self._t0 is None:
            raise RuntimeError("stop() called before start()")
        seconds, self._t0 = time.monotonic() - self._t0, None
        energy = compute_energy_j(self.kappa, self.cycles_per_sample, samples, f_hz)
        return EnergyReading(energy, seconds, energy / seconds if seconds > 0 else 0.0, "model")


@dataclass(frozen=True)
class PowerChannel:
    """One INA3221 channel.

    Attributes:
        label: rail name, e.g. ``POM_5V_IN``.
        kind: ``iio`` (L4T 32 ``ina3221x``) or ``hwmon`` (mainline ``ina3221``).
        path: the device folder holding the channel's files.
        index: channel number in the file names (0..2 for iio, 1..3 for hwmon).
    """

    label: str
    kind: str
    path: Path
    index: int

    def _read(self, name: str) -> float:
        path = self.path / name
        try:
            return float(path.read_text().strip())
        except FileNotFoundError:
            raise FileNotFoundError(f"INA3221 file {path} does not exist") from None
        except PermissionError:
            raise PermissionError(f"reading INA3221 file {path} was refused") from None
        except ValueError:
            raise ValueError(f"INA3221 file {path} does not hold a number") from None

    def read_power_w(self) -> float:
        """Instantaneous power of the rail, W."""
        i = self.index
        if self.kind == "iio":
            if (self.path / f"in_power{i}_input").exists():
                return self._read(f"in_power{i}_input") * 1e-3
            return self._read(f"in_voltage{i}_input") * self._read(f"in_current{i}_input") * 1e-6
        return self._read(f"in{i}_input") * self._read(f"curr{i}_input") * 1e-6


def _label(path: Path, default: str) -> str:
    try:
        return path.read_text().strip() or default
    except OSError:
        return default


def find_ina3221_channels(sysfs_root: Union[str, Path] = "/") -> List[PowerChannel]:
    """Every INA3221 channel under ``sysfs_root`` (both layouts), in path order."""
    root = Path(sysfs_root)
    out: List[PowerChannel] = []
    for pattern in _IIO_GLOBS:
        for dev in sorted(root.glob(pattern)):
            for i in range(3):
                if (dev / f"in_power{i}_input").exists() or (dev / f"in_current{i}_input").exists():
                    out.append(
                        PowerChannel(_label(dev / f"rail_name_{i}", f"channel{i}"), "iio", dev, i)
                    )
    hwmons = {p.resolve(): p for pattern in _HWMON_GLOBS for p in sorted(root.glob(pattern))}
    for hw in sorted(root.glob("sys/class/hwmon/hwmon*")):
        if _label(hw / "name", "") == "ina3221":
            hwmons.setdefault(hw.resolve(), hw)
    for dev in hwmons.values():
        for i in (1, 2, 3):
            if (dev / f"curr{i}_input").exists() and (dev / f"in{i}_input").exists():
                out.append(
                    PowerChannel(_label(dev / f"in{i}_label", f"channel{i}"), "hwmon", dev, i)
                )
    return out


def _select(channels: List[PowerChannel], rails: Optional[Sequence[str]]) -> List[PowerChannel]:
    if not channels:
        raise FileNotFoundError("no INA3221 channel found")
    if rails is None:
        for name in _TOTAL_RAILS:
            hit = [c for c in channels if c.label.upper() == name]
            if hit:
                return hit[:1]
        return channels[:1]
    chosen = [c for c in channels if c.label in set(rails)]
    missing = set(rails) - {c.label for c in chosen}
    if missing:
        raise ValueError(
            f"`rails` {sorted(missing)} not found; available {[c.label for c in channels]}"
        )
    return chosen


class Ina3221Meter(EnergyMeter):
    """Integrates INA3221 power over an interval in a background thread.

    Args:
        channels: the rails to sum (see :func:`find_ina3221_channels`).
        period_s: sampling period, s.
        baseline_w: power subtracted before integrating, W (e.g. the idle power, to report
            only what training adds); 0 reports the rails' whole energy.
    """

    source = "ina3221"

    def __init__(
        self, channels: Sequence[PowerChannel], period_s: float = 0.02, baseline_w: float = 0.0
    ) -> None:
        if not channels:
            raise ValueError("`channels` is empty")
        if period_s <= 0:
            raise ValueError(f"`period_s` must be positive, got {period_s}")
        self.channels = list(channels)
        self.period_s = period_s
        self.baseline_w = baseline_w
        self._samples: List[Tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    def read_power_w(self) -> float:
        """Summed instantaneous power of the chosen rails, W."""
        return sum(c.read_power_w() for c in self.channels)

    def _sample(self) -> None:
        self._samples.append((time.monotonic(), self.read_power_w()))

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.period_s):
                self._sample()
        except (OSError, ValueError) as err:  # keep the error for stop()
            self._error = err

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("start() called twice without stop()")
        self._samples, self._error = [], None
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="ina3221-sampler", daemon=True)
        self._thread.start()

    def stop(self, *, samples: int = 0, f_hz: float = 0.0) -> EnergyReading:
        if self._thread is None:
            raise RuntimeError("stop() called before start()")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error
        self._sample()
        pts = self._samples
        seconds = pts[-1][0] - pts[0][0]
        energy = 0.0
        for (t0, p0), (t1, p1) in zip(pts, pts[1:]):
            energy += 0.5 * (p0 + p1 - 2 * self.baseline_w) * (t1 - t0)
        mean = energy / seconds if seconds > 0 else 0.0
        return EnergyReading(energy, seconds, mean, "ina3221", len(pts))


def describe_power_monitors(sysfs_root: Union[str, Path] = "/") -> List[Dict[str, object]]:
    """JSON-serialisable list of the INA3221 channels found, with a power reading each."""
    out: List[Dict[str, object]] = []
    for c in find_ina3221_channels(sysfs_root):
        entry: Dict[str, object] = {
            "label": c.label,
            "kind": c.kind,
            "path": str(c.path),
            "index": c.index,
        }
        try:
            entry["power_w"] = c.read_power_w()
        except (OSError, ValueError) as err:
            entry["power_w"] = None
            entry["error"] = str(err)
        out.append(entry)
    return out


def _profile(profile: Union[str, DeviceProfile, None]) -> DeviceProfile:
    if isinstance(profile, DeviceProfile):
        return profile
    if profile is None or profile in ("sim", "simulated"):
        return BUILTIN_PROFILES["rpi4"]
    return resolve_profile(profile)


def detect_meter(
    profile: Union[str, DeviceProfile, None] = None,
    sysfs_root: Union[str, Path] = "/",
    *,
    kind: str = "auto",
    rails: Optional[Sequence[str]] = None,
    period_s: float = 0.02,
    baseline_w: float = 0.0,
) -> EnergyMeter:
    """The energy meter for this host.

    Args:
        profile: device profile (or its name) whose ``kappa`` and ``cycles_per_sample`` the
            model uses; ``sim``/None: the rpi4 profile.
        sysfs_root: prefix of ``/sys``.
        kind: ``auto`` (INA3221 where present and readable, else the model), ``ina3221``
            (raise if absent) or ``model``.
        rails: INA3221 rail labels to sum; default the board's total input rail.
        period_s, baseline_w: see :class:`Ina3221Meter`.
    """
    if kind not in ("auto", "ina3221", "model"):
        raise ValueError(f"`kind` must be 'auto', 'ina3221' or 'model', got {kind!r}")
    if kind != "model":
        channels = find_ina3221_channels(sysfs_root)
        if not channels and kind == "ina3221":
            looked = ", ".join(str(Path(sysfs_root) / g) for g in _IIO_GLOBS + _HWMON_GLOBS)
            raise FileNotFoundError(f"no INA3221 channel found (looked at {looked})")
        if channels:
            meter = Ina3221Meter(_select(channels, rails), period_s, baseline_w)  # bad `rails`
            try:
                meter.read_power_w()
                return meter
            except (OSError, ValueError) as err:
                if kind == "ina3221":
                    raise
                _log.warning("INA3221 unusable (%s); using the energy model", err)
    return ModelEnergyMeter.from_profile(_profile(profile))
