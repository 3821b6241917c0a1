"""USRP B210 receive source: device args, clock and time source, time sync, timed start.

Imports GNU Radio's ``uhd`` module (inside the function): never call this in a process that
has loaded the plain ``uhd`` Python module (``testbed ap probe`` runs in a subprocess for that
reason).

Synchronisation: with ``time_source`` external or gpsdo every AP's device time is set to 0 at
the next PPS edge (``set_time_unknown_pps``), so all APs of the cluster share one time base;
with an internal source the time is set to 0 now (a single AP, or a lab without PPS).
Streaming then starts at device time ``start_delay_s`` on every AP (``set_start_time``),
which is frame 0's start: UE pilot transmitters start at the same device time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from protocol.spec import UHDBackendSpec

__all__ = ["HardwareError", "UHDSettings", "make_usrp_source"]


class HardwareError(RuntimeError):
    """No usable USRP (missing device, bad args, no FPGA image...); the message says which."""


@dataclass(frozen=True)
class UHDSettings:
    """Receive settings of one AP (SI units)."""

    device_args: str
    n_ant: int
    fs_hz: float
    fc_hz: float
    gain_db: float
    clock_source: str
    time_source: str
    start_delay_s: float

    @classmethod
    def from_spec(
        cls, backend: UHDBackendSpec, *, device_args: str, n_ant: int, fs_hz: float, fc_hz: float
    ) -> UHDSettings:
        return cls(
            device_args=device_args,
            n_ant=n_ant,
            fs_hz=fs_hz,
            fc_hz=fc_hz,
            gain_db=backend.rx_gain_db,
            clock_source=backend.clock_source,
            time_source=backend.time_source,
            start_delay_s=backend.start_delay_s,
        )

    @property
    def t0_ns(self) -> int:
        """Device time of frame 0, ns."""
        return round(self.start_delay_s * 1e9)


def make_usrp_source(s: UHDSettings) -> object:
    """A configured, time-synchronised ``uhd.usrp_source`` with ``s.n_ant`` channels.

    Raises:
        HardwareError: no device matches ``s.device_args`` or it cannot be configured.
    """
    from gnuradio import uhd

    if s.n_ant not in (1, 2):
        raise HardwareError(f"a B210 receives on 1 or 2 channels, not {s.n_ant}")
    try:
        src = uhd.usrp_source(
            s.device_args, uhd.stream_args(cpu_format="fc32", channels=list(range(s.n_ant)))
        )
    except RuntimeError as err:
        raise HardwareError(
            f"no usable USRP for device args `{s.device_args}`: {_first_line(err)} "
            "(is it attached? try `testbed ap probe`)"
        ) from None
    try:
        src.set_clock_source(s.clock_source, 0)
        src.set_time_source(s.time_source, 0)
        if s.n_ant == 2:
            src.set_subdev_spec("A:A A:B", 0)  # both RX chains; they share one LO
        src.set_samp_rate(s.fs_hz)
        for ch in range(s.n_ant):
            src.set_center_freq(s.fc_hz, ch)
            src.set_gain(s.gain_db, ch)
        if s.time_source in ("external", "gpsdo"):
            src.set_time_unknown_pps(uhd.time_spec(0.0))
        else:
            src.set_time_now(uhd.time_spec(0.0), 0)
        time.sleep(0.05)
        src.set_start_time(uhd.time_spec(s.start_delay_s))
    except RuntimeError as err:
        raise HardwareError(f"cannot configure the USRP: {_first_line(err)}") from None
    return src


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
