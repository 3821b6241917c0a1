"""`testbed iq show RECORDING`: a look at one AP's SigMF recording, three panels in a PNG.

1. Spectrogram of antenna 0 over the first ``max_s`` seconds (measured IQ, dB).
2. Pilot correlation per UE over the first ``frames`` frames: ``|sum_t y[n + t] conj(phi_k[t])|``
   with ``phi_k[t] = exp(2 pi i k t / tau_p)`` the DFT pilot of the UE's pilot ``k`` (from the
   recording's pilot annotations), sliding over the samples; peaks sit at the frame starts the
   annotations mark (dotted).
3. CSI magnitude ``|h_u|`` over stream time, one panel column per antenna and one line per UE,
   from the CSI message each annotated frame produced (the estimator's output, as published).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["load_recording", "show"]


def _base(path: Path) -> Path:
    for ext in (".sigmf-meta", ".sigmf-data"):
        if path.name.endswith(ext):
            return path.with_name(path.name[: -len(ext)])
    return path


def load_recording(path: Path) -> tuple[dict[str, Any], npt.NDArray[np.complex64]]:
    """``(metadata, samples [S, C])`` of a recording (``.sigmf-meta``, ``.sigmf-data`` or the
    base name); the samples are memory-mapped. ValueError naming the file if unusable."""
    base = _base(path)
    meta_path, data_path = Path(f"{base}.sigmf-meta"), Path(f"{base}.sigmf-data")
    try:
        meta = json.loads(meta_path.read_text())
        glob = meta["global"]
        channels = int(glob.get("core:num_channels", 1))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{meta_path}: not a SigMF recording: {err}") from None
    if glob.get("core:datatype") != "cf32_le":
        raise ValueError(
            f"{meta_path}: core:datatype must be cf32_le, got {glob.get('core:datatype')!r}"
        )
    if not data_path.exists():
        raise ValueError(f"{data_path}: the recording's data file is missing")
    raw = np.memmap(data_path, dtype="<c8", mode="r")
    usable = raw.size - raw.size % channels
    return meta, np.asarray(raw[:usable]).reshape(-1, channels)


def show(path: Path, out: Path | None = None, *, max_s: float = 0.05, frames: int = 12) -> Path:
    """Draw the three panels of the module docstring to ``out`` (default: beside the
    recording, ``<name>.png``); the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, x = load_recording(path)
    glob, notes = meta["global"], meta.get("annotations", [])
    fs = float(glob["core:sample_rate"])
    tau_c, tau_p = int(glob.get("cfmimo:tau_c", 0)), int(glob.get("cfmimo:tau_p", 0))
    channels = x.shape[1]
    csi = [a["cfmimo:csi"] for a in notes if "cfmimo:csi" in a]
    pilots = {a["cfmimo:ue_id"]: int(a["cfmimo:pilot_index"]) for a in notes if "cfmimo:ue_id" in a}
    fig = plt.figure(figsize=(12, 9), constrained_layout=True)
    grid = fig.add_gridspec(3, max(1, channels))
    ax = fig.add_subplot(grid[0, :])
    n = min(x.shape[0], max(256, int(max_s * fs)))
    ax.specgram(x[:n, 0], NFFT=256, Fs=fs, noverlap=128, scale="dB", cmap="viridis")
    ax.set(
        title=f"{glob.get('cfmimo:ap_id', 'AP')}: spectrogram of antenna 0 (measured IQ)",
        xlabel="stream time, s",
        ylabel="frequency, Hz",
    )

    ax = fig.add_subplot(grid[1, :])
    offset = int(glob.get("cfmimo:frame_offset", 0))
    if tau_c and tau_p and pilots:
        span = min(x.shape[0], offset + frames * tau_c)
        seg = x[:span, 0].astype(np.complex128)
        t = np.arange(tau_p)
        for ue, k in sorted(pilots.items()):
            phi = np.exp(2j * np.pi * k * t / tau_p)
            corr = np.abs(np.correlate(seg, phi, mode="valid"))
            ax.plot(np.arange(corr.size), corr, lw=0.8, label=f"{ue} (pilot {k})")
        for f in range(frames):
            ax.axvline(offset + f * tau_c, color="grey", ls=":", lw=0.6)
        ax.legend(fontsize=7, ncol=4)
    ax.set(
        title="pilot correlation per UE (measured IQ; dotted: frame starts)",
        xlabel="sample",
        ylabel="|correlation|",
    )

    if csi:
        t_s = np.array([m["t_ns"] for m in csi]) * 1e-9
        h = np.array([m["h"] for m in csi], dtype=np.float64)  # [F, K, N, 2]
        mag = np.hypot(h[..., 0], h[..., 1])
        ues = csi[0]["ue_ids"]
        for ch in range(mag.shape[2]):
            ax = fig.add_subplot(grid[2, ch])
            for u, ue in enumerate(ues):
                ax.plot(t_s, mag[:, u, ch], lw=0.8, label=ue)
            ax.set(
                title=f"CSI |h| at antenna {ch} ({csi[0]['est']}, as published)",
                xlabel="stream time, s",
                ylabel="|h|",
            )
            ax.legend(fontsize=7)
    target = out or Path(f"{_base(path)}.png")
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
