"""SigMF recordings of what each AP received, and the collection of one experiment's APs.

:class:`ApRecorder` taps an AP flowgraph's source: the antennas' streams are interleaved
(``blocks.interleave``) and written by ``blocks.file_sink`` as ``cf32_le``, in GNU Radio's C++
blocks, so recording costs the estimator a copy and a write per sample, no Python. On close it
writes the SigMF metadata with the ``sigmf`` package: the global fields (datatype, sample rate,
channels, hardware, recorder, the data's sha512, and the traceability fields of the ``cfmimo``
extension: the experiment id, the project version and the spec's SHA-256), one capture
(centre frequency, start time) and annotations: every published CSI frame (its span, with the
CSI message it produced), each UE's pilot window in that frame, and, added after the run by
:func:`annotate_rounds`, the FL round boundaries (the frame each round planned from).

A recording stops at ``max_bytes`` or ``max_s`` (what comes first): the sink is switched off
at the next :meth:`ApRecorder.poll` and the data file is cut to the limit exactly; the
metadata says so in ``core:description`` and the log says which limit it was.

:func:`write_collection` writes ``<name>.sigmf-collection`` naming every AP's recording;
:func:`replay_source` reads one back for ``testbed ap serve --replay``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from gnuradio import blocks, gr

from protocol.csi import CSIMessage, encode_csi
from protocol.spec import ExperimentSpec

__all__ = [
    "EXTENSION",
    "RECORDER",
    "ApRecorder",
    "RecordingError",
    "ReplaySource",
    "annotate_rounds",
    "replay_source",
    "spec_sha256",
    "write_collection",
]

_log = logging.getLogger(__name__)

#: ``core:recorder`` of every recording.
RECORDER = "cfmimo-fl-testbed ap_cluster (GNU Radio blocks.file_sink)"
#: The SigMF extension of the testbed's own fields (``cfmimo:...``).
EXTENSION = {"name": "cfmimo", "version": "1.0.0", "optional": True}
_SAMPLE_BYTES = 8  # cf32_le


class RecordingError(ValueError):
    """A recording or collection that cannot be written or replayed; names the file."""


def spec_sha256(spec: ExperimentSpec) -> str:
    """SHA-256 of the spec's canonical JSON (sorted keys, aliases): what a recording ran."""
    text = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _project_version() -> str:
    try:
        return importlib_metadata.version("cfmimo-fl-testbed")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


class ApRecorder:
    """Records AP ``ap_id``'s ``n_ant`` source streams into ``directory/<ap_id>.sigmf-data``.

    Args:
        tb: the flowgraph; ``outputs``: ``[n_ant]`` the ``(block, port)`` of each antenna.
        spec: the experiment (geometry, sample rate, carrier, and the spec hash).
        hardware: ``core:hw`` (the device as it reported itself, or the simulated source).
        frame_offset: sample of frame 0 in the stream; ``pilot_index``: ``[K]`` per UE.
        max_bytes, max_s: the recording's limits (bytes of data, seconds of stream).
        experiment_id: the controller's id when known (the launcher may add it later).
    """

    def __init__(
        self,
        tb: gr.top_block,
        outputs: Sequence[tuple[Any, int]],
        *,
        ap_id: str,
        spec: ExperimentSpec,
        directory: Path,
        hardware: str,
        frame_offset: int,
        pilot_index: Sequence[int],
        max_bytes: int,
        max_s: float | None = None,
        experiment_id: str | None = None,
        t0_ns: int = 0,
    ) -> None:
        n_ant = len(outputs)
        if max_bytes < _SAMPLE_BYTES * n_ant:
            raise RecordingError(f"`max_bytes` {max_bytes} holds no sample of {n_ant} channels")
        directory.mkdir(parents=True, exist_ok=True)
        self.base = directory / ap_id
        self.data_path = self.base.with_suffix(".sigmf-data")
        if self.data_path.exists():  # a restarted AP process: keep the earlier recording
            k = 1
            while (directory / f"{ap_id}.{k}.sigmf-data").exists():
                k += 1
            self.base = directory / f"{ap_id}.{k}"
            self.data_path = Path(f"{self.base}.sigmf-data")
        self.ap_id, self.n_ant, self.spec = ap_id, n_ant, spec
        self.hardware, self.frame_offset = hardware, frame_offset
        self.pilot_index = [int(p) for p in pilot_index]
        self.experiment_id, self.t0_ns = experiment_id, t0_ns
        fs = spec.radio.sample_rate_hz
        limit_items = max_bytes // (_SAMPLE_BYTES * n_ant)
        if max_s is not None:
            limit_items = min(limit_items, max(1, int(max_s * fs)))
        self.limit_samples = int(limit_items)  # per channel
        self.limit_reason = (
            f"max_s {max_s:g} s"
            if max_s is not None and limit_items == int(max_s * fs)
            else f"max_bytes {max_bytes}"
        )
        self.started_utc = dt.datetime.now(dt.UTC)
        self.stopped_at: int | None = None  # samples per channel when the limit cut it
        self._annotations: list[tuple[int, int, dict[str, Any]]] = []
        self._gate = blocks.copy(gr.sizeof_gr_complex)
        self._sink = blocks.file_sink(gr.sizeof_gr_complex, str(self.data_path), False)
        self._sink.set_unbuffered(False)
        if n_ant > 1:
            self._mux: Any = blocks.interleave(gr.sizeof_gr_complex, 1)
            for ch, port in enumerate(outputs):
                tb.connect(port, (self._mux, ch))
            tb.connect(self._mux, self._gate, self._sink)
        else:
            tb.connect(outputs[0], self._gate, self._sink)
        self._closed = False

    # -- while running --------------------------------------------------------------------------
    def on_csi(self, msg: CSIMessage) -> None:
        """Annotate the frame ``msg`` came from and each UE's pilot window in it."""
        radio = self.spec.radio
        start = self.frame_offset + int(msg.frame) * radio.tau_c
        payload = json.loads(encode_csi(msg))
        self._annotations.append(
            (
                start,
                radio.tau_c,
                {
                    "core:label": f"frame {msg.frame}",
                    "cfmimo:frame": int(msg.frame),
                    "cfmimo:csi": payload,
                },
            )
        )
        for ue, pilot in zip(msg.ue_ids, self.pilot_index, strict=False):
            self._annotations.append(
                (
                    start,
                    radio.tau_p,
                    {"core:label": f"pilot {ue}", "cfmimo:ue_id": ue, "cfmimo:pilot_index": pilot},
                )
            )

    @property
    def written_samples(self) -> int:
        """Samples per channel the sink has taken so far."""
        return int(self._sink.nitems_read(0)) // self.n_ant

    def poll(self) -> bool:
        """Switch the sink off once the limit is passed; True while it records."""
        if self.stopped_at is None and self.written_samples >= self.limit_samples:
            self._gate.set_enabled(False)
            self.stopped_at = self.limit_samples
            _log.warning(
                "recording of %s stopped at its limit (%s): %d samples per channel in %s",
                self.ap_id,
                self.limit_reason,
                self.limit_samples,
                self.data_path,
            )
        return self.stopped_at is None

    # -- at the end -----------------------------------------------------------------------------
    def close(self) -> Path:
        """Flush, cut the data to the limit, write the ``.sigmf-meta``; its path."""

        if self._closed:
            return Path(f"{self.base}.sigmf-meta")
        self._closed = True
        self.poll()
        self._sink.close()
        samples = os.path.getsize(self.data_path) // (_SAMPLE_BYTES * self.n_ant)
        if samples > self.limit_samples:
            samples = self.limit_samples
            self.stopped_at = self.limit_samples
        os.truncate(self.data_path, samples * _SAMPLE_BYTES * self.n_ant)
        radio = self.spec.radio
        description = f"AP {self.ap_id} of experiment `{self.spec.name}`"
        if self.stopped_at is not None:
            description += f"; stopped at the recording limit ({self.limit_reason})"
        info: dict[str, Any] = {
            "core:datatype": "cf32_le",
            "core:sample_rate": float(radio.sample_rate_hz),
            "core:num_channels": self.n_ant,
            "core:hw": self.hardware,
            "core:recorder": RECORDER,
            "core:description": description,
            "core:extensions": [EXTENSION],
            "cfmimo:ap_id": self.ap_id,
            "cfmimo:project_version": _project_version(),
            "cfmimo:spec_sha256": spec_sha256(self.spec),
            "cfmimo:spec": self.spec.model_dump(mode="json", by_alias=True),
            "cfmimo:tau_c": radio.tau_c,
            "cfmimo:tau_p": radio.tau_p,
            "cfmimo:frame_offset": self.frame_offset,
        }
        if self.experiment_id is not None:
            info["cfmimo:experiment_id"] = self.experiment_id
        capture = {
            "core:sample_start": 0,
            "core:frequency": float(radio.carrier_hz),
            "core:datetime": self.started_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "cfmimo:t0_ns": self.t0_ns,
        }
        notes = [
            {"core:sample_start": start, "core:sample_count": length, **fields}
            for start, length, fields in sorted(self._annotations, key=lambda a: a[0])
            if start + length <= samples
        ]
        doc = {"global": info, "captures": [capture], "annotations": notes}
        _write_meta(doc, self.data_path, self.base)
        return Path(f"{self.base}.sigmf-meta")


def _write_meta(doc: dict[str, Any], data_path: Path, base: Path) -> None:
    """Validate ``doc`` against ``data_path`` (its sha512 computed here) and write it."""
    from sigmf import SigMFFile

    doc["global"].pop("core:sha512", None)
    doc["global"]["core:version"] = _sigmf_version()
    try:
        meta = SigMFFile(metadata=doc, data_file=str(data_path), skip_checksum=True)
        meta.calculate_hash()
        meta.validate()
        meta.tofile(str(base), overwrite=True)
    except Exception as err:  # the package raises its own errors and jsonschema's
        raise RecordingError(f"{base}.sigmf-meta: {type(err).__name__}: {err}") from None


def _sigmf_version() -> str:
    import sigmf

    return str(sigmf.__specification__)


def _metas(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sigmf-meta"))


def write_collection(
    directory: Path, name: str, *, experiment_id: str | None = None, description: str = ""
) -> Path:
    """``directory/<name>.sigmf-collection`` naming every recording in ``directory``."""
    from sigmf.sigmffile import SigMFCollection

    metas = _metas(directory)
    if not metas:
        raise RecordingError(f"{directory}: no .sigmf-meta recording to collect")
    info: dict[str, Any] = {
        "core:version": _sigmf_version(),
        "core:description": description or f"experiment `{name}`: one recording per AP",
        "core:extensions": [EXTENSION],
        "cfmimo:project_version": _project_version(),
    }
    if experiment_id is not None:
        info["cfmimo:experiment_id"] = experiment_id
    try:
        coll = SigMFCollection(
            metafiles=[m.name for m in metas], metadata={"collection": info}, base_path=directory
        )
        coll.tofile(str(directory / name), overwrite=True)
    except Exception as err:
        raise RecordingError(f"{directory / name}.sigmf-collection: {err}") from None
    return directory / f"{name}.sigmf-collection"


def annotate_rounds(
    directory: Path, rounds: Sequence[dict[str, Any]], *, experiment_id: str | None = None
) -> int:
    """Add the FL round boundaries (and the experiment id) to every recording in ``directory``.

    Round ``r`` is annotated at the frame its plan read from each AP's CSI
    (``details.csi.frames``), one frame long, with its index and wall-clock start; returns how
    many annotations were added. The data and its hash do not change.
    """
    added = 0
    for meta_path in _metas(directory):
        try:
            doc = json.loads(meta_path.read_text())
            glob = doc["global"]
            ap_id, tau_c = glob["cfmimo:ap_id"], int(glob["cfmimo:tau_c"])
            offset = int(glob.get("cfmimo:frame_offset", 0))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RecordingError(f"{meta_path}: not a testbed recording: {err}") from None
        samples = os.path.getsize(meta_path.with_suffix(".sigmf-data")) // (
            _SAMPLE_BYTES * int(glob["core:num_channels"])
        )
        notes = [a for a in doc.get("annotations", []) if "cfmimo:round" not in a]
        for r in rounds:
            frame = ((r.get("details") or {}).get("csi") or {}).get("frames", {}).get(ap_id)
            if frame is None:
                continue
            start = offset + int(frame) * tau_c
            if start + tau_c > samples:
                continue
            notes.append(
                {
                    "core:sample_start": start,
                    "core:sample_count": tau_c,
                    "core:label": f"round {r['index']}",
                    "core:comment": "the frame this FL round planned from",
                    "cfmimo:round": int(r["index"]),
                    "cfmimo:round_started_unix": r.get("started"),
                }
            )
            added += 1
        doc["annotations"] = sorted(notes, key=lambda a: a["core:sample_start"])
        if experiment_id is not None:
            glob["cfmimo:experiment_id"] = experiment_id
        for note in doc["annotations"]:  # SigMF has no null: drop what was not known
            for key in [k for k, v in note.items() if v is None]:
                del note[key]
        _write_meta(doc, meta_path.with_suffix(".sigmf-data"), meta_path.with_suffix(""))
    return added


def replay_source(collection: Path, ap_id: str, spec: ExperimentSpec) -> tuple[Path, int]:
    """The data file of AP ``ap_id``'s recording in ``collection`` (a ``.sigmf-collection``,
    or the folder holding it) and its channel count, checked against ``spec``'s geometry."""
    if not collection.exists():
        raise RecordingError(f"{collection}: no such recording")
    folder = collection if collection.is_dir() else collection.parent
    for meta_path in _metas(folder):
        try:
            glob = json.loads(meta_path.read_text())["global"]
        except (OSError, ValueError, KeyError) as err:
            raise RecordingError(f"{meta_path}: not a SigMF recording: {err}") from None
        if glob.get("cfmimo:ap_id") != ap_id:
            continue
        radio = spec.radio
        checks = (
            ("core:sample_rate", float(radio.sample_rate_hz), "radio.sample_rate_hz"),
            ("cfmimo:tau_c", radio.tau_c, "radio.tau_c"),
            ("cfmimo:tau_p", radio.tau_p, "radio.tau_p"),
            ("core:num_channels", _antennas(spec, ap_id), f"topology.aps.{ap_id}.antennas"),
        )
        for key, want, field in checks:
            if glob.get(key) != want:
                raise RecordingError(
                    f"{meta_path}: {key} is {glob.get(key)!r}, but the spec's {field} is {want!r}"
                )
        recorded = {k: v for k, v in (glob.get("cfmimo:spec") or {}).items() if k != "record"}
        now = spec.model_dump(mode="json", by_alias=True)
        now.pop("record", None)
        if recorded != now:
            _log.warning("%s was recorded with another spec; replaying it anyway", meta_path)
        return meta_path.with_suffix(".sigmf-data"), int(glob["core:num_channels"])
    raise RecordingError(f"{collection}: no recording of AP `{ap_id}`")


def _antennas(spec: ExperimentSpec, ap_id: str) -> int:
    return next(a.antennas for a in spec.topology.aps if a.id == ap_id)


class ReplaySource(gr.hier_block2):
    """A recording's streams in place of the AP's source: ``n_ant`` complex outputs, at
    ``pace`` x the sample rate (0: as fast as the estimator takes them), in chunks of
    ``chunk_s`` of stream as the simulated source makes them (so CSI is published as it
    goes, not in bursts of a whole buffer)."""

    def __init__(
        self, data_path: Path, n_ant: int, fs_hz: float, pace: float, chunk_s: float
    ) -> None:
        out = gr.io_signature(n_ant, n_ant, gr.sizeof_gr_complex)
        gr.hier_block2.__init__(self, "replay_source", gr.io_signature(0, 0, 0), out)
        src = blocks.file_source(gr.sizeof_gr_complex, str(data_path), False)
        head: Any = src
        if pace > 0:
            head = blocks.throttle(gr.sizeof_gr_complex, fs_hz * pace * n_ant, True)
            head.set_max_noutput_items(max(n_ant, int(chunk_s * fs_hz) * n_ant))
            self.connect(src, head)
        if n_ant == 1:
            self.connect(head, self)
            return
        split = blocks.deinterleave(gr.sizeof_gr_complex, 1)
        self.connect(head, split)
        for ch in range(n_ant):
            self.connect((split, ch), (self, ch))
