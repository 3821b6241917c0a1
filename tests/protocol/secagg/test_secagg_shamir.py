"""Shamir secret sharing over GF(2^521 - 1)."""

from __future__ import annotations

import contextlib
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.secagg import shamir


@settings(max_examples=30, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_any_threshold_subset_reconstructs(secret: bytes, n: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(min_value=1, max_value=n))
    xs = data.draw(st.lists(st.integers(1, 2**32), min_size=n, max_size=n, unique=True))
    shares = shamir.split(secret, threshold, xs)
    subset = data.draw(st.lists(st.sampled_from(xs), min_size=threshold, unique=True))
    assert shamir.combine({x: shares[x] for x in subset}, threshold) == secret


def test_every_subset_of_a_small_sharing_reconstructs() -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, 3, [1, 2, 3, 4, 5])
    for subset in itertools.combinations(shares, 3):
        assert shamir.combine({x: shares[x] for x in subset}, 3) == secret


def test_fewer_than_threshold_shares_do_not_give_the_secret() -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, 4, [1, 2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match="threshold"):
        shamir.combine({x: shares[x] for x in (1, 2, 3)}, 4)
    # interpolating t-1 shares as if the degree were lower gives something else
    try:
        guess = shamir.combine({x: shares[x] for x in (1, 2, 3)}, 3)
    except ValueError:  # not even a 32-byte value: fine
        return
    assert guess != secret


def test_shares_of_the_same_secret_differ_between_sharings() -> None:
    secret = os.urandom(32)
    assert shamir.split(secret, 3, [1, 2, 3]) != shamir.split(secret, 3, [1, 2, 3])


def test_a_wrong_share_changes_the_result() -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, 2, [1, 2])
    shares[2] = (shares[2] + 1) % shamir.PRIME
    with contextlib.suppress(ValueError):
        assert shamir.combine(shares, 2) != secret


@pytest.mark.parametrize(
    ("xs", "threshold", "match"),
    [
        ([1, 1, 2], 2, "distinct"),
        ([0, 1, 2], 2, "1..2"),
        ([1, 2], 3, "threshold"),
        ([1], 0, "threshold"),
    ],
)
def test_split_refuses_bad_parameters(xs: list[int], threshold: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        shamir.split(bytes(32), threshold, xs)


def test_split_refuses_a_secret_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="`secret`"):
        shamir.split(bytes(31), 1, [1])


def test_share_codec_round_trips_and_refuses_non_field_elements() -> None:
    value = shamir.PRIME - 1
    assert shamir.decode_share(shamir.encode_share(value)) == value
    with pytest.raises(ValueError, match="field element"):
        shamir.decode_share(shamir.PRIME.to_bytes(shamir.SHARE_BYTES, "big"))
    with pytest.raises(ValueError, match="66 bytes"):
        shamir.decode_share(bytes(10))
