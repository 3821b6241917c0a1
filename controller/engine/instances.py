"""From an experiment and the latest CSI to the allocation problem of one round."""

from __future__ import annotations

import numpy as np

from controller.allocation.instance import AllocationInstance, ObjectiveWeights
from protocol.physics import noise_psd_w_per_hz
from protocol.spec import ExperimentSpec

__all__ = ["build_instance"]

#: Gain used for a UE that no AP has reported yet (-100 dB: a far, weak user), dimensionless.
_UNKNOWN_GAIN = 1e-10


def build_instance(
    spec: ExperimentSpec,
    ue_ids: list[str],
    gains: np.ndarray | None,
    samples: dict[str, int],
    update_bits: float,
) -> AllocationInstance:
    """The round's instance for ``ue_ids``.

    Args:
        gains: ``[U]`` combined channel gains ``G_u`` (dimensionless) from the CSI, NaN or
            ``None`` where no CSI is available (those users get a weak nominal gain).
        samples: samples per UE in its local data set (reported by the agents), per epoch.
        update_bits: size of one model update, bit.
    """
    by_id = {ue.id: ue for ue in spec.topology.ues}
    profiles = [spec.profile(by_id[u]) for u in ue_ids]
    g = np.full(len(ue_ids), np.nan) if gains is None else np.asarray(gains, dtype=float)
    g = np.where(np.isfinite(g) & (g > 0), g, _UNKNOWN_GAIN)
    d = np.array([samples[u] * spec.fl.local_epochs for u in ue_ids], dtype=float)
    return AllocationInstance.from_profiles(
        gain=g,
        profiles=profiles,
        samples=d,
        bandwidth_hz=spec.radio.bandwidth_hz,
        noise_psd_w_per_hz=noise_psd_w_per_hz(spec.radio.noise_figure_db),
        update_bits=update_bits,
        weights=ObjectiveWeights.from_spec(spec.weights),
    )
