"""Device profiles of the edge boards: DVFS levels, power model and training speed.

A profile gives the controller what the system model of DESIGN section 5 needs per UE:
the CPU frequencies the board can run at (Hz, ascending), the effective switched capacitance
``kappa`` (J / (cycle * Hz^2), so that one cycle at ``f`` costs ``kappa * f**2`` joules), the idle
power (W), the cycles one training sample costs (cycles / sample, measured by a calibration run on
the board) and the largest uplink transmit power (W).

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import Annotated

from protocol.numbers import Float, Int

__all__ = ["BUILTIN_PROFILES", "DeviceProfile", "resolve_profile"]


class DeviceProfile(BaseModel):
    """One class of edge board."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="e.g. `rpi4`."
    )
    f_levels_hz: List[Annotated[Float, Field(gt=0, le=1e11)]] = Field(
        min_length=1, max_length=256, description="CPU DVFS levels in Hz, strictly ascending."
    )
    kappa: Float = Field(
        gt=0, le=1e-15, description="Effective switched capacitance, J/(cycle Hz^2)."
    )
    idle_power_w: Float = Field(ge=0, le=1e4, description="Board power when idle, W.")
    cycles_per_sample: Float = Field(gt=0, le=1e15, description="CPU cycles per training sample.")
    p_max_w: Float = Field(gt=0, le=100.0, description="Largest uplink transmit power, W.")
    nvpmodel_modes: Optional[Dict[str, Annotated[Int, Field(ge=0, le=255)]]] = Field(
        default=None,
        max_length=64,
        description="Jetson power modes by name (e.g. `10W: 0`), where present.",
    )
    gpu_levels_hz: Optional[List[Annotated[Float, Field(gt=0, le=1e11)]]] = Field(
        default=None, max_length=256, description="GPU devfreq levels in Hz (Jetson), ascending."
    )

    @field_validator("f_levels_hz", "gpu_levels_hz")
    @classmethod
    def _ascending(cls, levels: Optional[List[float]]) -> Optional[List[float]]:
        if levels is None:
            return None
        if any(f <= 0 for f in levels):
            raise ValueError("levels must be positive (Hz)")
        if any(b <= a for a, b in zip(levels, levels[1:])):
            raise ValueError("levels must be strictly ascending (Hz)")
        return levels

    @property
    def f_min_hz(self) -> float:
        return self.f_levels_hz[0]

    @property
    def f_max_hz(self) -> float:
        return self.f_levels_hz[-1]


_MHZ = 1e6

# Raspberry Pi 4 (BCM2711, 4x Cortex-A72): one cpufreq policy, 600-1500 MHz in 100 MHz steps.
# kappa from ~3 W of dynamic CPU power at 1.5 GHz: P = kappa f^3.
_RPI4 = DeviceProfile(
    name="rpi4",
    f_levels_hz=[f * _MHZ for f in range(600, 1501, 100)],
    kappa=9.0e-28,
    idle_power_w=2.7,
    cycles_per_sample=2.0e6,
    p_max_w=0.2,
)

# Jetson Nano (4x Cortex-A57 + 128-core Maxwell): the cpufreq table of L4T 32.x, 10 W mode.
_JETSON_CPU_KHZ = [
    102000, 204000, 307200, 403200, 518400, 614400, 710400, 825600,
    921600, 1036800, 1132800, 1224000, 1326000, 1428000, 1479000,
]  # fmt: skip
_JETSON_GPU_KHZ = [
    76800, 153600, 230400, 307200, 384000, 460800,
    537600, 614400, 691200, 768000, 844800, 921600,
]  # fmt: skip

_JETSON_NANO = DeviceProfile(
    name="jetson-nano",
    f_levels_hz=[k * 1e3 for k in _JETSON_CPU_KHZ],
    kappa=1.2e-27,
    idle_power_w=1.25,
    cycles_per_sample=1.2e6,
    p_max_w=0.2,
    nvpmodel_modes={"10W": 0, "5W": 1},
    gpu_levels_hz=[k * 1e3 for k in _JETSON_GPU_KHZ],
)

BUILTIN_PROFILES: Dict[str, DeviceProfile] = {p.name: p for p in (_RPI4, _JETSON_NANO)}


def resolve_profile(name: str, custom: Optional[Dict[str, DeviceProfile]] = None) -> DeviceProfile:
    """Return the profile called ``name``: a custom one first, then a built-in one.

    Raises:
        KeyError: no profile has that name; the message lists the known ones.
    """
    table = {**BUILTIN_PROFILES, **(custom or {})}
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"unknown device profile `{name}`; known: {sorted(table)}") from None
