"""The PHY's measured BLER table (``link.bler: measured``) as the abstract link's MCS table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.link import DEFAULT_TABLE, bler, measured_table


def _bench(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"blocks_per_point": 100, "channel": "awgn", "mcs": rows}


def _row(
    index: int, modulation: str, rate: str, points: list[tuple[float, float]]
) -> dict[str, Any]:
    return {
        "index": index,
        "modulation": modulation,
        "code_rate": rate,
        "points": [{"snr_db": s, "bler": b} for s, b in points],
    }


def test_the_packaged_table_holds_the_phys_six_schemes() -> None:
    t = measured_table()
    assert t.name == "phy-measured"
    assert t.index.tolist() == [0, 1, 2, 3, 4, 5]
    assert t.modulation_order.tolist() == [2, 2, 4, 4, 6, 6]
    np.testing.assert_allclose(t.spectral_efficiency, [1.0, 1.5, 2.0, 3.0, 4.0, 4.5])
    # the abstract curve crosses 10% where the measured one does (the bench's own estimate)
    doc = json.loads(DEFAULT_TABLE.read_text())
    for m, row in enumerate(doc["mcs"]):
        measured = row["measured_snr_at_bler10_db"]
        assert abs(t.sinr_threshold_db[m] - measured) < 0.25, row["modulation"]
        assert bler(t, np.array(m), t.sinr_threshold_db[m]) == pytest.approx(0.1)


def test_threshold_and_slope_follow_a_logistic_exactly(tmp_path: Path) -> None:
    # points of BLER = 1 / (1 + exp(2 (g - 10))): 10% at 10 + ln(9)/2, slope 2 per dB
    grid = np.arange(6.0, 16.0, 0.5)
    curve = 1 / (1 + np.exp(2.0 * (grid - 10.0)))
    points = [(float(g), float(round(b, 12))) for g, b in zip(grid, curve, strict=True)]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_bench([_row(0, "QPSK", "1/2", points)])))
    t = measured_table(path)
    assert t.sinr_threshold_db[0] == pytest.approx(10 + np.log(9) / 2, abs=1e-9)
    assert t.bler_slope_per_db[0] == pytest.approx(2.0, rel=1e-6)


def test_unusable_tables_are_refused_naming_the_file_and_entry(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    with pytest.raises(ValueError, match=r"`link.bler_table` .*bad.json: cannot read"):
        measured_table(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a bench phy table"):
        measured_table(bad)
    never = _row(0, "QPSK", "1/2", [(0.0, 1.0), (5.0, 0.5), (10.0, 0.3)])
    bad.write_text(json.dumps(_bench([never])))
    with pytest.raises(ValueError, match=r"`mcs.0`.points: the BLER never falls to 10%"):
        measured_table(bad)
    odd = _row(0, "8PSK", "1/2", [(0.0, 1.0), (5.0, 0.0)])
    bad.write_text(json.dumps(_bench([odd])))
    with pytest.raises(ValueError, match=r"`mcs.0`.modulation"):
        measured_table(bad)
    cliff = _row(0, "QPSK", "1/2", [(0.0, 1.0), (5.0, 0.0)])
    bad.write_text(json.dumps(_bench([cliff])))
    with pytest.raises(ValueError, match="no point with 0 < BLER < 1"):
        measured_table(bad)
