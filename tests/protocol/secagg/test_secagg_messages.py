"""Wire messages: codecs, validation, signatures; and Python 3.8 compatibility."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from protocol.secagg import (
    AdvertiseKeys,
    IdentityKey,
    MaskedInput,
    MessageRejectedError,
    Reason,
    RoundSetup,
    ShareKeys,
    UnmaskShares,
    generate_x25519,
)
from protocol.secagg.messages import EncryptedShare, RevealedShare

_ROOT = Path(__file__).resolve().parents[3]
_ME = IdentityKey.generate()
_IDS = {"experiment_id": "exp", "round_id": 2, "client_id": "ue01"}


def _advert() -> AdvertiseKeys:
    return AdvertiseKeys.signed(
        _ME, enc_public=generate_x25519()[1], mask_public=generate_x25519()[1], **_IDS
    )


def test_signed_json_messages_round_trip_through_bytes_and_verify() -> None:
    messages = [
        _advert(),
        ShareKeys.signed(
            _ME,
            seed_commitment=bytes(32),
            shares=[EncryptedShare(recipient="ue02", ciphertext=b"\x00\xff" * 40)],
            **_IDS,
        ),
        UnmaskShares.signed(
            _ME,
            seed_shares=[RevealedShare(owner="ue02", value=bytes(66))],
            mask_key_shares=[],
            **_IDS,
        ),
    ]
    for message in messages:
        data = message.to_bytes()
        json.loads(data)  # plain JSON, bytes in base64
        back = type(message).from_bytes(data)
        assert back == message
        back.verify(_ME.public_bytes)


def test_a_changed_field_breaks_the_signature() -> None:
    advert = _advert()
    for change in ({"round_id": 3}, {"client_id": "ue02"}, {"mask_public": generate_x25519()[1]}):
        with pytest.raises(MessageRejectedError) as err:
            advert.model_copy(update=change).verify(_ME.public_bytes)
        assert err.value.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"kind": "advertise_keys"}',
        lambda a: a.replace(b'"round_id":2', b'"round_id":-1'),
        lambda a: a.replace(b'"client_id":"ue01"', b'"client_id":"ue 01/.."'),
        lambda a: a.replace(b'"kind":"advertise_keys"', b'"kind":"share_keys"'),
        lambda a: a[:-1] + b',"extra":1}',
        lambda a: a.replace(b'"enc_public":"', b'"enc_public":"AAAA'),
        lambda a: a.replace(b'"signature":"', b'"signature":"*'),
    ],
)
def test_malformed_bytes_are_refused_with_a_reason(data: object) -> None:
    body = data(_advert().to_bytes()) if callable(data) else data
    with pytest.raises(MessageRejectedError) as err:
        AdvertiseKeys.from_bytes(body)  # type: ignore[arg-type]
    assert err.value.reason is Reason.MALFORMED


def test_masked_input_frame_round_trips_and_checks_lengths() -> None:
    vector = np.random.default_rng(0).integers(0, 2**32, 1001, dtype=np.uint64).astype(np.uint32)
    message = MaskedInput.signed(
        _ME, experiment_id="exp", round_id=2, client_id="ue01", vector=vector
    )
    data = message.to_bytes()
    assert len(data) - 4 * vector.size < 400  # header overhead
    back = MaskedInput.from_bytes(data)
    assert np.array_equal(back.vector(), vector)
    back.verify(_ME.public_bytes)
    with pytest.raises(MessageRejectedError) as err:
        MaskedInput.from_bytes(data[:-4])
    assert err.value.reason is Reason.BAD_LENGTH
    for bad in (b"XXXX" + data[4:], data[:6], data[:4] + b"\xff\xff\xff\xff" + data[8:]):
        with pytest.raises(MessageRejectedError) as err:
            MaskedInput.from_bytes(bad)
        assert err.value.reason is Reason.MALFORMED
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(MessageRejectedError) as err:
        MaskedInput.from_bytes(bytes(flipped)).verify(_ME.public_bytes)
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_round_setup_defaults_and_checks() -> None:
    ids = [f"ue{i:02d}" for i in range(12)]
    setup = RoundSetup.create(experiment_id="exp", round_id=1, participants=ids[::-1], dim=5)
    assert setup.participants == ids
    assert setup.threshold == 8
    assert setup.neighbours is None
    assert setup.share_threshold == 8
    assert setup.ring_bits == 32
    assert RoundSetup.from_bytes(setup.to_bytes()) == setup
    plus = RoundSetup.create(experiment_id="exp", round_id=1, participants=ids, dim=5, neighbours=6)
    assert plus.neighbours == 6
    assert plus.share_threshold == 4
    full = RoundSetup.create(
        experiment_id="exp", round_id=1, participants=ids, dim=5, neighbours=11
    )
    assert full.neighbours is None
    bad = setup.model_dump()
    for change in (
        {"threshold": 13},
        {"participants": ids[::-1]},
        {"share_threshold": 7},
        {"ring_bits": 16},
        {"dim": 0},
    ):
        with pytest.raises(MessageRejectedError) as err:
            RoundSetup.from_bytes(json.dumps({**bad, **change}).encode())
        assert err.value.reason is Reason.MALFORMED


@pytest.mark.skipif(
    shutil.which("vermin", path=str(Path(sys.executable).parent)) is None,
    reason="vermin not installed",
)
def test_protocol_and_client_stay_python_38_compatible() -> None:
    vermin = str(Path(sys.executable).parent / "vermin")
    out = subprocess.run(
        [
            vermin,
            "-t=3.8-",
            "--no-tips",
            "--violations",
            "--eval-annotations",
            "protocol/secagg",
            "edge_agent/secagg",
        ],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
