"""The secure-aggregation server: a stage-by-stage state machine driven by the round engine.

The round engine relays messages and decides when a stage closes (all answered, or the
deadline passed); this object checks every message and keeps the state::

    server = SecAggServer(setup, identities)
    for stage in CLIENT_STAGES:
        for u in server.expected(stage):           # who may answer this stage
            send(u, server.outbox_bytes(stage, u))   # what client u needs for it
        for body in answers_until_deadline():
            server.receive(stage, body)              # MessageRejectedError: answer 4xx with .reason
        server.advance()                             # RoundFailedError below the threshold
    result = server.result                           # the exact sum of the survivors' inputs

Masked inputs are added into one ``[D]`` accumulator as they arrive, so memory is O(D) in the
vector size (plus O(U^2) small ciphertexts and shares), never O(U * D).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from protocol.secagg import shamir
from protocol.secagg.errors import MessageRejectedError, Reason, RoundFailedError
from protocol.secagg.keys import agree, generate_x25519, private_from_bytes, public_to_bytes
from protocol.secagg.masking import pair_mask_key, pair_sign, seed_commitment, self_mask_key
from protocol.secagg.messages import (
    AdvertiseKeys,
    ForwardedShare,
    KeysBroadcast,
    MaskedInput,
    RoundSetup,
    ShareKeys,
    SharesForward,
    UnmaskRequest,
    UnmaskShares,
)
from protocol.secagg.prg import apply_masks
from protocol.secagg.quantization import decode_mean, decode_sum, ring_dtype
from protocol.secagg.stages import CLIENT_STAGES, Stage

__all__ = ["AggregateResult", "SecAggServer", "ServerMessage"]

ServerMessage = RoundSetup | KeysBroadcast | SharesForward | UnmaskRequest
_PARSERS: dict[Stage, type[AdvertiseKeys] | type[ShareKeys] | type[UnmaskShares]] = {
    Stage.ADVERTISE_KEYS: AdvertiseKeys,
    Stage.SHARE_KEYS: ShareKeys,
    Stage.UNMASK: UnmaskShares,
}


@dataclass(frozen=True)
class AggregateResult:
    """The outcome of a round.

    Attributes:
        total: ``[D]`` uint32/uint64, the sum mod 2^k of the encoded inputs of ``survivors``.
        survivors: the clients whose inputs are in ``total`` (sorted).
        fraction_bits: fixed-point fraction bits of the encoding.
    """

    total: npt.NDArray[np.unsignedinteger]
    survivors: tuple[str, ...]
    fraction_bits: int

    @property
    def count(self) -> int:
        """How many inputs were summed."""
        return len(self.survivors)

    def sum(self) -> npt.NDArray[np.float64]:
        """``[D]`` float64: the sum of the survivors' quantised inputs."""
        return decode_sum(self.total, self.fraction_bits)

    def mean(self) -> npt.NDArray[np.float64]:
        """``[D]`` float64: their mean."""
        return decode_mean(self.total, self.fraction_bits, self.count)


@dataclass
class _State:
    """Who has answered which stage, and what the server holds."""

    answered: dict[Stage, set[str]] = field(
        default_factory=lambda: {stage: set() for stage in CLIENT_STAGES}
    )
    adverts: dict[str, AdvertiseKeys] = field(default_factory=dict)
    commitments: dict[str, bytes] = field(default_factory=dict)
    inbox: dict[str, list[ForwardedShare]] = field(default_factory=dict)
    seed_shares: dict[str, dict[int, int]] = field(default_factory=dict)
    mask_key_shares: dict[str, dict[int, int]] = field(default_factory=dict)


class SecAggServer:
    """Server side of one secure-aggregation round.

    Args:
        setup: the round parameters (see :meth:`RoundSetup.create`).
        identities: enrolled Ed25519 public keys (raw 32 bytes) by client id; every participant
            must have one.
    """

    def __init__(self, setup: RoundSetup, identities: Mapping[str, bytes]) -> None:
        missing = [u for u in setup.participants if u not in identities]
        if missing:
            raise ValueError(f"`identities` lacks the participants {missing[:5]}.")
        self.setup = setup
        self.stage = Stage.ADVERTISE_KEYS
        self.timings: dict[str, float] = {"add_s": 0.0, "unmask_s": 0.0}
        """Seconds spent adding masked inputs and unmasking (reconstruction and PRGs)."""
        self._identities = {u: identities[u] for u in setup.participants}
        self._graph = setup.graph()
        self._s = _State()
        self._acc = np.zeros(setup.dim, dtype=ring_dtype(setup.ring_bits))
        self._result: AggregateResult | None = None
        self._probe, _ = generate_x25519()  # checks adverts for low-order keys

    # -- queries ---------------------------------------------------------------------------

    def answered(self, stage: Stage) -> list[str]:
        """Clients whose message for ``stage`` was accepted (U1..U4), sorted."""
        return sorted(self._s.answered[Stage(stage)])

    def expected(self, stage: Stage) -> list[str]:
        """Clients that may answer ``stage``: those that answered the stage before it."""
        index = CLIENT_STAGES.index(Stage(stage))
        if index == 0:
            return list(self.setup.participants)
        return self.answered(CLIENT_STAGES[index - 1])

    def pending(self) -> list[str]:
        """Clients that may still answer the current stage."""
        if self.stage not in CLIENT_STAGES:
            return []
        return sorted(set(self.expected(self.stage)) - self._s.answered[self.stage])

    @property
    def result(self) -> AggregateResult:
        """The unmasked sum, once the round is done."""
        if self._result is None:
            raise RuntimeError(f"the round is not done (stage {self.stage.value}).")
        return self._result

    # -- server to client ------------------------------------------------------------------

    def outbox(self, stage: Stage, client_id: str) -> ServerMessage:
        """What ``client_id`` needs to do ``stage`` (the current stage).

        Raises:
            MessageRejectedError: ``wrong_stage`` for another stage, ``not_in_round`` for a client
                that did not answer the stage before.
        """
        stage = Stage(stage)
        if stage != self.stage:
            raise MessageRejectedError(
                Reason.WRONG_STAGE, f"the round is at {self.stage.value}.", stage=stage.value
            )
        if client_id not in self.expected(stage):
            raise MessageRejectedError(
                Reason.NOT_IN_ROUND,
                "not expected at this stage.",
                client_id=client_id,
                stage=stage.value,
            )
        exp, rnd = self.setup.experiment_id, self.setup.round_id
        if stage is Stage.ADVERTISE_KEYS:
            return self.setup
        if stage is Stage.SHARE_KEYS:
            peers = sorted(self._graph[client_id] & self._s.answered[Stage.ADVERTISE_KEYS])
            return KeysBroadcast(
                experiment_id=exp,
                round_id=rnd,
                recipient=client_id,
                advertisements=[self._s.adverts[v] for v in peers],
            )
        if stage is Stage.MASKED_INPUT:
            return SharesForward(
                experiment_id=exp,
                round_id=rnd,
                recipient=client_id,
                shares=self._s.inbox.get(client_id, []),
            )
        return UnmaskRequest(
            experiment_id=exp,
            round_id=rnd,
            recipient=client_id,
            survivors=self.answered(Stage.MASKED_INPUT),
        )

    def outbox_bytes(self, stage: Stage, client_id: str) -> bytes:
        """:meth:`outbox` serialised (JSON)."""
        return self.outbox(stage, client_id).to_bytes()

    # -- client to server ------------------------------------------------------------------

    def receive(self, stage: Stage, body: bytes) -> str:
        """Parse and accept one client message for ``stage``; returns the sender's id.

        Raises:
            MessageRejectedError: with the reason; the server's state is unchanged.
        """
        stage = Stage(stage)
        if stage is Stage.MASKED_INPUT:
            masked = MaskedInput.from_bytes(body)
            self.receive_masked_input(masked)
            return masked.client_id
        if stage not in _PARSERS:
            raise MessageRejectedError(Reason.WRONG_STAGE, f"no client messages in {stage.value}.")
        message = _PARSERS[stage].from_bytes(body)
        if isinstance(message, AdvertiseKeys):
            self.receive_advertise_keys(message)
        elif isinstance(message, ShareKeys):
            self.receive_share_keys(message)
        else:
            self.receive_unmask(message)
        return message.client_id

    def _admit(
        self,
        stage: Stage,
        experiment_id: str,
        round_id: int,
        client_id: str,
    ) -> None:
        """Checks common to every client message, cheapest first (signatures come after)."""

        def reject(reason: Reason, detail: str) -> MessageRejectedError:
            return MessageRejectedError(reason, detail, client_id=client_id, stage=stage.value)

        if experiment_id != self.setup.experiment_id:
            raise reject(Reason.WRONG_EXPERIMENT, f"experiment `{experiment_id}`.")
        if round_id != self.setup.round_id:
            raise reject(Reason.WRONG_ROUND, f"round {round_id}, this is {self.setup.round_id}.")
        if client_id not in self._identities:
            raise reject(Reason.UNKNOWN_CLIENT, "not a participant of this round.")
        if self.stage not in CLIENT_STAGES or CLIENT_STAGES.index(stage) < CLIENT_STAGES.index(
            self.stage
        ):
            raise reject(Reason.LATE, f"the round is at {self.stage.value}.")
        if stage != self.stage:
            raise reject(Reason.WRONG_STAGE, f"the round is at {self.stage.value}.")
        if client_id in self._s.answered[stage]:
            raise reject(Reason.DUPLICATE, "already answered this stage.")
        if client_id not in self.expected(stage):
            raise reject(Reason.NOT_IN_ROUND, "did not answer the stage before (dropped).")

    def receive_advertise_keys(self, message: AdvertiseKeys) -> None:
        """Stage 0: a client's signed X25519 public keys."""
        u, stage = message.client_id, Stage.ADVERTISE_KEYS
        self._admit(stage, message.experiment_id, message.round_id, u)
        message.verify(self._identities[u])
        if message.enc_public == message.mask_public:
            raise MessageRejectedError(
                Reason.BAD_PUBLIC_KEY,
                "the two public keys must differ.",
                client_id=u,
                stage=stage.value,
            )
        for public in (message.enc_public, message.mask_public):
            agree(self._probe, public)  # low-order point: SecAggError(bad_public_key)
        self._s.adverts[u] = message
        self._s.answered[stage].add(u)

    def receive_share_keys(self, message: ShareKeys) -> None:
        """Stage 1: encrypted shares for exactly the sender's neighbours that advertised."""
        u, stage = message.client_id, Stage.SHARE_KEYS
        self._admit(stage, message.experiment_id, message.round_id, u)
        message.verify(self._identities[u])
        recipients = [s.recipient for s in message.shares]
        wanted = self._graph[u] & self._s.answered[Stage.ADVERTISE_KEYS]
        if len(set(recipients)) != len(recipients) or set(recipients) != wanted:
            raise MessageRejectedError(
                Reason.BAD_RECIPIENTS,
                f"shares must go to exactly the {len(wanted)} neighbours that advertised keys.",
                client_id=u,
                stage=stage.value,
            )
        self._s.commitments[u] = message.seed_commitment
        for share in message.shares:
            self._s.inbox.setdefault(share.recipient, []).append(
                ForwardedShare(sender=u, ciphertext=share.ciphertext)
            )
        self._s.answered[stage].add(u)

    def receive_masked_input(self, message: MaskedInput) -> None:
        """Stage 2: a masked input, added into the accumulator at once."""
        header, stage = message.header, Stage.MASKED_INPUT
        u = header.client_id
        self._admit(stage, header.experiment_id, header.round_id, u)
        if header.ring_bits != self.setup.ring_bits or header.dim != self.setup.dim:
            raise MessageRejectedError(
                Reason.BAD_LENGTH,
                f"vector of {header.dim} x {header.ring_bits} bits; the round wants "
                f"{self.setup.dim} x {self.setup.ring_bits}.",
                client_id=u,
                stage=stage.value,
            )
        message.verify(self._identities[u])
        start = time.perf_counter()
        np.add(self._acc, message.vector(), out=self._acc)
        self.timings["add_s"] += time.perf_counter() - start
        self._s.answered[stage].add(u)

    def receive_unmask(self, message: UnmaskShares) -> None:
        """Stage 3: seed shares of survivors and masking-key shares of dropped clients."""
        u, stage = message.client_id, Stage.UNMASK
        self._admit(stage, message.experiment_id, message.round_id, u)
        message.verify(self._identities[u])
        survivors = self._s.answered[Stage.MASKED_INPUT]
        owners = (self._graph[u] | {u}) & self._s.answered[Stage.SHARE_KEYS]
        want_seed, want_key = owners & survivors, owners - survivors
        got_seed = [s.owner for s in message.seed_shares]
        got_key = [s.owner for s in message.mask_key_shares]
        if sorted(got_seed) != sorted(want_seed) or sorted(got_key) != sorted(want_key):
            raise MessageRejectedError(
                Reason.BAD_SHARES,
                "seed shares must cover exactly the surviving, key shares exactly the dropped "
                "clients the sender holds shares of.",
                client_id=u,
                stage=stage.value,
            )
        try:
            seeds = {s.owner: shamir.decode_share(s.value) for s in message.seed_shares}
            keys = {s.owner: shamir.decode_share(s.value) for s in message.mask_key_shares}
        except ValueError as err:
            raise MessageRejectedError(
                Reason.BAD_SHARES, str(err), client_id=u, stage=stage.value
            ) from None
        x = self.setup.x_of(u)
        for owner, value in seeds.items():
            self._s.seed_shares.setdefault(owner, {})[x] = value
        for owner, value in keys.items():
            self._s.mask_key_shares.setdefault(owner, {})[x] = value
        self._s.answered[stage].add(u)

    # -- stage transitions -----------------------------------------------------------------

    def advance(self) -> Stage:
        """Close the current stage and move to the next (or finish the round).

        Raises:
            RoundFailedError: ``below_threshold`` when fewer than ``threshold`` clients answered, or
                ``reconstruction_failed`` when shares do not give back a committed secret;
                the server is then in :attr:`Stage.FAILED`.
        """
        stage = self.stage
        if stage not in CLIENT_STAGES:
            raise RuntimeError(f"the round is over (stage {stage.value}).")
        count = len(self._s.answered[stage])
        if count < self.setup.threshold:
            raise self._failed(
                Reason.BELOW_THRESHOLD,
                f"{count} of {len(self.expected(stage))} clients answered {stage.value}; the "
                f"threshold is {self.setup.threshold}.",
            )
        if stage is Stage.UNMASK:
            start = time.perf_counter()
            self._unmask()
            self.timings["unmask_s"] += time.perf_counter() - start
            self.stage = Stage.DONE
        else:
            self.stage = CLIENT_STAGES[CLIENT_STAGES.index(stage) + 1]
        if self.stage is Stage.MASKED_INPUT:  # shares addressed to U1 \ U2 are never sent
            for box in self._s.inbox.values():
                box.sort(key=lambda share: share.sender)
        return self.stage

    def _failed(self, reason: Reason, detail: str) -> RoundFailedError:
        stage = self.stage
        self.stage = Stage.FAILED
        self._acc = np.zeros(0, dtype=self._acc.dtype)
        return RoundFailedError(reason, detail, stage=stage.value)

    def _reconstruct(self, owner: str, shares: dict[int, int], what: str) -> bytes:
        need = self.setup.share_threshold
        if len(shares) < need:
            raise self._failed(
                Reason.BELOW_THRESHOLD,
                f"{len(shares)} shares of the {what} of `{owner}` came back; "
                f"`share_threshold` is {need}.",
            )
        try:
            return shamir.combine(shares, need)
        except ValueError:
            raise self._failed(
                Reason.RECONSTRUCTION_FAILED, f"shares of the {what} of `{owner}` disagree."
            ) from None

    def _unmask(self) -> None:
        """Remove the survivors' own masks and the dropped clients' pairwise masks."""
        setup = self.setup
        exp, rnd = setup.experiment_id, setup.round_id
        survivors = self._s.answered[Stage.MASKED_INPUT]
        dropped = self._s.answered[Stage.SHARE_KEYS] - survivors
        add: list[bytes] = []
        subtract: list[bytes] = []
        for v in sorted(survivors):
            seed = self._reconstruct(v, self._s.seed_shares.get(v, {}), "seed")
            commitment = seed_commitment(seed, experiment_id=exp, round_id=rnd, owner=v)
            if commitment != self._s.commitments[v]:
                raise self._failed(
                    Reason.RECONSTRUCTION_FAILED, f"seed of `{v}` does not match its commitment."
                )
            subtract.append(self_mask_key(seed, experiment_id=exp, round_id=rnd, owner=v))
        for v in sorted(dropped):
            partners = sorted(self._graph[v] & survivors)
            if not partners:
                continue
            raw = self._reconstruct(v, self._s.mask_key_shares.get(v, {}), "masking key")
            private = private_from_bytes(raw)
            if public_to_bytes(private) != self._s.adverts[v].mask_public:
                raise self._failed(
                    Reason.RECONSTRUCTION_FAILED,
                    f"masking key of `{v}` does not match its advertised public key.",
                )
            for u in partners:
                key = pair_mask_key(
                    private,
                    self._s.adverts[u].mask_public,
                    experiment_id=exp,
                    round_id=rnd,
                    me=v,
                    peer=u,
                )
                # u added +PRG when u < v: take it away again
                (subtract if pair_sign(u, v) > 0 else add).append(key)
        apply_masks(self._acc, add=add, subtract=subtract)
        self._result = AggregateResult(
            total=self._acc, survivors=tuple(sorted(survivors)), fraction_bits=setup.fraction_bits
        )
