"""Simulated radio backend: the CF-mMIMO world, IQ generation and a GNU Radio source.

Build a :class:`World` from an experiment spec; every process that does so simulates the same
world (positions, large- and small-scale fading per frame index). :class:`IQGenerator` makes
the samples an AP receives, :class:`CSIOnlySimulator` the estimates without samples, and
``sim_backend.source.SimSource`` (imported lazily: it needs GNU Radio) streams them.
"""

from __future__ import annotations

from typing import Any

from sim_backend.air import true_gains
from sim_backend.config import SimConfig, thermal_noise_w
from sim_backend.csi_only import CSIOnlyBatch, CSIOnlySimulator
from sim_backend.fading import bessel_j0, jakes_rho, path_loss_db
from sim_backend.iq import FrameBlock, IQGenerator
from sim_backend.pilots import assign_pilots, pilot_matrix
from sim_backend.theory import nmse_ls, nmse_mmse, nmse_theory
from sim_backend.world import World

__all__ = [
    "CSIOnlyBatch",
    "CSIOnlySimulator",
    "FrameBlock",
    "IQGenerator",
    "SimConfig",
    "SimSource",
    "World",
    "assign_pilots",
    "bessel_j0",
    "jakes_rho",
    "nmse_ls",
    "nmse_mmse",
    "nmse_theory",
    "path_loss_db",
    "pilot_matrix",
    "thermal_noise_w",
    "true_gains",
]


def __getattr__(name: str) -> Any:
    if name == "SimSource":
        from sim_backend.source import SimSource

        return SimSource
    raise AttributeError(f"module 'sim_backend' has no attribute {name!r}")
