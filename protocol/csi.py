"""The CSI message of DESIGN section 4: one per AP per published frame, on ZeroMQ PUB.

Wire format (version 1): a two-frame ZeroMQ multipart message ``[topic, payload]``. The topic is
``csi.<ap_id>`` (UTF-8); the payload is a UTF-8 JSON object::

    {"v": 1, "ap_id": "ap0", "frame": 1234, "t_ns": 246800000, "fc_hz": 3.5e9, "fs_hz": 1e6,
     "n_ant": 2, "ue_ids": ["ue0", "ue1"], "h": [[[re, im], [re, im]], [[re, im], [re, im]]],
     "noise_var": 3.98e-13, "snr_db": [12.1, 3.4], "est": "mmse"}

Fields and units:

- ``frame``: the AP's frame (coherence block) index, counting from the start of its stream;
  ``t_ns``: the start of that frame in the AP's stream time, ns (device time on a USRP).
- ``h : [K][n_ant]`` complex, as ``[re, im]`` pairs: the channel estimate of UE ``ue_ids[k]`` at
  antenna ``n``, scaled so that ``sqrt(p_u) * h`` is the received pilot amplitude per sample in
  the AP's sample units (``p_u`` the pilot power in W). In the simulator sample units are
  sqrt(W), so ``h`` is the dimensionless channel with ``E|h|^2 = beta``.
- ``noise_var``: noise variance per complex sample, same sample units squared (W in the sim).
  ``|h|^2 / noise_var`` is therefore calibration-free (1/W) on hardware too.
- ``snr_db : [K]``: the estimated per-sample pilot SNR ``p_u beta_u / sigma^2`` per UE, dB.
- ``est``: which estimator produced ``h``: ``"ls"`` or ``"mmse"``.

Limits: every value is bounded to what the receivers carry, and :func:`decode_csi` rejects the
rest with a :class:`CSIDecodeError` (never another exception):

- ``frame``, ``t_ns``: integers in ``[0, 2**63 - 1]`` (the controller keeps them in int64 arrays).
- ``n_ant``: 1 to :data:`MAX_ANTENNAS` (64, as ``protocol.spec.APSpec.antennas``); ``ue_ids``: 1
  to :data:`MAX_UES` (4096) distinct ids.
- ``ap_id`` and every UE id: 1 to :data:`MAX_ID_LEN` (64) characters of ``[A-Za-z0-9_.-]``, as
  the experiment spec's ids (they end up in topics, URLs and file names).
- every number finite (an integer too large for a float is rejected, not an ``OverflowError``)
  and at most :data:`MAX_MAGNITUDE` (1e100) in magnitude; ``fc_hz``, ``fs_hz`` and ``noise_var``
  at least :data:`MIN_POSITIVE` (1e-100). Far outside any physical value, these keep what the
  controller derives finite: ``|h|^2 / noise_var`` summed over every antenna of 256 APs is at
  most about 1e304.
- the payload at most :data:`MAX_PAYLOAD_BYTES` (1 MiB), checked before parsing. The largest
  message a 2-antenna AP (a B210) sends within the limits above, 4096 UEs with 64-character ids
  and every float at its longest text, is about 0.8 MiB; more antennas fit fewer UEs (64
  antennas: about 300). :func:`encode_csi` refuses to write a larger one.

Kept Python 3.8 compatible: edge boards import the protocol package.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "CSI_TOPIC_PREFIX",
    "CSI_VERSION",
    "ESTIMATORS",
    "INT64_MAX",
    "MAX_ANTENNAS",
    "MAX_ID_LEN",
    "MAX_MAGNITUDE",
    "MAX_PAYLOAD_BYTES",
    "MAX_TOPIC_BYTES",
    "MAX_UES",
    "MIN_POSITIVE",
    "CSIDecodeError",
    "CSIMessage",
    "csi_topic",
    "decode_csi",
    "decode_csi_multipart",
    "encode_csi",
    "encode_csi_multipart",
]

#: Version of the wire format written by :func:`encode_csi`.
CSI_VERSION = 1
#: Every CSI topic starts with this; subscribe to it to receive every AP.
CSI_TOPIC_PREFIX = "csi."
#: The estimators a message may name.
ESTIMATORS = ("ls", "mmse")

#: Largest ``frame`` and ``t_ns``: receivers keep them in int64.
INT64_MAX = 2**63 - 1
#: Most antennas per AP, as ``protocol.spec.APSpec.antennas``.
MAX_ANTENNAS = 64
#: Most UEs per message.
MAX_UES = 4096
#: Longest AP or UE id, characters, as ``protocol.spec.Id``.
MAX_ID_LEN = 64
#: Largest payload, bytes, checked before parsing (module docstring: why 1 MiB).
MAX_PAYLOAD_BYTES = 1 << 20
#: Largest magnitude of any number, and smallest of ``fc_hz``, ``fs_hz`` and ``noise_var``.
MAX_MAGNITUDE = 1e100
MIN_POSITIVE = 1e-100
#: Longest topic, bytes: the prefix and the longest (ASCII) id.
MAX_TOPIC_BYTES = len(CSI_TOPIC_PREFIX) + MAX_ID_LEN

_ID = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_ID_LEN}}}")
#: The number types JSON decodes to (``bool`` is not one of them here).
_JSON_NUMBERS = (int, float)

_FIELDS = (
    "v",
    "ap_id",
    "frame",
    "t_ns",
    "fc_hz",
    "fs_hz",
    "n_ant",
    "ue_ids",
    "h",
    "noise_var",
    "snr_db",
    "est",
)


class CSIDecodeError(ValueError):
    """A CSI message that cannot be used.

    ``reason`` is one short machine-readable word, so that receivers can count by kind:
    ``garbage`` (not JSON / not an object / bad topic or frame count), ``oversize`` (payload over
    :data:`MAX_PAYLOAD_BYTES`), ``version``, ``field`` (missing, wrongly typed or out-of-range
    field), ``shape`` or ``nonfinite`` (NaN, infinite, or too large for a float).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def csi_topic(ap_id: str) -> str:
    """The ZeroMQ topic of AP ``ap_id``: ``csi.<ap_id>``."""
    return CSI_TOPIC_PREFIX + ap_id


@dataclass(frozen=True)
class CSIMessage:
    """One AP's channel estimates for one frame.

    Attributes:
        ap_id: the publishing AP.
        frame: frame index in the AP's stream, in ``[0, 2**63 - 1]``.
        t_ns: start of the frame in the AP's stream time, ns, in ``[0, 2**63 - 1]``.
        fc_hz: carrier frequency, Hz.
        fs_hz: sample rate, Hz.
        ue_ids: ``[K]`` UE ids, the row order of ``h`` and ``snr_db``.
        h: ``[K, n_ant]`` complex128, channel estimates (units: module docstring).
        noise_var: noise variance per complex sample (sample units squared; W in the sim).
        snr_db: ``[K]`` float64, estimated per-sample pilot SNR, dB.
        est: ``"ls"`` or ``"mmse"``.
        v: wire-format version.
    """

    ap_id: str
    frame: int
    t_ns: int
    fc_hz: float
    fs_hz: float
    ue_ids: Tuple[str, ...]
    h: npt.NDArray[np.complex128]
    noise_var: float
    snr_db: npt.NDArray[np.float64]
    est: str
    v: int = CSI_VERSION

    @property
    def n_ant(self) -> int:
        return int(self.h.shape[1])

    @property
    def topic(self) -> str:
        return csi_topic(self.ap_id)

    def validate(self) -> CSIMessage:
        """Check types, shapes, finiteness and ranges (module docstring); raise
        :class:`CSIDecodeError` naming the field, whatever the attributes hold."""
        if not (_is_int(self.v) and self.v == CSI_VERSION):
            raise CSIDecodeError("version", f"`v`: unsupported version {_show(self.v)}")
        _check_id("ap_id", self.ap_id)
        _check_int("frame", self.frame, 0, INT64_MAX)
        _check_int("t_ns", self.t_ns, 0, INT64_MAX)
        for name in ("fc_hz", "fs_hz", "noise_var"):
            _check_positive(name, getattr(self, name))
        if not (isinstance(self.est, str) and self.est in ESTIMATORS):
            raise CSIDecodeError(
                "field", f"`est` must be one of {ESTIMATORS}, got {_show(self.est)}"
            )
        _check_arrays(self.h, self.snr_db, _check_ue_ids(self.ue_ids))
        return self


def _is_int(val: Any) -> bool:
    return isinstance(val, (int, np.integer)) and not isinstance(val, bool)


def _is_real(val: Any) -> bool:
    return isinstance(val, (int, float, np.integer, np.floating)) and not isinstance(val, bool)


def _is_numeric_array(val: Any) -> bool:
    return isinstance(val, np.ndarray) and val.dtype.kind in "iufc"


def _show(val: Any) -> str:
    """``val`` for an error message: short and safe whatever it is (never all of a huge value)."""
    if _is_int(val):
        i = int(val)
        return str(i) if abs(i) < 10**18 else f"an integer of {i.bit_length()} bits"
    if isinstance(val, (float, np.floating)):
        return repr(float(val))
    if isinstance(val, str):
        return repr(val[:32]) + ("..." if len(val) > 32 else "")
    return f"a {type(val).__name__}"


def _check_int(name: str, val: Any, lo: int, hi: int) -> None:
    if not _is_int(val):
        raise CSIDecodeError("field", f"`{name}` must be an integer, got {_show(val)}")
    if not (lo <= int(val) <= hi):
        raise CSIDecodeError("field", f"`{name}` must be in [{lo}, {hi}], got {_show(val)}")


def _check_positive(name: str, val: Any) -> None:
    if not _is_real(val):
        raise CSIDecodeError("field", f"`{name}` must be a number, got {_show(val)}")
    x = _to_float(name, val)
    if not math.isfinite(x):
        raise CSIDecodeError("nonfinite", f"`{name}` is not finite")
    if not MIN_POSITIVE <= x <= MAX_MAGNITUDE:
        bounds = f"[{MIN_POSITIVE:g}, {MAX_MAGNITUDE:g}]"
        raise CSIDecodeError("field", f"`{name}` must be in {bounds}, got {x!r}")


def _to_float(name: str, val: Any) -> float:
    try:
        return float(val)
    except OverflowError:
        raise CSIDecodeError("nonfinite", f"`{name}` is too large for a float") from None


def _check_id(name: str, val: Any) -> None:
    if not (isinstance(val, str) and _ID.fullmatch(val) is not None):
        rule = f"1 to {MAX_ID_LEN} characters of [A-Za-z0-9_.-]"
        raise CSIDecodeError("field", f"`{name}` must be {rule}, got {_show(val)}")


def _check_ue_ids(ues: Any) -> int:
    """``len(ues)`` once ``ues`` is a list of 1 to MAX_UES distinct ids."""
    if not isinstance(ues, (tuple, list)):
        raise CSIDecodeError("field", f"`ue_ids` must be a list, got {_show(ues)}")
    k = len(ues)
    if not (1 <= k <= MAX_UES):
        raise CSIDecodeError("field", f"`ue_ids` must have 1 to {MAX_UES} entries, got {k}")
    for u in ues:
        _check_id("ue_ids", u)
    if len(set(ues)) != k:
        raise CSIDecodeError("field", "`ue_ids` must be distinct")
    return k


def _check_arrays(h: Any, snr: Any, k: int) -> None:
    """``h`` is ``[k, n_ant]`` and ``snr`` is ``[k]``, numeric, finite and in range."""
    if not _is_numeric_array(h):
        raise CSIDecodeError("field", f"`h` must be a numeric array, got {_show(h)}")
    if h.ndim != 2:
        raise CSIDecodeError("shape", f"`h` must be [K][n_ant], got {h.ndim} dims")
    if h.shape[0] != k:
        raise CSIDecodeError("shape", f"`h` has {h.shape[0]} rows for {k} ue_ids")
    n_ant = h.shape[1]
    if not 1 <= n_ant <= MAX_ANTENNAS:
        raise CSIDecodeError("shape", f"`h` must have 1 to {MAX_ANTENNAS} antennas, got {n_ant}")
    if not _is_numeric_array(snr):
        raise CSIDecodeError("field", f"`snr_db` must be a numeric array, got {_show(snr)}")
    if snr.shape != (k,):
        raise CSIDecodeError("shape", f"`snr_db` must have {k} entries, got {snr.shape}")
    for name, part in (("h", h.real), ("h", h.imag), ("snr_db", snr)):
        if not (np.abs(part) <= MAX_MAGNITUDE).all():  # False for NaN and inf too
            if not np.isfinite(part).all():
                raise CSIDecodeError("nonfinite", f"`{name}` is not finite")
            raise CSIDecodeError("field", f"`{name}` exceeds {MAX_MAGNITUDE:g} in magnitude")


def encode_csi(msg: CSIMessage) -> bytes:
    """The JSON payload of ``msg`` (validated first; at most :data:`MAX_PAYLOAD_BYTES`)."""
    msg.validate()
    h = np.asarray(msg.h, dtype=np.complex128)
    pairs = np.stack([h.real, h.imag], axis=-1).tolist()
    obj: Dict[str, Any] = {
        "v": msg.v,
        "ap_id": msg.ap_id,
        "frame": int(msg.frame),
        "t_ns": int(msg.t_ns),
        "fc_hz": float(msg.fc_hz),
        "fs_hz": float(msg.fs_hz),
        "n_ant": int(h.shape[1]),
        "ue_ids": list(msg.ue_ids),
        "h": pairs,
        "noise_var": float(msg.noise_var),
        "snr_db": [float(s) for s in msg.snr_db],
        "est": msg.est,
    }
    payload = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    size = len(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise CSIDecodeError("oversize", f"payload of {size} bytes exceeds the limit")
    return payload


def encode_csi_multipart(msg: CSIMessage) -> List[bytes]:
    """``[topic, payload]`` for a ZeroMQ PUB socket."""
    return [msg.topic.encode("utf-8"), encode_csi(msg)]


def _typed(obj: Dict[str, Any], name: str, types: Tuple[type, ...]) -> Any:
    val = obj[name]
    if isinstance(val, bool) or not isinstance(val, types):
        raise CSIDecodeError("field", f"`{name}` has type {type(val).__name__}")
    return val


def _buffer(val: Any, name: str) -> memoryview:
    """``val`` (bytes, a ZeroMQ frame, any buffer) as bytes, without copying."""
    try:
        return memoryview(val).cast("B")
    except (TypeError, ValueError):
        raise CSIDecodeError("garbage", f"{name} is not bytes but {_show(val)}") from None


def decode_csi(payload: bytes) -> CSIMessage:
    """Parse and validate one payload; raise :class:`CSIDecodeError` on any problem."""
    data = _buffer(payload, "payload")
    size = data.nbytes
    if size > MAX_PAYLOAD_BYTES:
        raise CSIDecodeError("oversize", f"payload of {size} bytes exceeds the limit")
    try:
        obj = json.loads(str(data, "utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CSIDecodeError("garbage", "payload is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise CSIDecodeError("garbage", "payload is not a JSON object")
    if "v" in obj and obj["v"] != CSI_VERSION:
        raise CSIDecodeError("version", f"`v`: unsupported version {_show(obj['v'])}")
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise CSIDecodeError("field", f"missing fields {missing}")
    ue_ids = _typed(obj, "ue_ids", (list,))
    k = _check_ue_ids(ue_ids)
    n_ant = _typed(obj, "n_ant", (int,))
    _check_int("n_ant", n_ant, 1, MAX_ANTENNAS)
    msg = CSIMessage(
        v=_typed(obj, "v", (int,)),
        ap_id=_typed(obj, "ap_id", (str,)),
        frame=_typed(obj, "frame", (int,)),
        t_ns=_typed(obj, "t_ns", (int,)),
        fc_hz=_to_float("fc_hz", _typed(obj, "fc_hz", _JSON_NUMBERS)),
        fs_hz=_to_float("fs_hz", _typed(obj, "fs_hz", _JSON_NUMBERS)),
        ue_ids=tuple(ue_ids),
        h=_complex_matrix(obj["h"], k, n_ant),
        noise_var=_to_float("noise_var", _typed(obj, "noise_var", _JSON_NUMBERS)),
        snr_db=_float_vector(obj["snr_db"], "snr_db"),
        est=_typed(obj, "est", (str,)),
    )
    return msg.validate()


def decode_csi_multipart(frames: Sequence[bytes]) -> CSIMessage:
    """Parse ``[topic, payload]``; the topic must name the payload's AP."""
    if len(frames) != 2:
        raise CSIDecodeError("garbage", f"expected 2 message frames, got {len(frames)}")
    topic = _buffer(frames[0], "topic")
    if topic.nbytes > MAX_TOPIC_BYTES:
        raise CSIDecodeError("garbage", f"topic of {topic.nbytes} bytes is too long")
    try:
        topic_str = str(topic, "utf-8")
    except UnicodeDecodeError:
        raise CSIDecodeError("garbage", "topic is not UTF-8") from None
    msg = decode_csi(frames[1])
    if topic_str != msg.topic:
        raise CSIDecodeError("field", f"topic {_show(topic_str)} does not match `ap_id`")
    return msg


def _complex_matrix(val: Any, k: int, n_ant: int) -> npt.NDArray[np.complex128]:
    """``h`` as ``[K, n_ant]`` complex128, from ``[K][n_ant][2]`` JSON numbers."""
    ok = (
        isinstance(val, list)
        and len(val) == k
        and all(isinstance(row, list) and len(row) == n_ant for row in val)
        and all(isinstance(p, list) and len(p) == 2 for row in val for p in row)
    )
    if not ok:
        raise CSIDecodeError("shape", f"`h` must be [K][n_ant][2] = [{k}][{n_ant}][2] numbers")
    flat = [x for row in val for pair in row for x in pair]
    arr = _floats(flat, "h").reshape(k, n_ant, 2)
    return arr[..., 0] + 1j * arr[..., 1]


def _float_vector(val: Any, name: str) -> npt.NDArray[np.float64]:
    if not isinstance(val, list):
        raise CSIDecodeError("shape", f"`{name}` must be a vector, got {_show(val)}")
    return _floats(val, name)


def _floats(vals: List[Any], name: str) -> npt.NDArray[np.float64]:
    """``vals`` (JSON numbers) as float64; ``bool``, strings and the rest are rejected."""
    if not all(type(x) in _JSON_NUMBERS for x in vals):
        raise CSIDecodeError("field", f"`{name}` must hold numbers only")
    try:
        return np.array(vals, dtype=np.float64)
    except OverflowError:
        raise CSIDecodeError(
            "nonfinite", f"`{name}` holds a number too large for a float"
        ) from None
