"""NR modulation and coding schemes and the SINR each needs (DESIGN section 12).

Two MCS index tables of 3GPP TS 38.214 (V16.2.0, section 5.1.3.1): Table 5.1.3.1-1 (64QAM, MCS
0..28; PUSCH uses it too when transform precoding is disabled, section 6.1.4.1) and Table
5.1.3.1-2 (256QAM, MCS 0..27). Qm, R x 1024 and the spectral efficiency are typed as printed.

SINR thresholds and BLER slopes come from the AWGN code-block BLER curves of the NR LDPC code
that the 5G-LENA ns-3 NR module publishes (CTTC, ``model/nr-eesm-t1.cc`` and
``model/nr-eesm-t2.cc``; link-level data from an NR-compliant simulator by InterDigital,
S. Lagen et al., "New Radio Physical Layer Abstraction for System-Level Simulations of 5G
Networks", IEEE ICC 2020). For each MCS the curve is the one for the LDPC base graph NR picks for
a block of ``LinkConfig.tbs_bits`` (38.212 section 7.2.2: BG2 when R <= 0.25, else BG1) at the
largest simulated code block size: BG1 8192 bit (8064 for 308/1024, 7808 for 64QAM 567/1024,
5248 for 256QAM 948/1024, and only 928 bit published for 64QAM 948/1024, hence its shallow
slope), BG2 3624 or 3752 bit. ``sinr_threshold_db`` is where that curve crosses 10% BLER
(linear interpolation of logit(BLER) between the two published points around 10%);
``bler_slope_per_db`` is the least-squares slope of logit(BLER) against SINR through that point,
over the published points with 0.001 < BLER < 0.99 (see :mod:`controller.link.bler`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocol.arrays import NDArrayFloat, NDArrayInt

__all__ = ["TABLES", "McsTable", "choose_mcs", "get_table"]

_SE_PRINTED_TOL = 5e-5 + 1e-9  # the table prints Qm * R to 4 decimals
_SE_OVERLAP_TOL = 0.005  # 38.214 lets an MCS that switches modulation sit 0.2% below its neighbour


@dataclass(frozen=True, eq=False)
class McsTable:
    """One MCS table: per entry ``m`` of ``M``, its modulation, code rate and the SINR it needs.

    Attributes:
        name: key in :data:`TABLES` (``"nr-64qam"``, ``"nr-256qam"``).
        source: full citation of the table and of the thresholds and slopes.
        index: ``[M]`` int64, the MCS index I_MCS of the standard.
        modulation_order: ``[M]`` int64, Qm, bit/symbol.
        code_rate: ``[M]`` float64, target code rate R (e.g. 120/1024), dimensionless.
        spectral_efficiency: ``[M]`` float64, eta_m = Qm R as printed, bit/s/Hz.
        sinr_threshold_db: ``[M]`` float64, SINR at 10% BLER on AWGN, dB; strictly ascending.
        bler_slope_per_db: ``[M]`` float64, slope of the logistic BLER curve, 1/dB, > 0.
    """

    name: str
    source: str
    index: NDArrayInt
    modulation_order: NDArrayInt
    code_rate: NDArrayFloat
    spectral_efficiency: NDArrayFloat
    sinr_threshold_db: NDArrayFloat
    bler_slope_per_db: NDArrayFloat

    def __post_init__(self) -> None:
        for field, dtype in (
            ("index", np.int64),
            ("modulation_order", np.int64),
            ("code_rate", np.float64),
            ("spectral_efficiency", np.float64),
            ("sinr_threshold_db", np.float64),
            ("bler_slope_per_db", np.float64),
        ):
            arr = np.array(getattr(self, field), dtype=dtype)
            if arr.ndim != 1 or arr.size == 0 or arr.shape != np.shape(self.index):
                raise ValueError(f"`{field}` must be a non-empty [M] array like `index`")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"`{field}` must be finite, got {arr}")
            arr.setflags(write=False)
            object.__setattr__(self, field, arr)
        self._validate()

    def _validate(self) -> None:
        qm, r, se = self.modulation_order, self.code_rate, self.spectral_efficiency
        if np.any(qm < 1) or np.any(np.diff(qm) < 0):
            raise ValueError(f"`modulation_order` must be >= 1 and non-decreasing, got {qm}")
        if np.any(r <= 0) or np.any(r >= 1):
            raise ValueError(f"`code_rate` must lie in (0, 1), got {r}")
        if np.any(np.abs(se - qm * r) > _SE_PRINTED_TOL):
            raise ValueError(f"`spectral_efficiency` must equal Qm * R to 4 decimals, got {se}")
        same_order = np.diff(qm) == 0
        rising = np.diff(se) > 0
        close = se[1:] >= (1.0 - _SE_OVERLAP_TOL) * se[:-1]
        if not np.all(np.where(same_order, rising, close)):
            raise ValueError(f"`spectral_efficiency` must ascend, got {se}")
        if np.any(np.diff(self.sinr_threshold_db) <= 0):
            raise ValueError(
                f"`sinr_threshold_db` must strictly ascend, got {self.sinr_threshold_db}"
            )
        if np.any(self.bler_slope_per_db <= 0):
            raise ValueError(f"`bler_slope_per_db` must be > 0, got {self.bler_slope_per_db}")

    def __len__(self) -> int:
        return int(self.index.size)


_SOURCE = (
    "MCS: 3GPP TS 38.214 V16.2.0 (2020-07), 'NR; Physical layer procedures for data', {table}. "
    "10%-BLER SINR and BLER slopes: fitted to the AWGN NR LDPC code-block BLER curves of the "
    "5G-LENA ns-3 NR module (CTTC, model/nr-eesm-{t}.cc), S. Lagen, K. Wanuga, H. Elkotby, "
    "S. Goyal, N. Patriciello, L. Giupponi, 'New Radio Physical Layer Abstraction for "
    "System-Level Simulations of 5G Networks', IEEE ICC 2020."
)

# (Qm, R x 1024, eta bit/s/Hz, SINR at 10% BLER dB, logistic slope 1/dB), one row per MCS index.
_NR_64QAM = (
    (2, 120, 0.2344, -1.00, 10.1),
    (2, 157, 0.3066, -0.58, 12.7),
    (2, 193, 0.3770, 0.22, 11.6),
    (2, 251, 0.4902, 1.20, 10.2),
    (2, 308, 0.6016, 1.95, 13.6),
    (2, 379, 0.7402, 2.71, 12.2),
    (2, 449, 0.8770, 3.46, 11.6),
    (2, 526, 1.0273, 4.08, 12.3),
    (2, 602, 1.1758, 4.83, 12.4),
    (2, 679, 1.3262, 5.61, 12.2),
    (4, 340, 1.3281, 6.28, 14.3),
    (4, 378, 1.4766, 6.97, 15.6),
    (4, 434, 1.6953, 7.72, 16.6),
    (4, 490, 1.9141, 8.50, 13.6),
    (4, 553, 2.1602, 9.33, 14.0),
    (4, 616, 2.4063, 10.26, 12.9),
    (4, 658, 2.5703, 10.82, 12.3),
    (6, 438, 2.5664, 11.59, 12.9),
    (6, 466, 2.7305, 12.21, 12.2),
    (6, 517, 3.0293, 13.15, 12.2),
    (6, 567, 3.3223, 14.01, 13.0),
    (6, 616, 3.6094, 14.84, 12.9),
    (6, 666, 3.9023, 15.75, 13.1),
    (6, 719, 4.2129, 16.64, 11.6),
    (6, 772, 4.5234, 17.68, 12.6),
    (6, 822, 4.8164, 18.54, 12.7),
    (6, 873, 5.1152, 19.66, 11.3),
    (6, 910, 5.3320, 20.62, 11.1),
    (6, 948, 5.5547, 22.64, 2.8),
)
_NR_256QAM = (
    (2, 120, 0.2344, -1.00, 10.1),
    (2, 193, 0.3770, 0.22, 11.6),
    (2, 308, 0.6016, 1.95, 13.6),
    (2, 449, 0.8770, 3.46, 11.6),
    (2, 602, 1.1758, 4.83, 12.4),
    (4, 378, 1.4766, 6.97, 15.6),
    (4, 434, 1.6953, 7.72, 16.6),
    (4, 490, 1.9141, 8.50, 13.6),
    (4, 553, 2.1602, 9.33, 14.0),
    (4, 616, 2.4063, 10.26, 12.9),
    (4, 658, 2.5703, 10.82, 12.3),
    (6, 466, 2.7305, 12.21, 12.2),
    (6, 517, 3.0293, 13.15, 12.2),
    (6, 567, 3.3223, 14.01, 13.0),
    (6, 616, 3.6094, 14.84, 12.9),
    (6, 666, 3.9023, 15.75, 13.1),
    (6, 719, 4.2129, 16.64, 11.6),
    (6, 772, 4.5234, 17.68, 12.6),
    (6, 822, 4.8164, 18.54, 12.7),
    (6, 873, 5.1152, 19.66, 11.3),
    (8, 682.5, 5.3320, 20.82, 10.5),
    (8, 711, 5.5547, 21.45, 10.4),
    (8, 754, 5.8906, 22.42, 10.8),
    (8, 797, 6.2266, 23.29, 9.5),
    (8, 841, 6.5703, 24.34, 9.8),
    (8, 885, 6.9141, 25.28, 9.0),
    (8, 916.5, 7.1602, 26.43, 9.6),
    (8, 948, 7.4063, 27.09, 7.8),
)


def _nr_table(name: str, source: str, rows: tuple[tuple[float, ...], ...]) -> McsTable:
    cols = np.array(rows, dtype=np.float64).T
    return McsTable(
        name=name,
        source=source,
        index=np.arange(len(rows), dtype=np.int64),
        modulation_order=cols[0].astype(np.int64),
        code_rate=cols[1] / 1024.0,
        spectral_efficiency=cols[2],
        sinr_threshold_db=cols[3],
        bler_slope_per_db=cols[4],
    )


TABLES: dict[str, McsTable] = {
    "nr-64qam": _nr_table(
        "nr-64qam",
        _SOURCE.format(table="Table 5.1.3.1-1 (MCS index table 1 for PDSCH)", t="t1"),
        _NR_64QAM,
    ),
    "nr-256qam": _nr_table(
        "nr-256qam",
        _SOURCE.format(table="Table 5.1.3.1-2 (MCS index table 2 for PDSCH)", t="t2"),
        _NR_256QAM,
    ),
}
"""The MCS tables by name (the value of the ``link.mcs_table`` setting)."""


def get_table(name: str) -> McsTable:
    """The MCS table called ``name``; ValueError naming ``link.mcs_table`` if unknown."""
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(
            f"`link.mcs_table` must be one of {sorted(TABLES)}, got {name!r}"
        ) from None


def choose_mcs(table: McsTable, planned_sinr_db: NDArrayFloat, backoff_db: float) -> NDArrayInt:
    """Highest entry whose threshold plus the back-off fits under the planned SINR.

    Args:
        table: the MCS table.
        planned_sinr_db: ``[U]`` (any shape) float64, planned SINR, dB; NaN and -inf allowed.
        backoff_db: back-off margin, dB, finite and >= 0.

    Returns:
        Same shape, int64: the position ``m`` (0..M-1) of the highest entry with
        ``sinr_threshold_db[m] + backoff_db <= planned_sinr_db``; -1 where none fits (outage)
        or the SINR is NaN.
    """
    if not (np.isfinite(backoff_db) and backoff_db >= 0):
        raise ValueError(f"`backoff_db` must be finite and >= 0, got {backoff_db!r}")
    g = np.asarray(planned_sinr_db, dtype=np.float64)
    pos = np.searchsorted(table.sinr_threshold_db + backoff_db, g, side="right") - 1
    return np.where(np.isnan(g), -1, pos).astype(np.int64)
