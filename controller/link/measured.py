"""The IQ data plane's measured BLER as an MCS table (``link.bler: measured``).

``testbed bench phy --out FILE`` sends random transport blocks through the GNU Radio PHY
(``flowgraphs/phy_tx.grc``, the burst channel, ``flowgraphs/phy_rx.grc``) and writes, per
scheme, the measured block error rate at each SNR of a grid. :func:`measured_table` turns that
file into an :class:`~controller.link.mcs.McsTable` the abstract link uses like the NR tables:
the scheme's PHY index, modulation order and code rate, ``sinr_threshold_db`` where the measured
curve crosses 10% (logit(BLER) interpolated linearly in dB between the two grid points around
10%; BLER itself where one of them is 0 or 1), and ``bler_slope_per_db`` the least-squares slope
of logit(BLER) against SNR through that point over the points of the waterfall (0 < BLER < 1,
within :data:`_FIT_SPAN_DB` of the threshold: the convolutional code's slow tail of a few
percent, which a logistic cannot follow, would flatten it), as for the NR curves
(:mod:`controller.link.bler`). The abstract link's curve then lies on the measured one,
so ``link.mode: abstract`` with this table predicts what ``link.mode: iq`` decodes.

The packaged table :data:`DEFAULT_TABLE` was measured on this project's reference machine with
the command in the README (AWGN, a random phase per burst, 2e-3 cycles/sample carrier offset).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from controller.link.mcs import McsTable

__all__ = ["DEFAULT_TABLE", "measured_table"]

#: The PHY's table measured by ``testbed bench phy`` (the file the bench's ``--out`` wrote).
DEFAULT_TABLE = Path(__file__).with_name("data") / "phy_awgn.json"
_LN9 = float(np.log(9.0))
#: Points further than this from the 10% SNR do not enter the slope's fit, dB.
_FIT_SPAN_DB = 3.0
_QM = {"QPSK": 2, "16QAM": 4, "64QAM": 6}


def _logit(b: float) -> float:
    return float(np.log(b / (1.0 - b)))


def _threshold(snr: np.ndarray, bler: np.ndarray) -> float | None:
    """Where BLER first falls to 10%, between the grid points around it (None: never)."""
    below = np.flatnonzero(bler <= 0.1)
    if below.size == 0 or below[0] == 0:
        return None
    k = int(below[0])
    s0, s1, b0, b1 = snr[k - 1], snr[k], bler[k - 1], bler[k]
    if b1 > 0 and b0 < 1:
        l0, l1 = _logit(b0), _logit(b1)
        return float(s0 + (l0 + _LN9) * (s1 - s0) / (l0 - l1))
    return float(s0 + (b0 - 0.1) * (s1 - s0) / (b0 - b1))


def _slope(snr: np.ndarray, bler: np.ndarray, at: float) -> float | None:
    """Least-squares slope (1/dB) of -logit(BLER) through ``(at, -ln 9)``."""
    inside = (bler > 0) & (bler < 1) & (np.abs(snr - at) <= _FIT_SPAN_DB)
    x = snr[inside] - at
    if np.count_nonzero(np.abs(x) > 1e-9) < 1:
        return None
    y = np.log(bler[inside] / (1 - bler[inside])) + _LN9
    s = -float(np.sum(x * y) / np.sum(x * x))
    return s if s > 0 else None


def _row(path: Path, i: int, row: Any) -> tuple[int, int, float, float, float]:
    """``(index, Qm, R, threshold dB, slope 1/dB)`` of entry ``mcs.i``; ValueError naming it."""
    where = f"{path}: `mcs.{i}`"
    try:
        index, modulation = int(row["index"]), str(row["modulation"])
        num, den = (int(x) for x in str(row["code_rate"]).split("/"))
        points = [(float(p["snr_db"]), float(p["bler"])) for p in row["points"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: not a bench phy entry ({type(err).__name__}: {err})") from None
    if modulation not in _QM:
        raise ValueError(f"{where}.modulation: must be one of {sorted(_QM)}, got {modulation!r}")
    snr, bler = (np.array(c, dtype=np.float64) for c in zip(*sorted(points), strict=True))
    if not (np.all(np.isfinite(snr)) and np.all((bler >= 0) & (bler <= 1))):
        raise ValueError(f"{where}.points: SNRs must be finite and BLERs in [0, 1]")
    at = _threshold(snr, bler)
    if at is None:
        raise ValueError(f"{where}.points: the BLER never falls to 10% after a point above it")
    slope = _slope(snr, bler, at)
    if slope is None:
        raise ValueError(f"{where}.points: no point with 0 < BLER < 1 to fit the slope to")
    return index, _QM[modulation], num / den, at, slope


@functools.lru_cache(maxsize=8)
def _cached(path: Path, mtime_ns: int) -> McsTable:
    try:
        doc = json.loads(path.read_text())
        rows = doc["mcs"]
        blocks = doc.get("blocks_per_point")
        channel = doc.get("channel", "awgn")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"`link.bler_table` {path}: not a bench phy table: {err}") from None
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"`link.bler_table` {path}: `mcs` must be a non-empty list")
    cols = np.array([_row(path, i, r) for i, r in enumerate(rows)], dtype=np.float64).T
    return McsTable(
        name="phy-measured",
        source=(
            f"measured: testbed bench phy through flowgraphs/phy_tx.grc and phy_rx.grc "
            f"({channel}; {blocks} blocks per point), file {path.name}"
        ),
        index=cols[0].astype(np.int64),
        modulation_order=cols[1].astype(np.int64),
        code_rate=cols[2],
        spectral_efficiency=np.round(cols[1] * cols[2], 4),
        sinr_threshold_db=cols[3],
        bler_slope_per_db=cols[4],
    )


def measured_table(path: str | Path | None = None) -> McsTable:
    """The MCS table of the bench file at ``path`` (default :data:`DEFAULT_TABLE`); read once
    per file version. ValueError naming the file and the entry when it cannot be used."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as err:
        raise ValueError(f"`link.bler_table` {p}: cannot read it: {err.strerror}") from None
    try:
        return _cached(p.resolve(), mtime)
    except ValueError as err:
        if str(err).startswith(("`link.bler_table`", str(p.resolve()))):
            raise
        raise ValueError(f"`link.bler_table` {p}: {err}") from None
