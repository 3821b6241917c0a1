"""`testbed bench csi` prints one JSON object with measured and theoretical NMSE."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from testbed.cli import app


def test_bench_csi_json() -> None:
    args = ["bench", "csi", "--snr-db", "0", "--tau-p", "4", "--seed", "2", "--frames", "600"]
    args += ["--duration", "0.5", "--no-pin", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for est in ("ls", "mmse"):
        assert out["nmse_db"][est] == pytest.approx(out["nmse_theory_db"][est], abs=0.5)
    assert out["nmse_theory_db"]["ls"] == pytest.approx(-6.02, abs=0.01)  # 1 / (tau_p snr)
    assert out["csi_msgs_per_s"] > 0
    assert out["csi_msgs_received"] == 600
    assert out["realtime_factor"] > 0
