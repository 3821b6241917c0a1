"""The logistic BLER curves against the published AWGN curves of the NR LDPC code."""

from __future__ import annotations

import numpy as np
import pytest

from controller.link.bler import bler, bler_midpoint_db
from controller.link.mcs import TABLES, get_table

# (SINR dB, BLER) points of the AWGN code-block BLER curves published in the 5G-LENA ns-3 NR
# module (model/nr-eesm-t1.cc, nr-eesm-t2.cc; Lagen et al., IEEE ICC 2020), at the code block
# size named in controller.link.mcs, keeping 0.001 < BLER < 0.99.
PUBLISHED = {
    ("nr-64qam", 0): [(-1.55, 0.9680451), (-1.25, 0.5543478), (-0.95, 0.0629)],
    ("nr-64qam", 3): [(0.89342, 0.725), (1.2132, 0.09064268)],
    ("nr-64qam", 4): [(1.76, 0.507), (1.95, 0.1073718), (2.14, 0.0057)],
    ("nr-64qam", 9): [(5.15, 0.9640152), (5.45, 0.4233333), (5.6, 0.1113596), (5.75, 0.0128)],
    ("nr-64qam", 15): [(9.87, 0.9456522), (10.09, 0.4937016), (10.2022, 0.203125), (10.31, 0.0528)],
    ("nr-64qam", 20): [(13.5, 0.9807692), (13.87, 0.3695652), (14.061, 0.0532), (14.25, 0.0017)],
    ("nr-64qam", 27): [(20.14, 0.9397482), (20.517, 0.2915704), (20.8959, 0.003)],
    ("nr-64qam", 28): [(20.9413, 0.9503676), (21.3745, 0.8105346), (21.8077, 0.5751121),
                       (22.2409, 0.2663502), (22.6741, 0.0908), (23.11, 0.0258), (23.54, 0.0062),
                       (23.97, 0.002), (24.41, 0.0018)],
    ("nr-256qam", 1): [(-0.27, 0.9734848), (-0.05, 0.6688482), (0.17, 0.1921756)],
    ("nr-256qam", 20): [(20.3333, 0.9476103), (20.61, 0.4875954), (20.75, 0.2026973),
                        (20.89, 0.0451)],
    ("nr-256qam", 23): [(22.8333, 0.8767241), (23.1667, 0.2909931), (23.5, 0.0115)],
    ("nr-256qam", 27): [(26.25, 0.9846154), (26.5, 0.8733108), (26.75, 0.5658186),
                        (27.0, 0.1903495), (27.25, 0.0281), (27.5, 0.0013)],
}  # fmt: skip
# The 928-bit (64QAM 948/1024) and 5248-bit (256QAM 948/1024) curves are the least logistic.
TOLERANCE_DB = {("nr-64qam", 28): 0.35, ("nr-256qam", 27): 0.2}


def _sinr_for_bler_db(name: str, m: int, p: float) -> float:
    t = get_table(name)
    return float(bler_midpoint_db(t)[m] - np.log(p / (1 - p)) / t.bler_slope_per_db[m])


@pytest.mark.parametrize(("name", "m"), sorted(PUBLISHED))
def test_curve_passes_the_published_points(name: str, m: int) -> None:
    t = get_table(name)
    x, p = np.array(PUBLISHED[(name, m)]).T
    # the SINR at which the curve reaches each published BLER is within tolerance of its SINR
    x_model = np.array([_sinr_for_bler_db(name, m, pi) for pi in p])
    assert np.max(np.abs(x_model - x)) <= TOLERANCE_DB.get((name, m), 0.1)
    # and the threshold lies between the published points around 10%
    assert np.max(x[p >= 0.1]) <= t.sinr_threshold_db[m] <= np.min(x[p < 0.1], initial=np.inf)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_bler_is_one_tenth_at_each_threshold(name: str) -> None:
    t = get_table(name)
    got = bler(t, np.arange(len(t)), t.sinr_threshold_db)
    np.testing.assert_allclose(got, 0.1, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_bler_in_unit_interval_and_decreasing(name: str) -> None:
    t = get_table(name)
    g = np.linspace(-15.0, 45.0, 6001)
    p = bler(t, np.arange(len(t))[:, None], g[None, :])
    assert p.shape == (len(t), g.size)
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p, axis=1) <= 0)
    np.testing.assert_allclose(p[:, 0], 1.0, atol=1e-9)
    np.testing.assert_allclose(p[:, -1], 0.0, atol=1e-9)
    # strictly decreasing through the waterfall
    water = (p[:, 1:] > 1e-6) & (p[:, 1:] < 1 - 1e-6)
    assert np.all(np.diff(p, axis=1)[water] < 0)


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("target", [0.9, 0.5, 0.1, 0.01])
def test_higher_mcs_needs_higher_sinr(name: str, target: float) -> None:
    t = get_table(name)
    need = [_sinr_for_bler_db(name, m, target) for m in range(len(t))]
    assert np.all(np.diff(need) > 0)
    np.testing.assert_allclose(bler(t, np.arange(len(t)), np.array(need)), target, atol=1e-9)


def test_outage_entries_and_broadcasting() -> None:
    t = TABLES["nr-64qam"]
    p = bler(t, np.array([-1, 0, -1]), np.array([50.0, 50.0, -50.0]))
    np.testing.assert_allclose(p, [1.0, 0.0, 1.0], atol=1e-12)
    assert bler(t, np.array([[3], [-1]]), np.zeros(4)).shape == (2, 4)
    assert np.isnan(bler(t, np.array([2]), np.array([np.nan])))[0]


def test_bad_mcs_is_rejected() -> None:
    t = TABLES["nr-64qam"]
    with pytest.raises(ValueError, match=r"`mcs` must lie in -1\.\.28"):
        bler(t, np.array([29]), np.zeros(1))
    with pytest.raises(ValueError, match="`mcs` must be an integer array"):
        bler(t, np.array([1.0]), np.zeros(1))
