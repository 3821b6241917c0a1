"""`testbed bench secagg`: one secure-aggregation round at a given size, timed and measured.

N clients with random float32 updates of length D run a full round through the serialised
messages (the in-process driver of :mod:`controller.secagg.driver`) while the server runs in a
separate process, as it does in the testbed, so its peak resident memory is its own. A fraction
of the clients drops out (by default all just before sending their masked input, the case that
costs the server most: it must rebuild every pairwise mask between a dropped client and a
survivor). The process and the server pin themselves to one CPU core.
"""

from __future__ import annotations

import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

import typer

_DROP_STAGES = ("advertise_keys", "share_keys", "masked_input", "unmask", "spread")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _serve(fd: int) -> None:
    """Server process: build the server from the first message, then run its methods."""
    from multiprocessing.connection import Connection

    from controller.secagg import SecAggServer
    from protocol.secagg import RoundSetup

    conn = Connection(fd)
    setup_json, identities = conn.recv()
    server = SecAggServer(RoundSetup.from_bytes(setup_json), identities)
    base_mb = _rss_mb()
    while True:
        method, args = conn.recv()
        if method == "stop":
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            conn.send(("ok", {"base_mb": base_mb, "peak_mb": peak_mb, **server.timings}))
            return
        try:
            value = server.result if method == "result" else getattr(server, method)(*args)
        except Exception as err:
            conn.send(("err", err))
        else:
            conn.send(("ok", value))


class _RemoteServer:
    """A SecAggServer in a child interpreter, behind the byte-level ServerEndpoint methods.

    A fresh ``python -c`` process (not multiprocessing's spawn, which would re-import the
    ``testbed`` entry point), so its resident memory is the server's alone.
    """

    def __init__(self, setup_json: bytes, identities: dict[str, bytes]) -> None:
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        code = f"from {__name__} import _serve; _serve({theirs.fileno()})"
        self._proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()])
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send((setup_json, identities))

    def _call(self, method: str, *args: Any) -> Any:
        self._conn.send((method, args))
        status, value = self._conn.recv()
        if status == "err":
            raise value
        return value

    def expected(self, stage: Any) -> list[str]:
        return self._call("expected", stage)

    def outbox_bytes(self, stage: Any, client_id: str) -> bytes:
        return self._call("outbox_bytes", stage, client_id)

    def receive(self, stage: Any, body: bytes) -> str:
        return self._call("receive", stage, body)

    def advance(self) -> Any:
        return self._call("advance")

    @property
    def result(self) -> Any:
        return self._call("result")

    def stop(self) -> dict[str, float]:
        stats = self._call("stop")
        self._conn.close()
        self._proc.wait(timeout=30)
        return stats


def _dropouts(ids: list[str], fraction: float, where: str, seed: int) -> dict[str, list[str]]:
    import numpy as np

    count = round(fraction * len(ids))
    chosen = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:count]]
    if where != "spread":
        return {where: chosen}
    stages = _DROP_STAGES[:4]
    return {s: chosen[i :: len(stages)] for i, s in enumerate(stages)}


def secagg(
    clients: int = typer.Option(100, "--clients", min=2, help="Participants N."),
    dim: int = typer.Option(1_000_000, "--dim", min=1, help="Vector length D."),
    dropout: float = typer.Option(0.3, "--dropout", min=0.0, max=0.99, help="Fraction dropped."),
    neighbours: int | None = typer.Option(
        None, "--neighbours", min=2, help="k of a k-regular graph (SecAgg+); default complete."
    ),
    drop_stage: str = typer.Option(
        "masked_input", "--drop-stage", help=f"Where clients drop out: {', '.join(_DROP_STAGES)}."
    ),
    threshold: int | None = typer.Option(None, "--threshold", help="Default ceil(2N/3)."),
    clip: float = typer.Option(1.0, "--clip", help="Clipping bound per coordinate."),
    fraction_bits: int = typer.Option(16, "--fraction-bits", help="Fixed-point fraction bits."),
    seed: int = typer.Option(0, "--seed"),
    one_core: bool = typer.Option(
        True, "--one-core/--all-cores", help="Pin this process and the server to one CPU core."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run one masked round; report exactness, times, bytes and the server's peak memory."""
    import numpy as np

    from controller.secagg import run_round
    from edge_agent.secagg import SecAggClient
    from protocol.secagg import (
        IdentityKey,
        RoundFailedError,
        RoundSetup,
        SecAggError,
        Stage,
        encode,
        ring_dtype,
    )

    if drop_stage not in _DROP_STAGES:
        raise typer.BadParameter(
            f"must be one of {', '.join(_DROP_STAGES)}", param_hint="--drop-stage"
        )
    if one_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core; the child inherits
    ids = [f"ue{i:04d}" for i in range(clients)]
    keys = {u: IdentityKey.generate() for u in ids}
    roster = {u: k.public_bytes for u, k in keys.items()}
    try:
        setup = RoundSetup.create(
            experiment_id="bench-secagg",
            round_id=1,
            participants=ids,
            dim=dim,
            threshold=threshold,
            neighbours=neighbours,
            clip=clip,
            fraction_bits=fraction_bits,
        )
    except (SecAggError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        raise typer.BadParameter(str(err)) from None
    agents = {u: SecAggClient(u, keys[u], roster) for u in ids}
    reference = np.zeros(dim, dtype=ring_dtype(setup.ring_bits))
    plain_sum = np.zeros(dim, dtype=np.float64)
    encoded_by: list[str] = []
    encode_s: list[float] = []

    def input_of(u: str) -> np.ndarray:
        rng = np.random.default_rng([seed, ids.index(u)])
        update = rng.normal(0.0, 0.25 * clip, dim).astype(np.float32)
        start = time.perf_counter()
        x = encode(update, setup.clip, setup.fraction_bits, ring_bits=setup.ring_bits, rng=rng)
        encode_s.append(time.perf_counter() - start)
        np.add(reference, x, out=reference)
        np.add(plain_sum, np.clip(update, -clip, clip), out=plain_sum)
        encoded_by.append(u)
        return x

    drops = _dropouts(ids, dropout, drop_stage, seed)
    server = _RemoteServer(setup.to_bytes(), roster)
    start = time.perf_counter()
    try:
        report = run_round(
            server, agents, input_of, dropouts={Stage(s): v for s, v in drops.items()}
        )
    except RoundFailedError as err:
        server.stop()
        failed = {"exact": False, "failed": err.reason.value, "error": str(err)}
        typer.echo(json.dumps(failed) if as_json else f"round failed: {err}")
        raise typer.Exit(code=1) from None
    stats = server.stop()
    wall = time.perf_counter() - start
    result = report.result
    finishers = [u for u in result.survivors if u in report.client_seconds[Stage.UNMASK]]
    up = sum(report.uplink_bytes[u] for u in finishers) / max(1, len(finishers))
    down = sum(report.downlink_bytes[u] for u in finishers) / max(1, len(finishers))

    def mean_s(stage: Stage) -> float:
        times = list(report.client_seconds[stage].values())
        return sum(times) / len(times) if times else 0.0

    out = {
        "clients": clients,
        "dim": dim,
        "dropout": dropout,
        "drop_stage": drop_stage,
        "neighbours": setup.neighbours,
        "threshold": setup.threshold,
        "share_threshold": setup.share_threshold,
        "ring_bits": setup.ring_bits,
        "survivors": result.count,
        "exact": bool(
            sorted(encoded_by) == list(result.survivors) and np.array_equal(reference, result.total)
        ),
        "max_abs_error": float(np.max(np.abs(result.sum() - plain_sum))) if dim else 0.0,
        "error_bound": result.count * 2.0**-setup.fraction_bits,
        "client_encode_s": sum(encode_s) / max(1, len(encode_s)),
        "client_advertise_s": mean_s(Stage.ADVERTISE_KEYS),
        "client_share_s": mean_s(Stage.SHARE_KEYS),
        "client_mask_s": mean_s(Stage.MASKED_INPUT),
        "client_mask_max_s": max(report.client_seconds[Stage.MASKED_INPUT].values(), default=0.0),
        "client_unmask_s": mean_s(Stage.UNMASK),
        "server_add_s": stats["add_s"],
        "server_unmask_s": stats["unmask_s"],
        "bytes_per_client": math.ceil(up),
        "downlink_bytes_per_client": math.ceil(down),
        "plain_bytes": 4 * dim,
        "bytes_ratio": up / (4 * dim),
        "server_base_rss_mb": round(stats["base_mb"], 1),
        "server_peak_rss_mb": round(stats["peak_mb"], 1),
        "wall_s": wall,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    for key, value in out.items():
        typer.echo(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")
