"""GNU Radio Companion flowgraphs of the testbed (the ``.grc`` files are the source of truth).

- ``ap_rx_sim.grc``: one AP on the simulated radio (sim source -> pilot estimator -> CSI PUB);
- ``ap_rx_uhd.grc``: one AP on a USRP B210 (UHD source with PPS sync and timed start);
- ``ue_pilot_tx.grc``: a UE's B210 sending its DFT pilot at every frame start;
- ``phy_tx.grc`` and ``phy_rx.grc``: the burst PHY's transmitter and receiver (hier blocks,
  run by :mod:`ap_cluster.phy.modem`; their constants are :mod:`flowgraphs.phy_layout`).

The testbed's blocks are described in ``blocks/*.block.yml``; open the flowgraphs with
``GRC_BLOCKS_PATH=flowgraphs/blocks gnuradio-companion flowgraphs/ap_rx_sim.grc``.
:func:`compile_flowgraph` runs ``grcc`` the same way (into ``flowgraphs/generated/`` by default,
which git ignores).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["BLOCKS_DIR", "FLOWGRAPH_DIR", "GRC_FILES", "GrccError", "compile_flowgraph"]

FLOWGRAPH_DIR = Path(__file__).resolve().parent
BLOCKS_DIR = FLOWGRAPH_DIR / "blocks"
GRC_FILES = {p.stem: p for p in sorted(FLOWGRAPH_DIR.glob("*.grc"))}


class GrccError(RuntimeError):
    """``grcc`` failed; the message holds its output."""


def compile_flowgraph(
    name: str, out_dir: str | Path | None = None, *, timeout_s: float = 120
) -> Path:
    """Compile ``<name>.grc`` with ``grcc``; return the generated Python file."""
    if name not in GRC_FILES:
        raise ValueError(f"`name`: unknown flowgraph `{name}`; known: {sorted(GRC_FILES)}")
    out = Path(out_dir) if out_dir is not None else FLOWGRAPH_DIR / "generated"
    out.mkdir(parents=True, exist_ok=True)
    # the flowgraphs' expressions import the testbed's own modules (phy_layout): grcc
    # evaluates them, so it runs with the repository on its path
    path = os.pathsep.join(
        p for p in (str(FLOWGRAPH_DIR.parent), os.environ.get("PYTHONPATH")) if p
    )
    env = {**os.environ, "GRC_BLOCKS_PATH": str(BLOCKS_DIR), "PYTHONPATH": path}
    try:
        res = subprocess.run(
            ["grcc", "-o", str(out), str(GRC_FILES[name])],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise GrccError("`grcc` is not installed (apt install gnuradio)") from None
    target = out / f"{name}.py"
    if res.returncode != 0 or not target.exists():
        raise GrccError(f"grcc {name}.grc failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return target
