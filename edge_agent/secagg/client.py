"""The secure-aggregation client an edge agent runs, one stage per server message.

An agent process sees only the messages: for each stage it fetches the server's message for it
(bytes), parses it with the message class, calls the matching method and posts the answer's
``to_bytes()``::

    setup = RoundSetup.from_bytes(body)           -> client.advertise_keys(setup)
    broadcast = KeysBroadcast.from_bytes(body)    -> client.share_keys(broadcast)
    forward = SharesForward.from_bytes(body)      -> client.masked_input(forward, update)
    request = UnmaskRequest.from_bytes(body)      -> client.unmask(request)

Each method checks what it receives against the round set-up, the enrolled identity keys
(``roster``) and what the client saw earlier, and refuses with
:class:`~protocol.secagg.errors.MessageRejectedError` (the client's state is unchanged) or
:class:`~protocol.secagg.errors.RoundFailedError` (the client abandons the round). A client that
raises simply does not answer; to the server it is a dropout.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.secagg import shamir
from protocol.secagg.errors import MessageRejectedError, Reason, RoundFailedError, SecAggError
from protocol.secagg.identity import IdentityKey
from protocol.secagg.keys import generate_x25519, private_to_bytes
from protocol.secagg.masking import (
    pair_mask_key,
    pair_sign,
    seed_commitment,
    self_mask_key,
    share_key,
)
from protocol.secagg.messages import (
    AdvertiseKeys,
    EncryptedShare,
    KeysBroadcast,
    MaskedInput,
    RevealedShare,
    RoundSetup,
    ShareKeys,
    SharesForward,
    UnmaskRequest,
    UnmaskShares,
)
from protocol.secagg.prg import apply_masks
from protocol.secagg.quantization import check_encoded, check_ring, encode
from protocol.secagg.share_cipher import SharePair, decrypt_shares, encrypt_shares
from protocol.secagg.stages import Stage

__all__ = ["SecAggClient"]


@dataclass
class _Round:
    """What a client keeps during one round."""

    setup: RoundSetup
    neighbours: FrozenSet[str]
    enc_private: X25519PrivateKey
    mask_private: X25519PrivateKey
    advert: AdvertiseKeys
    expecting: Stage = Stage.SHARE_KEYS
    peers: Dict[str, AdvertiseKeys] = field(default_factory=dict)
    """Neighbours whose adverts verified (U1 around this client)."""
    seed: bytes = b""
    held: Dict[str, SharePair] = field(default_factory=dict)
    """Shares this client holds, by owner (itself included)."""


class SecAggClient:
    """One agent's side of secure aggregation; long-lived, one round at a time.

    Args:
        client_id: this agent's id, as in the round's participants.
        identity: this agent's Ed25519 identity key.
        roster: enrolled Ed25519 public keys (raw 32 bytes) by client id: the trust anchor
            against which every relayed key advert is checked. It must come from enrolment,
            not from the server during a round.
        rng: randomness for stochastic rounding (an OS-seeded generator when None).
    """

    def __init__(
        self,
        client_id: str,
        identity: IdentityKey,
        roster: Mapping[str, bytes],
        *,
        rng: Optional[np.random.Generator] = None,
    ) -> None:
        self.client_id = client_id
        self._identity = identity
        self._roster = dict(roster)
        self._rng = rng if rng is not None else np.random.default_rng()
        self._round: Optional[_Round] = None
        self._seen: Set[Tuple[str, int]] = set()

    # -- helpers ---------------------------------------------------------------------------

    def _reject(self, reason: Reason, detail: str, stage: Stage) -> MessageRejectedError:
        return MessageRejectedError(reason, detail, client_id=self.client_id, stage=stage.value)

    def _fail(self, reason: Reason, detail: str, stage: Stage) -> RoundFailedError:
        self._round = None
        return RoundFailedError(reason, detail, client_id=self.client_id, stage=stage.value)

    def _current(self, stage: Stage, experiment_id: str, round_id: int, recipient: str) -> _Round:
        state = self._round
        if state is None or state.expecting != stage:
            raise self._reject(Reason.WRONG_STAGE, f"not expecting a {stage.value} message.", stage)
        if experiment_id != state.setup.experiment_id:
            raise self._reject(Reason.WRONG_EXPERIMENT, f"experiment `{experiment_id}`.", stage)
        if round_id != state.setup.round_id:
            raise self._reject(
                Reason.WRONG_ROUND, f"round {round_id}, expected {state.setup.round_id}.", stage
            )
        if recipient != self.client_id:
            raise self._reject(Reason.WRONG_RECIPIENT, f"addressed to `{recipient}`.", stage)
        return state

    def _check_policy(self, setup: RoundSetup) -> None:
        stage = Stage.ADVERTISE_KEYS
        if self.client_id not in setup.participants:
            raise self._reject(Reason.NOT_IN_ROUND, "this client is not a participant.", stage)
        if (setup.experiment_id, setup.round_id) in self._seen:
            raise self._reject(Reason.DUPLICATE, "round set-up seen before (replayed).", stage)
        strangers = [u for u in setup.participants if u not in self._roster]
        if strangers:
            raise self._reject(
                Reason.UNKNOWN_CLIENT, f"participants not enrolled: {strangers[:5]}.", stage
            )
        holders = len(setup.participants) if setup.neighbours is None else setup.neighbours + 1
        if 2 * setup.share_threshold <= holders:
            raise self._reject(
                Reason.THRESHOLD_TOO_LOW,
                f"`share_threshold` ({setup.share_threshold}) must exceed half of the "
                f"{holders} holders of each secret.",
                stage,
            )
        try:
            check_ring(setup.ring_bits, len(setup.participants), setup.clip, setup.fraction_bits)
        except SecAggError as err:
            raise self._reject(err.reason, err.detail, stage) from None

    # -- stage 0 ---------------------------------------------------------------------------

    def advertise_keys(self, setup: RoundSetup) -> AdvertiseKeys:
        """Start a round: fresh X25519 keys for share encryption and masking, signed."""
        self._check_policy(setup)
        enc_private, enc_public = generate_x25519()
        mask_private, mask_public = generate_x25519()
        advert = AdvertiseKeys.signed(
            self._identity,
            experiment_id=setup.experiment_id,
            round_id=setup.round_id,
            client_id=self.client_id,
            enc_public=enc_public,
            mask_public=mask_public,
        )
        self._seen.add((setup.experiment_id, setup.round_id))
        self._round = _Round(
            setup=setup,
            neighbours=setup.graph()[self.client_id],
            enc_private=enc_private,
            mask_private=mask_private,
            advert=advert,
        )
        return advert

    # -- stage 1 ---------------------------------------------------------------------------

    def share_keys(self, broadcast: KeysBroadcast) -> ShareKeys:
        """Check the neighbours' signed adverts; Shamir-share the seed and the masking key."""
        stage = Stage.SHARE_KEYS
        state = self._current(
            stage, broadcast.experiment_id, broadcast.round_id, broadcast.recipient
        )
        setup = state.setup
        peers: Dict[str, AdvertiseKeys] = {}
        for advert in broadcast.advertisements:
            v = advert.client_id
            if v not in state.neighbours:
                raise self._reject(Reason.NOT_IN_ROUND, f"advert of non-neighbour `{v}`.", stage)
            if v in peers:
                raise self._reject(Reason.DUPLICATE, f"two adverts of `{v}`.", stage)
            if (advert.experiment_id, advert.round_id) != (setup.experiment_id, setup.round_id):
                raise self._reject(
                    Reason.WRONG_ROUND, f"advert of `{v}` is for another round.", stage
                )
            advert.verify(self._roster[v])  # a substituted key fails here
            peers[v] = advert
        holders = sorted([*peers, self.client_id])
        if len(holders) < setup.share_threshold:
            raise self._fail(
                Reason.BELOW_THRESHOLD,
                f"{len(holders)} holders for shares, `share_threshold` is {setup.share_threshold}.",
                stage,
            )
        seed = os.urandom(32)
        xs = [setup.x_of(v) for v in holders]
        seed_shares = shamir.split(seed, setup.share_threshold, xs)
        key_shares = shamir.split(private_to_bytes(state.mask_private), setup.share_threshold, xs)
        out: List[EncryptedShare] = []
        for v, x in zip(holders, xs):
            pair = SharePair(
                seed=shamir.encode_share(seed_shares[x]),
                mask_key=shamir.encode_share(key_shares[x]),
            )
            if v == self.client_id:
                state.held[v] = pair
                continue
            key = share_key(
                state.enc_private,
                peers[v].enc_public,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                sender=self.client_id,
                recipient=v,
            )
            ciphertext = encrypt_shares(
                key,
                pair,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                sender=self.client_id,
                recipient=v,
            )
            out.append(EncryptedShare(recipient=v, ciphertext=ciphertext))
        message = ShareKeys.signed(
            self._identity,
            experiment_id=setup.experiment_id,
            round_id=setup.round_id,
            client_id=self.client_id,
            seed_commitment=seed_commitment(
                seed,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                owner=self.client_id,
            ),
            shares=out,
        )
        state.peers, state.seed, state.expecting = peers, seed, Stage.MASKED_INPUT
        return message

    # -- stage 2 ---------------------------------------------------------------------------

    def encode(self, update: npt.ArrayLike) -> npt.NDArray[np.unsignedinteger]:
        """``update`` (``[D]`` float) in the current round's fixed point (clip, bits, ring)."""
        state = self._round
        if state is None:
            raise self._reject(Reason.WRONG_STAGE, "no round in progress.", Stage.MASKED_INPUT)
        setup = state.setup
        return encode(
            update, setup.clip, setup.fraction_bits, ring_bits=setup.ring_bits, rng=self._rng
        )

    def masked_input(self, forward: SharesForward, update: npt.ArrayLike) -> MaskedInput:
        """Encode ``update`` (``[D]`` float, e.g. a float32 model update) and mask it."""
        self._current(
            Stage.MASKED_INPUT, forward.experiment_id, forward.round_id, forward.recipient
        )
        return self.masked_input_encoded(forward, self.encode(update))

    def masked_input_encoded(
        self, forward: SharesForward, encoded: npt.NDArray[np.unsignedinteger]
    ) -> MaskedInput:
        """Open the shares relayed to this client and mask ``encoded``.

        Args:
            forward: the encrypted shares of the neighbours that shared keys (U2).
            encoded: ``[D]`` uint32/uint64 from :func:`protocol.secagg.encode` with this round's
                clip, fraction bits and ring.
        """
        stage = Stage.MASKED_INPUT
        state = self._current(stage, forward.experiment_id, forward.round_id, forward.recipient)
        setup = state.setup
        if encoded.shape != (setup.dim,):
            raise self._reject(
                Reason.BAD_LENGTH,
                f"`encoded` must have shape ({setup.dim},), got {encoded.shape}.",
                stage,
            )
        try:
            check_encoded(encoded, setup.ring_bits, setup.clip, setup.fraction_bits)
        except SecAggError as err:
            raise self._reject(err.reason, err.detail, stage) from None
        held: Dict[str, SharePair] = {}
        for item in forward.shares:
            v = item.sender
            if v not in state.peers:
                raise self._reject(
                    Reason.NOT_IN_ROUND,
                    f"shares from `{v}`, which did not advertise keys to this client.",
                    stage,
                )
            if v in held:
                raise self._reject(Reason.DUPLICATE, f"two share messages from `{v}`.", stage)
            key = share_key(
                state.enc_private,
                state.peers[v].enc_public,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                sender=v,
                recipient=self.client_id,
            )
            held[v] = decrypt_shares(
                key,
                item.ciphertext,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                sender=v,
                recipient=self.client_id,
            )
        if len(held) + 1 < setup.share_threshold:
            raise self._fail(
                Reason.BELOW_THRESHOLD,
                f"{len(held) + 1} clients shared keys around this client, `share_threshold` is "
                f"{setup.share_threshold}.",
                stage,
            )
        add = [
            self_mask_key(
                state.seed,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                owner=self.client_id,
            )
        ]
        subtract: List[bytes] = []
        for v in sorted(held):
            key = pair_mask_key(
                state.mask_private,
                state.peers[v].mask_public,
                experiment_id=setup.experiment_id,
                round_id=setup.round_id,
                me=self.client_id,
                peer=v,
            )
            (add if pair_sign(self.client_id, v) > 0 else subtract).append(key)
        masked = np.array(encoded, dtype=encoded.dtype, copy=True)
        apply_masks(masked, add=add, subtract=subtract)
        message = MaskedInput.signed(
            self._identity,
            experiment_id=setup.experiment_id,
            round_id=setup.round_id,
            client_id=self.client_id,
            vector=masked,
        )
        state.held.update(held)
        state.seed = b""  # its shares are out; the client needs it no more
        state.expecting = Stage.UNMASK
        return message

    # -- stage 3 ---------------------------------------------------------------------------

    def unmask(self, request: UnmaskRequest) -> UnmaskShares:
        """Reveal seed shares of surviving and masking-key shares of dropped neighbours.

        Never both for one client: a neighbour is either in ``request.survivors`` or not.
        """
        stage = Stage.UNMASK
        state = self._current(stage, request.experiment_id, request.round_id, request.recipient)
        setup = state.setup
        survivors = set(request.survivors)
        if len(survivors) != len(request.survivors):
            raise self._reject(Reason.DUPLICATE, "`survivors` repeats a client.", stage)
        if self.client_id not in survivors:
            raise self._reject(
                Reason.INCONSISTENT,
                "this client sent a masked input but is not among the survivors.",
                stage,
            )
        strangers = sorted((survivors & state.neighbours) - set(state.held))
        if strangers or not survivors <= set(setup.participants):
            raise self._reject(
                Reason.INCONSISTENT,
                f"survivors include clients that did not share keys: {strangers[:5]}.",
                stage,
            )
        owners = sorted(state.held)  # neighbours that shared keys, and this client
        alive = [v for v in owners if v in survivors]
        needed = setup.threshold if setup.complete else setup.share_threshold
        count = len(survivors) if setup.complete else len(alive)
        if count < needed:
            raise self._fail(
                Reason.BELOW_THRESHOLD, f"{count} survivors, the threshold is {needed}.", stage
            )
        message = UnmaskShares.signed(
            self._identity,
            experiment_id=setup.experiment_id,
            round_id=setup.round_id,
            client_id=self.client_id,
            seed_shares=[RevealedShare(owner=v, value=state.held[v].seed) for v in alive],
            mask_key_shares=[
                RevealedShare(owner=v, value=state.held[v].mask_key)
                for v in owners
                if v not in survivors
            ],
        )
        self._round = None  # the round is over for this client; forget its secrets
        return message
