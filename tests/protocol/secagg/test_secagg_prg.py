"""AES-256-CTR mask generator."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol.secagg import apply_masks, prg


def _ecb_counter_stream(key: bytes, blocks: int) -> bytes:
    """AES-256 of the counter blocks 0, 1, 2, ... (big-endian): the CTR keystream by hand."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(b"".join(i.to_bytes(16, "big") for i in range(blocks)))


def test_prg_is_the_aes256_ctr_keystream_from_a_zero_counter() -> None:
    key = bytes(range(32))
    want = np.frombuffer(_ecb_counter_stream(key, 8), dtype="<u4")
    assert np.array_equal(prg(key, 32, np.uint32), want)
    want64 = np.frombuffer(_ecb_counter_stream(key, 8), dtype="<u8")
    assert np.array_equal(prg(key, 16, np.uint64), want64)


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("dim", [1, 7, 1000, 20_001])
def test_apply_masks_equals_the_sum_of_streams_for_any_chunking(dtype: type, dim: int) -> None:
    keys = [os.urandom(32) for _ in range(5)]
    base: np.ndarray = np.random.default_rng(0).integers(0, 2**32, dim).astype(dtype)
    want = base + prg(keys[0], dim, dtype) + prg(keys[1], dim, dtype) - prg(keys[2], dim, dtype)
    want = want - prg(keys[3], dim, dtype) + prg(keys[4], dim, dtype)
    for chunk in (48, 4096, 1 << 18):
        acc = base.copy()
        apply_masks(
            acc, add=[keys[0], keys[1], keys[4]], subtract=[keys[2], keys[3]], chunk_bytes=chunk
        )
        assert np.array_equal(acc, want)


def test_adding_and_subtracting_the_same_key_cancels() -> None:
    acc = np.arange(1000, dtype=np.uint32)
    key = os.urandom(32)
    apply_masks(acc, add=[key], subtract=[key])
    assert np.array_equal(acc, np.arange(1000, dtype=np.uint32))


def test_streams_of_different_keys_are_unrelated_and_do_not_repeat() -> None:
    a, b = prg(os.urandom(32), 1 << 14, np.uint32), prg(os.urandom(32), 1 << 14, np.uint32)
    assert np.mean(a == b) < 1e-3
    blocks = a.view(np.uint8).reshape(-1, 16)
    assert len({bytes(row) for row in blocks}) == len(blocks)  # no repeated counter block


def test_apply_masks_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="`acc`"):
        apply_masks(np.zeros(4, dtype=np.int32), add=[bytes(32)], subtract=[])
    with pytest.raises(ValueError, match="`key`"):
        apply_masks(np.zeros(4, dtype=np.uint32), add=[bytes(16)], subtract=[])
    with pytest.raises(ValueError, match="`chunk_bytes`"):
        apply_masks(np.zeros(4, dtype=np.uint32), add=[], subtract=[], chunk_bytes=10)
