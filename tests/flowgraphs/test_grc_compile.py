"""The .grc files compile with grcc and what grcc generates runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ap_cluster.config import cluster_config_from_spec
from controller.csi import CSIStore, CSISubscriber
from flowgraphs import GRC_FILES, compile_flowgraph
from protocol.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("generated")
    return {name: compile_flowgraph(name, out) for name in GRC_FILES}


def _cluster(tmp_path: Path, backend: dict[str, object], port: int) -> Path:
    spec = parse_spec(
        {
            "name": "grc",
            "topology": {
                "aps": [{"id": "ap0", "antennas": 2}],
                "ues": [{"id": "ue0"}, {"id": "ue1"}],
            },
            "radio": {"sample_rate_hz": 2e5, "tau_c": 100, "tau_p": 4, "snr_override_db": 10},
            "backend": backend,
        }
    )
    cfg = cluster_config_from_spec(spec, pub_base_port=port, publish_interval_s=0.01)
    return cfg.model_copy(update={"sim_pace": 1.0}).dump_yaml(tmp_path / "cluster.yaml")


def test_every_flowgraph_compiles(generated: dict[str, Path]) -> None:
    assert set(generated) == {"ap_rx_sim", "ap_rx_uhd", "ue_pilot_tx", "phy_tx", "phy_rx"}
    for name, path in generated.items():
        text = path.read_text()
        kind = "hier_block2" if name.startswith("phy_") else "top_block"  # the PHY's hier blocks
        assert f"class {name}(gr.{kind})" in text
    assert "set_time_unknown_pps" in generated["ap_rx_uhd"].read_text()
    assert "set_start_time" in generated["ue_pilot_tx"].read_text()


def test_generated_sim_flowgraph_publishes_csi(generated: dict[str, Path], tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = _cluster(tmp_path, {"kind": "sim"}, port)
    store = CSIStore(ap_ids=["ap0"], ue_ids=["ue0", "ue1"], n_ant={"ap0": 2}, max_age_s=60)
    with CSISubscriber([f"tcp://127.0.0.1:{port}"], store):
        cmd = [
            sys.executable,
            str(generated["ap_rx_sim"]),
            "--cluster",
            str(cluster),
            "--max-frames",
            "4000",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        time.sleep(0.2)
    assert res.returncode == 0, res.stderr
    c = store.counters
    assert c.accepted >= 20
    assert c.malformed == 0
    assert store.latest("ap0").n_ant == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["ap_rx_uhd", "ue_pilot_tx"])
def test_generated_hardware_flowgraphs_run_until_the_missing_device(
    generated: dict[str, Path], tmp_path: Path, name: str
) -> None:
    cluster = _cluster(tmp_path, {"kind": "uhd"}, 20100)
    args = ["--cluster", str(cluster)] if name == "ap_rx_uhd" else []
    cmd = [sys.executable, str(generated[name]), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert res.returncode != 0
    assert "No devices found" in res.stderr  # the generated code ran up to opening the USRP
