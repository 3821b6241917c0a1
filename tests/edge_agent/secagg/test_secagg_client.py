"""The client checks every server message; masked vectors look uniform."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

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
    UnmaskRequest,
    UnmaskShares,
    encode,
)
from protocol.secagg.messages import ForwardedShare

_IDS = ["ue0", "ue1", "ue2", "ue3", "ue4"]
_KEYS = {u: IdentityKey.generate() for u in _IDS}
_ROSTER = {u: k.public_bytes for u, k in _KEYS.items()}


def _setup(round_id: int = 1, dim: int = 16, **args: Any) -> RoundSetup:
    return RoundSetup.create(
        experiment_id="exp", round_id=round_id, participants=_IDS, dim=dim, threshold=3, **args
    )


class _Peers:
    """All five clients taken through the stages by hand, the server's job done inline."""

    def __init__(self, setup: RoundSetup) -> None:
        self.setup = setup
        self.c = {u: SecAggClient(u, _KEYS[u], _ROSTER) for u in _IDS}
        self.adverts = {u: self.c[u].advertise_keys(setup) for u in _IDS}
        self.shares: dict[str, ShareKeys] = {}

    def broadcast(self, u: str) -> KeysBroadcast:
        return KeysBroadcast(
            experiment_id="exp",
            round_id=self.setup.round_id,
            recipient=u,
            advertisements=[a for v, a in self.adverts.items() if v != u],
        )

    def share_all(self) -> None:
        self.shares = {u: self.c[u].share_keys(self.broadcast(u)) for u in _IDS}

    def forward(self, u: str) -> SharesForward:
        items = [
            ForwardedShare(sender=v, ciphertext=s.ciphertext)
            for v, m in self.shares.items()
            for s in m.shares
            if s.recipient == u
        ]
        return SharesForward(
            experiment_id="exp", round_id=self.setup.round_id, recipient=u, shares=items
        )

    def request(self, u: str, survivors: list[str]) -> UnmaskRequest:
        return UnmaskRequest(
            experiment_id="exp", round_id=self.setup.round_id, recipient=u, survivors=survivors
        )


def _reason(
    call: Callable[[], object], reason: Reason, kind: type[SecAggError] = MessageRejectedError
) -> None:
    with pytest.raises(kind) as err:
        call()
    assert err.value.reason is reason, err.value


def test_substituted_public_key_is_detected_by_the_client() -> None:
    p = _Peers(_setup())
    for field in ("enc_public", "mask_public"):
        bad = p.broadcast("ue0")
        swapped = bad.advertisements[1].model_copy(update={field: os.urandom(32)})
        adverts = [bad.advertisements[0], swapped, *bad.advertisements[2:]]
        changed = bad.model_copy(update={"advertisements": adverts})
        with pytest.raises(MessageRejectedError) as err:
            p.c["ue0"].share_keys(changed)
        assert err.value.reason is Reason.BAD_SIGNATURE
    # a server-made key pair signed by nobody enrolled fails the same way
    fake = AdvertiseKeys.signed(
        IdentityKey.generate(),
        experiment_id="exp",
        round_id=1,
        client_id="ue1",
        enc_public=os.urandom(32),
        mask_public=os.urandom(32),
    )
    adverts = [fake, *p.broadcast("ue0").advertisements[1:]]
    _reason(
        lambda: p.c["ue0"].share_keys(
            p.broadcast("ue0").model_copy(update={"advertisements": adverts})
        ),
        Reason.BAD_SIGNATURE,
    )
    p.c["ue0"].share_keys(p.broadcast("ue0"))  # the genuine broadcast still works


def test_broadcast_checks() -> None:
    p = _Peers(_setup())
    b = p.broadcast("ue0")
    c = p.c["ue0"]
    _reason(lambda: c.share_keys(b.model_copy(update={"recipient": "ue1"})), Reason.WRONG_RECIPIENT)
    _reason(lambda: c.share_keys(b.model_copy(update={"round_id": 2})), Reason.WRONG_ROUND)
    _reason(
        lambda: c.share_keys(b.model_copy(update={"experiment_id": "x"})), Reason.WRONG_EXPERIMENT
    )
    dup = [*b.advertisements, b.advertisements[0]]
    _reason(lambda: c.share_keys(b.model_copy(update={"advertisements": dup})), Reason.DUPLICATE)
    own = [*b.advertisements, p.adverts["ue0"]]
    _reason(lambda: c.share_keys(b.model_copy(update={"advertisements": own})), Reason.NOT_IN_ROUND)
    _reason(lambda: c.unmask(p.request("ue0", _IDS)), Reason.WRONG_STAGE)
    _reason(
        lambda: c.share_keys(b.model_copy(update={"advertisements": b.advertisements[:1]})),
        Reason.BELOW_THRESHOLD,
        RoundFailedError,
    )


def test_round_setup_checks() -> None:
    c = SecAggClient("ue0", _KEYS["ue0"], _ROSTER)
    setup = _setup()
    c.advertise_keys(setup)
    _reason(lambda: c.advertise_keys(setup), Reason.DUPLICATE)  # replayed set-up
    _reason(
        lambda: SecAggClient("zz", IdentityKey.generate(), _ROSTER).advertise_keys(_setup(2)),
        Reason.NOT_IN_ROUND,
    )
    partial = {u: k for u, k in _ROSTER.items() if u != "ue4"}
    _reason(
        lambda: SecAggClient("ue0", _KEYS["ue0"], partial).advertise_keys(_setup(3)),
        Reason.UNKNOWN_CLIENT,
    )
    low = _setup(4).model_copy(update={"threshold": 2, "share_threshold": 2})
    _reason(lambda: c.advertise_keys(low), Reason.THRESHOLD_TOO_LOW)
    wide = _setup(5, clip=2.0**20, fraction_bits=20).model_copy(update={"ring_bits": 32})
    _reason(lambda: c.advertise_keys(wide), Reason.MODULUS_TOO_SMALL)


def test_masked_input_checks() -> None:
    p = _Peers(_setup())
    p.share_all()
    c, f = p.c["ue0"], p.forward("ue0")
    x = encode(np.zeros(16), 1.0, 16)
    _reason(lambda: c.masked_input_encoded(f, x[:-1]), Reason.BAD_LENGTH)
    big = x.copy()
    big[0] = 2**20
    _reason(lambda: c.masked_input_encoded(f, big), Reason.OUT_OF_RANGE)
    item = f.shares[0]
    bad = ForwardedShare(sender=item.sender, ciphertext=item.ciphertext[:-1] + b"\x00")
    _reason(
        lambda: c.masked_input_encoded(f.model_copy(update={"shares": [bad, *f.shares[1:]]}), x),
        Reason.DECRYPTION_FAILED,
    )
    moved = ForwardedShare(sender=f.shares[1].sender, ciphertext=item.ciphertext)
    _reason(
        lambda: c.masked_input_encoded(f.model_copy(update={"shares": [moved, *f.shares[1:]]}), x),
        Reason.DECRYPTION_FAILED,
    )
    _reason(
        lambda: c.masked_input_encoded(f.model_copy(update={"shares": [item, *f.shares]}), x),
        Reason.DUPLICATE,
    )
    _reason(
        lambda: c.masked_input_encoded(f.model_copy(update={"shares": f.shares[:1]}), x),
        Reason.BELOW_THRESHOLD,
        RoundFailedError,
    )


def test_unmask_never_reveals_both_shares_of_a_client() -> None:
    p = _Peers(_setup())
    p.share_all()
    for u in _IDS:
        p.c[u].masked_input(p.forward(u), np.zeros(16, np.float32))
    c = p.c["ue0"]
    _reason(lambda: c.unmask(p.request("ue0", ["ue1", "ue2", "ue3"])), Reason.INCONSISTENT)
    _reason(lambda: c.unmask(p.request("ue0", ["ue0", "ue0", "ue1"])), Reason.DUPLICATE)
    _reason(
        lambda: c.unmask(p.request("ue0", ["ue0", "ue1"])),
        Reason.BELOW_THRESHOLD,
        RoundFailedError,
    )
    c = p.c["ue1"]
    out = c.unmask(p.request("ue1", ["ue0", "ue1", "ue3"]))
    assert isinstance(out, UnmaskShares)
    assert {s.owner for s in out.seed_shares} == {"ue0", "ue1", "ue3"}
    assert {s.owner for s in out.mask_key_shares} == {"ue2", "ue4"}
    _reason(lambda: c.unmask(p.request("ue1", _IDS)), Reason.WRONG_STAGE)  # only once


# -- the masked vector looks uniform ------------------------------------------------------


def _chi2_critical(df: int, z: float = 4.75) -> float:
    """Wilson-Hilferty upper quantile of chi-square(df); z = 4.75 is p ~ 1e-6."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _chi2_bytes(v: np.ndarray) -> float:
    counts = np.bincount(v.view(np.uint8), minlength=256)
    expected = counts.sum() / 256
    return float(((counts - expected) ** 2 / expected).sum())


def _chi2_top_bits(v: np.ndarray, bins: int = 1024) -> float:
    top = (v.astype(np.uint64) * bins) >> 32
    counts = np.bincount(top.astype(np.int64), minlength=bins)
    expected = counts.sum() / bins
    return float(((counts - expected) ** 2 / expected).sum())


def _looks_uniform(v: np.ndarray) -> bool:
    bits = np.unpackbits(v.view(np.uint8)).reshape(-1, 32).mean(axis=0)
    return (
        _chi2_bytes(v) < _chi2_critical(255)
        and _chi2_top_bits(v) < _chi2_critical(1023)
        and bool(np.all(np.abs(bits - 0.5) < 5 * 0.5 / math.sqrt(v.size)))
    )


def _masked(x: np.ndarray, round_id: int) -> np.ndarray:
    p = _Peers(_setup(round_id, dim=x.size))
    p.share_all()
    return p.c["ue0"].masked_input_encoded(p.forward("ue0"), x).vector()


@pytest.mark.parametrize("fill", [0.0, 1.0, -0.5])
def test_single_masked_vector_is_indistinguishable_from_uniform(fill: float) -> None:
    dim = 1 << 16
    x = encode(np.full(dim, fill), 1.0, 16)
    assert not _looks_uniform(x)  # the test can fail: a plain (or identity-masked) input fails
    assert _looks_uniform(_masked(x, round_id=10 + int(fill * 4)))


def test_masks_are_fresh_per_round_and_unrelated_across_inputs() -> None:
    dim = 1 << 15
    x1 = encode(np.zeros(dim), 1.0, 16)
    x2 = encode(np.linspace(-1, 1, dim), 1.0, 16)
    y1, y2, y1_again = _masked(x1, 20), _masked(x2, 21), _masked(x1, 22)
    for a, b in ((y1, y2), (y1, y1_again)):
        assert _looks_uniform(a - b)  # no shared mask: the difference is uniform too
        assert abs(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1]) < 0.03
        assert np.mean(a == b) < 1e-3
    assert not _looks_uniform(x1 + np.arange(dim, dtype=np.uint32))  # a counter "mask" fails


def test_masked_input_frame_is_what_the_client_signed() -> None:
    p = _Peers(_setup())
    p.share_all()
    m = p.c["ue2"].masked_input(p.forward("ue2"), np.full(16, 0.25, np.float32))
    back = MaskedInput.from_bytes(m.to_bytes())
    back.verify(_ROSTER["ue2"])
    assert back.header.dim == 16
    assert back.header.ring_bits == 32
