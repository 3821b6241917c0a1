"""A seeded flood of hostile CSI through real ZeroMQ into the real subscriber and store.

100,000 messages of many kinds (garbage, bad JSON, wrong types, NaN, huge integers and floats,
deep nesting, wrong shapes, unknown APs and UEs, stale frames, bad frame counts, oversize payloads,
unicode junk) mixed with valid ones. Each message is built with the outcome the store must give
it, so the test checks every counter and every reason exactly; it also checks that the
subscriber survives, that memory stays bounded, and that libzmq's size limit (which drops the
publisher's connection) is followed by a reconnect.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil
import pytest
import zmq

from controller.csi import CSIStore, CSISubscriber
from controller.csi.subscriber import MAX_PART_BYTES
from protocol.csi import (
    INT64_MAX,
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_BYTES,
    MAX_UES,
    CSIMessage,
    encode_csi,
    encode_csi_multipart,
)

pytestmark = pytest.mark.slow

SEED = 20240917
N_MESSAGES = 100_000
UES = ("ue0", "ue1", "ue2", "ue3")
N_ANT = {"ap0": 2, "ap1": 2, "ap2": 4}
#: ap2 counts its frames just below the int64 limit.
FIRST_FRAME = {"ap0": 1, "ap1": 1, "ap2": INT64_MAX - 10**6}
#: Messages the sender may be ahead of the store (bounds the queues in libzmq).
WINDOW = 2000
#: Bound on the process's memory growth over the flood, bytes.
RSS_BOUND = 100 * 2**20

Frames = list[bytes]
#: ``(counter, reason)`` the store must give a message; ``("accepted", "")`` for a valid one.
Outcome = tuple[str, str]
ACCEPTED: Outcome = ("accepted", "")
GARBAGE: Outcome = ("malformed", "garbage")
FIELD: Outcome = ("malformed", "field")
SHAPE: Outcome = ("malformed", "shape")
NONFINITE: Outcome = ("malformed", "nonfinite")
VERSION: Outcome = ("malformed", "version")
OVERSIZE: Outcome = ("malformed", "oversize")
UNKNOWN_UE: Outcome = ("malformed", "unknown_ue")
UNKNOWN_AP: Outcome = ("unknown_ap", "unknown_ap")
STALE: Outcome = ("stale", "stale")
#: Every outcome: the flood must give each at least once.
OUTCOMES = {ACCEPTED, GARBAGE, FIELD, SHAPE, NONFINITE, VERSION, OVERSIZE}
OUTCOMES |= {UNKNOWN_UE, UNKNOWN_AP, STALE}


@dataclass
class Flood:
    """The generator's state: its random numbers and each AP's latest accepted frame."""

    rng: random.Random
    last: dict[str, int]
    #: valid ap0 payloads about every UE, the bases of the corrupted ones
    bases: list[bytes] = field(default_factory=list)
    messages: list[Frames] = field(default_factory=list)
    expected: Counter[Outcome] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, frames: Frames, outcome: Outcome) -> None:
        self.messages.append(frames)
        self.expected[outcome] += 1


# -- message builders -----------------------------------------------------------------------------
def _message(
    rng: random.Random, ap: str, frame: int, ues: tuple[str, ...], n_ant: int
) -> CSIMessage:
    k = len(ues)
    h = np.array([[complex(rng.gauss(0, 1), rng.gauss(0, 1)) for _ in range(n_ant)] for _ in ues])
    return CSIMessage(
        ap_id=ap,
        frame=frame,
        t_ns=rng.choice([0, INT64_MAX, rng.randrange(INT64_MAX)]),
        fc_hz=3.5e9,
        fs_hz=1e6,
        ue_ids=ues,
        h=h.reshape(k, n_ant),
        noise_var=rng.uniform(1e-14, 1e-12),
        snr_db=np.array([rng.uniform(-20, 40) for _ in ues]),
        est=rng.choice(["ls", "mmse"]),
    )


def _obj(f: Flood) -> dict[str, Any]:
    """A valid message of ap0 about every UE, as a JSON object to corrupt."""
    obj: dict[str, Any] = json.loads(f.rng.choice(f.bases))
    return obj


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _with(f: Flood, name: str, value: Any) -> Frames:
    """``[topic, payload]`` of a valid ap0 message with field ``name`` replaced by ``value``."""
    obj = _obj(f)
    obj[name] = value
    return [b"csi.ap0", _dump(obj)]


def _with_text(f: Flood, name: str, text: str) -> Frames:
    """As :func:`_with`, the field's value given as raw JSON text (``1e400``, 5000 digits)."""
    payload = _dump({**_obj(f), name: "@@"}).replace(b'"@@"', text.encode())
    return [b"csi.ap0", payload]


def _subset(rng: random.Random) -> tuple[str, ...]:
    return tuple(rng.sample(UES, rng.randint(1, len(UES))))


# -- kinds: each adds one message and the outcome it must get -----------------------------------
def valid(f: Flood) -> None:
    ap = f.rng.choice(sorted(N_ANT))
    frame = f.last[ap] + f.rng.randint(1, 3)
    f.last[ap] = frame
    msg = _message(f.rng, ap, frame, _subset(f.rng), N_ANT[ap])
    f.add(encode_csi_multipart(msg), ACCEPTED)


def valid_at_the_size_limit(f: Flood) -> None:
    topic, payload = encode_csi_multipart(_message(f.rng, "ap1", f.last["ap1"] + 1, UES, 2))
    f.last["ap1"] += 1
    f.add([topic, payload + b" " * (MAX_PAYLOAD_BYTES - len(payload))], ACCEPTED)


def garbage_bytes(f: Flood) -> None:
    f.add([b"csi.ap0", b"\x00" + f.rng.randbytes(f.rng.randint(0, 300))], GARBAGE)


def not_json(f: Flood) -> None:
    payload = _dump(_obj(f))
    texts = [
        b"",
        b"hello",
        b"{'ap_id': 'ap0'}",
        b"{",
        b"\xff\xfe" + payload,  # not UTF-8
        payload.replace(b'"ap0"', b'"\xc3\x28"'),  # invalid UTF-8 inside a string
        payload[: f.rng.randrange(len(payload))],  # cut short
        payload + b"}",
    ]
    f.add([b"csi.ap0", f.rng.choice(texts)], GARBAGE)


def not_an_object(f: Flood) -> None:
    payload = _dump(_obj(f))
    texts = [b"[]", b"1", b"null", b'"csi"', b"true", b"3.5e9", b"[" + payload + b"]"]
    f.add([b"csi.ap0", f.rng.choice(texts)], GARBAGE)


def missing_field(f: Flood) -> None:
    obj = _obj(f)
    del obj[f.rng.choice(sorted(obj))]
    f.add([b"csi.ap0", _dump(obj)], FIELD)


WRONG_TYPES: list[tuple[str, Any, Outcome]] = [
    ("v", "1", VERSION),
    ("v", None, VERSION),
    ("v", [1], VERSION),
    ("v", 2, VERSION),
    ("v", 1.0, FIELD),  # equal to 1, but not an integer
    ("ap_id", 0, FIELD),
    ("ap_id", None, FIELD),
    ("ap_id", ["ap0"], FIELD),
    ("frame", "7", FIELD),
    ("frame", 7.0, FIELD),
    ("frame", None, FIELD),
    ("frame", [7], FIELD),
    ("t_ns", "0", FIELD),
    ("t_ns", 1.5, FIELD),
    ("fc_hz", "3.5e9", FIELD),
    ("fc_hz", None, FIELD),
    ("fs_hz", [1e6], FIELD),
    ("noise_var", {}, FIELD),
    ("noise_var", 0.0, FIELD),
    ("noise_var", -1e-13, FIELD),
    ("n_ant", "2", FIELD),
    ("n_ant", 2.0, FIELD),
    ("ue_ids", "ue0", FIELD),
    ("ue_ids", {"ue0": 1}, FIELD),
    ("ue_ids", None, FIELD),
    ("ue_ids", [1, 2, 3, 4], FIELD),
    ("h", "nope", SHAPE),
    ("h", {}, SHAPE),
    ("h", None, SHAPE),
    ("h", 1.0, SHAPE),
    ("snr_db", "x", SHAPE),
    ("snr_db", None, SHAPE),
    ("snr_db", {"a": 1}, SHAPE),
    ("snr_db", ["1", "2", "3", "4"], FIELD),
    ("est", 1, FIELD),
    ("est", "zf", FIELD),
    ("est", None, FIELD),
]


def wrong_type(f: Flood) -> None:
    name, value, outcome = f.rng.choice(WRONG_TYPES)
    f.add(_with(f, name, value), outcome)


def wrong_entry_type(f: Flood) -> None:
    obj = _obj(f)
    u, n, part = f.rng.randrange(len(UES)), f.rng.randrange(2), f.rng.randrange(2)
    bad: Any = f.rng.choice(["0", None, [1.0], {"re": 1}])
    if f.rng.random() < 0.5:
        obj["h"][u][n][part] = bad
    else:
        obj["snr_db"][u] = bad
    f.add([b"csi.ap0", _dump(obj)], FIELD)


BOOLS: list[tuple[str, bool]] = [
    ("v", True),
    ("frame", True),
    ("t_ns", False),
    ("n_ant", True),
    ("fc_hz", True),
    ("fs_hz", True),
    ("noise_var", False),
]


def bool_as_number(f: Flood) -> None:
    if f.rng.random() < 0.7:
        name, value = f.rng.choice(BOOLS)
        f.add(_with(f, name, value), FIELD)
        return
    obj = _obj(f)
    if f.rng.random() < 0.5:
        obj["h"][1][0][1] = True
    else:
        obj["snr_db"][2] = False
    f.add([b"csi.ap0", _dump(obj)], FIELD)


def not_finite(f: Flood) -> None:
    value = f.rng.choice([float("nan"), float("inf"), -float("inf")])
    obj = _obj(f)
    where = f.rng.choice(["fc_hz", "fs_hz", "noise_var", "h", "snr_db", "text"])
    if where == "h":
        obj["h"][0][1][0] = value
    elif where == "snr_db":
        obj["snr_db"][3] = value
    elif where == "text":  # parses to inf
        f.add(_with_text(f, f.rng.choice(["fc_hz", "noise_var"]), "1e400"), NONFINITE)
        return
    else:
        obj[where] = value
    f.add([b"csi.ap0", _dump(obj)], NONFINITE)


HUGE: list[tuple[str, int, Outcome]] = [
    ("frame", 2**63, FIELD),
    ("frame", 10**400, FIELD),
    ("frame", -1, FIELD),
    ("frame", -(2**64), FIELD),
    ("t_ns", 2**63, FIELD),
    ("t_ns", -1, FIELD),
    ("t_ns", 10**400, FIELD),
    ("n_ant", 10**400, FIELD),
    ("n_ant", 0, FIELD),
    ("n_ant", 65, FIELD),
    ("fc_hz", 10**400, NONFINITE),  # float() of it overflows
    ("fs_hz", -(10**400), NONFINITE),
    ("noise_var", 10**309, NONFINITE),
]


def huge_integer(f: Flood) -> None:
    r = f.rng.random()
    if r < 0.6:
        name, value, outcome = f.rng.choice(HUGE)
        f.add(_with(f, name, value), outcome)
    elif r < 0.8:
        obj = _obj(f)
        if f.rng.random() < 0.5:
            obj["h"][2][1][1] = 10**400
        else:
            obj["snr_db"][0] = -(10**400)
        f.add([b"csi.ap0", _dump(obj)], NONFINITE)
    else:  # more digits than Python converts: not JSON to the parser
        f.add(_with_text(f, f.rng.choice(["frame", "fc_hz"]), "9" * 5000), GARBAGE)


#: Deeply nested payloads (shared: the flood holds each once): lists are not objects, or too
#: deep to parse; objects this deep are too deep to parse.
_DEEP = [b"[" * d + b"]" * d for d in (10, 900, 1000, 1100, 5000, 100_000)] + [
    b'{"a":' * d + b"1" + b"}" * d for d in (5000, 100_000)
]


def out_of_range_float(f: Flood) -> None:
    obj = _obj(f)
    where = f.rng.choice(["noise_var", "fc_hz", "fs_hz", "h", "snr_db"])
    big = f.rng.choice([1e101, -1e300, 1.7e308])
    if where == "h":
        obj["h"][3][0][f.rng.randrange(2)] = big
    elif where == "snr_db":
        obj["snr_db"][1] = big
    else:
        obj[where] = f.rng.choice([big, 1e-101, 5e-324, 0.0, -1.0])
    f.add([b"csi.ap0", _dump(obj)], FIELD)


def deep_nesting(f: Flood) -> None:
    if f.rng.random() < 0.5:
        f.add([b"csi.ap0", f.rng.choice(_DEEP)], GARBAGE)
    else:
        deep: Any = 1.0
        for _ in range(f.rng.randint(2, 200)):
            deep = [deep]
        name, outcome = f.rng.choice([("h", SHAPE), ("snr_db", FIELD), ("ue_ids", FIELD)])
        f.add(_with(f, name, deep), outcome)


def wrong_shape(f: Flood) -> None:
    obj = _obj(f)
    how = f.rng.randrange(8)
    if how == 0:
        obj["h"].append(obj["h"][0])  # K + 1 rows
    elif how == 1:
        obj["h"][1].pop()  # a row of n_ant - 1
    elif how == 2:
        obj["h"][0][0].append(0.0)  # [re, im, 0]
    elif how == 3:
        obj["snr_db"].pop()
    elif how == 4:
        obj["n_ant"] = 3
    elif how == 5:
        obj["h"] = []
    elif how == 6:
        obj["snr_db"] = []
    else:
        obj["ue_ids"] = obj["ue_ids"][:-1]
    f.add([b"csi.ap0", _dump(obj)], SHAPE)


def ue_count(f: Flood) -> None:
    obj = _obj(f)
    if f.rng.random() < 0.5:
        obj.update(ue_ids=[], h=[], snr_db=[])
    else:
        obj["ue_ids"] = [f"u{i}" for i in range(MAX_UES + 1)]
    f.add([b"csi.ap0", _dump(obj)], FIELD)


def unknown_ap(f: Flood) -> None:
    msg = _message(f.rng, f.rng.choice(["ap3", "ap9", "AP0", "ap00"]), 5, UES, 2)
    f.add(encode_csi_multipart(msg), UNKNOWN_AP)


def bad_topic(f: Flood) -> None:
    payload = _dump(_obj(f))
    r = f.rng.randrange(3)
    if r == 0:
        f.add([b"csi.ap1", payload], FIELD)  # names another AP
    elif r == 1:
        f.add([b"csi.\xff\xfe", payload], GARBAGE)
    else:
        f.add([b"csi." + b"a" * (MAX_TOPIC_BYTES + 1), payload], GARBAGE)


def unknown_ue(f: Flood) -> None:
    ap = f.rng.choice(sorted(N_ANT))
    ues = (*_subset(f.rng), f.rng.choice(["ue4", "ue9", "UE0", "ue00"]))
    msg = _message(f.rng, ap, f.last[ap] + 1, ues, N_ANT[ap])
    f.add(encode_csi_multipart(msg), UNKNOWN_UE)


def duplicate_ue(f: Flood) -> None:
    f.add(_with(f, "ue_ids", ["ue0", "ue1", "ue0", "ue2"]), FIELD)


def wrong_antenna_count(f: Flood) -> None:
    ap = f.rng.choice(sorted(N_ANT))
    n_ant = f.rng.choice([n for n in (1, 2, 3, 4, 64) if n != N_ANT[ap]])
    msg = _message(f.rng, ap, f.last[ap] + 1, _subset(f.rng), n_ant)
    f.add(encode_csi_multipart(msg), SHAPE)


def stale_frame(f: Flood) -> None:
    ap = f.rng.choice(sorted(N_ANT))
    frame = max(0, f.last[ap] - f.rng.choice([0, 1, f.rng.randint(2, 10**6)]))
    msg = _message(f.rng, ap, frame, _subset(f.rng), N_ANT[ap])
    f.add(encode_csi_multipart(msg), STALE)


def wrong_part_count(f: Flood) -> None:
    topic, payload = encode_csi_multipart(_message(f.rng, "ap0", f.last["ap0"] + 1, UES, 2))
    parts = [
        [topic],
        [topic, payload, b""],
        [topic, payload, payload],
        [topic, b""] + [payload] * f.rng.randint(1, 5),
        [topic] + [b""] * f.rng.randint(3, 50),
    ]
    f.add(f.rng.choice(parts), GARBAGE)


_OVERSIZE = [b" " * (MAX_PAYLOAD_BYTES + 1), b"{" * (MAX_PAYLOAD_BYTES + MAX_TOPIC_BYTES)]


def oversize(f: Flood) -> None:
    f.add([b"csi.ap0", f.rng.choice(_OVERSIZE)], OVERSIZE)


JUNK_IDS = ["ap0\u202e", "äp0", "ap\x000", "ap0\n", "\U0001f6f0", "a" * 65, "", "ap 0", "ap/0"]


def unicode_junk(f: Flood) -> None:
    r = f.rng.randrange(4)
    if r == 0:
        f.add(_with(f, "ap_id", f.rng.choice(JUNK_IDS)), FIELD)
    elif r == 1:
        ues = ["ue0", "ue1", "ue2", f.rng.choice([*JUNK_IDS, "ue\ud800"])]
        f.add(_with(f, "ue_ids", ues), FIELD)
    elif r == 2:
        f.add(_with(f, "est", f.rng.choice(["mmse\x00", "\u043c\u043c\u0441\u0435", "LS"])), FIELD)
    else:
        payload = json.dumps({**_obj(f), "ap_id": "\U0001f6f0"}, ensure_ascii=False).encode()
        f.add([b"csi.\xf0\x9f\x9b\xb0", payload], FIELD)


#: ``(kind, weight)``: the mix of the flood; valid ones are about 40 %.
KINDS: list[tuple[Callable[[Flood], None], float]] = [
    (valid, 40.0),
    (valid_at_the_size_limit, 0.005),
    (garbage_bytes, 4.0),
    (not_json, 4.0),
    (not_an_object, 3.0),
    (missing_field, 4.0),
    (wrong_type, 6.0),
    (wrong_entry_type, 3.0),
    (bool_as_number, 3.0),
    (not_finite, 4.0),
    (huge_integer, 4.0),
    (out_of_range_float, 2.0),
    (deep_nesting, 1.0),
    (wrong_shape, 4.0),
    (ue_count, 0.2),
    (unknown_ap, 3.0),
    (bad_topic, 2.0),
    (unknown_ue, 3.0),
    (duplicate_ue, 2.0),
    (wrong_antenna_count, 3.0),
    (stale_frame, 4.0),
    (wrong_part_count, 2.0),
    (oversize, 0.02),
    (unicode_junk, 3.0),
]


def make_flood(n: int, seed: int, last: dict[str, int]) -> Flood:
    """``n`` messages after each AP's ``last`` accepted frame, with their outcomes."""
    f = Flood(rng=random.Random(seed), last=dict(last))
    f.bases = [encode_csi(_message(f.rng, "ap0", i, UES, N_ANT["ap0"])) for i in range(256)]
    kinds, weights = zip(*KINDS, strict=True)
    for kind in f.rng.choices(kinds, weights=weights, k=n):
        kind(f)
        f.kinds[kind.__name__] += 1
    return f


# -- the ZeroMQ side ------------------------------------------------------------------------------
_KINDS = ("malformed", "unknown_ap", "stale")


def _counts(store: CSIStore) -> Counter[Outcome]:
    """The store's counters as outcomes: ``(kind, reason)`` per reason, ``(kind, "*")`` the
    kind's counter, ``("received", "")`` and ``ACCEPTED``."""
    c = store.counters
    out: Counter[Outcome] = Counter({("received", ""): c.received, ACCEPTED: c.accepted})
    out.update({(kind, "*"): getattr(c, kind) for kind in _KINDS})
    for reason, n in c.by_reason.items():
        out[(reason if reason in _KINDS else "malformed", reason)] = n
    return out


def _totals(expected: Counter[Outcome]) -> Counter[Outcome]:
    """``expected`` with the totals :func:`_counts` gives: per kind, and ``received``."""
    out = Counter(expected)
    for (kind, _), n in expected.items():
        if kind in _KINDS:
            out[(kind, "*")] += n
    out[("received", "")] = sum(expected.values())
    return out


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def _join(pub: zmq.Socket[bytes], store: CSIStore, last: dict[str, int]) -> None:
    """Send valid messages of every AP until each is accepted (the slow joiner); ``last``
    becomes each AP's latest accepted frame."""
    rng = random.Random(SEED - 1)
    for ap in sorted(N_ANT):
        for _ in range(500):
            last[ap] += 1
            pub.send_multipart(encode_csi_multipart(_message(rng, ap, last[ap], UES, N_ANT[ap])))
            if _wait(_has_latest(store, ap), 0.02):
                break
        latest = store.latest(ap)
        assert latest is not None, f"{ap}: the subscription never reached the publisher"
        assert latest.frame == last[ap]


def _has_latest(store: CSIStore, ap: str) -> Callable[[], bool]:
    return lambda: store.latest(ap) is not None


def _has_frame(store: CSIStore, ap: str, frame: int) -> Callable[[], bool]:
    return lambda: getattr(store.latest(ap), "frame", None) == frame


def _received(store: CSIStore, n: int) -> Callable[[], bool]:
    return lambda: store.counters.received >= n


def _store() -> CSIStore:
    return CSIStore(ap_ids=sorted(N_ANT), ue_ids=UES, n_ant=N_ANT, max_age_s=3600.0)


def _publisher() -> tuple[zmq.Socket[bytes], str]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)  # never drop: the sender paces itself instead
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    return pub, f"tcp://127.0.0.1:{port}"


def test_flood_of_hostile_csi_is_counted_exactly_and_never_fatal() -> None:
    pub, endpoint = _publisher()
    store = _store()
    sub = CSISubscriber([endpoint], store).start()
    proc = psutil.Process()
    try:
        last = {ap: f - 1 for ap, f in FIRST_FRAME.items()}
        _join(pub, store, last)
        flood = make_flood(N_MESSAGES, SEED, last)
        assert len(flood.messages) == N_MESSAGES
        assert len(flood.kinds) == len(KINDS)  # every kind is in the mix
        assert set(flood.expected) == OUTCOMES
        base = _counts(store)
        n0 = base[("received", "")]
        rss0 = peak = proc.memory_info().rss
        t0 = time.perf_counter()
        for sent, frames in enumerate(flood.messages, start=1):
            pub.send_multipart(frames)
            if sent % WINDOW == 0:  # pace: at most 2 windows ahead of the store
                assert _wait(_received(store, n0 + sent - WINDOW), 30.0), store.counters
                peak = max(peak, proc.memory_info().rss)
        assert _wait(_received(store, n0 + N_MESSAGES), 30.0), store.counters
        elapsed = time.perf_counter() - t0
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.1)  # nothing more may arrive

        got = _counts(store)
        got.subtract(base)
        assert {k: n for k, n in got.items() if n} == dict(_totals(flood.expected))
        c = store.counters
        assert c.received == c.accepted + c.malformed + c.unknown_ap + c.stale
        assert c.resets == 0
        assert sub.running
        assert sub.loop_errors == 0
        assert sub.reconnects == 0
        assert peak - rss0 < RSS_BOUND, f"memory grew by {(peak - rss0) / 2**20:.0f} MiB"
        snap = store.snapshot()
        assert snap.frame.tolist() == [flood.last[ap] for ap in snap.ap_ids]
        assert snap.frame[2] > INT64_MAX - 10**6  # near the int64 limit, carried exactly
        rate, grew = N_MESSAGES / elapsed, (peak - rss0) / 2**20
        print(f"\n{rate:.0f} messages/s through ZeroMQ into the store; RSS +{grew:.1f} MiB")
    finally:
        sub.stop()
        pub.close(linger=0)
    assert not sub.running


def _wait_accepted(pub: zmq.Socket[bytes], store: CSIStore, ap: str, frame: int) -> int:
    """Send valid messages of ``ap`` from ``frame`` on until one is accepted (after a
    reconnect); the accepted frame."""
    rng = random.Random(SEED + 1)
    for _ in range(500):
        frame += 1
        pub.send_multipart(encode_csi_multipart(_message(rng, ap, frame, UES, N_ANT[ap])))
        if _wait(_has_frame(store, ap, frame), 0.02):
            return frame
    raise AssertionError(f"{ap}: no message accepted after frame {frame}")


def test_part_over_the_zeromq_limit_is_dropped_and_the_subscriber_reconnects() -> None:
    pub, endpoint = _publisher()
    store = _store()
    sub = CSISubscriber([endpoint], store).start()
    try:
        last = {ap: f - 1 for ap, f in FIRST_FRAME.items()}
        _join(pub, store, last)
        before = store.counters
        pub.send_multipart([b"csi.ap0", b" " * (MAX_PART_BYTES + 1)])  # libzmq drops it
        pub.send_multipart([b"csi.ap0", b" " * (8 * MAX_PART_BYTES)])
        frame = _wait_accepted(pub, store, "ap0", last["ap0"])
        assert _wait(lambda: sub.reconnects >= 1, 2.0)
        c = store.counters
        assert "oversize" not in c.by_reason  # never reached the store
        assert c.received == c.accepted + c.malformed + c.unknown_ap + c.stale
        assert c.accepted > before.accepted
        assert store.snapshot().frame[0] == frame
        assert sub.running
        assert sub.loop_errors == 0
    finally:
        sub.stop()
        pub.close(linger=0)
    assert not sub.running


def test_message_of_many_parts_is_one_garbage_message_in_bounded_memory() -> None:
    pub, endpoint = _publisher()
    store = _store()
    sub = CSISubscriber([endpoint], store).start()
    proc = psutil.Process()
    try:
        last = {ap: f - 1 for ap, f in FIRST_FRAME.items()}
        _join(pub, store, last)
        base = _counts(store)
        rss0 = proc.memory_info().rss
        pub.send_multipart([b"csi.ap0"] + [b"x" * 16] * 200_000)
        last["ap0"] += 1
        msg = _message(random.Random(SEED), "ap0", last["ap0"], UES, N_ANT["ap0"])
        pub.send_multipart(encode_csi_multipart(msg))  # after it, on the same connection
        assert _wait(_received(store, base[("received", "")] + 2), 10.0), store.counters
        got = _counts(store)
        got.subtract(base)
        want = _totals(Counter({GARBAGE: 1, ACCEPTED: 1}))
        assert {k: n for k, n in got.items() if n} == dict(want)
        assert proc.memory_info().rss - rss0 < RSS_BOUND
        assert sub.running
        assert sub.reconnects == 0
    finally:
        sub.stop()
        pub.close(linger=0)


def test_snapshot_carries_the_largest_frame_and_the_store_rejects_the_next() -> None:
    store = _store()
    rng = random.Random(SEED)
    top = _message(rng, "ap2", INT64_MAX, UES, N_ANT["ap2"])
    assert store.ingest_multipart(encode_csi_multipart(top))
    obj = json.loads(encode_csi(top))
    assert not store.ingest_multipart([b"csi.ap2", _dump({**obj, "frame": INT64_MAX + 1})])
    over = CSIMessage(**{**top.__dict__, "ap_id": "ap0", "frame": INT64_MAX + 1})
    assert not store.ingest(over)
    snap = store.snapshot()
    assert snap.frame.tolist() == [-1, -1, INT64_MAX]
    assert int(snap.frame[2]) == INT64_MAX
    np.testing.assert_array_equal(snap.h[2], top.h.T)  # antenna x UE
    c = store.counters
    assert (c.received, c.accepted, c.malformed) == (3, 1, 2)
    assert c.by_reason == {"field": 2}


@pytest.mark.parametrize(
    "frames",
    [
        None,
        42,
        "ab",
        [1, 2],
        [b"csi.ap0", 12345],  # bytes(12345) would allocate 12 kB of zeros
        [b"csi.ap0", 10**12],  # ... and this one 1 TB
        [memoryview(b"csi.ap0"), memoryview(b"{}")],
        [b"csi.ap0", np.zeros(3)],
        (x for x in [b"csi.ap0", b"{}"]),
    ],
)
def test_store_never_raises_on_what_is_not_a_message(frames: Any) -> None:
    store = _store()
    assert not store.ingest_multipart(frames)
    assert not store.ingest(frames)
    c = store.counters
    assert c.received == c.malformed == 2
    assert set(c.by_reason) <= {"garbage", "field", "internal"}


def test_a_store_that_learns_ids_learns_a_bounded_number() -> None:
    store = CSIStore(ap_ids=None, ue_ids=None, max_age_s=3600.0)
    rng = random.Random(SEED)
    for i in range(300):  # 300 APs, each naming 20 new UEs: 6000 UEs in all
        ues = tuple(f"ue{20 * i + j}" for j in range(20))
        store.ingest_multipart(encode_csi_multipart(_message(rng, f"ap{i}", 1, ues, 1)))
    c = store.counters
    assert c.accepted == MAX_UES // 20  # until the UEs are all learnt
    assert c.by_reason == {"unknown_ue": 300 - MAX_UES // 20}
    assert store.snapshot().h.shape == (MAX_UES // 20, 1, MAX_UES - MAX_UES % 20)
    for i in range(300, 600):  # known UEs, new APs
        store.ingest_multipart(encode_csi_multipart(_message(rng, f"ap{i}", 1, ("ue0",), 1)))
    assert len(store.snapshot().ap_ids) == 256
    c = store.counters
    assert c.received == 600 == c.accepted + c.malformed + c.unknown_ap + c.stale
    assert c.accepted == 256  # the APs of the accepted messages
    assert c.unknown_ap == 300 - (256 - MAX_UES // 20)
