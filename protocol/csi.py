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

Kept Python 3.8 compatible: edge boards import the protocol package.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "CSI_TOPIC_PREFIX",
    "CSI_VERSION",
    "ESTIMATORS",
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
    ``garbage`` (not JSON / not an object / bad topic), ``version``, ``field`` (missing or
    wrongly typed field), ``shape`` or ``nonfinite``.
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
        frame: frame index in the AP's stream (>= 0).
        t_ns: start of the frame in the AP's stream time, ns.
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
        """Check shapes, finiteness and ranges; raise :class:`CSIDecodeError` naming the field."""
        _check(self.v == CSI_VERSION, "version", f"`v`: unsupported version {self.v!r}")
        _check(bool(self.ap_id), "field", "`ap_id` must not be empty")
        _check(self.frame >= 0, "field", f"`frame` must be >= 0, got {self.frame}")
        _check(self.est in ESTIMATORS, "field", f"`est` must be one of {ESTIMATORS}")
        k = len(self.ue_ids)
        _check(self.h.ndim == 2, "shape", f"`h` must be [K][n_ant], got {self.h.ndim} dims")
        _check(self.h.shape[0] == k, "shape", f"`h` has {self.h.shape[0]} rows for {k} ue_ids")
        _check(self.h.shape[1] >= 1, "shape", "`h` must have at least one antenna")
        _check(self.snr_db.shape == (k,), "shape", f"`snr_db` must have {k} entries")
        _check(len(set(self.ue_ids)) == k, "field", "`ue_ids` must be distinct")
        _check(bool(np.all(np.isfinite(self.h))), "nonfinite", "`h` is not finite")
        _check(bool(np.all(np.isfinite(self.snr_db))), "nonfinite", "`snr_db` is not finite")
        for name in ("noise_var", "fc_hz", "fs_hz"):
            val = getattr(self, name)
            _check(math.isfinite(val), "nonfinite", f"`{name}` is not finite")
            _check(val > 0, "field", f"`{name}` must be positive, got {val}")
        return self


def _check(ok: bool, reason: str, message: str) -> None:
    if not ok:
        raise CSIDecodeError(reason, message)


def encode_csi(msg: CSIMessage) -> bytes:
    """The JSON payload of ``msg`` (validated first)."""
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
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_csi_multipart(msg: CSIMessage) -> List[bytes]:
    """``[topic, payload]`` for a ZeroMQ PUB socket."""
    return [msg.topic.encode("utf-8"), encode_csi(msg)]


def _typed(obj: Dict[str, Any], name: str, types: Tuple[type, ...]) -> Any:
    val = obj[name]
    if isinstance(val, bool) or not isinstance(val, types):
        raise CSIDecodeError("field", f"`{name}` has type {type(val).__name__}")
    return val


def decode_csi(payload: bytes) -> CSIMessage:
    """Parse and validate one payload; raise :class:`CSIDecodeError` on any problem."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CSIDecodeError("garbage", "payload is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise CSIDecodeError("garbage", "payload is not a JSON object")
    if "v" in obj and obj["v"] != CSI_VERSION:
        raise CSIDecodeError("version", f"`v`: unsupported version {obj['v']!r}")
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise CSIDecodeError("field", f"missing fields {missing}")
    ue_ids = _typed(obj, "ue_ids", (list,))
    if not all(isinstance(u, str) for u in ue_ids):
        raise CSIDecodeError("field", "`ue_ids` must be strings")
    n_ant = _typed(obj, "n_ant", (int,))
    h = _complex_matrix(obj["h"], len(ue_ids), n_ant)
    snr = _float_vector(obj["snr_db"], "snr_db")
    msg = CSIMessage(
        v=_typed(obj, "v", (int,)),
        ap_id=_typed(obj, "ap_id", (str,)),
        frame=_typed(obj, "frame", (int,)),
        t_ns=_typed(obj, "t_ns", (int,)),
        fc_hz=float(_typed(obj, "fc_hz", (int, float))),
        fs_hz=float(_typed(obj, "fs_hz", (int, float))),
        ue_ids=tuple(ue_ids),
        h=h,
        noise_var=float(_typed(obj, "noise_var", (int, float))),
        snr_db=snr,
        est=_typed(obj, "est", (str,)),
    )
    return msg.validate()


def decode_csi_multipart(frames: Sequence[bytes]) -> CSIMessage:
    """Parse ``[topic, payload]``; the topic must name the payload's AP."""
    if len(frames) != 2:
        raise CSIDecodeError("garbage", f"expected 2 message frames, got {len(frames)}")
    try:
        topic = bytes(frames[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise CSIDecodeError("garbage", "topic is not UTF-8") from None
    msg = decode_csi(bytes(frames[1]))
    if topic != msg.topic:
        raise CSIDecodeError("field", f"topic `{topic}` does not match ap_id `{msg.ap_id}`")
    return msg


def _complex_matrix(val: Any, k: int, n_ant: int) -> npt.NDArray[np.complex128]:
    try:
        arr = np.asarray(val, dtype=np.float64)
    except (TypeError, ValueError):
        raise CSIDecodeError("shape", "`h` is not a numeric [K][n_ant][2] array") from None
    if arr.shape != (k, n_ant, 2):
        raise CSIDecodeError("shape", f"`h` has shape {arr.shape}, expected {(k, n_ant, 2)}")
    return arr[..., 0] + 1j * arr[..., 1]


def _float_vector(val: Any, name: str) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(val, dtype=np.float64)
    except (TypeError, ValueError):
        raise CSIDecodeError("shape", f"`{name}` is not a numeric vector") from None
    if arr.ndim != 1:
        raise CSIDecodeError("shape", f"`{name}` must be a vector, got shape {arr.shape}")
    return arr
