"""Fixed-point encoding, the ring choice and the modulus check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol.secagg import (
    Reason,
    SecAggError,
    check_encoded,
    check_ring,
    choose_ring_bits,
    decode_mean,
    decode_sum,
    encode,
    max_level,
    quantisation_bound,
)

_floats = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float32, st.integers(1, 200), elements=_floats),
    clip=st.sampled_from([0.5, 1.0, 3.0]),
    bits=st.integers(0, 24),
    ring=st.sampled_from([32, 64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_error_is_below_the_bound_inside_the_clip_range(
    x: np.ndarray, clip: float, bits: int, ring: int, seed: int
) -> None:
    if ring == 32 and max_level(clip, bits) >= 2**31:
        return
    q = encode(x, clip, bits, ring_bits=ring, rng=np.random.default_rng(seed))
    assert q.dtype == np.dtype(f"uint{ring}")
    back = decode_sum(q, bits)
    err = np.abs(back - np.clip(x.astype(np.float64), -clip, clip))
    assert np.all(err < quantisation_bound(bits))
    check_encoded(q, ring, clip, bits)  # within [-L, L]


def test_stochastic_rounding_is_unbiased() -> None:
    x = np.full(200_000, 0.3 / 2**8, dtype=np.float64)  # 0.3 of a step
    q = encode(x, 1.0, 8, rng=np.random.default_rng(1))
    mean = decode_sum(q, 8).mean()
    # rounds up with p = 0.3: mean 0.3 step, std of the mean ~ 0.46 / sqrt(n) steps
    assert abs(mean * 2**8 - 0.3) < 5 * 0.46 / np.sqrt(x.size)
    assert set(np.unique(q.view(np.int32))) == {0, 1}


def test_sum_and_mean_of_negative_values_decode() -> None:
    xs = [np.array([-0.75, 0.5, -1.0], np.float32), np.array([-0.25, -0.5, 1.0], np.float32)]
    total = encode(xs[0], 1.0, 10) + encode(xs[1], 1.0, 10)
    assert np.allclose(decode_sum(total, 10), [-1.0, 0.0, 0.0])
    assert np.allclose(decode_mean(total, 10, 2), [-0.5, 0.0, 0.0])


def test_values_beyond_the_clip_are_clipped() -> None:
    q = encode(np.array([5.0, -5.0]), 2.0, 4)
    assert decode_sum(q, 4).tolist() == [2.0, -2.0]


def test_ring_is_the_smallest_that_cannot_overflow() -> None:
    assert choose_ring_bits(100, 1.0, 16) == 32  # 100 * 2^16 < 2^31
    assert choose_ring_bits(2**15 + 1, 1.0, 16) == 64  # (2^15 + 1) * 2^16 > 2^31
    assert choose_ring_bits(2**15 - 1, 1.0, 16) == 32
    with pytest.raises(SecAggError) as err:
        choose_ring_bits(2**14, 2.0**10, 40)
    assert err.value.reason is Reason.MODULUS_TOO_SMALL


def test_check_ring_refuses_a_ring_that_could_overflow() -> None:
    check_ring(32, 100, 1.0, 16)
    with pytest.raises(SecAggError) as err:
        check_ring(32, 40_000, 1.0, 16)
    assert err.value.reason is Reason.MODULUS_TOO_SMALL
    assert "n_inputs" in str(err.value)


def test_worst_case_sum_at_the_limit_decodes_exactly() -> None:
    n, bits = 2**15 - 1, 16
    assert choose_ring_bits(n, 1.0, bits) == 32
    one = encode(np.array([1.0, -1.0]), 1.0, bits)
    total = (one.astype(np.uint64) * n).astype(np.uint32)
    assert decode_sum(total, bits).tolist() == [n, -n]


@pytest.mark.parametrize(
    ("vector", "match"),
    [(np.array([np.nan]), "finite"), (np.array([[1.0]]), "1-D"), (np.array([np.inf]), "finite")],
)
def test_encode_refuses_bad_vectors(vector: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode(vector, 1.0, 8)


def test_encode_refuses_bad_parameters() -> None:
    with pytest.raises(ValueError, match="`clip`"):
        encode(np.zeros(2), 0.0, 8)
    with pytest.raises(ValueError, match="`ring_bits`"):
        encode(np.zeros(2), 1.0, 8, ring_bits=16)
    with pytest.raises(ValueError, match="2\\^52"):
        max_level(2.0**20, 40)


def test_check_encoded_refuses_values_beyond_the_level() -> None:
    q = encode(np.array([1.0, -1.0]), 1.0, 8)
    q[0] += 1
    with pytest.raises(SecAggError) as err:
        check_encoded(q, 32, 1.0, 8)
    assert err.value.reason is Reason.OUT_OF_RANGE
