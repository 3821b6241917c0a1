"""Every stage of the server checks what it receives and refuses with a named reason."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from controller.secagg import SecAggServer
from edge_agent.secagg import SecAggClient
from protocol.secagg import (
    AdvertiseKeys,
    IdentityKey,
    KeysBroadcast,
    MaskedInput,
    MessageRejectedError,
    Reason,
    RoundFailedError,
    RoundSetup,
    SecAggError,
    ShareKeys,
    SharesForward,
    Stage,
    UnmaskRequest,
    UnmaskShares,
    encode,
)
from protocol.secagg.messages import RevealedShare

N, DIM = 6, 40
_IDS = [f"ue{i}" for i in range(N)]
_KEYS = {u: IdentityKey.generate() for u in _IDS}
_ROSTER = {u: k.public_bytes for u, k in _KEYS.items()}


class _Round:
    """A round driven by hand; ``replies[stage][u]`` keeps each client's bytes."""

    def __init__(self, round_id: int = 1, **setup_args: Any) -> None:
        self.setup = RoundSetup.create(
            experiment_id="exp",
            round_id=round_id,
            participants=_IDS,
            dim=DIM,
            threshold=4,
            **setup_args,
        )
        self.server = SecAggServer(self.setup, _ROSTER)
        self.clients = {u: SecAggClient(u, _KEYS[u], _ROSTER) for u in _IDS}
        rng = np.random.default_rng(round_id)
        self.inputs = {u: encode(rng.normal(0, 0.3, DIM), 1.0, 16, rng=rng) for u in _IDS}
        self.replies: dict[Stage, dict[str, bytes]] = {}

    def answer(self, stage: Stage, u: str) -> bytes:
        body = self.server.outbox_bytes(stage, u)
        c = self.clients[u]
        if stage is Stage.ADVERTISE_KEYS:
            out = c.advertise_keys(RoundSetup.from_bytes(body)).to_bytes()
        elif stage is Stage.SHARE_KEYS:
            out = c.share_keys(KeysBroadcast.from_bytes(body)).to_bytes()
        elif stage is Stage.MASKED_INPUT:
            out = c.masked_input_encoded(SharesForward.from_bytes(body), self.inputs[u]).to_bytes()
        else:
            out = c.unmask(UnmaskRequest.from_bytes(body)).to_bytes()
        self.replies.setdefault(stage, {})[u] = out
        return out

    def run_stage(self, stage: Stage, skip: tuple[str, ...] = (), close: bool = True) -> None:
        for u in self.server.expected(stage):
            if u not in skip:
                self.server.receive(stage, self.answer(stage, u))
        if close:
            self.server.advance()

    def upto(self, stage: Stage, skip: dict[Stage, tuple[str, ...]] | None = None) -> _Round:
        for s in (Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT, Stage.UNMASK):
            if s is stage:
                return self
            self.run_stage(s, (skip or {}).get(s, ()))
        return self


def _rejected(server: SecAggServer, stage: Stage, body: bytes, reason: Reason) -> None:
    before = server.answered(stage)
    with pytest.raises(MessageRejectedError) as err:
        server.receive(stage, body)
    assert err.value.reason is reason, err.value
    assert server.answered(stage) == before  # state unchanged


def test_replayed_message_in_the_same_stage_is_a_duplicate() -> None:
    r = _Round().upto(Stage.SHARE_KEYS)
    body = r.answer(Stage.SHARE_KEYS, "ue0")
    r.server.receive(Stage.SHARE_KEYS, body)
    _rejected(r.server, Stage.SHARE_KEYS, body, Reason.DUPLICATE)


def test_message_replayed_from_an_earlier_round_is_refused() -> None:
    old = _Round(round_id=1).upto(Stage.MASKED_INPUT)
    old.run_stage(Stage.MASKED_INPUT, close=False)
    new = _Round(round_id=2)
    _rejected(
        new.server,
        Stage.ADVERTISE_KEYS,
        old.replies[Stage.ADVERTISE_KEYS]["ue1"],
        Reason.WRONG_ROUND,
    )
    new.upto(Stage.MASKED_INPUT)
    _rejected(
        new.server, Stage.MASKED_INPUT, old.replies[Stage.MASKED_INPUT]["ue1"], Reason.WRONG_ROUND
    )


def test_message_of_another_experiment_is_refused() -> None:
    r = _Round()
    c = SecAggClient("ue0", _KEYS["ue0"], _ROSTER)
    other = r.setup.model_copy(update={"experiment_id": "other"})
    _rejected(
        r.server, Stage.ADVERTISE_KEYS, c.advertise_keys(other).to_bytes(), Reason.WRONG_EXPERIMENT
    )


def test_late_and_early_messages_are_refused() -> None:
    r = _Round().upto(Stage.SHARE_KEYS, skip={Stage.ADVERTISE_KEYS: ("ue5",)})
    late = SecAggClient("ue5", _KEYS["ue5"], _ROSTER).advertise_keys(r.setup).to_bytes()
    _rejected(r.server, Stage.ADVERTISE_KEYS, late, Reason.LATE)
    early = r.answer(Stage.SHARE_KEYS, "ue0")
    with pytest.raises(MessageRejectedError) as err:
        r.server.receive(Stage.MASKED_INPUT, early)  # share-keys bytes posted as masked input
    assert err.value.reason is Reason.MALFORMED
    with pytest.raises(MessageRejectedError) as err:
        r.server.outbox(Stage.MASKED_INPUT, "ue0")
    assert err.value.reason is Reason.WRONG_STAGE


def test_dropped_client_cannot_rejoin_later_stages() -> None:
    r = _Round().upto(Stage.MASKED_INPUT, skip={Stage.SHARE_KEYS: ("ue3",)})
    with pytest.raises(MessageRejectedError) as err:
        r.server.outbox(Stage.MASKED_INPUT, "ue3")
    assert err.value.reason is Reason.NOT_IN_ROUND
    # ue3 forges a masked input anyway (it has its keys but no forwarded shares)
    vec = np.zeros(DIM, np.uint32)
    body = MaskedInput.signed(
        _KEYS["ue3"], experiment_id="exp", round_id=1, client_id="ue3", vector=vec
    ).to_bytes()
    _rejected(r.server, Stage.MASKED_INPUT, body, Reason.NOT_IN_ROUND)


def test_unknown_client_and_foreign_signature_are_refused() -> None:
    r = _Round()
    stranger = IdentityKey.generate()
    c = SecAggClient("ue9", stranger, {**_ROSTER, "ue9": stranger.public_bytes})
    setup = RoundSetup.create(
        experiment_id="exp", round_id=1, participants=[*_IDS, "ue9"], dim=DIM, threshold=4
    )
    _rejected(
        r.server, Stage.ADVERTISE_KEYS, c.advertise_keys(setup).to_bytes(), Reason.UNKNOWN_CLIENT
    )
    # the stranger signs an advert in ue1's name: the enrolled key does not verify it
    forged = AdvertiseKeys.signed(
        stranger,
        experiment_id="exp",
        round_id=1,
        client_id="ue1",
        enc_public=os.urandom(32),
        mask_public=os.urandom(32),
    )
    _rejected(r.server, Stage.ADVERTISE_KEYS, forged.to_bytes(), Reason.BAD_SIGNATURE)
    r.server.receive(Stage.ADVERTISE_KEYS, r.answer(Stage.ADVERTISE_KEYS, "ue1"))  # still fine


def test_public_key_substituted_on_the_way_to_the_server_is_detected() -> None:
    r = _Round()
    advert = AdvertiseKeys.from_bytes(r.answer(Stage.ADVERTISE_KEYS, "ue2"))
    swapped = advert.model_copy(update={"mask_public": os.urandom(32)})
    _rejected(r.server, Stage.ADVERTISE_KEYS, swapped.to_bytes(), Reason.BAD_SIGNATURE)


def test_low_order_and_equal_public_keys_are_refused() -> None:
    r = _Round()
    for enc, mask, reason in (
        (bytes(32), os.urandom(32), Reason.BAD_PUBLIC_KEY),
        (b"\x07" * 32, b"\x07" * 32, Reason.BAD_PUBLIC_KEY),
    ):
        bad = AdvertiseKeys.signed(
            _KEYS["ue0"],
            experiment_id="exp",
            round_id=1,
            client_id="ue0",
            enc_public=enc,
            mask_public=mask,
        )
        with pytest.raises(SecAggError) as err:
            r.server.receive(Stage.ADVERTISE_KEYS, bad.to_bytes())
        assert err.value.reason is reason
    assert r.server.answered(Stage.ADVERTISE_KEYS) == []


def test_shares_must_go_to_exactly_the_live_neighbours() -> None:
    r = _Round().upto(Stage.SHARE_KEYS)
    good = ShareKeys.from_bytes(r.answer(Stage.SHARE_KEYS, "ue0"))
    for shares in (good.shares[:-1], [*good.shares, good.shares[0]]):
        bad = ShareKeys.signed(
            _KEYS["ue0"],
            experiment_id="exp",
            round_id=1,
            client_id="ue0",
            seed_commitment=good.seed_commitment,
            shares=shares,
        )
        _rejected(r.server, Stage.SHARE_KEYS, bad.to_bytes(), Reason.BAD_RECIPIENTS)
    r.server.receive(Stage.SHARE_KEYS, good.to_bytes())


def test_masked_input_of_the_wrong_length_or_altered_is_refused() -> None:
    r = _Round().upto(Stage.MASKED_INPUT)
    short = MaskedInput.signed(
        _KEYS["ue0"],
        experiment_id="exp",
        round_id=1,
        client_id="ue0",
        vector=np.zeros(DIM - 1, np.uint32),
    )
    _rejected(r.server, Stage.MASKED_INPUT, short.to_bytes(), Reason.BAD_LENGTH)
    wide = MaskedInput.signed(
        _KEYS["ue0"],
        experiment_id="exp",
        round_id=1,
        client_id="ue0",
        vector=np.zeros(DIM, np.uint64),
    )
    _rejected(r.server, Stage.MASKED_INPUT, wide.to_bytes(), Reason.BAD_LENGTH)
    body = bytearray(r.answer(Stage.MASKED_INPUT, "ue0"))
    body[-3] ^= 0x40
    _rejected(r.server, Stage.MASKED_INPUT, bytes(body), Reason.BAD_SIGNATURE)
    _rejected(r.server, Stage.MASKED_INPUT, b"SAMI\x00\x00\x00\x02{}", Reason.MALFORMED)


def test_unmask_shares_for_the_wrong_owners_are_refused() -> None:
    r = _Round().upto(Stage.UNMASK, skip={Stage.MASKED_INPUT: ("ue4",)})
    good = UnmaskShares.from_bytes(r.answer(Stage.UNMASK, "ue0"))
    assert {s.owner for s in good.mask_key_shares} == {"ue4"}
    leak = RevealedShare(owner="ue4", value=good.mask_key_shares[0].value)
    variants: list[dict[str, Any]] = [
        {"seed_shares": [*good.seed_shares, leak]},  # a seed share of a dropped client
        {"mask_key_shares": []},
        {"mask_key_shares": [*good.mask_key_shares, RevealedShare(owner="ue1", value=bytes(66))]},
        {"seed_shares": good.seed_shares[1:]},
        {
            "seed_shares": [
                RevealedShare(owner=s.owner, value=b"\xff" * 66) for s in good.seed_shares
            ]
        },
    ]
    for change in variants:
        fields: dict[str, Any] = {
            "seed_shares": good.seed_shares,
            "mask_key_shares": good.mask_key_shares,
            **change,
        }
        bad = UnmaskShares.signed(
            _KEYS["ue0"], experiment_id="exp", round_id=1, client_id="ue0", **fields
        )
        _rejected(r.server, Stage.UNMASK, bad.to_bytes(), Reason.BAD_SHARES)
    r.server.receive(Stage.UNMASK, good.to_bytes())


def test_wrong_shares_are_caught_by_the_commitment() -> None:
    r = _Round().upto(Stage.UNMASK)
    for u in ("ue0", "ue1", "ue2", "ue3"):
        good = UnmaskShares.from_bytes(r.answer(Stage.UNMASK, u))
        lies = [
            RevealedShare(owner=s.owner, value=os.urandom(65).rjust(66, b"\0"))
            for s in good.seed_shares
        ]
        bad = UnmaskShares.signed(
            _KEYS[u],
            experiment_id="exp",
            round_id=1,
            client_id=u,
            seed_shares=lies,
            mask_key_shares=[],
        )
        r.server.receive(Stage.UNMASK, bad.to_bytes())
    with pytest.raises(RoundFailedError) as err:
        r.server.advance()
    assert err.value.reason is Reason.RECONSTRUCTION_FAILED
    assert r.server.stage is Stage.FAILED


def test_server_refuses_a_round_with_unenrolled_participants() -> None:
    setup = RoundSetup.create(
        experiment_id="exp", round_id=1, participants=[*_IDS, "ue9"], dim=DIM, threshold=4
    )
    with pytest.raises(ValueError, match="`identities`"):
        SecAggServer(setup, _ROSTER)


def test_outbox_only_for_clients_of_the_previous_stage() -> None:
    r = _Round()
    with pytest.raises(MessageRejectedError) as err:
        r.server.outbox(Stage.ADVERTISE_KEYS, "nobody")
    assert err.value.reason is Reason.NOT_IN_ROUND
    assert r.server.pending() == _IDS
