"""The wireless-trace task: the next window's link state from the past windows of a real link.

The data are the CRAWDAD trace set rutgers/noise (v. 2007-04-20; cite "CRAWDAD dataset
rutgers/noise"): per-frame RSSI of 802.11 links on the ORBIT testbed while noise was injected
at 0, -5, -10, -15 and -20 dBm. Each file is one link (``data/dbm<N>/Results_node<A>-<B>_<date>/
sdec<k>-<m>``) and holds lines ``seq rssi`` for the frames received, sequence numbers 0 to 300;
a missing sequence number is a lost frame. The raw RSSI is one byte: we read it as signed
(252..255 appear among readings of 1..4, so they are -4..-1), and 128 (-128) marks a frame
received in error, as the traces' README says.

Our task (the traces' README suggests it; the window sizes and classes are our choice):

- a link's first 300 frames (sequence numbers 0..299; the 301st is dropped) are cut into
  :data:`WINDOWS` windows of :data:`WINDOW_FRAMES` frames; per window the features are the
  delivered fraction, the mean and the standard deviation of the RSSI of the frames received
  cleanly (scaled by 1/32 and 1/8), and the injected noise (dBm / 20), so one sample is
  ``[1, HISTORY, FEATURES]``: the last :data:`HISTORY` windows;
- the label is the next window's state, one of :data:`CLASSES`: ``outage`` (half the frames or
  more lost), else the mean RSSI's tercile over the training windows (``weak``, ``fair``,
  ``strong``);
- the split is in time: a sample whose target window is among the last
  :data:`TEST_WINDOWS` of its link is a test sample, the others train (no window of a test
  target is ever a training target). Links with no frame received at all are left out.

Kept Python 3.8 compatible: edge boards import this module.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import List, Tuple

import numpy as np

__all__ = [
    "ARCHIVE",
    "CLASSES",
    "DECODING",
    "FEATURES",
    "FOLDER",
    "HISTORY",
    "TEST_WINDOWS",
    "WINDOWS",
    "WINDOW_FRAMES",
    "decode_wifi",
]

#: Folder of the traces below the data directory, and the archive in it.
FOLDER = "wifi_rutgers_noise"
ARCHIVE = "rutgers_noise_data.tar.xz"
#: Frames sent per link in the trace, and how we window them.
FRAMES = 300
WINDOW_FRAMES = 30
WINDOWS = FRAMES // WINDOW_FRAMES
#: Past windows per sample, features per window.
HISTORY = 4
FEATURES = 4
#: Target windows per link kept for the test split (the last ones in time).
TEST_WINDOWS = 2
CLASSES = ("outage", "weak", "fair", "strong")
_OUTAGE_LOSS = 0.5
_ERROR_RSSI = -128
_NOISE_DIR = re.compile(r"dbm(-?\d+)$")


def _link_windows(raw: bytes, noise_dbm: float) -> np.ndarray | None:
    """``[WINDOWS, FEATURES + 1]`` float64 of one link file: the features, then the loss
    fraction; None if the link received nothing."""
    values = np.array(raw.split(), dtype=np.int64)
    if values.size < 2:
        return None
    if values.size % 2:
        raise ValueError("odd number of values (expected `seq rssi` lines)")
    seq, rssi = values[0::2], values[1::2]
    rssi = np.where(rssi >= 128, rssi - 256, rssi)  # the byte is signed
    keep = (seq >= 0) & (seq < FRAMES)
    seq, rssi = seq[keep], rssi[keep]
    got = np.zeros(FRAMES, dtype=bool)
    clean = np.zeros(FRAMES, dtype=bool)
    level = np.zeros(FRAMES, dtype=np.float64)
    got[seq] = True
    ok = rssi != _ERROR_RSSI
    clean[seq[ok]] = True
    level[seq[ok]] = rssi[ok]
    got_w = got.reshape(WINDOWS, WINDOW_FRAMES)
    clean_w = clean.reshape(WINDOWS, WINDOW_FRAMES)
    level_w = level.reshape(WINDOWS, WINDOW_FRAMES)
    n_clean = clean_w.sum(axis=1)
    mean = np.where(n_clean > 0, level_w.sum(axis=1) / np.maximum(n_clean, 1), 0.0)
    sq = np.where(clean_w, (level_w - mean[:, None]) ** 2, 0.0).sum(axis=1)
    std = np.sqrt(sq / np.maximum(n_clean, 1))
    delivered = clean_w.mean(axis=1)
    loss = 1.0 - got_w.mean(axis=1)
    noise = np.full(WINDOWS, noise_dbm / 20.0)
    return np.stack([delivered, mean / 32.0, std / 8.0, noise, loss], axis=1)


def _read_links(archive: Path) -> List[np.ndarray]:
    """Every link of the archive that received a frame, in a fixed (sorted) order."""
    found: List[Tuple[str, np.ndarray]] = []
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            if not member.isfile():
                continue
            parts = Path(member.name).parts
            noise = next((_NOISE_DIR.match(p) for p in parts if _NOISE_DIR.match(p)), None)
            if noise is None:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                windows = _link_windows(handle.read(), float(noise.group(1)))
            except ValueError as err:
                raise ValueError(f"{archive}: member {member.name}: {err}") from None
            if windows is not None:
                found.append((member.name, windows))
    found.sort(key=lambda item: item[0])
    return [w for _, w in found]


#: What the decoded arrays depend on beside the archive (part of the cache key).
DECODING = (FRAMES, WINDOW_FRAMES, HISTORY, FEATURES, TEST_WINDOWS, _OUTAGE_LOSS, "signed-rssi")


def decode_wifi(folder: Path, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """The trace task's samples of one split.

    Args:
        folder: the folder holding :data:`ARCHIVE`.
        split: ``train`` or ``test``.

    Returns:
        x: ``[N, 1, HISTORY, FEATURES]`` float32; y: ``[N]`` int64 index into :data:`CLASSES`.

    Raises:
        ValueError: ``split`` is neither, a malformed member (the message names it), no
            link in the archive, or no training window that is not an outage.
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}")
    links = _read_links(folder / ARCHIVE)
    if not links:
        raise ValueError(f"{folder / ARCHIVE}: no link with a received frame")
    stack = np.stack(links)  # [L, WINDOWS, FEATURES + 1]
    targets = np.arange(HISTORY, WINDOWS)
    first_test = WINDOWS - TEST_WINDOWS
    train_targets = targets[targets < first_test]
    # RSSI terciles of the training targets that are not outages (the same for both splits).
    tr = stack[:, train_targets]
    live = tr[..., 4] < _OUTAGE_LOSS
    if not live.any():
        raise ValueError(f"{folder / ARCHIVE}: every training window is an outage")
    edges = np.quantile(tr[..., 1][live], [1.0 / 3.0, 2.0 / 3.0])
    chosen = train_targets if split == "train" else targets[targets >= first_test]
    xs = [stack[:, t - HISTORY : t, :FEATURES] for t in chosen]
    x = np.concatenate(xs).astype(np.float32)[:, None, :, :]
    nxt = np.concatenate([stack[:, t] for t in chosen])
    tercile = 1 + np.searchsorted(edges, nxt[:, 1], side="right")
    y = np.where(nxt[:, 4] >= _OUTAGE_LOSS, 0, tercile).astype(np.int64)
    return np.ascontiguousarray(x), y
