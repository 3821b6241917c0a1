"""MCS tables of 3GPP TS 38.214 and the choice of MCS against the 10%-BLER thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.link.mcs import TABLES, McsTable, choose_mcs, get_table

# R x 1024 and Qm of 3GPP TS 38.214 Tables 5.1.3.1-1 and 5.1.3.1-2, transcribed independently.
R1024: dict[str, list[float]] = {
    "nr-64qam": [120, 157, 193, 251, 308, 379, 449, 526, 602, 679, 340, 378, 434, 490, 553, 616,
                 658, 438, 466, 517, 567, 616, 666, 719, 772, 822, 873, 910, 948],
    "nr-256qam": [120, 193, 308, 449, 602, 378, 434, 490, 553, 616, 658, 466, 517, 567, 616, 666,
                  719, 772, 822, 873, 682.5, 711, 754, 797, 841, 885, 916.5, 948],
}  # fmt: skip
QM_RUNS = {"nr-64qam": [(2, 10), (4, 7), (6, 12)], "nr-256qam": [(2, 5), (4, 6), (6, 9), (8, 8)]}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_matches_38214(name: str) -> None:
    t = get_table(name)
    assert t.name == name
    assert len(t) == len(R1024[name])
    np.testing.assert_array_equal(t.index, np.arange(len(t)))
    np.testing.assert_allclose(t.code_rate * 1024, R1024[name], rtol=0, atol=1e-9)
    qm = np.concatenate([np.full(n, q) for q, n in QM_RUNS[name]])
    np.testing.assert_array_equal(t.modulation_order, qm)
    np.testing.assert_allclose(t.spectral_efficiency, qm * t.code_rate, atol=5e-5 + 1e-12)
    assert np.all(np.diff(t.sinr_threshold_db) > 0)
    assert "38.214" in t.source
    assert "5G-LENA" in t.source


def test_printed_end_points() -> None:
    t1, t2 = TABLES["nr-64qam"], TABLES["nr-256qam"]
    assert (t1.modulation_order[0], t1.code_rate[0] * 1024, t1.spectral_efficiency[0]) == (
        2,
        120,
        0.2344,
    )
    assert (t1.modulation_order[28], t1.code_rate[28] * 1024, t1.spectral_efficiency[28]) == (
        6,
        948,
        5.5547,
    )
    assert t2.spectral_efficiency[20] == 5.3320
    assert t2.spectral_efficiency[27] == 7.4063
    # the published 10%-BLER points the thresholds interpolate (5G-LENA nr-eesm-t1.cc, MCS 4)
    assert 1.76 < t1.sinr_threshold_db[4] < 1.95 + 0.05


def test_get_table_unknown_names_setting_and_choices() -> None:
    with pytest.raises(ValueError, match=r"link\.mcs_table.*nr-256qam.*nr-64qam"):
        get_table("lte")


def _table(**override: object) -> McsTable:
    fields: dict[str, object] = {
        "name": "t",
        "source": "test",
        "index": np.arange(3),
        "modulation_order": np.array([2, 2, 4]),
        "code_rate": np.array([0.25, 0.5, 0.5]),
        "spectral_efficiency": np.array([0.5, 1.0, 2.0]),
        "sinr_threshold_db": np.array([0.0, 3.0, 8.0]),
        "bler_slope_per_db": np.array([10.0, 10.0, 10.0]),
    }
    fields.update(override)
    return McsTable(**fields)  # type: ignore[arg-type]


def test_table_validation_names_the_field() -> None:
    assert len(_table()) == 3
    with pytest.raises(ValueError, match="sinr_threshold_db"):
        _table(sinr_threshold_db=np.array([0.0, 3.0, 3.0]))
    with pytest.raises(ValueError, match="spectral_efficiency"):
        _table(spectral_efficiency=np.array([0.5, 1.1, 2.0]))
    with pytest.raises(ValueError, match="spectral_efficiency"):
        _table(code_rate=np.array([0.25, 0.2, 0.5]), spectral_efficiency=np.array([0.5, 0.4, 2]))
    with pytest.raises(ValueError, match="bler_slope_per_db"):
        _table(bler_slope_per_db=np.array([10.0, 0.0, 10.0]))
    with pytest.raises(ValueError, match="code_rate"):
        _table(code_rate=np.array([0.25, 0.5]))
    t = _table()
    with pytest.raises(ValueError, match="read-only"):
        t.sinr_threshold_db[0] = 5.0


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("backoff_db", [0.0, 1.0, 2.5])
def test_choose_mcs_at_and_just_below_threshold(name: str, backoff_db: float) -> None:
    t = get_table(name)
    at = t.sinr_threshold_db + backoff_db
    np.testing.assert_array_equal(choose_mcs(t, at, backoff_db), np.arange(len(t)))
    below = np.nextafter(at, -np.inf)
    np.testing.assert_array_equal(choose_mcs(t, below, backoff_db), np.arange(len(t)) - 1)


def test_choose_mcs_ends_and_non_finite() -> None:
    t = TABLES["nr-64qam"]
    g = np.array([-30.0, 60.0, np.nan, -np.inf, np.inf])
    np.testing.assert_array_equal(choose_mcs(t, g, 1.0), [-1, len(t) - 1, -1, -1, len(t) - 1])
    assert choose_mcs(t, g, 1.0).dtype == np.int64


def test_backoff_moves_the_choice_down() -> None:
    t = TABLES["nr-256qam"]
    g = np.linspace(-5.0, 35.0, 401)
    m0, m3 = choose_mcs(t, g, 0.0), choose_mcs(t, g, 3.0)
    assert np.all(m3 <= m0)
    assert np.mean(m3 < m0) > 0.5
    np.testing.assert_array_equal(m3, choose_mcs(t, g - 3.0, 0.0))


@pytest.mark.parametrize("bad", [-0.1, np.nan, np.inf])
def test_choose_mcs_rejects_bad_backoff(bad: float) -> None:
    with pytest.raises(ValueError, match="`backoff_db` must be finite and >= 0"):
        choose_mcs(TABLES["nr-64qam"], np.zeros(2), bad)


@given(
    g=st.floats(min_value=-20, max_value=40, allow_nan=False),
    backoff=st.floats(min_value=0, max_value=5, allow_nan=False),
)
def test_choose_mcs_is_the_highest_fitting_entry(g: float, backoff: float) -> None:
    t = TABLES["nr-64qam"]
    m = int(choose_mcs(t, np.array([g]), backoff)[0])
    thr = t.sinr_threshold_db + backoff
    if m >= 0:
        assert thr[m] <= g
    if m + 1 < len(t):
        assert thr[m + 1] > g
