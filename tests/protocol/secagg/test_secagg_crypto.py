"""Key agreement and derivation, identity signatures, share encryption, the neighbour graph."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from protocol.secagg import (
    IdentityKey,
    MessageRejectedError,
    Purpose,
    Reason,
    SecAggError,
    agree,
    derive_key,
    generate_x25519,
    neighbour_graph,
    verify_signature,
)
from protocol.secagg.masking import pair_mask_key, pair_sign
from protocol.secagg.share_cipher import SharePair, decrypt_shares, encrypt_shares

_IDS: dict[str, Any] = {"experiment_id": "exp", "round_id": 4}


def test_agreement_is_symmetric_and_pair_keys_match_at_both_ends() -> None:
    a, a_pub = generate_x25519()
    b, b_pub = generate_x25519()
    assert agree(a, b_pub) == agree(b, a_pub)
    assert pair_mask_key(a, b_pub, me="u1", peer="u2", **_IDS) == pair_mask_key(
        b, a_pub, me="u2", peer="u1", **_IDS
    )
    assert pair_sign("u1", "u2") == -pair_sign("u2", "u1")


@pytest.mark.parametrize(
    "change",
    [
        {"experiment_id": "other"},
        {"round_id": 5},
        {"first": "u9"},
        {"purpose": Purpose.SHARE_ENCRYPTION},
    ],
)
def test_derived_keys_are_bound_to_round_pair_and_purpose(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "purpose": Purpose.PAIR_MASK,
        "experiment_id": "exp",
        "round_id": 4,
        "first": "u1",
        "second": "u2",
    }
    secret = bytes(range(32))
    assert derive_key(secret, **base) != derive_key(secret, **{**base, **change})


def test_low_order_public_keys_are_refused() -> None:
    private, _ = generate_x25519()
    with pytest.raises(SecAggError) as err:
        agree(private, bytes(32))
    assert err.value.reason is Reason.BAD_PUBLIC_KEY
    with pytest.raises(SecAggError):
        agree(private, bytes(31))


def test_signatures_verify_and_catch_tampering_and_other_keys() -> None:
    me, other = IdentityKey.generate(), IdentityKey.generate()
    sig = me.sign(b"keys")
    verify_signature(me.public_bytes, sig, b"keys", client_id="u1")
    for public, data in ((me.public_bytes, b"keyz"), (other.public_bytes, b"keys")):
        with pytest.raises(MessageRejectedError) as err:
            verify_signature(public, sig, data, client_id="u1")
        assert err.value.reason is Reason.BAD_SIGNATURE
        assert err.value.client_id == "u1"
    again = IdentityKey.from_private_bytes(me.private_bytes())
    assert again.public_bytes == me.public_bytes


def test_share_encryption_round_trips_and_is_bound_to_pair_and_round() -> None:
    key = bytes(range(32))
    pair = SharePair(seed=bytes(66), mask_key=b"\x01" * 66)
    ct = encrypt_shares(key, pair, sender="u1", recipient="u2", **_IDS)
    assert decrypt_shares(key, ct, sender="u1", recipient="u2", **_IDS) == pair
    tampered = ct[:-1] + bytes([ct[-1] ^ 1])
    attempts = [
        (key, tampered, "u1", "u2", _IDS),
        (key, ct, "u2", "u1", _IDS),
        (key, ct, "u1", "u2", {"experiment_id": "exp", "round_id": 5}),
        (bytes(32), ct, "u1", "u2", _IDS),
        (key, ct[:10], "u1", "u2", _IDS),
    ]
    for k, c, s, r, ids in attempts:
        with pytest.raises(MessageRejectedError) as err:
            decrypt_shares(k, c, sender=s, recipient=r, **ids)
        assert err.value.reason is Reason.DECRYPTION_FAILED


def test_complete_graph() -> None:
    graph = neighbour_graph(["a", "b", "c"], None, **_IDS)
    assert graph == {"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}}
    assert neighbour_graph(["a", "b", "c"], 5, **_IDS) == graph


@pytest.mark.parametrize(("n", "k"), [(10, 4), (11, 6), (20, 7), (30, 2)])
def test_k_regular_graph_is_regular_symmetric_and_seeded(n: int, k: int) -> None:
    ids = [f"ue{i:02d}" for i in range(n)]
    graph = neighbour_graph(ids, k, **_IDS)
    assert all(len(graph[u]) == k and u not in graph[u] for u in ids)
    assert all(u in graph[v] for u in ids for v in graph[u])
    assert graph == neighbour_graph(list(reversed(ids)), k, **_IDS)
    assert graph != neighbour_graph(ids, k, experiment_id="exp", round_id=5)


def test_k_regular_graph_refuses_impossible_degrees() -> None:
    with pytest.raises(ValueError, match="`neighbours`"):
        neighbour_graph([f"u{i}" for i in range(9)], 3, **_IDS)
    with pytest.raises(ValueError, match="`neighbours`"):
        neighbour_graph([f"u{i}" for i in range(9)], 1, **_IDS)


def test_errors_cross_process_boundaries() -> None:
    err = MessageRejectedError(Reason.DUPLICATE, "again", client_id="u1", stage="share_keys")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is MessageRejectedError
    assert (back.reason, back.detail, back.client_id, back.stage) == (
        Reason.DUPLICATE,
        "again",
        "u1",
        "share_keys",
    )
